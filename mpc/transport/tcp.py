"""TCP transport with mutually authenticated TLS 1.3 between parties (layer: mpc core).

A :class:`TcpEndpoint` (built by :func:`mpc.transport.mesh.connect`) holds one
pinned TLS connection to every other node of the session and offers the same
``send_frame`` / ``recv_frame`` / ``close`` as the in-memory endpoint, so
party code runs unchanged.

On the socket, every message is a **record** (:mod:`~mpc.transport.records`)::

    kind u8 | length u32 | body (length bytes)

with kind ``DATA`` (body: one :mod:`~mpc.transport.wire` frame), ``BYE`` (the
sender finished cleanly, empty body) or ``ABORT`` (the sender failed; body: a
short UTF-8 reason, after ``NUL | origin u32`` naming the node where the failure
began when the sender only relays it). The length is checked against the wire limits *before*
any buffer is allocated, and the buffer is reserved without being filled (its
memory is committed as the bytes arrive); nothing from a peer is unpickled or
evaluated.

Threads: the party's thread encrypts (``ssl.SSLObject`` over memory BIOs,
under a per-connection lock) straight from the arrays' memory (a frame comes
as a scatter list, :func:`~mpc.transport.wire.encode_frame_parts`), queues the
ciphertext and sends what the socket takes at once without blocking (a small
message leaves without waking another thread); one I/O thread per endpoint
sends the rest, moves received bytes into the BIOs, decrypts, and files
whole frames into one FIFO per peer. Sending never blocks on a slow peer, so
two parties exchanging large arrays cannot deadlock. Receiving is bounded:
once ``limits.max_queued_bytes`` of a peer's frames wait in its FIFO, the I/O
thread stops reading that peer until the program receives (backpressure; the
excess waits in the peer's own buffers).

Failures are per peer and sticky: a peer that disconnects, aborts, sends a
malformed record or fails TLS integrity makes every later ``recv_frame`` from
it raise (naming the peer and what was awaited; an abort or a lost connection
as a :class:`~mpc.errors.PeerFailure` carrying the node where it began), and it is listed by
:meth:`TcpEndpoint.dropped_peers` for protocols that tolerate dropouts.
Silence raises :class:`~mpc.errors.PeerTimeout` after the timeout.

Wire bytes: ``send_frame`` returns the exact ciphertext bytes the frame
became (record header + TLS record overhead included); ``bytes_on_socket``
adds the handshakes.
"""

from __future__ import annotations

import queue
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from ..errors import (EncodingError, IntegrityError, ParameterError, PeerAborted, PeerDisconnected,
                      PeerTimeout, ProtocolAbort, TransportError)
from .records import (ABORT, BYE, COALESCE, DATA, MAX_REASON, ORIGIN, PIECE as _PIECE, RECORD,  # noqa: F401
                      abort_body, describe as _describe, parse_abort, pieces as _pieces)
from .wire import DEFAULT_LIMITS, WireLimits

_CHUNK = 1 << 20


class _Conn:
    """One TLS connection to a peer: BIOs, outgoing ciphertext, incoming frames."""

    def __init__(self, peer: int, sock: socket.socket, obj: ssl.SSLObject,
                 inc: ssl.MemoryBIO, out: ssl.MemoryBIO, leftover: bytes = b"") -> None:
        self.peer = peer
        self.sock = sock
        self.obj = obj
        self.inc = inc
        self.outbio = out
        self.lock = threading.Lock()  # the TLS object and the order of its output
        self.send_lock = threading.Lock()
        self.wlock = threading.Lock()  # who moves ``out`` to the socket: the I/O thread or a sender
        self.out: deque[memoryview] = deque()
        self.frames: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.bye_received = False
        self.bye_sent = False
        self.closed = False
        self.sent = 0  # raw bytes on the socket, handshake included
        self.received = 0
        self.events = 0
        self.head = bytearray(RECORD.size)
        self.head_pos = 0
        self.body: np.ndarray | None = None
        self.body_pos = 0
        self.body_len = 0
        self.kind = DATA
        self.queued = 0       # bytes of frames filed and not yet received by the program
        self.paused = False   # queued reached limits.max_queued_bytes: the peer is not read
        self.resume = False   # the program caught up: the I/O thread reads on
        if leftover:
            inc.write(leftover)


class TcpEndpoint:
    """One party's connections to every other node of the session."""

    def __init__(self, me: int, conns: dict[int, _Conn], *, limits: WireLimits = DEFAULT_LIMITS,
                 close_timeout: float = 30.0, refused: list[str] | None = None,
                 names: dict[int, str] | None = None) -> None:
        """``names``: how errors name a node (e.g. ``{3: "the dealer"}``); default ``party j``."""
        self.id = me
        self.names = dict(names or {})
        self.limits = limits
        self.close_timeout = close_timeout
        self.refused = list(refused or [])
        self._conns = conns
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = False
        self._closed = False
        for c in conns.values():
            c.sock.setblocking(False)
        self._thread = threading.Thread(target=self._io_loop, name=f"tcp-io-{me}", daemon=True)
        self._thread.start()

    def name(self, p: int) -> str:
        """How errors name node ``p``: ``party p``, or its name from ``names``."""
        return self.names.get(p, f"party {p}")

    # -- the channel interface -----------------------------------------------------
    def send_frame(self, to: int, frame: bytes) -> int:
        """Encrypt and queue ``frame`` for node ``to``; return its ciphertext bytes."""
        return self.send_frame_parts(to, [frame])

    def send_frame_parts(self, to: int, parts: list[bytes | memoryview]) -> int:
        """:meth:`send_frame` of the frame ``b"".join(parts)``, without joining it.

        The parts (:func:`~mpc.transport.wire.encode_frame_parts`: a header, then
        views of the arrays) are encrypted before this returns, straight from
        the arrays' memory: the caller may reuse them afterwards.
        """
        c = self._conn(to)
        size = sum(len(p) for p in parts)
        if size > self.limits.max_frame_bytes:
            raise EncodingError(f"frame of {size} bytes exceeds the limit {self.limits.max_frame_bytes}")
        if c.error is not None:
            raise _restate(c.error, f"{self.name(self.id)} cannot send {_describe(parts)}to "
                                    f"{self.name(to)}: {c.error}")
        if c.bye_sent or self._closed:
            raise TransportError(f"{self.name(self.id)} already closed its connection to {self.name(to)}")
        if c.closed:  # e.g. the peer said goodbye and left: nothing queued now would ever leave
            raise TransportError(f"{self.name(self.id)} cannot send {_describe(parts)}to {self.name(to)}: "
                                 "the connection is closed")
        return self._write(c, DATA, parts)

    def recv_frame(self, frm: int, timeout: float, what: str = "") -> bytes:
        """Next frame from node ``frm``; raise if it failed or after ``timeout`` seconds."""
        c = self._conn(frm)
        try:
            kind, value = c.frames.get(timeout=timeout)
        except queue.Empty:
            raise PeerTimeout(f"{self.name(self.id)} waited {timeout:g} s for {what or 'a message'} "
                              f"from {self.name(frm)}") from None
        if kind == "frame":
            with c.lock:
                c.queued -= len(value)
                if c.paused and c.queued < self.limits.max_queued_bytes:
                    c.paused, c.resume = False, True
            if c.resume:
                self._wake()
            return value
        c.frames.put((kind, value))  # sticky: every later receive fails the same way
        waiting = f" while {self.name(self.id)} waited for {what or 'a message'}"
        if kind == "bye":
            raise TransportError(f"{self.name(frm)} finished and closed its connection{waiting}")
        raise _restate(value, f"{value}{waiting}")

    def dropped_peers(self) -> set[int]:
        """Peers whose connection ended without a clean goodbye (crash, abort, bad data)."""
        return {p for p, c in self._conns.items() if c.error is not None}

    def finished_peers(self) -> set[int]:
        """Peers that said goodbye cleanly."""
        return {p for p, c in self._conns.items() if c.bye_received}

    def bytes_on_socket(self) -> dict[int, tuple[int, int]]:
        """Raw (sent, received) bytes per peer, TLS handshake and records included."""
        return {p: (c.sent, c.received) for p, c in self._conns.items()}

    def say_goodbye(self, to: int) -> None:
        """Tell node ``to`` that this party will send it nothing more."""
        c = self._conn(to)
        if not c.bye_sent and c.error is None and not c.closed:  # (closed: it could never leave)
            self._write(c, BYE, b"")

    def close(self) -> None:
        """Say goodbye to every peer, flush, wait (bounded) for their goodbyes, then close."""
        if self._closed:
            return
        for p in self._conns:
            try:
                self.say_goodbye(p)
            except TransportError:
                pass
        self._closed = True
        for c in self._conns.values():  # read on to the goodbyes, past frames never received
            with c.lock:
                if c.paused:
                    c.paused, c.resume = False, True
        self._wake()
        deadline = time.monotonic() + self.close_timeout
        while time.monotonic() < deadline:
            if all((c.error is not None or c.bye_received) and not c.out for c in self._conns.values()):
                break
            time.sleep(0.002)
        self._shutdown()

    def abort(self, reason: str, origin: int | None = None) -> None:
        """Tell every peer this party failed (``reason``; ``origin``: the node where the failure
        began, if another), flush briefly, and close."""
        if self._closed:
            return
        text = abort_body(reason, None if origin == self.id else origin)
        for c in self._conns.values():
            if c.error is None and not c.bye_sent:
                try:
                    self._write(c, ABORT, text)
                except (TransportError, ssl.SSLError, OSError):
                    pass
        self._closed = True
        deadline = time.monotonic() + min(2.0, self.close_timeout)
        while time.monotonic() < deadline and any(c.out and c.error is None for c in self._conns.values()):
            time.sleep(0.002)
        self._shutdown()

    # -- internals -----------------------------------------------------------------
    def _conn(self, p: int) -> _Conn:
        c = self._conns.get(p)
        if c is None:
            raise ParameterError(f"{self.name(self.id)} has no connection to node {p!r}")
        return c

    def _write(self, c: _Conn, kind: int, body: bytes | memoryview | list[bytes | memoryview]) -> int:
        """Encrypt one record and queue its ciphertext; large bodies piece by piece, so that
        the I/O thread sends the first pieces while later ones are being encrypted.

        ``body`` may be a scatter list (a frame's header and array views): the pieces
        are cut from it directly, and only the small parts are copied (coalesced)."""
        parts = body if isinstance(body, list) else [body]
        head = RECORD.pack(kind, sum(len(p) for p in parts))
        total = 0
        with c.send_lock:  # one record at a time; the TLS lock is held per piece only
            if kind == BYE:
                c.bye_sent = True
            for piece in _pieces(head, parts):
                with c.lock:
                    try:
                        c.obj.write(piece)
                    except ssl.SSLError as exc:
                        raise TransportError(f"{self.name(self.id)}: the TLS session with {self.name(c.peer)} "
                                             f"failed ({exc.reason or exc})") from None
                    data = c.outbio.read()
                    if data:
                        c.out.append(memoryview(data))
                total += len(data)
                self._push(c)
        return total

    def _push(self, c: _Conn) -> None:
        """Send queued ciphertext from the calling thread as far as the socket takes it without
        blocking (a small message leaves at once, without a hand-off to the I/O thread); the
        rest, if any, is left to the I/O thread."""
        if c.wlock.acquire(blocking=False):  # else the I/O thread is sending: it will go on
            try:
                if not c.closed:  # a socket error is left to the I/O thread, which alone closes
                    self._send_out(c, fail=False)   # (it registers the sockets in its selector)
            finally:
                c.wlock.release()
        if c.out:
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def _fail(self, c: _Conn, exc: BaseException) -> None:
        if c.error is None and not (c.bye_received and isinstance(exc, TransportError)):
            c.error = exc
            c.frames.put(("error", exc))
        self._close_conn(c)

    def _close_conn(self, c: _Conn) -> None:
        if not c.closed:
            c.closed = True
            c.out.clear()
            try:
                c.sock.close()
            except OSError:
                pass

    def _shutdown(self) -> None:
        self._closed = True
        self._stop = True
        self._wake()
        self._thread.join(timeout=5)
        for c in self._conns.values():
            self._close_conn(c)
        self._wake_r.close()
        self._wake_w.close()

    def _io_loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        for c in self._conns.values():
            c.events = selectors.EVENT_READ
            sel.register(c.sock, c.events, c)
        rawbuf = bytearray(_CHUNK)
        for c in self._conns.values():  # records that arrived with the hello
            self._feed(c, b"")
        try:
            while not self._stop:
                for c in self._conns.values():
                    if c.resume and not c.closed:  # frames already decrypted or buffered by TLS
                        c.resume = False
                        self._feed(c, b"")
                    if c.closed:
                        if c.events:
                            try:
                                sel.unregister(c.sock)
                            except (KeyError, ValueError, OSError):
                                pass
                            c.events = 0
                        continue
                    want = (0 if c.paused else selectors.EVENT_READ) | (selectors.EVENT_WRITE if c.out else 0)
                    if want != c.events:
                        if not want:
                            sel.unregister(c.sock)
                        elif c.events:
                            sel.modify(c.sock, want, c)
                        else:
                            sel.register(c.sock, want, c)
                        c.events = want
                for key, mask in sel.select(timeout=0.5):
                    if key.data is None:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except (BlockingIOError, OSError):
                            pass
                        continue
                    c = key.data
                    if c.closed:
                        continue
                    if mask & selectors.EVENT_WRITE:
                        self._on_writable(c)
                    if mask & selectors.EVENT_READ and not c.closed:
                        self._on_readable(c, rawbuf)
        finally:
            sel.close()

    def _on_writable(self, c: _Conn) -> None:
        with c.wlock:
            self._send_out(c)

    def _send_out(self, c: _Conn, fail: bool = True) -> None:
        """Move queued ciphertext to the socket until it would block (``c.wlock`` held).

        ``fail=False`` (a sender's thread): on a socket error stop and leave the bytes queued;
        the I/O thread meets the same error and fails the connection itself."""
        try:
            while c.out:
                view = c.out[0]
                n = c.sock.send(view[:_CHUNK])
                c.sent += n
                if n < len(view):
                    c.out[0] = view[n:]
                    if n == 0:
                        return
                else:
                    c.out.popleft()
        except (BlockingIOError, InterruptedError):
            return
        except IndexError:  # the other thread closed the connection (and cleared ``out``) meanwhile
            return
        except OSError as exc:
            if fail:
                self._fail(c, PeerDisconnected(f"{self.name(c.peer)} disconnected ({exc.strerror or exc})",
                                               c.peer))

    def _on_readable(self, c: _Conn, rawbuf: bytearray) -> None:
        view = memoryview(rawbuf)
        for _ in range(64):  # bounded, so writes to other peers are not starved
            if c.paused:
                return
            try:
                n = c.sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fail(c, PeerDisconnected(f"{self.name(c.peer)} disconnected ({exc.strerror or exc})", c.peer))
                return
            if n == 0:
                self._fail(c, PeerDisconnected(f"{self.name(c.peer)} disconnected", c.peer))
                return
            c.received += n
            self._feed(c, view[:n])
            if c.closed or n < len(view):
                return

    def _feed(self, c: _Conn, data: memoryview | bytes) -> None:
        """Pass ciphertext to TLS and file every whole record; a failure closes the peer."""
        try:
            with c.lock:
                if data:
                    c.inc.write(data)
                self._decrypt(c)
                pending = c.outbio.read()
                if pending:
                    c.out.append(memoryview(pending))
        except ssl.SSLZeroReturnError:
            self._fail(c, PeerDisconnected(f"{self.name(c.peer)} closed the TLS session", c.peer))
        except ssl.SSLError:
            self._fail(c, IntegrityError(f"TLS integrity failure on the connection to {self.name(c.peer)}"))
        except (EncodingError, ProtocolAbort) as exc:
            self._fail(c, exc)

    def _decrypt(self, c: _Conn) -> None:
        """Decrypt everything available into the current record; file whole records."""
        while not c.closed:
            if c.body is None and c.head_pos == 0 and c.queued >= self.limits.max_queued_bytes:
                c.paused = True  # backpressure: the rest waits in TLS and the sockets
                return
            if c.body is None:
                target = memoryview(c.head)[c.head_pos:]
            else:
                target = memoryview(c.body)[c.body_pos:]  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
            if len(target):
                try:
                    k: int = c.obj.read(len(target), target)  # type: ignore[assignment]  # with a buffer: the count read
                except ssl.SSLWantReadError:
                    return
                if k == 0:
                    raise ssl.SSLZeroReturnError("closed")
            else:
                k = 0
            if c.body is None:
                c.head_pos += k
                if c.head_pos == RECORD.size:
                    self._start_record(c)
            else:
                c.body_pos += k
            if c.body is not None and c.body_pos == c.body_len:
                self._finish_record(c)

    def _start_record(self, c: _Conn) -> None:
        kind, length = RECORD.unpack(c.head)
        limit = {DATA: self.limits.max_frame_bytes, BYE: 0, ABORT: MAX_REASON}.get(kind)
        if limit is None:
            raise EncodingError(f"{self.name(c.peer)} sent a record of unknown kind {kind}")
        if length > limit:
            what = "frame" if kind == DATA else "control record"
            raise EncodingError(f"{self.name(c.peer)} announced an oversized {what} of {length} bytes "
                                f"(limit {limit}); refused before reading it")
        c.kind = kind
        # Reserved only after the limit check, and not filled: the OS commits its pages
        # as the bytes arrive, so announcing a large frame costs a peer the bytes of it.
        c.body = np.empty(length, np.uint8)
        c.body_len = length
        c.body_pos = 0

    def _finish_record(self, c: _Conn) -> None:
        body, kind = c.body, c.kind
        c.body, c.head_pos = None, 0
        assert body is not None  # noqa: S101 - internal invariant, set by _start_record
        if kind == DATA:
            if c.bye_received:
                raise EncodingError(f"{self.name(c.peer)} sent data after saying goodbye")
            c.queued += len(body)
            c.frames.put(("frame", memoryview(body).toreadonly()))  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
        elif kind == BYE:
            c.bye_received = True
            c.frames.put(("bye", None))
        else:
            reason, origin = parse_abort(bytes(body), c.peer, set(self._conns))
            raise PeerAborted(f"{self.name(c.peer)} aborted: {reason}", origin)


def _restate(exc: BaseException, text: str) -> BaseException:
    """``exc`` again (same type, same attributes such as ``origin``) with the message ``text``."""
    new = type(exc).__new__(type(exc))
    new.args = (text,)
    new.__dict__.update(exc.__dict__)
    return new
