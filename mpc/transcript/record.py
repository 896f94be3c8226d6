"""Transcripts: what crossed the wire in a run, message by message (layer: mpc core).

A :class:`Transcript` is the record of one run as a teacher or a debugger wants
to see it: every message in order (round, sender, receiver, tag, phase, payload
and wire bytes, and the header of each array: dtype, shape, bytes), the values
the protocol *marked public* (opened values, final results), a per-party summary
(its outputs and what it saw) and the cost totals.

Secret payloads are never kept: at record time each array is reduced to its
header and a byte-entropy estimate (:func:`byte_entropy`), which shows that a
share or a masked value looks random without writing a single byte of it. Only
messages sent with ``public=True`` keep their values, and only values given to
``party.publish(name, value)`` are recorded as published.

The JSON form (:meth:`Transcript.to_json`) is for researchers' own tools; the
HTML page (:mod:`mpc.transcript.html`) is for people.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ParameterError
from ..transport.stats import DEALER, Cost, MessageRecord

FORMAT = "concilium-transcript"
VERSION = 1
MAX_SHOWN = 64
"""Public arrays are written with at most this many elements (plus their shape)."""
RANDOM_THRESHOLD = 0.9
"""Normalised byte entropy at or above which a payload is said to look random."""
ENTROPY_SAMPLE = 1 << 16
"""Byte entropy is estimated on at most this many leading bytes of an array."""


# -- what is kept of one message --------------------------------------------------
@dataclass(frozen=True)
class ArrayInfo:
    """Header of one array of a message, and how random its bytes look.

    ``entropy`` is the Miller-Madow corrected byte entropy in bits per byte
    (8 for uniform bytes), or None when the array has fewer than 8 bytes.
    """

    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    entropy: float | None = None

    @property
    def randomness(self) -> float | None:
        """Entropy as a fraction of what uniform bytes of this length would show (0..1)."""
        if self.entropy is None or self.nbytes < 8:
            return None
        return min(1.0, self.entropy / min(8.0, math.log2(self.nbytes)))  # 1.0: the maximum

    @property
    def looks_random(self) -> bool | None:
        r = self.randomness
        return None if r is None else r >= RANDOM_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "nbytes": self.nbytes,
                "entropy_bits_per_byte": None if self.entropy is None else round(self.entropy, 3),
                "looks_random": self.looks_random}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArrayInfo":
        return cls(str(d["dtype"]), tuple(int(s) for s in d["shape"]), int(d["nbytes"]),
                   None if d.get("entropy_bits_per_byte") is None else float(d["entropy_bits_per_byte"]))


@dataclass(frozen=True)
class MessageDetail:
    """What a transcript keeps of a message's content: headers, and values only if public."""

    arrays: tuple[ArrayInfo, ...] = ()
    public: tuple[Any, ...] | None = None  # JSON-ready values (see public_value)


@dataclass(frozen=True)
class PublishedValue:
    """A value a party declared public (``party.publish``): an opened value, a result."""

    party: int
    round: int
    tag: str
    value: Any  # JSON-ready (see public_value)


def byte_entropy(arr: np.ndarray) -> float | None:
    """Miller-Madow corrected Shannon entropy of the bytes of ``arr``, in bits per byte.

    Uniform random bytes give about ``min(8, log2(nbytes))``, the cap of the
    estimate; structured data (small integers, repeated values, text) gives
    much less. None below 8 bytes. Only the first :data:`ENTROPY_SAMPLE`
    bytes are read, so recording a large message costs little. Rounded to
    3 decimals, as written in the JSON form.
    The estimate is one number per array: it reveals nothing useful about a
    uniformly random share, and it is meant to show exactly that.
    """
    flat = np.asarray(arr).reshape(-1)
    head = flat[: max(1, ENTROPY_SAMPLE // max(flat.itemsize, 1))]
    raw = np.ascontiguousarray(head).view(np.uint8).reshape(-1)
    n = raw.size
    if n < 8:
        return None
    counts = np.bincount(raw, minlength=256)
    nz = counts[counts > 0].astype(np.float64)
    p = nz / n
    h = float(-(p * np.log2(p)).sum()) + (nz.size - 1) / (2.0 * n * math.log(2.0))
    return round(min(h, 8.0, math.log2(n)), 3)


def describe_arrays(arrays: Sequence[np.ndarray]) -> tuple[ArrayInfo, ...]:
    """Headers and entropy of a message's arrays (its payload itself is not kept)."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        out.append(ArrayInfo(a.dtype.str, tuple(int(s) for s in a.shape), int(a.nbytes), byte_entropy(a)))
    return tuple(out)


def public_value(value: Any, limit: int = MAX_SHOWN) -> Any:
    """A JSON-ready rendering of a public value; arrays keep at most ``limit`` elements.

    Arrays become ``{"dtype", "shape", "values", "truncated"}``; mappings and
    sequences are converted recursively; objects that are not plain data (a
    shared tensor, a key) become ``{"type": name}`` and show no content.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else repr(v)
    if isinstance(value, np.ndarray):
        flat = value.reshape(-1)[:limit]
        if value.dtype.kind == "f":
            values = [public_value(x) for x in flat.tolist()]
        elif value.dtype.kind in "iub":
            values = [int(x) for x in flat.tolist()]
        else:
            return {"type": f"ndarray[{value.dtype.str}]", "shape": list(value.shape)}
        return {"dtype": value.dtype.str, "shape": list(value.shape), "values": values,
                "truncated": value.size > limit}
    if isinstance(value, Mapping):
        return {str(k): public_value(v, limit) for k, v in list(value.items())[:limit]}
    if isinstance(value, (list, tuple)):
        return [public_value(v, limit) for v in value[:limit]]
    return {"type": type(value).__name__}


# -- the transcript ---------------------------------------------------------------
@dataclass(frozen=True)
class TranscriptMessage:
    """One message: its cost record plus what the transcript keeps of its content."""

    record: MessageRecord
    arrays: tuple[ArrayInfo, ...] = ()
    public: tuple[Any, ...] | None = None

    def to_dict(self, index: int) -> dict[str, Any]:
        r = self.record
        return {"index": index, "round": r.round, "sender": r.sender, "receiver": r.receiver,
                "tag": r.tag, "phase": r.phase, "payload_bytes": r.payload_bytes,
                "wire_bytes": r.wire_bytes, "arrays": [a.to_dict() for a in self.arrays],
                "public": None if self.public is None else list(self.public)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TranscriptMessage":
        rec = MessageRecord(int(d["round"]), int(d["sender"]), int(d["receiver"]), str(d["tag"]),
                            str(d["phase"]), int(d["payload_bytes"]), int(d["wire_bytes"]))
        pub = d.get("public")
        return cls(rec, tuple(ArrayInfo.from_dict(a) for a in d.get("arrays", ())),
                   None if pub is None else tuple(pub))


@dataclass
class PartySummary:
    """What one party learned (its output, its published values) and what it saw."""

    party: int
    label: str
    output: Any = None  # JSON-ready
    sent_messages: int = 0
    sent_bytes: int = 0
    received_messages: int = 0
    received_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Transcript:
    """The record of one run: messages in order, published values, parties, cost.

    Build one with :func:`~mpc.transcript.merge.from_parties` (what :func:`mpc.run` does with
    ``transcript=``) or :func:`from_records` (drivers with their own loop, such
    as a star protocol with many clients).
    """

    n_parties: int
    messages: list[TranscriptMessage]
    parties: list[PartySummary]
    published: list[PublishedValue] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)
    title: str = "Concilium run"
    error: str | None = None

    @property
    def records(self) -> list[MessageRecord]:
        return [m.record for m in self.messages]

    def label(self, party: int) -> str:
        if party == DEALER:
            return "dealer"
        if 0 <= party < len(self.parties):
            return self.parties[party].label
        return f"party {party}"

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "title": self.title, "n_parties": self.n_parties,
                "error": self.error, "cost": self.cost,
                "parties": [p.to_dict() for p in self.parties],
                "messages": [m.to_dict(i) for i, m in enumerate(self.messages)],
                "published": [dict(p.__dict__) for p in self.published]}

    def to_json(self, indent: int | None = None) -> str:
        """The transcript as JSON (format ``concilium-transcript``, version 1)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    def write_html(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Write the self-contained page (see :func:`mpc.transcript.html.render`)."""
        from .html import write_html

        write_html(self, path, **options)

    def write(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Write JSON if ``path`` ends in ``.json``, else the HTML page."""
        if os.fspath(path).lower().endswith(".json"):
            self.write_json(path)
        else:
            self.write_html(path, **options)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Transcript":
        """The transcript of a dict written by :meth:`to_dict`; anything else raises a ParameterError."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            fmt = d.get("format") if isinstance(d, Mapping) else type(d).__name__
            raise ParameterError(f"not a Concilium transcript (format {fmt!r})")
        if d.get("version") != VERSION:
            raise ParameterError(f"unsupported transcript version {d.get('version')!r} (expected {VERSION})")
        try:
            return cls(n_parties=int(d["n_parties"]),
                       messages=[TranscriptMessage.from_dict(m) for m in d["messages"]],
                       parties=[PartySummary(**p) for p in d["parties"]],
                       published=[PublishedValue(**p) for p in d.get("published", [])],
                       cost=dict(d.get("cost", {})), title=str(d.get("title", "Concilium run")),
                       error=d.get("error"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ParameterError(f"malformed Concilium transcript: {what}") from None

    @classmethod
    def from_json(cls, text: str) -> "Transcript":
        return cls.from_dict(json.loads(text))


def read_json(path: str | os.PathLike[str]) -> Transcript:
    """Load a transcript written by :meth:`Transcript.write_json`."""
    with open(path, encoding="utf-8") as f:
        return Transcript.from_json(f.read())


# -- building one -----------------------------------------------------------------
def cost_dict(cost: Cost) -> dict[str, Any]:
    """Cost totals as JSON: rounds, messages, bytes per party, per phase, seconds."""
    def who(p: int) -> str:
        return "dealer" if p == DEALER else str(p)

    phases = {}
    for name, pc in cost.phases().items():
        phases[name] = {"rounds": pc.rounds, "messages": pc.messages, "bytes": pc.total_bytes,
                        "seconds": round(pc.seconds, 6)}
    return {"rounds": cost.rounds, "messages": len(cost.messages),
            "payload_bytes": sum(m.payload_bytes for m in cost.messages),
            "wire_bytes": cost.wire_bytes, "seconds": round(cost.seconds, 6),
            "bytes_sent": {who(p): b for p, b in sorted(cost.bytes_sent.items())},
            "bytes_received": {who(p): b for p, b in sorted(cost.bytes_received.items())},
            "phases": phases}


def program_title(program: Any) -> str:
    """A readable name for a party program: ``module.function`` (the script's file name for __main__)."""
    name = getattr(program, "__qualname__", None) or type(program).__name__
    module = getattr(program, "__module__", None)
    if module == "__main__":
        import sys

        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        module = os.path.splitext(os.path.basename(main_file))[0] if main_file else None
    return f"{module}.{name}" if module else str(name)


def _labels(n: int, labels: Sequence[str] | Mapping[int, str] | None) -> list[str]:
    if labels is None:
        return [f"party {i}" for i in range(n)]
    if isinstance(labels, Mapping):
        return [str(labels.get(i, f"party {i}")) for i in range(n)]
    if len(labels) != n:
        raise ParameterError(f"{len(labels)} labels for {n} parties")
    return [str(x) for x in labels]


def from_records(records: Iterable[MessageRecord], n_parties: int, *,
                 details: Sequence[MessageDetail | None] | None = None,
                 outputs: Sequence[Any] | None = None,
                 published: Iterable[PublishedValue] = (),
                 labels: Sequence[str] | Mapping[int, str] | None = None,
                 cost: Cost | None = None, title: str = "Concilium run",
                 error: str | None = None) -> Transcript:
    """A transcript from message records, in the order given.

    Parameters
    ----------
    records:
        The messages, in the order to show them (a driver's log, or
        ``Cost.messages``).
    n_parties:
        Number of parties (ids ``0..n_parties-1``; the dealer is ``-1``).
    details:
        Optional headers/public values, one per record (None where unknown).
    outputs:
        Optional per-party outputs, shown as what each party learned. Give
        only values that party is meant to learn.
    labels:
        Party names (a list, or a mapping for a few, e.g. ``{0: "server"}``).
    cost:
        The run's :class:`Cost`; by default one is built from ``records``.
    """
    if n_parties < 1:
        raise ParameterError("a transcript needs at least one party")
    recs = list(records)
    if details is not None and len(details) != len(recs):
        raise ParameterError(f"{len(details)} details for {len(recs)} records")
    if outputs is not None and len(outputs) != n_parties:
        raise ParameterError(f"{len(outputs)} outputs for {n_parties} parties")
    for r in recs:
        for p in (r.sender, r.receiver):
            if p != DEALER and not 0 <= p < n_parties:
                raise ParameterError(f"message {r.tag!r} names party {p}, outside 0..{n_parties - 1}")
    names = _labels(n_parties, labels)
    msgs = []
    for i, r in enumerate(recs):
        d = details[i] if details is not None else None
        msgs.append(TranscriptMessage(r, d.arrays, d.public) if d is not None else TranscriptMessage(r))
    summaries = [PartySummary(i, names[i]) for i in range(n_parties)]
    counts = np.zeros((4, n_parties + 1), dtype=np.int64)  # column 0 is the dealer
    if recs:
        snd = np.fromiter((r.sender + 1 for r in recs), np.int64, len(recs))
        rcv = np.fromiter((r.receiver + 1 for r in recs), np.int64, len(recs))
        size = np.fromiter((r.payload_bytes for r in recs), np.int64, len(recs))
        counts[0] = np.bincount(snd, minlength=n_parties + 1)
        counts[1] = np.bincount(snd, weights=size, minlength=n_parties + 1)
        counts[2] = np.bincount(rcv, minlength=n_parties + 1)
        counts[3] = np.bincount(rcv, weights=size, minlength=n_parties + 1)
    for s in summaries:
        s.sent_messages, s.sent_bytes, s.received_messages, s.received_bytes = (
            int(c) for c in counts[:, s.party + 1])
        if outputs is not None:
            s.output = public_value(outputs[s.party])
    return Transcript(n_parties=n_parties, messages=msgs, parties=summaries,
                      published=list(published), cost=cost_dict(cost or Cost(n_parties, recs)),
                      title=title, error=error)
