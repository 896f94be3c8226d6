"""The party: one participant's identity, channels, randomness and preprocessing (layer: mpc core).

Party code is an ordinary function ``program(party, ...)`` that every party
runs (SPMD). It talks only through its :class:`Party`:

* ``party.send(to, tag, *arrays)`` / ``party.recv(frm, tag)``: point to point;
* ``party.exchange(tag, *arrays)``: send to every peer, receive from every peer;
* ``party.scope(name)`` nests tags (``"stats/mean/open"``) and
  ``party.fresh(name)`` numbers repeated operations (``"mul#3"``);
* ``party.phase(name)`` labels the cost of what runs inside it;
* ``party.publish(name, value)`` declares a value public (an opened value, a
  result) and ``send(..., public=True)`` a message whose payload is public:
  only those values ever appear in a transcript (:mod:`mpc.transcript`).

A receiver asks for (sender, tag). Channels are FIFO per pair, so the next
frame from that sender *must* carry that tag: anything else raises
:class:`~mpc.errors.ProtocolError` naming both tags, and silence raises
:class:`~mpc.errors.PeerTimeout` after ``party.timeout`` seconds. Protocols
that tolerate dropouts use ``party.try_recv(frm, tag)`` (``None`` for a dropped
peer) and ``party.dropped_peers()``.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence

import numpy as np

from .arith.fixed import FixedPoint
from .errors import (EncodingError, MalformedPeerData, ParameterError, PeerTimeout, ProtocolAbort, ProtocolError,
                     TransportError)
from .rand import PRG
from .schema import ArraySpec, Schema, describe, mismatch, spec
from .transcript.record import MessageDetail, PublishedValue, describe_arrays, public_value
from .transport.stats import MessageRecord
from .transport.wire import DEFAULT_LIMITS, WireLimits, decode_frame, encode_frame_parts

if TYPE_CHECKING:
    from .preprocessing.base import Preprocessing


class Endpoint(Protocol):
    """What a transport gives a party: framed bytes to and from each peer."""

    def send_frame(self, to: int, frame: bytes) -> int: ...
    def recv_frame(self, frm: int, timeout: float, what: str = "") -> bytes: ...
    def close(self) -> None: ...


class Party:
    """One party of a session: everything party code may use.

    Parameters
    ----------
    party_id, n_parties:
        This party's id in ``[0, n_parties)``.
    endpoint:
        The transport endpoint (in memory or TCP).
    session:
        8-byte session id; frames of other sessions are refused.
    fixed:
        Fixed-point codec shared by the session.
    timeout:
        Seconds to wait for any one message before :class:`PeerTimeout`.
    record_view:
        Keep every received message (tag and arrays) in :attr:`view`, for
        privacy tests.
    record_transcript:
        Keep, per logged message, its array headers and byte entropy (never a
        secret payload) in :attr:`details`, and published values in
        :attr:`published`, for :mod:`mpc.transcript`.
    """

    def __init__(self, party_id: int, n_parties: int, endpoint: Endpoint, *,
                 session: bytes, fixed: FixedPoint | None = None, timeout: float = 30.0,
                 record_view: bool = False, limits: WireLimits = DEFAULT_LIMITS,
                 record_transcript: bool = False) -> None:
        if n_parties < 1:
            raise ParameterError("a session needs at least one party")
        if not 0 <= party_id < n_parties:
            raise ParameterError(f"party id {party_id} out of range [0, {n_parties})")
        if timeout <= 0:
            raise ParameterError("timeout must be positive")
        self.id = party_id
        self.n = n_parties
        self.peers: tuple[int, ...] = tuple(p for p in range(n_parties) if p != party_id)
        self.endpoint = endpoint
        self.session = session
        self.fixed = fixed or FixedPoint()
        self.input_bound: float | None = None  # the session's default input bound (None: the rule of mpc.sharing.bounds)
        self.timeout = timeout
        self.limits = limits
        self.prg = PRG.fresh()
        self.preprocessing: Preprocessing | None = None
        self.clock = 0
        self.log: list[MessageRecord] = []
        self.view: list[tuple[int, str, tuple[np.ndarray, ...]]] | None = [] if record_view else None
        self.details: dict[int, MessageDetail] | None = {} if record_transcript else None  # by log index
        self.published: list[PublishedValue] | None = [] if record_transcript else None
        self.phase_seconds: dict[str, float] = {}
        self.phase_clocks: list[tuple[str, int, int]] = []  # (phase, clock at entry, at exit)
        self._scopes: list[str] = []
        self._phase = "online"
        self._counters: dict[str, int] = {}
        self._thread = threading.get_ident()
        self._dropped: set[int] = set()
        self._sent_upto = 0  # 1 + the latest round this party sent in
        self.last_round = -1  # the round of the latest message received

    # -- tags, scopes and phases -------------------------------------------------
    def tag(self, name: str) -> str:
        """``name`` under the current scopes, e.g. ``"stats/mean/open"``."""
        return "/".join([*self._scopes, name])

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Nest tags of the messages sent inside under ``name``."""
        if "/" in name or not name:
            raise ParameterError(f"scope name {name!r} must be non-empty and contain no '/'")
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    def fresh(self, name: str) -> str:
        """A tag for the next occurrence of operation ``name``: ``name#k``.

        Every party runs the same program, so the k-th ``mul`` of each party
        gets the same tag: a desynchronised party is caught by its tag.
        """
        key = self.tag(name)
        k = self._counters.get(key, 0)
        self._counters[key] = k + 1
        return f"{name}#{k}"

    @property
    def current_phase(self) -> str:
        return self._phase

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Label messages and time spent inside with phase ``name``."""
        prev, self._phase = self._phase, name
        t0 = time.perf_counter()
        # Phase spans use the round after this party's latest activity, received or sent
        # (sending does not move the Lamport clock): a phase that ends with a send owns its round.
        start = max(self.clock, self._sent_upto)
        try:
            yield
        finally:
            self.phase_seconds[name] = self.phase_seconds.get(name, 0.0) + time.perf_counter() - t0
            self.phase_clocks.append((name, start, max(self.clock, self._sent_upto)))
            self._phase = prev

    # -- messages ----------------------------------------------------------------
    def _check_peer(self, p: int) -> None:
        if not isinstance(p, (int, np.integer)) or not 0 <= p < self.n or p == self.id:
            raise ParameterError(f"party {self.id}: {p!r} is not a peer (parties 0..{self.n - 1})")

    def send(self, to: int, name: str, *arrays: Any, public: bool = False) -> None:
        """Send ``arrays`` to party ``to`` under tag ``name`` (scoped).

        ``public=True`` declares the payload public (e.g. a result sent in the
        clear): a transcript may then show its values.
        """
        self.send_many([to], name, *arrays, public=public)

    def send_many(self, to: Sequence[int], name: str, *arrays: Any, public: bool = False) -> None:
        """Send the same ``arrays`` to several parties; the frame is encoded once."""
        for p in to:
            self._check_peer(p)
            if p in self._dropped:
                raise TransportError(f"party {self.id}: party {p} has dropped out (silent or failed); "
                                     "check party.dropped_peers() before sending")
        tag = self.tag(name)
        parts = encode_frame_parts(tag, [np.asarray(a) for a in arrays], session=self.session,
                                   round=self.clock, limits=self.limits)
        send_parts = getattr(self.endpoint, "send_frame_parts", None)  # encrypts at once: no join
        frame = b"" if send_parts is not None else b"".join(parts)
        payload = sum(np.asarray(a).nbytes for a in arrays)
        detail = None
        if self.details is not None:
            values = tuple(public_value(np.asarray(a)) for a in arrays) if public else None
            detail = MessageDetail(describe_arrays(arrays), values)
        self._sent_upto = max(self._sent_upto, self.clock + 1)
        for p in to:
            if send_parts is not None:
                wire = send_parts(p, parts)
            else:
                wire = self.endpoint.send_frame(p, frame)
            if detail is not None:
                self.details[len(self.log)] = detail  # type: ignore[index]
            self.log.append(MessageRecord(self.clock, self.id, p, tag, self._phase, payload, wire))

    def recv(self, frm: int, name: str, *, timeout: float | None = None) -> tuple[np.ndarray, ...]:
        """Receive the next message from ``frm``; it must carry tag ``name`` (scoped)."""
        self._check_peer(frm)
        tag = self.tag(name)
        raw = self.endpoint.recv_frame(frm, self.timeout if timeout is None else timeout,
                                       f"{tag!r} (round {self.clock})")
        try:
            frame = decode_frame(raw, session=self.session, limits=self.limits)
        except EncodingError as exc:
            raise EncodingError(f"party {self.id}: bad frame from party {frm} "
                                f"while waiting for {tag!r} (round {self.clock}): {exc}") from None
        if frame.tag != tag:
            raise ProtocolError(f"party {self.id} expected {tag!r} from party {frm} "
                                f"but received {frame.tag!r} (round {frame.round})")
        self.clock = max(self.clock, frame.round + 1)
        self.last_round = frame.round
        if self.view is not None:
            self.view.append((frm, tag, frame.arrays))
        return frame.arrays

    def try_recv(self, frm: int, name: str, *,
                 timeout: float | None = None) -> tuple[np.ndarray, ...] | None:
        """Like :meth:`recv`, but a dropped peer gives ``None`` instead of an error.

        For protocols that tolerate dropouts. A peer is dropped when it stays
        silent for ``timeout`` seconds (default ``party.timeout``), when it
        finished without sending this message, or when the transport saw its
        connection end without a goodbye (crash, abort, corrupt data). Once dropped, a peer stays dropped: later calls return
        ``None`` at once. See :meth:`dropped_peers`.
        """
        self._check_peer(frm)
        if frm in self._dropped:
            return None
        try:
            return self.recv(frm, name, timeout=timeout)
        except (TransportError, ProtocolAbort) as exc:
            transport_dropped = self._endpoint_set("dropped_peers")
            finished = self._endpoint_set("finished_peers")
            gone = isinstance(exc, TransportError) and frm in finished   # finished, nothing sent
            if isinstance(exc, PeerTimeout) or frm in transport_dropped or gone:
                self._dropped.add(frm)
                return None
            raise

    def _endpoint_set(self, name: str) -> set[int]:
        """The endpoint's ``dropped_peers()`` or ``finished_peers()`` (empty where it has none)."""
        method = getattr(self.endpoint, name, None)
        return set() if method is None else set(method())

    def dropped_peers(self) -> set[int]:
        """Peers known to have dropped out: silent past a :meth:`try_recv` timeout, or
        (over TCP) whose connection ended without a goodbye."""
        transport_dropped = self._endpoint_set("dropped_peers")
        return set(self._dropped) | {p for p in transport_dropped if p in self.peers}

    def recv_checked(self, frm: int, name: str, schema: Schema, *,
                     timeout: float | None = None) -> tuple[np.ndarray, ...]:
        """:meth:`recv`, then check the message against ``schema`` (:mod:`mpc.schema`).

        The one check of a peer's arrays: count, dtypes, shapes (``None`` axes
        free) and value ranges. A message that does not fit raises
        :class:`~mpc.errors.MalformedPeerData` naming this party, the peer, the
        tag, the round and the field, never a value.
        """
        got = self.recv(frm, name, timeout=timeout)
        bad = mismatch(got, schema)
        if bad is None:
            return got
        i, why = bad
        tag = self.tag(name)
        specs = [spec(e) for e in schema]
        want = ", ".join(s.describe() for s in specs)
        if i is None:
            detail = f"sent {len(got)} arrays under {tag!r}, expected {len(schema)}"
            if any(s.dtype is not None or s.shape is not None for s in specs):
                detail += f" (sent {describe(got)}, expected {want})"
            field = None
        else:
            detail = f"sent {describe(got)} under {tag!r}, expected {want}"
            if specs[i].field:
                detail += f" (its {specs[i].field} is wrong)"
            if "values" in why or "free axis" in why:
                detail += f": {why}"
            field = specs[i].field or f"array {i}"
        raise MalformedPeerData(f"party {self.id}: party {frm} {detail} (round {self.last_round})",
                                peer=frm, round=self.last_round, tag=tag, field=field)

    def recv_like(self, frm: int, name: str, *like: np.ndarray) -> tuple[np.ndarray, ...]:
        """:meth:`recv_checked` against the count, dtypes and shapes of ``like``.

        A peer's array of another shape would otherwise be broadcast (or cast)
        into local shares silently; it raises :class:`MalformedPeerData` instead.
        """
        return self.recv_checked(frm, name, [ArraySpec.like(np.asarray(w)) for w in like])

    def exchange(self, name: str, *arrays: Any, peers: Sequence[int] | None = None,
                 strict: bool = False) -> dict[int, tuple[np.ndarray, ...]]:
        """Send ``arrays`` to every peer (or ``peers``) and receive theirs: one round.

        With ``strict``, every peer must send arrays of the same count, dtypes
        and shapes as ours (the symmetric exchanges of SPMD protocols).
        """
        peers = self.peers if peers is None else tuple(peers)
        self.send_many(peers, name, *arrays)
        if strict:
            like = tuple(np.asarray(a) for a in arrays)
            return {p: self.recv_like(p, name, *like) for p in peers}
        return {p: self.recv(p, name) for p in peers}

    def barrier(self, name: str = "barrier") -> None:
        """Return once every party has reached its matching ``barrier`` call.

        Every party sends each peer an empty message (0 payload bytes) and
        waits for theirs: one round, ``n - 1`` messages per party, in the
        current phase. For separating phases or timings; a peer that never
        comes raises :class:`PeerTimeout` after ``timeout`` seconds.
        """
        self.exchange(self.fresh(name))

    def note_received(self, record: MessageRecord, arrays: tuple[np.ndarray, ...] = ()) -> None:
        """Log a message that reached this party outside its peer channels (the dealer)."""
        if self.details is not None:
            self.details[len(self.log)] = MessageDetail(describe_arrays(arrays))
        self.log.append(record)
        if self.view is not None:
            self.view.append((record.sender, record.tag, arrays))

    def publish(self, name: str, value: Any) -> Any:
        """Declare ``value`` public under tag ``name`` (scoped) and return it unchanged.

        For opened values and results that the protocol means everyone (or this
        party) to know: a transcript shows published values, and beside every
        message whose tag equals the published tag. Recorded only with
        ``record_transcript``; arrays are kept up to 64 elements.
        """
        if self.published is not None:
            self.published.append(PublishedValue(self.id, self.clock, self.tag(name), public_value(value)))
        return value

    def __repr__(self) -> str:
        return f"Party({self.id} of {self.n})"
