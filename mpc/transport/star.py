"""A star of pinned TLS 1.3 connections: one hub, clients that come and go (layer: mpc core).

:func:`connect` builds a full mesh and waits for every node; a federated
server cannot: its clients start late, leave and come back. A :class:`Hub`
listens on one port for the whole run and accepts, in the background, any
client whose certificate is pinned for it; each accepted client gets its own
:class:`~mpc.transport.tcp.TcpEndpoint` (one connection, one I/O thread), so
a client that disconnects fails only its own endpoint, and a client that
reconnects replaces it. A client reaches the hub with :func:`dial`, which is
:func:`~mpc.transport.mesh.connect` for the two nodes of its link.

Both sides run the same handshake as the mesh (mutual TLS 1.3, the peer's
certificate pinned to its node id, then the hello with the session id and
digest), with node 0 the hub and node ``k`` the client ``k``. A connection
that presents an unknown certificate, or a pinned one with the wrong session,
is refused and listed in :attr:`Hub.refused` with the reason; the dialling
client gets the TLS alert as a :class:`~mpc.errors.TransportError`.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Mapping

from ..errors import ParameterError, TransportError
from .mesh import (FIRST_BYTES_SECONDS, HANDSHAKE_SECONDS, HELLO, MAX_PENDING_HANDSHAKES, Node, _blocking, _check_hello,
                   _flush, _hello, _Mismatch, _read_exact, connect)
from .tcp import TcpEndpoint, _Conn
from .tls import context
from .wire import DEFAULT_LIMITS, SESSION_BYTES, WireLimits

LINK_NODES = 2
"""Every link of a star is a session of two nodes: the hub (0) and one client."""


class Hub:
    """The hub's side: listen on ``address`` and accept the clients pinned in ``clients``.

    Parameters
    ----------
    address:
        ``(host, port)`` to listen on (host ``""``: every interface).
    clients:
        ``{node id >= 1: certificate DER}``; nobody else is accepted.
    cert, key:
        The hub's certificate and private key (PEM files).
    session, digest:
        8-byte session id and 32-byte digest every client must present.
    names:
        How errors and :attr:`refused` name a node (default ``node k``).
    """

    def __init__(self, address: tuple[str, int], clients: Mapping[int, bytes], *, cert: str,
                 key: str, session: bytes, digest: bytes, limits: WireLimits = DEFAULT_LIMITS,
                 names: Mapping[int, str] | None = None, close_timeout: float = 5.0) -> None:
        if len(session) != SESSION_BYTES or len(digest) != 32:
            raise ParameterError("session must be 8 bytes and digest 32 bytes")
        if not clients or 0 in clients:
            raise ParameterError("a hub needs clients with node ids from 1 (0 is the hub)")
        self.session, self.digest, self.limits = session, digest, limits
        self.names = {k: f"node {k}" for k in clients} | dict(names or {})
        self.close_timeout = close_timeout
        self._by_der = {der: k for k, der in clients.items()}
        if len(self._by_der) != len(clients):
            raise ParameterError("two clients share a certificate; every client needs its own key")
        self._ctx = context(True, cert, key, list(clients.values()))
        self._lock = threading.Lock()
        self._endpoints: dict[int, TcpEndpoint] = {}
        self._arrived = threading.Condition(self._lock)
        self.refused: list[str] = []
        self._pending = threading.BoundedSemaphore(MAX_PENDING_HANDSHAKES)
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind(address)
        except OSError as exc:
            self._sock.close()
            raise TransportError(f"the hub cannot listen on {address[0] or '*'}:{address[1]}: "
                                 f"{exc.strerror}") from None
        self._sock.listen(64)
        self._thread = threading.Thread(target=self._accept_all, name="star-accept", daemon=True)
        self._thread.start()

    # -- what the server uses ------------------------------------------------------
    def endpoint(self, k: int) -> TcpEndpoint | None:
        """Client ``k``'s latest endpoint, or None if it never connected.

        Its link may have failed or ended since: what the client sent before
        is still received in order, then the failure is raised."""
        with self._lock:
            return self._endpoints.get(k)

    def connected(self) -> set[int]:
        """The clients whose links are up now (not failed, not said goodbye)."""
        with self._lock:
            endpoints = dict(self._endpoints)
        return {k for k, ep in endpoints.items() if not ep.dropped_peers() and not ep.finished_peers()}

    def wait_for(self, ids: set[int], timeout: float) -> set[int]:
        """Wait until every client in ``ids`` is connected, at most ``timeout`` s; the connected."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not ids <= set(self._endpoints) and time.monotonic() < deadline:
                self._arrived.wait(max(0.0, min(0.2, deadline - time.monotonic())))
        return self.connected() & ids

    def close(self) -> None:
        """Stop accepting, say goodbye on every link and close them."""
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        self._thread.join(timeout=2)
        with self._lock:
            endpoints = list(self._endpoints.values())
        closing = [threading.Thread(target=ep.close, daemon=True) for ep in endpoints]
        for t in closing:   # in parallel: a silent client costs one close timeout, not one each
            t.start()
        for t in closing:
            t.join(self.close_timeout + 5)

    # -- accepting -----------------------------------------------------------------
    def _accept_all(self) -> None:
        while not self._stop.is_set():
            self._sock.settimeout(0.2)
            try:
                sock, addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if not self._pending.acquire(blocking=False):
                self.refused.append(f"{addr[0]}: {MAX_PENDING_HANDSHAKES} handshakes already pending")
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._handshake, args=(sock, addr), daemon=True,
                             name="star-handshake").start()

    def _handshake(self, sock: socket.socket, addr: tuple) -> None:
        try:
            self._admit(sock, addr)
        finally:
            self._pending.release()

    def _admit(self, sock: socket.socket, addr: tuple) -> None:
        try:
            sock.settimeout(FIRST_BYTES_SECONDS)
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    raise ConnectionError("closed before its first bytes")
            except socket.timeout:
                raise TransportError(f"sent nothing within {FIRST_BYTES_SECONDS:g} s") from None
            k, conn = self._setup(sock)
        except (ssl.SSLError, OSError, TransportError) as exc:
            reason = str(exc)
            if isinstance(exc, ssl.SSLError):
                reason = (f"TLS handshake failed ({exc.reason or exc}): a certificate not pinned "
                          "for any client, or not TLS 1.3")
            self.refused.append(f"{addr[0]}: {reason}")
            sock.close()
            return
        endpoint = TcpEndpoint(0, {k: conn}, limits=self.limits, close_timeout=self.close_timeout,
                               names={0: "the server", k: self.names[k]})
        with self._arrived:
            old = self._endpoints.get(k)
            self._endpoints[k] = endpoint
            self._arrived.notify_all()
        if old is not None:  # the client reconnected: its new link replaces the old one
            old.abort("replaced by a new connection")

    def _setup(self, sock: socket.socket) -> tuple[int, _Conn]:
        counts = [0, 0]
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self._ctx.wrap_bio(inc, out, server_side=True)
        deadline = time.monotonic() + HANDSHAKE_SECONDS
        try:
            _blocking(sock, obj, inc, out, obj.do_handshake, deadline, counts)
        except ssl.SSLError:
            try:  # send the alert (e.g. unknown certificate), so the client learns why
                _flush(sock, out)
            except OSError:
                pass
            raise
        k = self._by_der.get(obj.getpeercert(binary_form=True) or b"")
        if k is None:
            raise TransportError("presented a certificate that is not pinned for any client")
        hello = _hello(0, LINK_NODES, self.session, self.digest)
        _blocking(sock, obj, inc, out, lambda: obj.write(hello), deadline, counts)
        data = _read_exact(sock, obj, inc, out, HELLO.size, deadline, counts)
        try:
            _check_hello(data, k, LINK_NODES, self.session, self.digest, True)
        except _Mismatch as exc:
            raise TransportError(f"{self.names[k]}: {exc}") from None
        conn = _Conn(k, sock, obj, inc, out)
        conn.sent, conn.received = counts
        return k, conn


def dial(me: int, hub: Node, *, cert: str, key: str, session: bytes, digest: bytes,
         timeout: float = 30.0, limits: WireLimits = DEFAULT_LIMITS, name: str = "") -> TcpEndpoint:
    """Client node ``me`` (>= 1) connects to the hub (node 0, retrying until ``timeout``)."""
    if me < 1:
        raise ParameterError(f"a client's node id is at least 1, got {me}")
    nodes = {0: Node(0, hub.host, hub.port, hub.der), me: Node(me, "", 0, b"")}
    return connect(me, nodes, cert=cert, key=key, session=session, digest=digest, timeout=timeout,
                   limits=limits, names={0: "the server", me: name or f"node {me}"})


__all__ = ["Hub", "LINK_NODES", "dial"]
