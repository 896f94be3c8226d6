"""The one launcher: party programs + a transport + a preprocessing source (layer: mpc core).

:func:`launch` runs ``program`` for ``n`` parties and returns a
:class:`RunResult`; :func:`mpc.run` (memory, threads) and
:func:`mpc.distributed.run_local` (TCP + TLS, processes or threads) are
front-ends that choose a :class:`Transport`. A transport only starts the
parties and returns one :class:`PartyOutcome` each; the launcher does the rest
the same way for every transport:

1. resolve the preprocessing (:func:`mpc.preprocessing.source.resolve`) and let
   it prepare for this program (:meth:`~mpc.preprocessing.source.Source.prepare`);
2. run the parties (:meth:`Transport.run`); every party runs :func:`play`;
3. on failure, report the *root* failure (:func:`root_failure`): the first one
   that is not a :class:`~mpc.errors.PeerFailure` (a knock-on of another
   party's failure), named by :func:`~mpc.errors.party_failure`, with
   ``party_errors`` mapping every failed party to its error;
4. otherwise gather the cost from every party's message log and merge the
   parties' transcript parts (:func:`mpc.transcript.merge`).

A new transport (another network, a role program per process) implements
:class:`Transport`; nothing else changes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import numpy as np

from .errors import (ConciliumError, EncodingError, IntegrityError, MalformedPeerData, ParameterError, PartyError,
                     PeerAborted, PeerDisconnected, PeerFailure, PeerTimeout, PreprocessingExhausted, ProtocolAbort, ProtocolError,
                     TransportError, party_failure)
from .preprocessing.source import PartyFactory, Source, resolve
from .transcript.merge import from_party, merge
from .transcript.record import Transcript, from_records
from .transport.stats import DEALER, Cost, MessageRecord
from .transport.values import decode_value, encode_value

if TYPE_CHECKING:
    from .party import Party

_ERRORS: dict[str, type[ConciliumError]] = {
    c.__name__: c for c in (ConciliumError, EncodingError, IntegrityError, MalformedPeerData, ParameterError,
                            PeerAborted, PeerDisconnected, PeerTimeout, PreprocessingExhausted,
                            ProtocolAbort, ProtocolError, TransportError)}


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


@dataclass
class PartyOutcome:
    """What one party's run produced: output or error, its message log, timings, transcript part."""

    party: int
    output: Any = None
    error: BaseException | None = None
    log: list[MessageRecord] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    phase_clocks: list[tuple[str, int, int]] = field(default_factory=list)
    seconds: float = 0.0
    socket_bytes: dict[int, tuple[int, int]] = field(default_factory=dict)
    transcript: Transcript | None = None
    failed_at: float = 0.0   # time.monotonic() of the failure, where parties share a clock

    def to_json(self) -> str:
        err: dict[str, Any] | None = None
        if isinstance(self.error, PartyError):
            err = {"type": self.error.error_type, "message": str(self.error.__cause__ or self.error)}
        elif self.error is not None:
            err = {"type": type(self.error).__name__, "message": str(self.error)}
            if isinstance(self.error, PeerFailure):
                err["origin"] = self.error.origin
        return json.dumps({
            "party": self.party, "output": encode_value(self.output), "error": err,
            "log": [[m.round, m.sender, m.receiver, m.tag, m.phase, m.payload_bytes, m.wire_bytes]
                    for m in self.log],
            "phase_seconds": self.phase_seconds, "phase_clocks": [list(c) for c in self.phase_clocks],
            "seconds": self.seconds, "socket_bytes": {str(k): list(v) for k, v in self.socket_bytes.items()},
            "transcript": None if self.transcript is None else self.transcript.to_dict()}, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "PartyOutcome":
        d = json.loads(text)
        err: BaseException | None = None
        if d["error"] is not None:
            etype = _ERRORS.get(d["error"]["type"])
            msg = str(d["error"]["message"])
            if etype is not None and issubclass(etype, PeerFailure):
                err = etype(msg, int(d["error"].get("origin", -1)))
            else:
                err = etype(msg) if etype else PartyError(int(d["party"]), str(d["error"]["type"]), msg)
        part = d.get("transcript")
        return cls(int(d["party"]), decode_value(d["output"]), err,
                   [MessageRecord(int(r), int(s), int(t), str(tag), str(ph), int(p), int(w))
                    for r, s, t, tag, ph, p, w in d["log"]],
                   {str(k): float(v) for k, v in d["phase_seconds"].items()},
                   [(str(a), int(b), int(c)) for a, b, c in d["phase_clocks"]], float(d["seconds"]),
                   {int(k): (int(v[0]), int(v[1])) for k, v in d["socket_bytes"].items()},
                   None if part is None else Transcript.from_dict(part))


@dataclass
class Job:
    """One run as a transport sees it: who runs what, with which preprocessing."""

    program: Callable[..., Any]
    n: int
    source: Source
    factory: PartyFactory | None
    inputs: Sequence[Any] | None = None
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    record_transcript: bool = False
    title: str = ""

    def call_args(self, i: int) -> list[Any]:
        """Party ``i``'s arguments after ``party``: its input (if any), then ``args``."""
        return ([self.inputs[i]] if self.inputs is not None else []) + list(self.args)


@dataclass
class Ran:
    """What a transport hands back: every party's outcome, the run's seconds, extra result fields."""

    outcomes: list[PartyOutcome]
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)


class Transport(Protocol):
    """Where the parties run and how their messages travel (memory, TCP + TLS, ...)."""

    @property
    def result_type(self) -> type[RunResult]:
        """The class of what :func:`launch` returns (a :class:`RunResult` or a subclass)."""

    def run(self, job: Job) -> Ran:
        """Run every party of ``job`` (each through :func:`play`) and return their outcomes."""


def play(party_id: int, connect: Callable[[], Any], job: Job, *,
         check_output: Callable[[Any], Any] | None = None) -> PartyOutcome:
    """Run party ``party_id`` of ``job``; never raises an ``Exception``: it goes in ``outcome.error``.

    ``connect()`` builds the :class:`~mpc.party.Party` (its endpoint has ``close()``
    and ``abort(reason, origin)``). On failure the party's peers are told at once,
    with the node where the failure began (the party itself, or the ``origin``
    of a :class:`~mpc.errors.PeerFailure`). ``SystemExit`` and ``KeyboardInterrupt``
    are recorded and re-raised.
    """
    outcome = PartyOutcome(party_id)
    party = None
    try:
        party = connect()
        t0 = time.perf_counter()
        if job.factory is not None:
            party.preprocessing = job.factory(party)
        outcome.output = job.program(party, *job.call_args(party_id), **job.kwargs)
        outcome.seconds = time.perf_counter() - t0
        if check_output is not None:
            check_output(outcome.output)
        party.endpoint.close()   # like a goodbye: peers still waiting for it fail at once
    except BaseException as exc:  # noqa: BLE001 - reported to the launcher in the outcome
        outcome.error, outcome.failed_at = exc, time.monotonic()
        if party is not None:
            party.endpoint.abort(f"{type(exc).__name__}: {exc}",
                                 exc.origin if isinstance(exc, PeerFailure) else party_id)
        if not isinstance(exc, Exception):
            _fill(outcome, party, job)
            raise
    _fill(outcome, party, job)
    return outcome


def _fill(outcome: PartyOutcome, party: Party | None, job: Job) -> None:
    """Copy what the party recorded (messages, phases, its transcript part, socket bytes)."""
    if party is None:
        return
    outcome.log = list(party.log)
    outcome.phase_seconds = dict(party.phase_seconds)
    outcome.phase_clocks = list(party.phase_clocks)
    if job.record_transcript:
        outcome.transcript = from_party(party, title=job.title)
    if hasattr(party.endpoint, "bytes_on_socket"):
        outcome.socket_bytes = party.endpoint.bytes_on_socket()


def root_failure(outcomes: Sequence[PartyOutcome]) -> PartyOutcome | None:
    """The failure the others echo: the earliest (then lowest party) that is not a knock-on
    :class:`~mpc.errors.PeerFailure`; if every one is, the earliest. ``None`` if none failed."""
    failed = sorted((o for o in outcomes if o.error is not None), key=lambda o: (o.failed_at, o.party))
    roots = [o for o in failed if not isinstance(o.error, PeerFailure)]
    return (roots or failed)[0] if failed else None


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


def check_transcript_path(transcript: Any) -> None:
    """Refuse a ``transcript=`` that is not a path, True or None, or whose folder is missing."""
    if transcript is not None and not isinstance(transcript, (bool, str, os.PathLike)):
        raise ParameterError(f"transcript must be a path, True or None, not {type(transcript).__name__}")
    if transcript is not None and not isinstance(transcript, bool):
        folder = os.path.dirname(os.path.abspath(transcript))
        if not os.path.isdir(folder):
            raise ParameterError(f"cannot write the transcript: no folder {folder!r}")


def _transcript(outcomes: Sequence[PartyOutcome], n: int, title: str, *, outputs: list[Any] | None = None,
                cost: Cost | None = None, error: str | None = None) -> Transcript:
    """The run's transcript: every party's part merged (each part holds what its party sent)."""
    parts = [o.transcript for o in outcomes if o.transcript is not None] or [from_records([], n)]
    return merge(parts, title=title, outputs=outputs, cost=cost, error=error)


def launch(program: Callable[..., Any], parties: int, transport: Transport, preprocessing: Any, *,
           inputs: Sequence[Any] | None = None, args: Sequence[Any] = (),
           kwargs: dict[str, Any] | None = None, transcript: Any = None, title: str = "",
           options: dict[str, Any] | None = None) -> RunResult:
    """Run ``program`` for ``parties`` parties over ``transport``; see the module docstring.

    ``preprocessing``: anything :func:`~mpc.preprocessing.source.resolve` takes.
    ``transcript``: ``True`` keeps it in the result, a path also writes it
    there (a failed run writes the messages up to the failure). ``options``:
    the front-end's keyword arguments, for :meth:`Source.prepare`.
    """
    if not isinstance(parties, (int, np.integer)) or parties < 2:
        raise ParameterError(f"an MPC run needs at least 2 parties, got {parties!r}")
    if inputs is not None and len(inputs) != parties:
        raise ParameterError(f"inputs has {len(inputs)} entries for {parties} parties")
    check_transcript_path(transcript)
    keep = transcript is not None and transcript is not False
    path = None if isinstance(transcript, bool) else transcript
    source = resolve(preprocessing).prepare(program, parties, dict(options or {}, inputs=inputs, args=args,
                                                                     kwargs=kwargs))
    job = Job(program, int(parties), source, source.factory(parties), inputs, args, dict(kwargs or {}),
              keep, title)
    ran = transport.run(job)
    root = root_failure(ran.outcomes)
    if root is not None:
        if path is not None:
            text = f"party {root.party}: {type(root.error).__name__}: {root.error}"
            _transcript(ran.outcomes, parties, title, error=text).write(path)
        err = party_failure(root.party, root.error)  # type: ignore[arg-type]
        err.party_errors = {o.party: o.error for o in ran.outcomes if o.error is not None}  # type: ignore[attr-defined]
        raise err
    cost = source.report(gather_cost(parties, [(o.party, o.log, o.phase_seconds, o.phase_clocks)
                                               for o in ran.outcomes], ran.seconds))
    outputs = [o.output for o in ran.outcomes]
    record = _transcript(ran.outcomes, parties, title, outputs=outputs, cost=cost) if keep else None
    if record is not None and path is not None:
        record.write(path)
    return transport.result_type(outputs=outputs, cost=cost, logs=[o.log for o in ran.outcomes],
                                 transcript=record, **ran.extras)
