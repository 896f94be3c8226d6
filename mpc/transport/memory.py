"""In-memory transport: parties as threads of one process (layer: mpc core).

Each ordered pair of parties has a FIFO queue of encoded frames. Frames are
real bytes (see :mod:`mpc.transport.wire`), so byte counts match a network run.
When any party fails, :meth:`MemoryNetwork.abort` wakes every waiting party
with a :class:`~mpc.errors.PeerAborted` naming the failed party (its
``origin``), so a crash never turns into a hang.
"""

from __future__ import annotations

import queue
import threading
import time

from ..errors import ParameterError, PeerAborted, PeerTimeout, TransportError

_ABORT = object()
_FINISHED = object()


class MemoryNetwork:
    """Queues between ``n`` parties in one process.

    Parameters
    ----------
    n:
        Number of parties.
    latency:
        Optional simulated one-way latency in seconds, added to each frame's
        delivery (to show LAN/WAN behaviour inside one process).
    """

    def __init__(self, n: int, latency: float = 0.0) -> None:
        if n < 1:
            raise ParameterError("a network needs at least one party")
        if latency < 0:
            raise ParameterError("latency must be non-negative")
        self.n = n
        self.latency = latency
        self._queues: dict[tuple[int, int], queue.SimpleQueue] = {(s, r): queue.SimpleQueue() for s in range(n) for r in range(n) if s != r}
        self._abort_reason: str | None = None
        self._abort_origin = -1
        self._finished: set[int] = set()
        self._lock = threading.Lock()

    def endpoint(self, party_id: int) -> "MemoryEndpoint":
        if not 0 <= party_id < self.n:
            raise ParameterError(f"party id {party_id} out of range [0, {self.n})")
        return MemoryEndpoint(self, party_id)

    def finish(self, party_id: int) -> None:
        """Party ``party_id`` is done: after its last frame, its peers' receives fail at once."""
        with self._lock:
            self._finished.add(party_id)
        for (s, r), q in self._queues.items():
            if s == party_id:
                q.put(_FINISHED)

    def abort(self, reason: str, origin: int = -1) -> None:
        """Wake every waiting receiver with ``reason``; later receives fail too.

        ``origin``: the party where the failure began (-1: not a party, e.g. the caller).
        """
        with self._lock:
            if self._abort_reason is not None:
                return
            self._abort_reason = reason
            self._abort_origin = origin
        for q in self._queues.values():
            q.put(_ABORT)


class MemoryEndpoint:
    """One party's side of a :class:`MemoryNetwork`."""

    def __init__(self, net: MemoryNetwork, party_id: int) -> None:
        self.net = net
        self.id = party_id

    def send_frame(self, to: int, frame: bytes) -> int:
        """Queue ``frame`` for party ``to``; return the wire bytes."""
        q = self.net._queues.get((self.id, to))
        if q is None:
            raise ParameterError(f"party {self.id} has no channel to party {to}")
        due = time.monotonic() + self.net.latency if self.net.latency else 0.0
        q.put((due, frame))
        return len(frame)

    def recv_frame(self, frm: int, timeout: float, what: str = "") -> bytes:
        """Next frame from party ``frm``; raise on abort or after ``timeout`` seconds."""
        q = self.net._queues.get((frm, self.id))
        if q is None:
            raise ParameterError(f"party {self.id} has no channel from party {frm}")
        try:
            item = q.get(timeout=timeout)
        except queue.Empty:
            raise PeerTimeout(
                f"party {self.id} waited {timeout:g} s for {what or 'a message'} from party {frm}"
            ) from None
        if item is _ABORT:
            q.put(_ABORT)
            raise PeerAborted(f"party {self.id} stopped: {self.net._abort_reason}", self.net._abort_origin)
        if item is _FINISHED:
            q.put(_FINISHED)   # sticky, as over TCP
            raise TransportError(f"party {frm} finished and closed its connection while party "
                                 f"{self.id} waited for {what or 'a message'}")
        due, frame = item
        if due:
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return frame

    def finished_peers(self) -> set[int]:
        """Parties that returned from their program (as TCP peers that said goodbye)."""
        with self.net._lock:
            return set(self.net._finished) - {self.id}

    def close(self) -> None:
        """This party is done: its peers' receives from it fail at once (as a TCP goodbye)."""
        self.net.finish(self.id)

    def abort(self, reason: str, origin: int | None = None) -> None:
        """This party failed with ``reason`` (e.g. ``"KeyError: 'x'"``): wake every party
        (``origin``: where the failure began, default this party)."""
        self.net.abort(f"party {self.id} failed with {reason}", self.id if origin is None else origin)
