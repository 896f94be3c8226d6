"""Building one party's mesh of pinned TLS 1.3 connections (layer: mpc core).

:func:`connect` gives node ``i`` a :class:`~mpc.transport.tcp.TcpEndpoint`
with a connection to every other node of the session: it dials every node
``j < i`` (retrying until the timeout, so parties may start in any order) and
accepts the others. Each connection is a TLS 1.3 handshake over memory BIOs
(mutual, certificates pinned, see :mod:`.tls`), then a hello both sides check:
protocol version, node id, number of nodes, session id and a digest of the
program and its parameters. A stranger's connection (unknown certificate) is
refused and listed in ``endpoint.refused``; a pinned party of another session
or program fails the setup at once with the reason.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import ParameterError, PeerTimeout, TransportError
from .tcp import TcpEndpoint, _Conn
from .tls import context
from .wire import DEFAULT_LIMITS, SESSION_BYTES, WireLimits

#: An accepted connection must finish TLS and the hello within this many seconds (at most
#: ``timeout``): a stranger that connects and stays silent holds one slot for that long.
HANDSHAKE_SECONDS = 10.0
#: Handshakes of accepted connections running at once; more connections are closed at once.
MAX_PENDING_HANDSHAKES = 32
#: Of those, from one source address (at least one more than the peers that may share it).
MAX_PENDING_PER_ADDRESS = 4
#: An accepted connection must send its first TLS bytes within this many seconds: a silent
#: stranger holds a slot that long, not :data:`HANDSHAKE_SECONDS`.
FIRST_BYTES_SECONDS = 2.0

HELLO = struct.Struct("<8sBII8s32s")
HELLO_MAGIC = b"CCHELLO\0"
HELLO_VERSION = 1


@dataclass(frozen=True)
class Node:
    """What a party must know about another node: address and certificate (DER)."""

    id: int
    host: str
    port: int
    der: bytes
    listen: str = ""



# -- blocking handshake helpers -----------------------------------------------------
def _flush(sock: socket.socket, out: ssl.MemoryBIO) -> int:
    data = out.read()
    if data:
        sock.sendall(data)
    return len(data)


def _blocking(sock: socket.socket, obj: ssl.SSLObject, inc: ssl.MemoryBIO, out: ssl.MemoryBIO,
              op: Callable[[], Any], deadline: float, counts: list[int]) -> Any:
    """Run an SSLObject operation over a blocking socket until it completes."""
    while True:
        try:
            result = op()
        except ssl.SSLWantReadError:
            counts[0] += _flush(sock, out)
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("handshake timed out") from None
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("peer closed the connection during the handshake") from None
            counts[1] += len(data)
            inc.write(data)
            continue
        counts[0] += _flush(sock, out)
        return result


def _read_exact(sock, obj, inc, out, n: int, deadline: float, counts: list[int]) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = _blocking(sock, obj, inc, out, lambda: obj.read(n - len(buf)), deadline, counts)
        if not chunk:
            raise ConnectionError("peer closed the connection during the hello")
        buf += chunk
    return buf


def _hello(me: int, n_nodes: int, session: bytes, digest: bytes) -> bytes:
    return HELLO.pack(HELLO_MAGIC, HELLO_VERSION, me, n_nodes, session, digest)


class _Mismatch(TransportError):
    """An authenticated peer disagrees on the session: fatal, unlike a refused stranger."""


def _check_hello(data: bytes, expect_id: int, n_nodes: int, session: bytes, digest: bytes,
                 compare_digest: bool) -> None:
    magic, version, pid, n, sess, dig = HELLO.unpack(data)
    if magic != HELLO_MAGIC or version != HELLO_VERSION:
        raise _Mismatch(f"node {expect_id} does not speak Concilium hello v{HELLO_VERSION}")
    if pid != expect_id:
        raise _Mismatch(f"the holder of node {expect_id}'s certificate claims to be node {pid}")
    if n != n_nodes or sess != session:
        raise _Mismatch(f"party {expect_id} belongs to another session (different config, "
                             "session name or run): check that every party uses the same files")
    if compare_digest and dig != digest:
        raise _Mismatch(f"party {expect_id} runs a different program or parameters "
                             "(program name or frac_bits differ)")


def _ip(text: str) -> str:
    """An address as compared: IPv4-mapped IPv6 as IPv4, no zone."""
    text = text.split("%")[0]
    return text[7:] if text.startswith("::ffff:") and "." in text else text


def peer_addresses(hosts: list[str]) -> set[str] | None:
    """The addresses the ``hosts`` resolve to; None (unknown: accept any) if one does not resolve
    or is a wildcard."""
    out: set[str] = set()
    for host in hosts:
        if host in ("", "0.0.0.0", "::", "*"):  # noqa: S104 - a wildcard tells nothing
            return None
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError:
            return None
        out.update(_ip(str(info[4][0])) for info in infos)
    return out


def connect(me: int, nodes: Mapping[int, Node], *, cert: str, key: str, session: bytes,
            digest: bytes = bytes(32), timeout: float = 30.0, limits: WireLimits = DEFAULT_LIMITS,
            digest_peers: set[int] | None = None,
            names: Mapping[int, str] | None = None,
            peer_addresses_only: bool = True) -> TcpEndpoint:
    """Connect node ``me`` to every other node; return its endpoint.

    Parameters
    ----------
    nodes:
        Every node of the session by id, ``me`` included (its port is where it
        listens if any node has a larger id).
    cert, key:
        This node's certificate and private key (PEM files).
    session:
        8-byte session id every node must share.
    digest:
        32-byte digest of the program and its parameters, compared with the
        nodes in ``digest_peers`` (default: all).
    names:
        How errors name each node (e.g. ``{3: "the dealer"}``); default ``node j``.
    timeout:
        Seconds to establish every connection (peers may start in any order
        within it), then the close timeout.
    peer_addresses_only:
        Accept connections only from the addresses the nodes that dial us
        resolve to (where every one resolves; behind NAT, turn it off). The
        certificate check holds either way; this keeps strangers from holding
        handshake slots, as do the per-address limit
        (:data:`MAX_PENDING_PER_ADDRESS`) and the deadline for a connection's
        first bytes (:data:`FIRST_BYTES_SECONDS`).
    """
    if me not in nodes:
        raise ParameterError(f"node {me} is not in the session")
    if len(session) != SESSION_BYTES or len(digest) != 32:
        raise ParameterError("session must be 8 bytes and digest 32 bytes")
    mesh = _Mesh(me, nodes, cert=cert, key=key, session=session, digest=digest, timeout=timeout,
                 digest_peers=digest_peers, names=names)
    listener, accept_thread = mesh.listen(peer_addresses_only) if mesh.higher else (None, None)
    dialers = [threading.Thread(target=mesh.dial, args=(j,), daemon=True) for j in mesh.others if j < me]
    for t in dialers:
        t.start()
    for t in dialers:
        t.join()
    if accept_thread is not None:
        accept_thread.join(max(0.0, mesh.deadline - time.monotonic()) + 1.0)
    if listener is not None:
        listener.close()
    mesh.check_complete()
    return TcpEndpoint(me, mesh.conns, limits=limits, close_timeout=timeout, refused=mesh.refused,
                       names=dict(names or {}))


class _Mesh:
    """The state of one :func:`connect` call, shared by its accepting and dialing threads."""

    def __init__(self, me: int, nodes: Mapping[int, Node], *, cert: str, key: str, session: bytes,
                 digest: bytes, timeout: float, digest_peers: set[int] | None,
                 names: Mapping[int, str] | None) -> None:
        self.me, self.nodes, self.session, self.digest, self.timeout = me, nodes, session, digest, timeout
        self.n_nodes = len(nodes)
        self.label = {j: f"node {j}" for j in nodes} | dict(names or {})
        self.who = self.label[me] if names and me in names else f"party {me}"
        self.digest_peers = set(nodes) if digest_peers is None else set(digest_peers)
        self.others = [j for j in nodes if j != me]
        self.higher = [j for j in self.others if j > me]
        trusted = [nodes[j].der for j in self.others]
        self.server_ctx = context(True, cert, key, trusted)
        self.client_ctx = context(False, cert, key, trusted)
        self.by_der = {nodes[j].der: j for j in self.others}
        self.deadline = time.monotonic() + timeout
        self.conns: dict[int, _Conn] = {}
        self.refused: list[str] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    # -- TLS, certificate pin, hello and digest check (both directions) -----------------------
    def setup(self, sock: socket.socket, server: bool, expect: int | None, limit: float) -> None:
        counts = [0, 0]
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = (self.server_ctx if server else self.client_ctx).wrap_bio(inc, out, server_side=server)
        hs_deadline = min(self.deadline, time.monotonic() + limit)
        _blocking(sock, obj, inc, out, obj.do_handshake, hs_deadline, counts)
        der = obj.getpeercert(binary_form=True)
        peer = self.by_der.get(der or b"")
        if peer is None or (expect is not None and peer != expect):
            who = expect if expect is None else self.label.get(expect, expect)
            raise TransportError(f"{who} presented a certificate that is not pinned for it")
        hello = _hello(self.me, self.n_nodes, self.session, self.digest)
        _blocking(sock, obj, inc, out, lambda: obj.write(hello), hs_deadline, counts)
        data = _read_exact(sock, obj, inc, out, HELLO.size, hs_deadline, counts)
        _check_hello(data, peer, self.n_nodes, self.session, self.digest,
                     peer in self.digest_peers and self.me in self.digest_peers)
        c = _Conn(peer, sock, obj, inc, out)
        c.sent, c.received = counts
        with self.lock:
            if peer in self.conns:
                raise TransportError(f"{self.label[peer]} connected twice")
            self.conns[peer] = c

    # -- the listening side: nodes with larger ids dial us ------------------------------------
    def listen(self, peer_addresses_only: bool) -> tuple[socket.socket, threading.Thread]:
        node = self.nodes[self.me]
        listener = socket.socket(socket.AF_INET6 if ":" in (node.listen or node.host) else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((node.listen or "", node.port))
        except OSError as exc:
            listener.close()
            raise TransportError(f"{self.who} cannot listen on port {node.port}: {exc.strerror}") from None
        listener.listen(len(self.higher) + 8)
        self.pending = threading.BoundedSemaphore(MAX_PENDING_HANDSHAKES)
        self.per_address: dict[str, int] = {}
        self.per_limit = max(MAX_PENDING_PER_ADDRESS, len(self.higher) + 1)
        self.allowed = (peer_addresses([self.nodes[j].host for j in self.higher])
                        if peer_addresses_only else None)
        self.mismatch = threading.Event()
        accept_thread = threading.Thread(target=self.accept_all, args=(listener,),
                                         name=f"tcp-accept-{self.me}", daemon=True)
        accept_thread.start()
        return listener, accept_thread

    def accept_all(self, listener: socket.socket) -> None:
        # Each accepted connection shakes hands in its own thread, so a stranger that
        # connects and says nothing cannot hold up the parties behind it.
        while time.monotonic() < self.deadline and not self.mismatch.is_set():
            with self.lock:
                if all(j in self.conns for j in self.higher):
                    return
            listener.settimeout(max(0.05, min(0.5, self.deadline - time.monotonic())))
            try:
                sock, addr = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if not self._take_slot(sock, addr):
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.handshake, args=(sock, addr), daemon=True,
                             name=f"tcp-handshake-{self.me}").start()

    def _take_slot(self, sock: socket.socket, addr: Any) -> bool:
        """Reserve a handshake slot for an accepted connection, or refuse and close it."""
        source = _ip(addr[0])
        if self.allowed is not None and source not in self.allowed:
            self.refused.append(f"{addr[0]}: not the address of a node that dials party {self.me}")
            sock.close()
            return False
        with self.lock:
            busy = self.per_address.get(source, 0) >= self.per_limit
            if not busy:
                self.per_address[source] = self.per_address.get(source, 0) + 1
        if busy:
            self.refused.append(f"{addr[0]}: {self.per_limit} handshakes from this address already pending")
            sock.close()
            return False
        if not self.pending.acquire(blocking=False):
            with self.lock:
                self.per_address[source] -= 1
            self.refused.append(f"{addr[0]}: {MAX_PENDING_HANDSHAKES} handshakes already pending")
            sock.close()
            return False
        return True

    def handshake(self, sock: socket.socket, addr: Any) -> None:
        try:
            sock.settimeout(min(FIRST_BYTES_SECONDS, max(self.timeout, 0.1)))
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    raise ConnectionError("closed before its first bytes")
            except socket.timeout:
                raise TransportError(f"sent nothing within {FIRST_BYTES_SECONDS:g} s") from None
            self.setup(sock, True, None, min(HANDSHAKE_SECONDS, max(self.timeout, 1.0)))
        except _Mismatch as exc:  # an authenticated party of another session/program
            sock.close()
            self.errors.append(TransportError(f"{self.who}: {exc}"))
            self.mismatch.set()
        except (ssl.SSLError, OSError, TransportError) as exc:
            self.refused.append(f"{addr[0]}: {exc}")  # e.g. an unknown certificate, or silence
            sock.close()
        finally:
            with self.lock:
                self.per_address[_ip(addr[0])] -= 1
            self.pending.release()

    # -- the dialing side: we dial the nodes with smaller ids ---------------------------------
    def dial(self, j: int) -> None:
        node, label, who = self.nodes[j], self.label, self.who
        last: BaseException | None = None
        while time.monotonic() < self.deadline:
            try:
                sock = socket.create_connection(
                    (node.host, node.port), timeout=max(0.1, min(2.0, self.deadline - time.monotonic())))
            except OSError as exc:
                last = exc
                time.sleep(0.05)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.setup(sock, False, j, max(self.timeout, 1.0))
                return
            except ssl.SSLError as exc:
                sock.close()
                self.errors.append(TransportError(
                    f"{who}: TLS with {label[j]} at {node.host}:{node.port} failed "
                    f"({exc.reason or exc}): {label[j]} refused our certificate or presented "
                    "one that is not in the config"))
                return
            except (TransportError, OSError) as exc:
                sock.close()
                if isinstance(exc, TransportError):
                    self.errors.append(TransportError(f"{who}: {exc}"))
                    return
                last = exc
                time.sleep(0.05)
        self.errors.append(PeerTimeout(f"{who} could not connect to {label[j]} at {node.host}:{node.port} "
                                       f"within {self.timeout:g} s ({last})"))

    # -- the end: every peer connected, or the first error --------------------------------------
    def check_complete(self) -> None:
        if self.errors:
            self._abandon()
            raise self.errors[0]
        missing = sorted(set(self.others) - set(self.conns))
        if missing:
            self._abandon()
            extra = f"; refused connections: {self.refused}" if self.refused else ""
            absent = ", ".join(self.label[j] for j in missing)
            raise PeerTimeout(f"{self.who}: {absent} did not connect within {self.timeout:g} s{extra}")

    def _abandon(self) -> None:
        for c in self.conns.values():
            c.sock.close()
