"""Record a protocol driven by its own loop (star protocols, many clients) as a transcript (layer: mpc core).

:func:`mpc.run` records every message by itself. A driver that runs its own
loop instead (a SecAgg server and a thousand client objects, one stage per
round) uses a :class:`Recorder`::

    rec = Recorder(n_parties=1 + n_clients, labels={0: "server"}, title="SecAgg, 1000 clients")
    with rec.phase("advertise keys"):
        for c in clients:
            rec.message(0, c.id, 0, "advertise", c.public_keys)   # round, sender, receiver, tag, arrays
    ...
    rec.publish(0, "sum", aggregate)        # the result the server is meant to learn
    rec.write("secagg.html", outputs=outputs)

Like the runtime, it keeps of each message only its header and a byte-entropy
estimate, never the payload; values are kept only for ``public=True`` and
:meth:`Recorder.publish`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..errors import ParameterError
from ..transport.stats import DEALER, Cost, MessageRecord
from .record import MessageDetail, PublishedValue, Transcript, describe_arrays, from_records, public_value

FRAME_HEAD = 20
"""Bytes of a frame header before its tag (see :mod:`mpc.transport.wire`)."""


def frame_bytes(tag: str, arrays: Sequence[np.ndarray]) -> int:
    """Bytes of the wire frame that would carry ``arrays`` under ``tag`` (headers included)."""
    return (FRAME_HEAD + len(tag.encode("utf-8"))
            + sum(2 + 8 * np.ndim(a) + np.asarray(a).nbytes for a in arrays))


class Recorder:
    """Collects the messages of a driver-run protocol, in the order they are given.

    Parameters
    ----------
    n_parties:
        Number of parties, ids ``0..n_parties-1`` (the dealer is ``-1``).
    labels:
        Party names: a list for all, or a mapping for some (``{0: "server"}``).
    title:
        Title of the page.
    """

    def __init__(self, n_parties: int, *, labels: Sequence[str] | Mapping[int, str] | None = None,
                 title: str = "Concilium run") -> None:
        if n_parties < 1:
            raise ParameterError("a transcript needs at least one party")
        self.n = n_parties
        self.labels = labels
        self.title = title
        self.records: list[MessageRecord] = []
        self.details: list[MessageDetail] = []
        self.published: list[PublishedValue] = []
        self.phase_seconds: dict[str, float] = {}
        self._phase = "online"
        self._t0 = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Label the messages recorded inside with phase ``name``, and time it."""
        prev, self._phase = self._phase, name
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[name] = self.phase_seconds.get(name, 0.0) + time.perf_counter() - t0
            self._phase = prev

    def message(self, round: int, sender: int, receiver: int, tag: str, *arrays: Any,
                public: bool = False, phase: str | None = None, wire_bytes: int | None = None) -> None:
        """Record one message of ``arrays`` (its header only, values only if ``public``).

        ``wire_bytes`` defaults to the size of the frame that the wire format
        would use for these arrays.
        """
        for p in (sender, receiver):
            if p != DEALER and not 0 <= p < self.n:
                raise ParameterError(f"message {tag!r} names party {p}, outside 0..{self.n - 1}")
        if round < 0:
            raise ParameterError(f"message {tag!r}: round {round} is negative")
        arrs = [np.asarray(a) for a in arrays]
        payload = sum(a.nbytes for a in arrs)
        wire = frame_bytes(tag, arrs) if wire_bytes is None else int(wire_bytes)
        self.records.append(MessageRecord(int(round), int(sender), int(receiver), tag,
                                          phase or self._phase, payload, wire))
        values = tuple(public_value(a) for a in arrs) if public else None
        self.details.append(MessageDetail(describe_arrays(arrs), values))

    def publish(self, party: int, tag: str, value: Any, round: int | None = None) -> Any:
        """Declare ``value`` public, as learned by ``party`` at step ``tag``; returns it."""
        if round is None:
            round = max((r.round for r in self.records), default=0)
        self.published.append(PublishedValue(int(party), int(round), tag, public_value(value)))
        return value

    def cost(self) -> Cost:
        """The cost of the recorded messages (rounds, bytes per party and phase, time)."""
        rounds: dict[str, set[int]] = {}
        for r in self.records:
            if r.sender != DEALER:
                rounds.setdefault(r.phase, set()).add(r.round)
        return Cost(self.n, list(self.records), seconds=time.perf_counter() - self._t0,
                    phase_seconds=dict(self.phase_seconds),
                    phase_rounds={ph: len(rs) for ph, rs in rounds.items()})

    def transcript(self, outputs: Sequence[Any] | None = None, error: str | None = None) -> Transcript:
        """The transcript so far; ``outputs`` (one per party) are what each party learned."""
        return from_records(self.records, self.n, details=self.details, outputs=outputs,
                            published=sorted(self.published, key=lambda v: (v.round, v.party)),
                            labels=self.labels, cost=self.cost(), title=self.title, error=error)

    def write(self, path: str | os.PathLike[str], outputs: Sequence[Any] | None = None,
              **options: Any) -> Transcript:
        """Write the page (or JSON for ``*.json``) and return the transcript."""
        t = self.transcript(outputs)
        t.write(path, **options)
        return t
