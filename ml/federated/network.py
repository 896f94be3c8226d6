"""Federated training across processes and machines: the config file and the message links (layer: ml).

One TOML file, the same on the server and on every client, names the
server's address and certificate, every client's certificate, the training
settings, the aggregator, sampling, deadlines and DP::

    [server]
    address = "10.0.0.1:9400"          # where the server listens (host:port)
    certificate = "keys/party0.crt"    # relative to this file

    [[client]]
    id = 0
    certificate = "keys/party1.crt"

    [training]
    rounds = 10
    clients_per_round = 5              # sampling (default: every client)
    aggregator = "secagg+"             # plaintext, secagg, secagg+, ckks, paillier
    weight_cap = 100                   # public bound on a client's example count
    local_epochs = 1
    batch_size = 32
    lr = 0.1
    seed = 0
    round_timeout = 10                 # deadline of each protocol round (s)
    fit_timeout = 60                   # deadline for the local training (s)
    connect_timeout = 30               # wait for the clients before round 1 (s)

    [aggregator]                       # options of the aggregator (optional)
    dropout_bound = 0.3

    [dp]                               # optional: DPConfig's fields
    mode = "central"
    epsilon = 8.0

    [model]                            # for the command line: the built-in model
    kind = "logistic"                  # logistic, softmax, mlp
    features = 30

The links are star-shaped (:mod:`mpc.transport.star`): a client talks only to
the server. Node 0 is the server, node ``k + 1`` client ``k``. Messages are
wire frames (tag and numpy arrays; no pickle) tagged ``fl/<round>/<what>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from mpc.config import key_for, read_toml, star_nodes
from mpc.errors import (EncodingError, IntegrityError, ParameterError, PeerTimeout, ProtocolAbort,
                        TransportError)
from mpc.transport.wire import decode_frame, encode_frame

from .plan import Settings
from .privacy import DPConfig

NETWORK_AGGREGATORS = ("plaintext", "secagg", "secagg+", "ckks", "paillier")
"""Aggregators that run over the network (CKKS and Paillier: :mod:`.he_network`)."""
_TRAINING = {f.name for f in fields(Settings)} - {"dp", "compression", "dropout"}
_TIMEOUTS = ("round_timeout", "fit_timeout", "connect_timeout", "idle_timeout")


@dataclass(frozen=True)
class FLConfig:
    """A parsed federated-deployment config (see the module docstring)."""

    host: str
    port: int
    server_certificate: Path
    server_der: bytes
    clients: dict[int, tuple[Path, bytes]]
    settings: Settings
    aggregator: str = "plaintext"
    aggregator_options: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    round_timeout: float = 10.0
    fit_timeout: float = 60.0
    connect_timeout: float = 30.0
    idle_timeout: float = 600.0
    listen: str = ""
    digest: bytes = bytes(32)

    @property
    def session(self) -> bytes:
        """8-byte session id of the links (from the digest of the config)."""
        return self.digest[:8]

    @property
    def n_clients(self) -> int:
        return len(self.clients)


def _number(table: dict, key: str, where: str, default: float, low: float = 0.0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low:
        raise ParameterError(f"{where}: {key} must be a number above {low:g}, got {value!r}")
    return float(value)


def _training(table: dict) -> tuple[Settings, str, dict[str, float]]:
    unknown = set(table) - _TRAINING - set(_TIMEOUTS) - {"aggregator"}
    if unknown:
        raise ParameterError(f"config [training]: unknown keys {sorted(unknown)}; allowed: "
                             f"{', '.join(sorted(_TRAINING | set(_TIMEOUTS) | {'aggregator'}))}")
    aggregator = str(table.get("aggregator", "plaintext"))
    if aggregator not in NETWORK_AGGREGATORS:
        raise ParameterError(f"config [training]: aggregator {aggregator!r} does not run over the "
                             f"network; use one of {', '.join(NETWORK_AGGREGATORS)}")
    timeouts = {k: _number(table, k, "config [training]", d)
                for k, d in zip(_TIMEOUTS, (10.0, 60.0, 30.0, 600.0))}
    values = {k: v for k, v in table.items() if k in _TRAINING}
    return Settings(**values), aggregator, timeouts


def _digest(data: dict, server_der: bytes, clients: dict[int, tuple[Path, bytes]]) -> bytes:
    """SHA-256 over everything but file paths: two copies with other folders agree."""
    h = hashlib.sha256(b"concilium-fl-v1\0")
    h.update(hashlib.sha256(server_der).digest())
    for k in sorted(clients):
        h.update(k.to_bytes(4, "little") + hashlib.sha256(clients[k][1]).digest())
    rest = {s: data.get(s, {}) for s in ("training", "aggregator", "dp", "model")}
    h.update(json.dumps(rest, sort_keys=True, default=str).encode())
    return h.digest()


def from_dict(data: dict[str, Any], base: str | os.PathLike[str] = ".") -> FLConfig:
    """Validate a parsed config (see the module docstring) into an :class:`FLConfig`."""
    unknown = set(data) - {"server", "client", "training", "aggregator", "dp", "model"}
    if unknown:
        raise ParameterError(f"config: unknown sections {sorted(unknown)}; allowed: server, client, "
                             "training, aggregator, dp, model")
    nodes = star_nodes(data, Path(base))
    settings, aggregator, timeouts = _training(dict(data.get("training", {})))
    dp = data.get("dp")
    if dp is not None:
        try:
            dp_config = DPConfig(**dp)
        except TypeError as exc:
            raise ParameterError(f"config [dp]: {exc}") from None
        settings = Settings(**{**settings.__dict__, "dp": dp_config})
    return FLConfig(nodes.host, nodes.port, nodes.server_certificate, nodes.server_der, nodes.clients,
                    settings, aggregator, dict(data.get("aggregator", {})), dict(data.get("model", {})),
                    listen=nodes.listen, digest=_digest(data, nodes.server_der, nodes.clients), **timeouts)


def load(path: str | os.PathLike[str]) -> FLConfig:
    """Read and validate the TOML config at ``path``."""
    data, base = read_toml(path)
    return from_dict(data, base)


# -- messages on a link ----------------------------------------------------------------
def send(endpoint: Any, peer: int, tag: str, arrays: tuple | list) -> int:
    """Send ``arrays`` under ``tag``; the ciphertext bytes it took."""
    return endpoint.send_frame(peer, encode_frame(tag, tuple(np.asarray(a) for a in arrays)))


def recv(endpoint: Any, peer: int, tag: str, timeout: float, *, skip_older: bool = True
         ) -> tuple[np.ndarray, ...]:
    """The next message under ``tag`` from ``peer`` within ``timeout`` s.

    With ``skip_older``, messages of earlier rounds (tags ``fl/<r>/...`` with a
    smaller r: a late client's) are discarded; any other tag is a protocol
    error naming both tags.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PeerTimeout(f"waited {timeout:g} s for {tag!r} from {endpoint.name(peer)}")
        frame = decode_frame(endpoint.recv_frame(peer, left, tag))
        if frame.tag == tag:
            return tuple(np.array(a) for a in frame.arrays)
        if skip_older and _round_of(frame.tag) < _round_of(tag):
            continue
        raise EncodingError(f"{endpoint.name(peer)} sent {frame.tag!r} where {tag!r} was expected")


def _round_of(tag: str) -> int:
    parts = tag.split("/")
    if len(parts) > 1 and parts[0] == "fl" and parts[1].isdigit():
        return int(parts[1])
    return -1


LINK_ERRORS = (TransportError, EncodingError, ProtocolAbort, IntegrityError)
"""What a failed, aborted, silent or garbled link raises (PeerTimeout is a TransportError)."""


__all__ = ["FLConfig", "LINK_ERRORS", "NETWORK_AGGREGATORS", "from_dict", "key_for", "load",
           "recv", "send"]
