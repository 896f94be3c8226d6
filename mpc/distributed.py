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
from typing import Any, Callable, Sequence, cast

from . import config as cfgmod
from .arith.fixed import FixedPoint
from .errors import EncodingError, ParameterError, ProtocolAbort, TransportError
from .launch import Job, PartyOutcome, Ran, RunResult, launch, play
from .party import Party
from .preprocessing.dealer import DealerSource
from .preprocessing.remote_dealer import (RemoteDealer, key_for, node_names, nodes_of, serve_dealer,
                                          session_id)
from .preprocessing.source import NAMES, Source, resolve
from .transcript.record import program_title
from .transport.mesh import connect
from .transport.tcp import TcpEndpoint
from .transport.tls import new_identity
from .transport.values import decode_value, encode_value

__all__ = ["LocalRunResult", "PartyOutcome", "TcpTransport", "decode_value", "encode_value",
           "execute_party", "free_ports", "import_root", "load_program", "make_local_config",
           "program_ref", "run_local", "run_party", "serve_dealer"]


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


NETWORK_PREPROCESSING = tuple(n for n in NAMES if n != "dealer")
"""Dealer-free sources a networked session can use (``preprocessing=``; ``"he"``: two parties only)."""


def execute_party(program: Callable[..., Any], config: cfgmod.SessionConfig, party_id: int, *,
                  key: str | None = None, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                  frac_bits: int = 16, session_tag: str = "", record_transcript: bool = False,
                  name: str | None = None, preprocessing: str | None = None) -> PartyOutcome:
    """Run party ``party_id``; never raises: a failure is returned in ``outcome.error``.

    Preprocessing: the config's dealer if it has one; else ``preprocessing``
    ``"ot"`` (any n >= 2) or ``"he"`` (two parties): the parties make their own, no third party; or none.
    """
    name = name or program_title(program)

    def join() -> Party:
        if not 0 <= party_id < config.n:
            raise ParameterError(f"party {party_id} is not in the config (parties 0..{config.n - 1})")
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
        return Party(party_id, config.n, endpoint, session=session, fixed=FixedPoint(frac_bits),
                     timeout=config.timeout, record_transcript=record_transcript)

    def source(party: Party) -> Any:
        if config.dealer is not None:
            endpoint = cast(TcpEndpoint, party.endpoint)   # made by connect() above
            remote = RemoteDealer(endpoint, config.dealer_id, config.n, party.session, config.timeout)
            return DealerSource(party, remote)  # type: ignore[arg-type]
        return resolve(preprocessing).factory(config.n)(party)  # type: ignore[misc]

    has_source = config.dealer is not None or preprocessing is not None
    job = Job(program, config.n, Source(None), source if has_source else None, None, args,
              dict(kwargs or {}), record_transcript, name)
    # Output checked before the goodbye: an unsendable output fails here, not in the launcher.
    return play(party_id, join, job, check_output=encode_value)


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
        ``"he"``: the parties make their own (no third party; ``"he"``: two parties only); ``None``: none.
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
    if preprocessing not in ("dealer", None, *NETWORK_PREPROCESSING):
        raise ParameterError(f"run_local supports preprocessing 'dealer', 'ot', 'he' or None, "
                             f"not {preprocessing!r}")
    # a program file is loaded here too: a clear error now, not in N processes
    fn = load_program(program) if isinstance(program, str) else program
    transport = TcpTransport(program, frac_bits=frac_bits, timeout=timeout, processes=processes,
                             hosts=hosts, launch_prefix=launch_prefix, wall_timeout=wall_timeout)
    title = program_title(program) if not isinstance(program, str) else _canonical_name(program)
    return launch(fn, parties, transport, preprocessing, inputs=inputs, args=args, kwargs=kwargs,  # type: ignore[return-value]
                  transcript=transcript, title=title)


class TcpTransport:
    """Every party over TCP + TLS on this machine (loopback, or ``hosts``): one OS process each,
    or threads of this process; for the trusted dealer the launcher serves as its node.

    Throw-away keys and a config are made per run; a party process runs
    ``mpc run PROGRAM --party I --config FILE`` (:func:`execute_party`) and
    reports its :class:`PartyOutcome` as JSON.
    """

    result_type = LocalRunResult

    def __init__(self, program: Callable[..., Any] | str, *, frac_bits: int = 16, timeout: float = 30.0,
                 processes: bool = True, hosts: Sequence[str] | None = None,
                 launch_prefix: Callable[[int], list[str]] | None = None,
                 wall_timeout: float | None = None) -> None:
        self.program, self.frac_bits, self.timeout = program, frac_bits, timeout
        self.processes, self.hosts = processes, hosts
        self.launch_prefix, self.wall_timeout = launch_prefix, wall_timeout

    def run(self, job: Job) -> Ran:
        source = job.source
        if not source.none and source.name not in NAMES:
            raise ParameterError("run_local supports preprocessing 'dealer', 'ot', 'he' or None: "
                                 "a factory cannot travel to the party processes")
        own = None if source.none or source.is_dealer else source.name
        with tempfile.TemporaryDirectory(prefix="concilium-") as tmp:
            cfg_path = make_local_config(tmp, job.n, dealer=source.is_dealer, hosts=self.hosts,
                                         timeout=self.timeout)
            conf = cfgmod.load(cfg_path)
            tag = os.urandom(8).hex()
            dealer_error: list[BaseException] = []
            dealer_thread = _start_dealer(conf, tag, dealer_error) if source.is_dealer else None
            t0 = time.perf_counter()
            if self.processes:
                outcomes = _run_processes(program_ref(self.program), conf, cfg_path, job.n, tag, job.args,
                                          job.kwargs, self.frac_bits, job.record_transcript, Path(tmp),
                                          self.launch_prefix, self.wall_timeout, own, job.inputs,
                                          import_root(self.program))
            else:
                outcomes = self._threads(job, conf, tag, own)
            elapsed = time.perf_counter() - t0
            if dealer_thread is not None and not any(o.error is not None for o in outcomes):
                dealer_thread.join(self.timeout + 5)
        if dealer_error and not isinstance(dealer_error[0], TransportError) \
                and not any(o.error is not None for o in outcomes):
            raise dealer_error[0]
        return Ran(outcomes, max((o.seconds for o in outcomes), default=elapsed),
                   {"socket_bytes": {o.party: o.socket_bytes for o in outcomes}})

    def _threads(self, job: Job, conf: cfgmod.SessionConfig, tag: str, own: str | None) -> list[PartyOutcome]:
        """Every party in a thread of this process, still over TCP + TLS (for tests)."""
        name = _canonical_name(self.program) if isinstance(self.program, str) else None
        outcomes = [PartyOutcome(i) for i in range(job.n)]

        def body(i: int) -> None:
            try:
                outcomes[i] = execute_party(job.program, conf, i, args=job.call_args(i), kwargs=job.kwargs,
                                            frac_bits=self.frac_bits, session_tag=tag,
                                            record_transcript=job.record_transcript, name=name,
                                            preprocessing=own)
            except BaseException as exc:  # noqa: BLE001 - SystemExit etc. fail the run
                outcomes[i].error = exc
        threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(job.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return outcomes


def _start_dealer(conf: cfgmod.SessionConfig, tag: str, errors: list[BaseException]) -> threading.Thread:
    """Serve the session's trusted dealer in a thread of the launcher; its failure goes to ``errors``."""
    def body() -> None:
        try:
            serve_dealer(conf, session_tag=tag)
        except BaseException as exc:  # noqa: BLE001 - reported by the transport
            errors.append(exc)
    thread = threading.Thread(target=body, name="dealer", daemon=True)
    thread.start()
    return thread


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
