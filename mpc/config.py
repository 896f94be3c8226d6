"""The session config file: parties, their addresses and certificates (layer: mpc core).

A small TOML file, the same on every machine::

    [session]
    name = "hospitals"        # optional; mixed into the session id
    timeout = 30              # seconds to wait for any one message (and to connect)

    [[party]]
    id = 0
    address = "10.0.0.1:9000"
    certificate = "keys/party0.crt"   # relative to this file

    [[party]]
    id = 1
    address = "10.0.0.2:9000"
    certificate = "keys/party1.crt"

    [dealer]                  # optional: a trusted dealer of Beaver triples
    certificate = "keys/dealer.crt"

Party ids are ``0..n-1``, each listed once. Each party listens on the port of
its own address (on every interface unless ``listen`` is given) and dials the
parties with smaller ids; the dealer dials every party, so it needs no address.
Nothing else is read from the file: no code, no pickles.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import ParameterError
from .transport.tls import fingerprint, load_certificate

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    try:
        import tomli as _toml  # type: ignore[no-redef]
    except ModuleNotFoundError:
        _toml = None  # type: ignore[assignment]

DEFAULT_TIMEOUT = 30.0
MAX_PARTIES = 256


@dataclass(frozen=True)
class NodeConfig:
    """One party (or the dealer) of a session."""

    id: int
    host: str
    port: int
    certificate: Path
    der: bytes
    listen: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.der)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SessionConfig:
    """Everything the parties of one session agree on before they connect."""

    parties: tuple[NodeConfig, ...]
    dealer: NodeConfig | None = None
    timeout: float = DEFAULT_TIMEOUT
    name: str = ""
    path: Path | None = None

    @property
    def n(self) -> int:
        return len(self.parties)

    @property
    def dealer_id(self) -> int:
        """Node id of the dealer on the network: one past the last party."""
        return self.n

    def nodes(self) -> dict[int, NodeConfig]:
        """Every node of the network by id (the dealer under :attr:`dealer_id`)."""
        out = {p.id: p for p in self.parties}
        if self.dealer is not None:
            out[self.dealer_id] = self.dealer
        return out

    def digest(self) -> bytes:
        """SHA-256 over the session's name, size and every certificate, in id order."""
        h = hashlib.sha256(b"concilium-session-v1\0" + self.name.encode() + b"\0")
        h.update(self.n.to_bytes(4, "little"))
        for node in sorted(self.nodes().values(), key=lambda x: x.id):
            h.update(node.id.to_bytes(4, "little") + hashlib.sha256(node.der).digest())
        return h.digest()


def parse_address(text: str, where: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) into (host, port), with a clear error."""
    if not isinstance(text, str) or ":" not in text:
        raise ParameterError(f"{where}: address must be 'host:port', got {text!r}")
    host, _, port_s = text.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_s)
    except ValueError:
        raise ParameterError(f"{where}: port of {text!r} is not a number") from None
    if not host or not 0 < port < 65536:
        raise ParameterError(f"{where}: address {text!r} needs a host and a port in 1..65535")
    return host, port


def _node(entry: Any, base: Path, where: str, need_address: bool) -> NodeConfig:
    if not isinstance(entry, dict):
        raise ParameterError(f"{where} must be a table")
    unknown = set(entry) - {"id", "address", "certificate", "listen"}
    if unknown:
        raise ParameterError(f"{where}: unknown keys {sorted(unknown)}; allowed: id, address, "
                             "certificate, listen")
    if "certificate" not in entry:
        raise ParameterError(f"{where}: missing 'certificate'")
    cert = Path(str(entry["certificate"]))
    cert = cert if cert.is_absolute() else base / cert
    host, port = "", 0
    if "address" in entry or need_address:
        if "address" not in entry:
            raise ParameterError(f"{where}: missing 'address' (host:port)")
        host, port = parse_address(entry["address"], where)
    listen = str(entry.get("listen", ""))
    pid = entry.get("id", -1)
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise ParameterError(f"{where}: id must be an integer")
    return NodeConfig(pid, host, port, cert, load_certificate(cert), listen)


def from_dict(data: dict[str, Any], base: str | os.PathLike[str] = ".",
              path: Path | None = None) -> SessionConfig:
    """Validate a parsed config (see the module docstring) into a :class:`SessionConfig`."""
    unknown = set(data) - {"session", "party", "dealer"}
    if unknown:
        raise ParameterError(f"config: unknown sections {sorted(unknown)}; allowed: session, party, dealer")
    session = data.get("session", {})
    if not isinstance(session, dict):
        raise ParameterError("config: [session] must be a table")
    bad = set(session) - {"name", "timeout"}
    if bad:
        raise ParameterError(f"config [session]: unknown keys {sorted(bad)}; allowed: name, timeout")
    timeout = session.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise ParameterError(f"config [session]: timeout must be a number of seconds in (0, 3600], "
                             f"got {timeout!r}")
    entries = data.get("party", [])
    if not isinstance(entries, list) or len(entries) < 2:
        raise ParameterError("config: list at least two [[party]] entries")
    if len(entries) > MAX_PARTIES:
        raise ParameterError(f"config: at most {MAX_PARTIES} parties")
    base = Path(base)
    nodes = [_node(e, base, f"config [[party]] #{k}", True) for k, e in enumerate(entries)]
    ids = sorted(n.id for n in nodes)
    if ids != list(range(len(nodes))):
        raise ParameterError(f"config: party ids must be 0..{len(nodes) - 1}, each once; got {ids}")
    nodes.sort(key=lambda x: x.id)
    dealer = None
    if "dealer" in data:
        d = _node(data["dealer"], base, "config [dealer]", False)
        dealer = NodeConfig(len(nodes), d.host, d.port, d.certificate, d.der, d.listen)
    fps = [n.der for n in nodes] + ([dealer.der] if dealer else [])
    if len(set(fps)) != len(fps):
        raise ParameterError("config: two nodes share a certificate; every party needs its own key")
    return SessionConfig(tuple(nodes), dealer, float(timeout), str(session.get("name", "")), path)


def read_toml(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """The parsed TOML file at ``path`` and its folder (paths inside are relative to it)."""
    if _toml is None:  # pragma: no cover
        raise ParameterError("reading TOML needs Python 3.11+ (tomllib) or the tomli package")
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ParameterError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        return _toml.loads(text.decode("utf-8")), p.parent
    except (UnicodeDecodeError, _toml.TOMLDecodeError) as exc:
        raise ParameterError(f"config {path} is not valid TOML: {exc}") from None


def load(path: str | os.PathLike[str]) -> SessionConfig:
    """Read and validate the TOML config at ``path``."""
    data, base = read_toml(path)
    return from_dict(data, base, Path(path).resolve())


@dataclass(frozen=True)
class StarNodes:
    """A server and its clients with their pinned certificates (:mod:`mpc.transport.star`).

    Read by :func:`star_nodes` from a deployment file's ``[server]`` (``address``,
    ``certificate``, optional ``listen``: the host to bind, default the address's)
    and ``[[client]]`` entries (``id`` 0..n-1, ``certificate``), as the
    ``mpc fl`` and ``mpc analytics`` commands use them.
    """

    host: str
    port: int
    listen: str
    server_certificate: Path
    server_der: bytes
    clients: dict[int, tuple[Path, bytes]]


def _certificate(table: Any, base: Path, where: str) -> tuple[Path, bytes]:
    if not isinstance(table, dict) or "certificate" not in table:
        raise ParameterError(f"{where}: needs a 'certificate' (path of a PEM file)")
    path = Path(str(table["certificate"]))
    path = path if path.is_absolute() else base / path
    return path, load_certificate(path)


def key_for(certificate: Path, key: str | None) -> str:
    """The private key beside a certificate (``party1.crt`` -> ``party1.key``) unless given."""
    return key if key else str(certificate.with_suffix(".key"))


def star_nodes(data: dict[str, Any], base: Path, *, min_clients: int = 1) -> StarNodes:
    """The ``[server]`` and ``[[client]]`` sections of a star deployment, validated."""
    server = data.get("server")
    if not isinstance(server, dict) or "address" not in server:
        raise ParameterError("config: [server] needs an address (host:port) and a certificate")
    unknown = set(server) - {"address", "certificate", "listen"}
    if unknown:
        raise ParameterError(f"config [server]: unknown keys {sorted(unknown)}; allowed: address, "
                             "certificate, listen")
    host, port = parse_address(server["address"], "config [server]")
    cert_path, der = _certificate(server, base, "config [server]")
    entries = data.get("client")
    if not isinstance(entries, list) or len(entries) < min_clients:
        raise ParameterError(f"config: list at least {min_clients} client{'s' if min_clients > 1 else ''} "
                             "as [[client]] entries (id, certificate)")
    clients: dict[int, tuple[Path, bytes]] = {}
    for pos, e in enumerate(entries):
        where = f"config [[client]] #{pos}"
        cid = e.get("id") if isinstance(e, dict) else None
        if isinstance(cid, bool) or not isinstance(cid, int) or cid in clients:
            raise ParameterError(f"{where}: id must be an integer, each client once")
        unknown = set(e) - {"id", "certificate"}
        if unknown:
            raise ParameterError(f"{where}: unknown keys {sorted(unknown)}; allowed: id, certificate")
        clients[cid] = _certificate(e, base, where)
    if sorted(clients) != list(range(len(clients))):
        raise ParameterError(f"config: client ids must be 0..{len(clients) - 1}, got {sorted(clients)}")
    ders = [der] + [c[1] for c in clients.values()]
    if len(set(ders)) != len(ders):
        raise ParameterError("config: two nodes share a certificate; every node needs its own key")
    return StarNodes(host, port, str(server.get("listen", "")), cert_path, der, clients)


def render(parties: Sequence[tuple[str, str]], *, dealer_certificate: str | None = None,
           timeout: float = DEFAULT_TIMEOUT, name: str = "") -> str:
    """TOML text for parties given as (address, certificate path), in id order."""
    lines = ["[session]"]
    if name:
        lines.append(f"name = {_quote(name)}")
    lines += [f"timeout = {float(timeout)!r}", ""]
    for i, (address, cert) in enumerate(parties):
        lines += ["[[party]]", f"id = {i}", f"address = {_quote(address)}",
                  f"certificate = {_quote(cert)}", ""]
    if dealer_certificate is not None:
        lines += ["[dealer]", f"certificate = {_quote(dealer_certificate)}", ""]
    return "\n".join(lines)


def _quote(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'
