"""Run party programs across OS processes and machines over TCP + TLS (layer: mpc core).

Three entry points, all running the *same* party code as :func:`mpc.run`:

* :func:`run_party` runs one party of a session described by a config file
  (:mod:`mpc.config`), in this process: ``mpc run PROGRAM --party I --config FILE``;
* :func:`serve_dealer` runs the session's trusted dealer, if it has one:
  ``mpc dealer --config FILE``;
* :func:`run_local` makes throw-away keys and a config for N parties on
  loopback, starts one OS process per party (the launcher itself is the
  dealer, a separate process from every party), gathers their outputs and
  message logs, and returns a :class:`~mpc.runner.RunResult` whose cost is
  computed exactly as in memory: ``mpc run PROGRAM --local N``.

Costs are identical across transports: the rounds and payload bytes come
from the same per-party message logs; over TCP each record's ``wire_bytes``
is the ciphertext that message became (record header and TLS overhead
included), and :attr:`LocalRunResult.socket_bytes` adds the handshakes and
the dealer's control traffic.

Results travel from the party processes to the launcher as JSON written by
:func:`encode_value` (numbers, strings, lists, dicts, numpy arrays as dtype +
shape + base64): nothing is unpickled or evaluated.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import config as cfgmod
from .arith.fixed import FixedPoint
from .errors import (ConciliumError, EncodingError, IntegrityError, ParameterError, PartyError,
                     PeerTimeout, PreprocessingExhausted, ProtocolAbort, ProtocolError, TransportError,
                     party_failure)
from .party import Party
from .preprocessing.dealer import DealerSource
from .runner import RunResult, gather_cost
from .transcript.record import (MessageDetail, PublishedValue, Transcript, from_records,
                                program_title)
from .transport.stats import Cost, MessageRecord
from .transport.mesh import connect
from .transport.remote_dealer import (RemoteDealer, key_for, node_names, nodes_of, serve_dealer,
                                      session_id)
from .transport.tls import new_identity
from .transport.values import decode_value, encode_value

_ERRORS = {c.__name__: c for c in (ConciliumError, EncodingError, IntegrityError, ParameterError,
                                    PeerTimeout, PreprocessingExhausted, ProtocolAbort,
                                    ProtocolError, TransportError)}


# -- programs ---------------------------------------------------------------------
def load_program(ref: str) -> Callable[..., Any]:
    """The party program named by ``ref``: ``path/file.py[:func]`` or ``module[:func]``.

    The function defaults to ``program``. A file is imported under its own
    name (not ``__main__``), so its ``main()`` does not run.
    """
    target, _, func = ref.partition(":")
    func = func or "program"
    if target.endswith(".py") or os.sep in target:
        path = Path(target)
        if not path.is_file():
            raise ParameterError(f"program file {target!r} not found")
        name = f"_mpc_program_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ParameterError(f"cannot import {target!r}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            sys.modules.pop(name, None)
            raise ParameterError(f"program file {target!r} has a syntax error at line "
                                 f"{exc.lineno}: {exc.msg}") from None
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ParameterError(f"cannot import program module {target!r}: {exc}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ParameterError(f"{target!r} has no function {func!r} (give PROGRAM as file.py:function)")
    return fn


def program_ref(program: Callable[..., Any] | str) -> str:
    """A reference another process can load: ``module:qualname`` (or the string given)."""
    if isinstance(program, str):
        return program
    module = getattr(program, "__module__", None)
    name = getattr(program, "__qualname__", "")
    if not module or module == "__main__" or "<" in name or "." in name:
        raise ParameterError("a program run in other processes must be a module-level function of an "
                             "importable module, or given as 'file.py:function'")
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if module.startswith("_mpc_program_") and path:
        return f"{path}:{name}"
    return f"{module}:{name}"


def import_root(program: Callable[..., Any] | str) -> str | None:
    """The folder from which another process imports ``program``'s module (None for a string).

    ``pkg.mod`` in ``/src/pkg/mod.py`` gives ``/src``; a module imported from a
    folder this process added to ``sys.path`` (a test folder, a notebook's
    ``sys.path.append``) gives that folder, which the party processes then get
    on their ``PYTHONPATH``.
    """
    if isinstance(program, str):
        return None
    module = getattr(program, "__module__", "") or ""
    path = getattr(sys.modules.get(module), "__file__", None)
    if not path or module.startswith("_mpc_program_"):
        return None
    file = Path(path).resolve()
    root = file.parent
    for _ in range(module.count(".") + (file.name == "__init__.py")):
        root = root.parent
    return str(root)


# -- one party --------------------------------------------------------------------
def _program_digest(name: str, frac_bits: int, preprocessing: str | None = None) -> bytes:
    extra = "" if preprocessing is None else f"\0{preprocessing}"
    return hashlib.sha256(f"concilium-program\0{name}\0{frac_bits}{extra}".encode()).digest()


NETWORK_PREPROCESSING = ("ot", "he")
"""Dealer-free sources a networked two-party session can use (``preprocessing=``)."""


@dataclass
class PartyOutcome:
    """What one party's run produced: output or error, its message log, timings."""

    party: int
    output: Any = None
    error: BaseException | None = None
    log: list[MessageRecord] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    phase_clocks: list[tuple[str, int, int]] = field(default_factory=list)
    seconds: float = 0.0
    socket_bytes: dict[int, tuple[int, int]] = field(default_factory=dict)
    transcript: dict[str, Any] | None = None

    def to_json(self) -> str:
        err = None
        if isinstance(self.error, PartyError):
            err = {"type": self.error.error_type, "message": str(self.error.__cause__ or self.error)}
        elif self.error is not None:
            err = {"type": type(self.error).__name__, "message": str(self.error)}
        return json.dumps({
            "party": self.party, "output": encode_value(self.output), "error": err,
            "log": [[m.round, m.sender, m.receiver, m.tag, m.phase, m.payload_bytes, m.wire_bytes]
                    for m in self.log],
            "phase_seconds": self.phase_seconds, "phase_clocks": [list(c) for c in self.phase_clocks],
            "seconds": self.seconds, "socket_bytes": {str(k): list(v) for k, v in self.socket_bytes.items()},
            "transcript": self.transcript}, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "PartyOutcome":
        d = json.loads(text)
        err = None
        if d["error"] is not None:
            etype = _ERRORS.get(d["error"]["type"])
            msg = str(d["error"]["message"])
            err = etype(msg) if etype else PartyError(int(d["party"]), str(d["error"]["type"]), msg)
        return cls(int(d["party"]), decode_value(d["output"]), err,
                   [MessageRecord(int(r), int(s), int(t), str(tag), str(ph), int(p), int(w))
                    for r, s, t, tag, ph, p, w in d["log"]],
                   {str(k): float(v) for k, v in d["phase_seconds"].items()},
                   [(str(a), int(b), int(c)) for a, b, c in d["phase_clocks"]], float(d["seconds"]),
                   {int(k): (int(v[0]), int(v[1])) for k, v in d["socket_bytes"].items()},
                   d.get("transcript"))


def execute_party(program: Callable[..., Any], config: cfgmod.SessionConfig, party_id: int, *,
                  key: str | None = None, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                  frac_bits: int = 16, session_tag: str = "", record_transcript: bool = False,
                  name: str | None = None, preprocessing: str | None = None) -> PartyOutcome:
    """Run party ``party_id``; never raises: a failure is returned in ``outcome.error``.

    Preprocessing: the config's dealer if it has one; else ``preprocessing``
    ``"ot"`` or ``"he"`` (two parties make their own, no third party) or none.
    """
    outcome = PartyOutcome(party_id)
    endpoint = None
    party = None
    try:
        if not 0 <= party_id < config.n:
            raise ParameterError(f"party {party_id} is not in the config (parties 0..{config.n - 1})")
        name = name or program_title(program)
        if preprocessing is not None and preprocessing not in NETWORK_PREPROCESSING:
            raise ParameterError(f"preprocessing over the network is the config's dealer, "
                                 f"{' or '.join(map(repr, NETWORK_PREPROCESSING))}, not {preprocessing!r}")
        if preprocessing is not None and config.dealer is not None:
            raise ParameterError(f"the config has a [dealer]: remove it to use preprocessing="
                                 f"{preprocessing!r}")
        session = session_id(config, session_tag)
        cert = str(config.parties[party_id].certificate)
        endpoint = connect(party_id, nodes_of(config), cert=cert, key=key or key_for(cert),
                           session=session, digest=_program_digest(name, frac_bits, preprocessing),
                           timeout=config.timeout, digest_peers=set(range(config.n)),
                           names=node_names(config))
        party = Party(party_id, config.n, endpoint, session=session, fixed=FixedPoint(frac_bits),
                      timeout=config.timeout, record_transcript=record_transcript)
        t0 = time.perf_counter()
        if config.dealer is not None:
            remote = RemoteDealer(endpoint, config.dealer_id, config.n, session, config.timeout)
            party.preprocessing = DealerSource(party, remote)  # type: ignore[arg-type]
        elif preprocessing == "ot":
            from .preprocessing.ot import ot_factory
            party.preprocessing = ot_factory(config.n)(party)
        elif preprocessing == "he":
            from .preprocessing.he import he_factory
            party.preprocessing = he_factory(config.n)(party)
        outcome.output = program(party, *args, **(kwargs or {}))
        outcome.seconds = time.perf_counter() - t0
        encode_value(outcome.output)  # fail here, not in the launcher, on an unsendable output
        endpoint.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the caller in the outcome
        outcome.error = exc
        if endpoint is not None:
            endpoint.abort(f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, Exception):   # SystemExit, KeyboardInterrupt: record, then go on up
            _fill(outcome, party, endpoint, config.n, record_transcript, name)
            raise
    _fill(outcome, party, endpoint, config.n, record_transcript, name)
    return outcome


def _fill(outcome: PartyOutcome, party: Party | None, endpoint: Any, n: int, record_transcript: bool,
          name: str | None) -> None:
    """Copy what the party recorded (messages, phases, transcript, socket bytes) into ``outcome``."""
    if party is not None:
        outcome.log = list(party.log)
        outcome.phase_seconds = dict(party.phase_seconds)
        outcome.phase_clocks = list(party.phase_clocks)
        if record_transcript:
            details = [(party.details or {}).get(k) for k in range(len(party.log))]
            part = from_records(party.log, n, details=details,
                                published=party.published or [], title=name or "")
            outcome.transcript = part.to_dict()
    if endpoint is not None:
        outcome.socket_bytes = endpoint.bytes_on_socket()


def run_party(program: Callable[..., Any] | str, config: cfgmod.SessionConfig | str | os.PathLike[str],
              party_id: int, **options: Any) -> PartyOutcome:
    """Run one party of the session in ``config`` in this process; raise its error if it fails.

    ``options``: ``key`` (default: the certificate's path with ``.key``),
    ``args``, ``kwargs``, ``frac_bits``, ``session_tag`` (every party must
    give the same), ``record_transcript``.
    """
    conf = config if isinstance(config, cfgmod.SessionConfig) else cfgmod.load(config)
    fn = load_program(program) if isinstance(program, str) else program
    name = program if isinstance(program, str) else None
    outcome = execute_party(fn, conf, party_id, name=name and _canonical_name(name), **options)
    if outcome.error is not None:
        raise outcome.error
    return outcome


def _canonical_name(ref: str) -> str:
    target, _, func = ref.partition(":")
    stem = Path(target).stem if target.endswith(".py") else target
    return f"{stem}.{func or 'program'}"


# -- N parties on this machine ----------------------------------------------------
@dataclass
class LocalRunResult(RunResult):
    """A :class:`RunResult` of a TCP run, plus raw socket bytes per party and peer."""

    socket_bytes: dict[int, dict[int, tuple[int, int]]] = field(default_factory=dict)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the OS reports free now (a small race remains until they are bound)."""
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind((host, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def make_local_config(folder: str | os.PathLike[str], parties: int, *, dealer: bool = True,
                      hosts: Sequence[str] | None = None, timeout: float = 30.0,
                      name: str = "local") -> Path:
    """Throw-away keys and a config for ``parties`` parties (on loopback unless ``hosts``)."""
    folder = Path(folder)
    hosts = list(hosts) if hosts is not None else ["127.0.0.1"] * parties
    if len(hosts) != parties:
        raise ParameterError(f"{len(hosts)} hosts for {parties} parties")
    ports = free_ports(parties) if hosts == ["127.0.0.1"] * parties else [7700 + i for i in range(parties)]
    entries = []
    for i in range(parties):
        new_identity(i, folder / "keys", overwrite=True)
        entries.append((f"{hosts[i]}:{ports[i]}", f"keys/party{i}.crt"))
    if dealer:
        new_identity("dealer", folder / "keys", overwrite=True)
    text = cfgmod.render(entries, dealer_certificate="keys/dealer.crt" if dealer else None,
                         timeout=timeout, name=name)
    path = folder / "parties.toml"
    path.write_text(text)
    return path


def _is_secondary(exc: BaseException) -> bool:
    text = str(exc)
    return any(s in text for s in (" aborted: ", "disconnected", "finished and closed", "stopped:",
                                   "cannot send to party", "closed the TLS session"))


def run_local(program: Callable[..., Any] | str, parties: int = 3, *,
              inputs: Sequence[Any] | None = None, args: Sequence[Any] = (),
              kwargs: dict[str, Any] | None = None, frac_bits: int = 16, timeout: float = 30.0,
              preprocessing: str | None = "dealer", transcript: str | os.PathLike[str] | None = None,
              processes: bool = True, hosts: Sequence[str] | None = None,
              launch_prefix: Callable[[int], list[str]] | None = None,
              wall_timeout: float | None = None) -> LocalRunResult:
    """Run ``program`` for ``parties`` parties over TCP + TLS on this machine.

    Parameters
    ----------
    program:
        A module-level function of an importable module (the party processes
        import it from the same folder as this process did), or
        ``"file.py[:func]"`` / ``"module:func"``.
    inputs:
        Optional per-party inputs, as in :func:`mpc.run`: party i receives
        ``inputs[i]`` as its first argument after ``party``. With
        ``processes`` each travels to its own process only (numbers, strings,
        lists, tuples, dicts, numpy arrays: exact dtype and shape).
    processes:
        One OS process per party (default); ``False`` runs them as threads of
        this process, still over TCP + TLS (for tests).
    preprocessing:
        ``"dealer"``: the launcher serves as the trusted dealer; ``"ot"`` or
        ``"he"``: two parties make their own (no third party); ``None``: none.
    args, kwargs:
        Given to every party; JSON values when ``processes`` is true.
    transcript:
        Write the merged transcript (HTML, or JSON for ``.json``) there.
    hosts, launch_prefix:
        Per-party addresses and a command prefix (e.g. ``ip netns exec ns0``).
    wall_timeout:
        Kill the party processes after this many seconds (default: none; each
        party already fails within ``timeout`` of a silent peer).

    Raises
    ------
    The root failure (a party's own error, not the echoes of it on the
    others), named as :func:`mpc.run` names it: a Concilium error with its
    ``party`` set, any other exception as :class:`~mpc.errors.PartyError`
    (``party 2 failed: KeyError: 'temperature'``); its ``party_errors``
    attribute maps every failed party to its error. Party processes cap their BLAS threads to ``cpu_count // parties``
    unless ``OMP_NUM_THREADS`` and friends are set.
    """
    if not isinstance(parties, (int, np.integer)) or parties < 2:
        raise ParameterError(f"an MPC run needs at least 2 parties, got {parties!r}")
    if preprocessing not in ("dealer", None, *NETWORK_PREPROCESSING):
        raise ParameterError(f"run_local supports preprocessing 'dealer', 'ot', 'he' or None, "
                             f"not {preprocessing!r}")
    if inputs is not None and len(inputs) != parties:
        raise ParameterError(f"inputs has {len(inputs)} entries for {parties} parties")
    own = preprocessing if preprocessing in NETWORK_PREPROCESSING else None
    record = transcript is not None
    if isinstance(program, str):
        load_program(program)  # fail here, with a clear error, not in N processes
    with tempfile.TemporaryDirectory(prefix="concilium-") as tmp:
        cfg_path = make_local_config(tmp, parties, dealer=preprocessing == "dealer", hosts=hosts,
                                     timeout=timeout)
        conf = cfgmod.load(cfg_path)
        tag = os.urandom(8).hex()
        dealer_error: list[BaseException] = []
        dealer_thread = None
        if preprocessing == "dealer":
            def dealer_body() -> None:
                try:
                    serve_dealer(conf, session_tag=tag)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    dealer_error.append(exc)
            dealer_thread = threading.Thread(target=dealer_body, name="dealer", daemon=True)
            dealer_thread.start()
        t0 = time.perf_counter()
        if processes:
            outcomes = _run_processes(program_ref(program), conf, cfg_path, parties, tag, args, kwargs,
                                      frac_bits, record, Path(tmp), launch_prefix, wall_timeout, own,
                                      inputs, import_root(program))
        else:
            fn = load_program(program) if isinstance(program, str) else program
            name = _canonical_name(program) if isinstance(program, str) else None
            outcomes = [PartyOutcome(i) for i in range(parties)]

            def body(i: int) -> None:
                try:
                    mine = list(args) if inputs is None else [inputs[i], *args]
                    outcomes[i] = execute_party(fn, conf, i, args=mine, kwargs=kwargs,
                                                frac_bits=frac_bits, session_tag=tag,
                                                record_transcript=record, name=name,
                                                preprocessing=own)
                except BaseException as exc:  # noqa: BLE001 - SystemExit etc. fail the run
                    outcomes[i].error = exc
            threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(parties)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elapsed = time.perf_counter() - t0
        if dealer_thread is not None and not any(o.error is not None for o in outcomes):
            dealer_thread.join(timeout + 5)
    title = program_title(program) if not isinstance(program, str) else _canonical_name(program)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        roots = [o for o in failed if not _is_secondary(o.error)] or failed  # type: ignore[arg-type]
        if record:
            _merged_transcript(outcomes, parties, None, None, title,
                               f"party {roots[0].party}: {roots[0].error}").write(transcript)  # type: ignore[arg-type]
        err = party_failure(roots[0].party, roots[0].error)  # type: ignore[arg-type]
        err.party_errors = {o.party: o.error for o in failed}  # type: ignore[attr-defined]
        raise err
    if dealer_error and not isinstance(dealer_error[0], TransportError):
        raise dealer_error[0]
    cost = gather_cost(parties, [(o.party, o.log, o.phase_seconds, o.phase_clocks) for o in outcomes],
                       max((o.seconds for o in outcomes), default=elapsed))
    outputs = [o.output for o in outcomes]
    tr = None
    if record:
        tr = _merged_transcript(outcomes, parties, outputs, cost, title, None)
        tr.write(transcript)  # type: ignore[arg-type]
    return LocalRunResult(outputs=outputs, cost=cost, logs=[o.log for o in outcomes], transcript=tr,
                          socket_bytes={o.party: o.socket_bytes for o in outcomes})


def _merged_transcript(outcomes: list[PartyOutcome], n: int, outputs: list[Any] | None,
                       cost: Cost | None, title: str, error: str | None) -> Transcript:
    """One transcript from every party's own part (each lists the messages it sent)."""
    pairs, published = [], []
    for o in outcomes:
        if o.transcript is None:
            continue
        part = Transcript.from_dict(o.transcript)
        pairs.extend(part.messages)
        published.extend(part.published)
    pairs.sort(key=lambda m: (m.record.round, m.record.sender, m.record.receiver))
    published.sort(key=lambda v: (v.round, v.party))
    return from_records([m.record for m in pairs], n,
                        details=[MessageDetail(m.arrays, m.public) for m in pairs],
                        outputs=outputs, published=[PublishedValue(v.party, v.round, v.tag, v.value)
                                                    for v in published],
                        cost=cost, title=title, error=error)


def _run_processes(ref: str, conf: cfgmod.SessionConfig, cfg_path: Path, parties: int, tag: str,
                   args: Sequence[Any], kwargs: dict[str, Any] | None, frac_bits: int, record: bool,
                   tmp: Path, launch_prefix: Callable[[int], list[str]] | None,
                   wall_timeout: float | None, preprocessing: str | None = None,
                   inputs: Sequence[Any] | None = None, root: str | None = None) -> list[PartyOutcome]:
    try:
        args_json = json.dumps(list(args))
        kwargs_json = json.dumps(dict(kwargs or {}))
    except TypeError as exc:
        raise ParameterError(f"args and kwargs of a multi-process run must be JSON values: {exc}") from None
    input_files = []
    for i, value in enumerate(inputs if inputs is not None else []):
        try:
            text = json.dumps(encode_value(value))
        except EncodingError:                  # e.g. a float16 array: not a wire dtype
            text = '"$repr"'
        if '"$repr"' in text:
            raise ParameterError(f"party {i}'s input cannot travel to its process: use numbers, strings, "
                                 "lists, tuples, dicts and numpy arrays of the wire's dtypes")
        path = tmp / f"input{i}.json"
        path.write_text(text)
        input_files.append(path)
    procs = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), *filter(None, [root, env.get("PYTHONPATH")])])
    # N processes share this machine's cores: without a cap each one's BLAS
    # starts a spinning thread per core and they starve one another.
    threads = str(max(1, (os.cpu_count() or 1) // parties))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, threads)
    for i in range(parties):
        cmd = [*(launch_prefix(i) if launch_prefix else []), sys.executable, "-m", "mpc.cli", "run", ref,
               "--party", str(i), "--config", str(cfg_path), "--session", tag,
               "--frac-bits", str(frac_bits), "--args", args_json, "--kwargs", kwargs_json,
               "--result", str(tmp / f"result{i}.json"), "--quiet"]
        if preprocessing is not None:
            cmd += ["--preprocessing", preprocessing]
        if input_files:
            cmd += ["--input-value", str(input_files[i])]
        if record:
            cmd.append("--record-transcript")
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env))
    stderr: dict[int, bytes] = {}
    readers = []
    for i, p in enumerate(procs):
        def read(i: int = i, p: subprocess.Popen = p) -> None:
            stderr[i] = p.stderr.read() if p.stderr else b""  # type: ignore[union-attr]
        t = threading.Thread(target=read, daemon=True)
        t.start()
        readers.append(t)
    start = time.monotonic()
    first_failure = None
    while any(p.poll() is None for p in procs):
        now = time.monotonic()
        if first_failure is None and any(p.returncode not in (None, 0) for p in procs):
            first_failure = now
        grace = conf.timeout + 5.0
        if (first_failure is not None and now - first_failure > grace) or \
                (wall_timeout is not None and now - start > wall_timeout):
            for p in procs:
                if p.poll() is None:
                    p.kill()
        time.sleep(0.01)
    for t in readers:
        t.join(5)
    outcomes = []
    for i, p in enumerate(procs):
        path = tmp / f"result{i}.json"
        if path.exists():
            outcomes.append(PartyOutcome.from_json(path.read_text()))
        else:
            tail = stderr.get(i, b"").decode("utf-8", "replace").strip().splitlines()[-5:]
            outcomes.append(PartyOutcome(i, error=ProtocolAbort(
                f"party {i}'s process exited with code {p.returncode} before reporting: "
                + (" | ".join(tail) or "no output"))))
    return outcomes
