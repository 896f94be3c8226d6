"""Transcripts of runs spread over processes: one part per party, merged into one (layer: mpc core).

When each party runs in its own process (loopback or real TCP), no process
sees every message. Each one writes its part, the messages its party sent
(and those the dealer sent it), with :func:`from_party`; the launcher, or
anyone holding the parts, combines them with :func:`merge` (or
``python -m mpc.transcript merge part*.json -o run.html``). The result is the
transcript :func:`mpc.run` would have recorded in one process, except that the
rounds of each phase are counted from the messages (first to last round).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import ParameterError
from ..transport.stats import DEALER, Cost, MessageRecord
from .record import MessageDetail, PublishedValue, Transcript, from_records

if TYPE_CHECKING:
    from ..party import Party


def from_party(party: Party, output: Any = None, *, seconds: float = 0.0,
               title: str = "Concilium run", error: str | None = None) -> Transcript:
    """This process's part of a run: what ``party`` sent (and received from the dealer).

    ``party`` must have been created with ``record_transcript=True`` for
    headers and published values to be kept; ``output`` is what it learned.
    """
    details = getattr(party, "details", None) or {}
    keep = [(m, details.get(k)) for k, m in enumerate(party.log)
            if m.sender == party.id or (m.sender == DEALER and m.receiver == party.id)]
    keep.sort(key=lambda x: (x[0].round, x[0].sender, x[0].receiver))
    outputs = [None] * party.n
    outputs[party.id] = output
    recs = [r for r, _ in keep]
    cost = Cost(party.n, recs, seconds=seconds, phase_seconds=dict(getattr(party, "phase_seconds", {})))
    return from_records(recs, party.n, details=[d for _, d in keep], outputs=outputs,
                        published=list(getattr(party, "published", None) or []),
                        cost=cost, title=title, error=error)


def from_parties(parties: Sequence[Any], *, outputs: Sequence[Any] | None = None,
                 cost: Cost | None = None, labels: Sequence[str] | Mapping[int, str] | None = None,
                 title: str = "Concilium run", error: str | None = None) -> Transcript:
    """A transcript from the :class:`~mpc.party.Party` objects of a finished (or failed) run.

    Each party's part (:func:`from_party`: what it sent, and what the dealer
    sent it), merged (:func:`merge`): messages by round, sender, receiver,
    then sending order. Headers come from parties created with
    ``record_transcript=True``.
    """
    parts = [from_party(p, title=title) for p in parties]
    return merge(parts, title=title, outputs=outputs, cost=cost, labels=labels, error=error)


def merge(parts: Sequence[Transcript], *, title: str | None = None, outputs: Sequence[Any] | None = None,
          cost: Cost | None = None, labels: Sequence[str] | Mapping[int, str] | None = None,
          error: str | None = None) -> Transcript:
    """One transcript from the parts written by each party's process (any order).

    Each message is taken from its sender's part (dealer messages from their
    receiver's); every part must describe the same number of parties and
    each party may appear in at most one part. ``outputs``, ``cost``,
    ``labels`` and ``error``, where given, replace what the parts say (a
    launcher knows them).
    """
    if not parts:
        raise ParameterError("nothing to merge: no transcript parts")
    n = parts[0].n_parties
    if any(p.n_parties != n for p in parts):
        raise ParameterError(f"transcript parts of different runs: {sorted({p.n_parties for p in parts})} parties")
    rows: list[tuple[MessageRecord, MessageDetail | None]] = []
    found: list[Any] = [None] * n
    owners: dict[int, int] = {}
    published: list[PublishedValue] = []
    phase_seconds: dict[str, float] = {}
    for k, part in enumerate(parts):
        senders = {m.record.sender for m in part.messages if m.record.sender != DEALER}
        senders |= {s.party for s in part.parties if s.output is not None}
        for sender in senders:
            if sender in owners:
                raise ParameterError(f"party {sender} appears in transcript parts {owners[sender]} and {k}")
            owners[sender] = k
        for m in part.messages:
            rows.append((m.record, MessageDetail(m.arrays, m.public)))
        for s in part.parties:
            if s.output is not None:
                found[s.party] = s.output
        published.extend(part.published)
        for name, pc in part.cost.get("phases", {}).items():
            phase_seconds[name] = max(phase_seconds.get(name, 0.0), float(pc.get("seconds", 0.0)))
    rows.sort(key=lambda x: (x[0].round, x[0].sender, x[0].receiver))
    recs = [r for r, _ in rows]
    if cost is None:
        cost = Cost(n, recs, seconds=max(float(p.cost.get("seconds", 0.0)) for p in parts),
                    phase_seconds=phase_seconds)
    if labels is None:
        labels = {s.party: s.label for p in parts for s in p.parties if not s.label.startswith("party ")} or None
    t = from_records(recs, n, details=[d for _, d in rows], labels=labels, cost=cost, outputs=outputs,
                     published=sorted(published, key=lambda v: (v.round, v.party)),
                     title=title or parts[0].title,
                     error=error or next((p.error for p in parts if p.error), None))
    if outputs is None:
        for s in t.parties:  # outputs are JSON-ready already
            s.output = found[s.party]
    return t
