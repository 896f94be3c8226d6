"""Run one party program for N parties in one process (layer: mpc core).

:func:`run` is the embedded default: every party runs ``program(party, ...)``
in its own thread, messages go through memory in the real wire format, and the
result carries every party's output and the measured :class:`Cost`. If any
party raises, the others are woken at once and the first error is re-raised
naming its party (:func:`mpc.errors.party_failure`, as over the network): no
hang.

With ``transcript=PATH`` the run also writes what crossed the wire as a
self-contained HTML page (or JSON if PATH ends in ``.json``), see
:mod:`mpc.transcript`; a failed run writes the messages up to the failure.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from .arith.fixed import FixedPoint
from .errors import ParameterError, ProtocolAbort, party_failure
from .party import Party
from .preprocessing.base import Preprocessing
from .preprocessing.dealer import TrustedDealer
from .transcript.record import Transcript, from_parties, program_title
from .transport.memory import MemoryNetwork
from .transport.stats import DEALER, Cost, MessageRecord
from .transport.wire import DEFAULT_LIMITS, WireLimits

PreprocessingFactory = Callable[[Party], Preprocessing]


class _BlasLimit:
    """The process-wide BLAS thread limit while any run is going (runs may overlap in threads).

    BLAS thread pools are process-global, so this is too: the first run to start sets the
    limit, the last one to end restores what was there before.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._controller: Any = None

    @contextlib.contextmanager
    def __call__(self, threads: int) -> Any:
        with self._lock:
            if self._active == 0:
                self._controller = threadpool_limits(threads, user_api="blas")
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self._controller.restore_original_limits()
                    self._controller = None


_BLAS = _BlasLimit()


@dataclass
class RunResult:
    """Outputs of every party, the measured cost and (optionally) each party's view."""

    outputs: list[Any]
    cost: Cost
    views: list[list[tuple[int, str, tuple[np.ndarray, ...]]]] | None = None
    logs: list[list[MessageRecord]] = field(default_factory=list)
    transcript: Transcript | None = None

    def __iter__(self):  # allows ``outputs, cost = run(...)``
        yield self.outputs
        yield self.cost


def phase_rounds(clocks: list[list[tuple[str, int, int]]]) -> dict[str, int]:
    """Rounds each phase adds to the critical path, from every party's phase clocks.

    The k-th entry into a phase is matched across parties (SPMD code enters
    phases in the same order); its rounds are the latest exit clock minus the
    latest entry clock.
    """
    out: dict[str, int] = {}
    for (name, _), (start, end) in _critical_spans(clocks).items():
        out[name] = out.get(name, 0) + max(end - start, 0)
    return out


def explicit_rounds(clocks: list[list[tuple[str, int, int]]]) -> int:
    """Rounds on the critical path inside any explicit phase (the union of their spans, so
    that nested phases count once): the default phase ``online`` has the rest."""
    total, reach = 0, -1
    for s, e in sorted(_critical_spans(clocks).values()):
        s = max(s, reach)
        if e > s:
            total += e - s
            reach = e
    return total


def _critical_spans(clocks: list[list[tuple[str, int, int]]]) -> dict[tuple[str, int], tuple[int, int]]:
    """(latest entry clock, latest exit clock) of the k-th entry into each phase, over parties."""
    per_phase: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for entries in clocks:
        seen: dict[str, int] = {}
        for name, start, end in entries:
            k = seen.get(name, 0)
            seen[name] = k + 1
            per_phase.setdefault((name, k), []).append((start, end))
    return {key: (max(s for s, _ in spans), max(e for _, e in spans)) for key, spans in per_phase.items()}


def gather_cost(n_parties: int,
                parts: Sequence[tuple[int, Sequence[MessageRecord], dict[str, float],
                                      list[tuple[str, int, int]]]],
                seconds: float) -> Cost:
    """One run's :class:`Cost` from each party's (id, log, phase seconds, phase clocks).

    Every message is counted once, from its sender's log (the dealer's from
    the log of the party it reached); a phase takes its slowest party's time.
    """
    messages = [m for pid, log, _, _ in parts for m in log if m.sender == pid or m.sender == DEALER]
    messages.sort(key=lambda m: (m.round, m.sender, m.receiver))
    phase_seconds: dict[str, float] = {}
    for _, _, seconds_of, _ in parts:
        for ph, s in seconds_of.items():
            phase_seconds[ph] = max(phase_seconds.get(ph, 0.0), s)
    clocks = [c for *_, c in parts]
    rounds = phase_rounds(clocks)
    if clocks and any(clocks) and "online" not in rounds:   # the default phase: the rest
        total = max((m.round + 1 for m in messages if m.sender != DEALER), default=0)
        rounds["online"] = max(0, total - explicit_rounds(clocks))
    return Cost(n_parties=n_parties, messages=messages, seconds=seconds,
                phase_seconds=phase_seconds, phase_rounds=rounds)


def _join(threads: list[threading.Thread], errors: list[Any], timeout: float) -> None:
    """Wait for every party; once one failed, give the others ``timeout`` seconds to stop
    (a party busy with local work does not read the abort) and then stop waiting."""
    deadline = None
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.05)
        if deadline is None and any(e is not None for e in errors):
            deadline = time.monotonic() + timeout
        if deadline is not None and time.monotonic() > deadline:
            return


def _dealer_factory(n: int) -> PreprocessingFactory:
    dealer = TrustedDealer(n)
    return dealer.source


def run(program: Callable[..., Any], parties: int = 3, *,
        inputs: Sequence[Any] | None = None,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        preprocessing: str | Callable[[int], PreprocessingFactory] | None = "dealer",
        frac_bits: int = 16,
        input_bound: float | None = None,
        timeout: float = 30.0,
        latency: float = 0.0,
        record_view: bool = False,
        transcript: str | os.PathLike[str] | bool | None = None,
        blas_threads: int | None = 1,
        limits: WireLimits | None = None) -> RunResult:
    """Run ``program`` for ``parties`` parties in threads of this process.

    Parameters
    ----------
    program:
        ``program(party, [input,] *args, **kwargs)``, run by every party.
    parties:
        Number of parties, at least 2.
    inputs:
        Optional per-party inputs: party i receives ``inputs[i]`` as its first
        argument after ``party``.
    preprocessing:
        ``"dealer"`` (a :class:`TrustedDealer`, the default), ``"ot"``
        (dealer-free, two parties: triples from IKNP OT,
        :mod:`mpc.preprocessing.ot`), ``"he"`` (dealer-free, two parties:
        Paillier, :mod:`mpc.preprocessing.he`), ``None``, or a callable
        ``f(n) -> (party -> Preprocessing)``.
    frac_bits:
        Fractional bits of the fixed-point encoding (16).
    input_bound:
        Public magnitude bound of every input shared without its own
        ``bound=`` (see :func:`mpc.share`). ``None`` (default): the largest
        value below ``2^(31 - frac_bits)`` (32768 for 16 bits, 2^31 for
        integers), so that the product of two inputs fits. An owner refuses
        an input beyond it.
    timeout:
        Seconds any party waits for one message before failing.
    latency:
        Simulated one-way network latency in seconds.
    record_view:
        Keep every message each party received (``RunResult.views``).
    transcript:
        ``True`` keeps a :class:`~mpc.transcript.Transcript` in
        ``RunResult.transcript``; a path also writes it there: a self-contained
        HTML page, or JSON if the path ends in ``.json``. Payloads are never
        written, only headers, sizes, byte entropy, the values marked public
        (``party.publish``, ``send(..., public=True)``) and each party's output.
        If the run fails, the messages up to the failure are written, then the
        error is re-raised.
    blas_threads:
        BLAS threads per matrix product while the parties run (default 1):
        the parties are already threads, and BLAS pools in each of them would
        fight over the cores (a 64x32 product at batch 256 slows 20x). The
        previous limit is restored afterwards; ``None`` leaves BLAS alone.
        BLAS pools are per process: runs that overlap in threads share the
        limit of the first one to start, and the last to end restores it.
    limits:
        What a peer's message may cost a party (:class:`~mpc.transport.wire.WireLimits`:
        frame size, elements announced per share message...); default
        ``WireLimits()``.
    """
    if not isinstance(parties, (int, np.integer)) or parties < 2:
        raise ParameterError(f"an MPC run needs at least 2 parties, got {parties!r}")
    if inputs is not None and len(inputs) != parties:
        raise ParameterError(f"inputs has {len(inputs)} entries for {parties} parties")
    kwargs = dict(kwargs or {})
    if transcript is not None and not isinstance(transcript, (bool, str, os.PathLike)):
        raise ParameterError(f"transcript must be a path, True or None, not {type(transcript).__name__}")
    keep_transcript = transcript is not None and transcript is not False
    if keep_transcript and not isinstance(transcript, bool):
        folder = os.path.dirname(os.path.abspath(transcript))  # type: ignore[arg-type]
        if not os.path.isdir(folder):
            raise ParameterError(f"cannot write the transcript: no folder {folder!r}")
    fixed = FixedPoint(frac_bits)
    if input_bound is not None:
        from .sharing.bounds import validate
        validate(input_bound, frac_bits, "input_bound")
    net = MemoryNetwork(parties, latency=latency)
    session = os.urandom(8)
    party_objs = [Party(i, parties, net.endpoint(i), session=session, fixed=fixed,
                        timeout=timeout, record_view=record_view, record_transcript=keep_transcript,
                        limits=limits or DEFAULT_LIMITS)
                  for i in range(parties)]
    for p in party_objs:
        p.input_bound = input_bound
    if preprocessing == "dealer":
        factory: PreprocessingFactory | None = _dealer_factory(parties)
    elif preprocessing == "ot":
        from .preprocessing.ot import ot_factory
        factory = ot_factory(parties)
    elif preprocessing == "he":
        from .preprocessing.he import he_factory
        factory = he_factory(parties)
    elif preprocessing is None:
        factory = None
    elif callable(preprocessing):
        factory = preprocessing(parties)
    else:
        raise ParameterError(f"unknown preprocessing {preprocessing!r}: "
                             "use 'dealer', 'ot', 'he', None or a factory")

    outputs: list[Any] = [None] * parties
    errors: list[tuple[float, int, BaseException] | None] = [None] * parties

    def body(i: int) -> None:
        party = party_objs[i]
        try:
            if factory is not None:
                party.preprocessing = factory(party)
            call_args = ([inputs[i]] if inputs is not None else []) + list(args)
            outputs[i] = program(party, *call_args, **kwargs)
            net.finish(i)   # like a goodbye: peers still waiting for it fail at once
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors[i] = (time.monotonic(), i, exc)
            net.abort(f"party {i} failed with {type(exc).__name__}: {exc}")

    if blas_threads is not None and not (isinstance(blas_threads, int) and blas_threads >= 1):
        raise ParameterError(f"blas_threads must be a positive integer or None, got {blas_threads!r}")
    limit = _BLAS(blas_threads) if blas_threads is not None else contextlib.nullcontext()
    with limit:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=body, args=(i,), name=f"party-{i}", daemon=True)
                   for i in range(parties)]
        try:
            for t in threads:
                t.start()
            _join(threads, errors, timeout)
        except BaseException:        # e.g. Ctrl-C in the caller: stop the parties too
            net.abort("the caller interrupted the run")
            raise
        elapsed = time.perf_counter() - t0

    failures = sorted(e for e in errors if e is not None)
    title = program_title(program)
    if failures:
        roots = [f for f in failures if not isinstance(f[2], ProtocolAbort)
                 or "stopped: party" not in str(f[2])]
        root = (roots or failures)[0]
        if keep_transcript and not isinstance(transcript, bool):
            failed = from_parties(party_objs, title=title,
                                  error=f"party {root[1]}: {type(root[2]).__name__}: {root[2]}")
            failed.write(transcript)  # type: ignore[arg-type]
        raise party_failure(root[1], root[2])

    cost = gather_cost(parties, [(p.id, p.log, p.phase_seconds, p.phase_clocks) for p in party_objs],
                       elapsed)
    views = [p.view or [] for p in party_objs] if record_view else None
    record = None
    if keep_transcript:
        record = from_parties(party_objs, outputs=outputs, cost=cost, title=title)
        if not isinstance(transcript, bool):
            record.write(transcript)  # type: ignore[arg-type]
    return RunResult(outputs=outputs, cost=cost, views=views, logs=[p.log for p in party_objs],
                     transcript=record)
