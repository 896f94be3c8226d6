"""Run one party program for N parties in one process (layer: mpc core).

:func:`run` is the embedded default, a front-end of the one launcher
(:func:`mpc.launch.launch`) with the :class:`MemoryTransport`: every party
runs ``program(party, ...)`` in its own thread, messages go through memory in
the real wire format, and the
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
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Sequence

from threadpoolctl import threadpool_limits

from .arith.fixed import FixedPoint
from .errors import ParameterError
from .launch import (Job, PartyOutcome, Ran, RunResult, explicit_rounds, gather_cost, launch,
                     phase_rounds, play)
from .party import Party
from .preprocessing.base import Preprocessing
from .sharing.bounds import validate
from .transcript.record import program_title
from .transport.memory import MemoryNetwork
from .transport.wire import DEFAULT_LIMITS, WireLimits

__all__ = ["MemoryTransport", "RunResult", "default_preprocessing", "explicit_rounds", "gather_cost",
           "phase_rounds", "run"]

_DEFAULT: ContextVar[Any] = ContextVar("concilium_default_preprocessing", default="dealer")

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


def _join(threads: list[threading.Thread], outcomes: list[PartyOutcome], timeout: float) -> None:
    """Wait for every party; once one failed, give the others ``timeout`` seconds to stop
    (a party busy with local work does not read the abort) and then stop waiting."""
    deadline = None
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.05)
        if deadline is None and any(o.error is not None for o in outcomes):
            deadline = time.monotonic() + timeout
        if deadline is not None and time.monotonic() > deadline:
            return


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
        (dealer-free, any n >= 2: triples from pairwise IKNP OT,
        :mod:`mpc.preprocessing.ot`), ``"he"`` (dealer-free, two parties:
        Paillier, :mod:`mpc.preprocessing.he`), ``None``, a callable
        ``f(n) -> (party -> Preprocessing)`` or a
        :class:`~mpc.preprocessing.source.Source`. Inside
        :func:`default_preprocessing`, ``"dealer"`` means that block's choice.
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
    if blas_threads is not None and not (isinstance(blas_threads, int) and blas_threads >= 1):
        raise ParameterError(f"blas_threads must be a positive integer or None, got {blas_threads!r}")
    if input_bound is not None:
        validate(input_bound, frac_bits, "input_bound")
    if isinstance(preprocessing, str) and preprocessing == "dealer":
        preprocessing = _DEFAULT.get()
    transport = MemoryTransport(latency=latency, timeout=timeout, frac_bits=frac_bits,
                                input_bound=input_bound, record_view=record_view,
                                blas_threads=blas_threads, limits=limits or DEFAULT_LIMITS)
    options = dict(frac_bits=frac_bits, input_bound=input_bound, timeout=timeout, latency=latency,
                   record_view=record_view, blas_threads=blas_threads, limits=limits)
    return launch(program, parties, transport, preprocessing, inputs=inputs, args=args, kwargs=kwargs,
                  transcript=transcript, title=program_title(program), options=options)


@contextlib.contextmanager
def default_preprocessing(preprocessing: Any) -> Iterator[None]:
    """Within this block (in this thread's context), runs of :func:`run` that ask for
    ``"dealer"`` (the default) use ``preprocessing`` instead: a name, a factory or a
    :class:`~mpc.preprocessing.source.Source`.

    For running a suite under another source, e.g. ``with default_preprocessing(
    PlannedOffline("ot")): ...`` (tests/conftest.py's ``--preprocessing=ot``).
    """
    token = _DEFAULT.set(preprocessing)
    try:
        yield
    finally:
        _DEFAULT.reset(token)


class MemoryTransport:
    """Every party in its own thread of this process, messages through memory (the wire format).

    If any party fails, the others are woken at once (:meth:`MemoryNetwork.abort`);
    a party busy with local work gets ``timeout`` seconds before the run stops waiting.
    """

    result_type = RunResult

    def __init__(self, *, latency: float = 0.0, timeout: float = 30.0, frac_bits: int = 16,
                 input_bound: float | None = None, record_view: bool = False,
                 blas_threads: int | None = 1, limits: WireLimits = DEFAULT_LIMITS) -> None:
        self.latency, self.timeout, self.fixed = latency, timeout, FixedPoint(frac_bits)
        self.input_bound, self.record_view = input_bound, record_view
        self.blas_threads, self.limits = blas_threads, limits

    def run(self, job: Job) -> Ran:
        net = MemoryNetwork(job.n, latency=self.latency)
        session = os.urandom(8)
        parties = [Party(i, job.n, net.endpoint(i), session=session, fixed=self.fixed, timeout=self.timeout,
                         record_view=self.record_view, record_transcript=job.record_transcript,
                         limits=self.limits)
                   for i in range(job.n)]
        for p in parties:
            p.input_bound = self.input_bound
        outcomes = [PartyOutcome(i) for i in range(job.n)]

        def body(i: int) -> None:
            try:
                outcomes[i] = play(i, lambda: parties[i], job)
            except BaseException as exc:  # noqa: BLE001 - recorded in outcomes[i], re-raised in the caller
                outcomes[i].error = exc

        limit = _BLAS(self.blas_threads) if self.blas_threads is not None else contextlib.nullcontext()
        with limit:
            t0 = time.perf_counter()
            threads = [threading.Thread(target=body, args=(i,), name=f"party-{i}", daemon=True)
                       for i in range(job.n)]
            try:
                for t in threads:
                    t.start()
                _join(threads, outcomes, self.timeout)
            except BaseException:        # e.g. Ctrl-C in the caller: stop the parties too
                net.abort("the caller interrupted the run")
                raise
            elapsed = time.perf_counter() - t0
        views = [p.view or [] for p in parties] if self.record_view else None
        return Ran(outcomes, elapsed, {"views": views})
