"""``mpc analytics server`` and ``mpc analytics client``: federated analytics across machines (layer: protocols).

::

    mpc analytics server --config q.toml [--json result.json]
    mpc analytics client --config q.toml --id 3 --data phone3.csv [--max-epsilon 2]

One TOML file, the same on the analyst's machine and on every client, names
the server's address and certificate, every client's certificate and the
query (the certificates come from ``mpc keys new``)::

    [server]
    address = "10.0.0.1:9500"          # where the analyst listens (host:port)
    certificate = "keys/party0.crt"    # relative to this file

    [[client]]
    id = 0
    certificate = "keys/party1.crt"

    [query]
    kind = "mean"                      # count, sum, mean, histogram, heavy_hitters
    column = "steps"                   # the CSV column a client reads (default: the first)
    lo = 0.0                           # sum, mean: the bounds and the resolution
    hi = 20000.0
    resolution = 1024
    epsilon = 1.0                      # distributed DP (omit: no noise)
    delta = 1e-6
    variant = "secagg+"
    round_timeout = 10                 # deadline of each secure-sum round (s)
    first_timeout = 60                 # the first round: the clients encode and draw noise
    connect_timeout = 30               # how long the analyst waits for the clients

A histogram takes ``buckets``; heavy hitters take ``k``, ``max_bytes``,
``rows``, ``item_rows``, ``width``, ``min_count``, ``max_candidates`` and an
optional ``threshold`` (as :func:`protocols.analytics.heavy_hitters`).

A client's ``--data`` is a CSV file with a header; its value is the
``column`` of the first data row: a flag (0/1, true/false) for a count, a
number for a sum or mean, a bucket index for a histogram, a string for heavy
hitters (``--value`` gives it directly instead). The links are those of
:mod:`mpc.transport.star` (node 0 the analyst, node ``k + 1`` client ``k``),
the protocol :mod:`protocols.analytics.network`. A client that is not
connected by ``connect_timeout`` or that stops answering is a dropout of the
query; the answer is released only if enough clients finish.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mpc.config import key_for, read_toml, star_nodes
from mpc.errors import ConciliumError, ParameterError

from .network import KINDS

_COMMON = {"kind", "column", "epsilon", "delta", "variant", "round_timeout", "first_timeout",
           "connect_timeout"}
_PARAMS = {"count": set(), "sum": {"lo", "hi", "resolution"}, "mean": {"lo", "hi", "resolution"},
           "histogram": {"buckets"},
           "heavy_hitters": {"k", "max_bytes", "rows", "item_rows", "width", "threshold",
                             "min_count", "max_candidates", "seed"}}


@dataclass(frozen=True)
class AnalyticsConfig:
    """A parsed analytics-deployment config (see the module docstring)."""

    host: str
    port: int
    server_certificate: Path
    server_der: bytes
    clients: dict[int, tuple[Path, bytes]]
    kind: str
    params: dict[str, Any] = field(default_factory=dict)   # the query function's keywords
    column: str | None = None
    round_timeout: float = 10.0
    first_timeout: float = 60.0
    connect_timeout: float = 30.0
    listen: str = ""
    digest: bytes = bytes(32)

    @property
    def session(self) -> bytes:
        return self.digest[:8]


def _seconds(query: dict, key: str, default: float) -> float:
    value = query.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ParameterError(f"config [query]: {key} must be a positive number, got {value!r}")
    return float(value)


def from_dict(data: dict[str, Any], base: str | Path = ".") -> AnalyticsConfig:
    """Validate a parsed config into an :class:`AnalyticsConfig`."""
    unknown = set(data) - {"server", "client", "query"}
    if unknown:
        raise ParameterError(f"config: unknown sections {sorted(unknown)}; allowed: server, client, "
                             "query")
    nodes = star_nodes(data, Path(base), min_clients=2)
    ders = [nodes.server_der] + [c[1] for c in nodes.clients.values()]
    query = data.get("query")
    if not isinstance(query, dict) or query.get("kind") not in KINDS:
        raise ParameterError(f"config: [query] needs a kind, one of {', '.join(KINDS)}")
    kind = query["kind"]
    unknown = set(query) - _COMMON - _PARAMS[kind]
    if unknown:
        raise ParameterError(f"config [query]: unknown keys {sorted(unknown)} for a {kind} query; "
                             f"allowed: {', '.join(sorted(_COMMON | _PARAMS[kind]))}")
    if kind in ("sum", "mean") and not {"lo", "hi"} <= set(query):
        raise ParameterError(f"config [query]: a {kind} query needs lo and hi")
    if kind == "histogram" and "buckets" not in query:
        raise ParameterError("config [query]: a histogram needs buckets")
    params = {k: v for k, v in query.items() if k in _PARAMS[kind] | {"epsilon", "delta", "variant"}}
    if "seed" in params:
        params["seed"] = str(params["seed"]).encode()
    h = hashlib.sha256(b"concilium-analytics-v1\0")
    for d in ders:
        h.update(hashlib.sha256(d).digest())
    h.update(json.dumps(query, sort_keys=True, default=str).encode())
    return AnalyticsConfig(nodes.host, nodes.port, nodes.server_certificate, nodes.server_der,
                           nodes.clients, kind, params,
                           None if query.get("column") is None else str(query["column"]),
                           _seconds(query, "round_timeout", 10.0),
                           _seconds(query, "first_timeout", 60.0),
                           _seconds(query, "connect_timeout", 30.0),
                           listen=nodes.listen, digest=h.digest())


def load(path: str | Path) -> AnalyticsConfig:
    """Read and validate the TOML config at ``path``."""
    data, base = read_toml(path)
    return from_dict(data, base)


def read_value(kind: str, text: str) -> Any:
    """A client's value from its text: a flag, a number, a bucket index or a string."""
    t = text.strip()
    try:
        if kind == "count":
            flags = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
            if t.lower() not in flags:
                raise ValueError
            return flags[t.lower()]
        if kind in ("sum", "mean"):
            return float(t)
        if kind == "histogram":
            return int(t)
    except ValueError:
        what = {"count": "a flag (0/1, true/false)", "histogram": "a bucket index (an integer)"}
        raise ParameterError(f"a {kind} client's value must be {what.get(kind, 'a number')}, "
                             f"got {t!r}") from None
    return text


def read_csv(path: str, column: str | None) -> str:
    """The ``column`` (default: the first) of the first data row of a CSV file with a header."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            row = next(rows, None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ParameterError(f"cannot read data file {path}: {exc}") from None
    if not header or not row:
        raise ParameterError(f"data file {path} needs a header and one data row")
    col = 0 if column is None else (header.index(column) if column in header else -1)
    if col < 0:
        raise ParameterError(f"data file {path} has no column {column!r} (columns: "
                             f"{', '.join(header)})")
    if col >= len(row):
        raise ParameterError(f"data file {path}: the first row has no value in column {header[col]!r}")
    return row[col]


def serve(config: AnalyticsConfig, *, key: str | None = None) -> tuple[Any, list[str]]:
    """The analyst: listen, wait for the clients, run the query; (QueryResult, refused links)."""
    from mpc.transport.star import Hub

    from . import network

    hub = Hub((config.listen or config.host, config.port),
              {k + 1: d for k, (_, d) in config.clients.items()},
              cert=str(config.server_certificate), key=key_for(config.server_certificate, key),
              session=config.session, digest=config.digest,
              names={k + 1: f"client {k}" for k in config.clients})
    try:
        ids = [k + 1 for k in sorted(config.clients)]
        hub.wait_for(set(ids), config.connect_timeout)
        link = network.HubLink(hub, ids)
        servers: dict[str, Callable[..., Any]] = {
            "count": network.serve_count, "sum": network.serve_sum, "mean": network.serve_mean,
            "histogram": network.serve_histogram, "heavy_hitters": network.serve_heavy_hitters}
        run = servers[config.kind]
        return run(link, **config.params, round_timeout=config.round_timeout,
                   first_timeout=config.first_timeout), list(hub.refused)
    finally:
        hub.close()


def run_client(config: AnalyticsConfig, client_id: int, value: Any, *, key: str | None = None,
               max_epsilon: float | None = None) -> bool:
    """Client ``client_id``: dial the analyst and answer its query; True if it finished."""
    from mpc.transport.mesh import Node
    from mpc.transport.star import dial

    from . import network

    if client_id not in config.clients:
        raise ParameterError(f"client id {client_id} is not in the config (ids 0.."
                             f"{len(config.clients) - 1})")
    cert = config.clients[client_id][0]
    ep = dial(client_id + 1, Node(0, config.host, config.port, config.server_der), cert=str(cert),
              key=key_for(cert, key), session=config.session, digest=config.digest,
              timeout=config.connect_timeout, name=f"client {client_id}")
    try:
        wait = config.connect_timeout + config.first_timeout + 4 * config.round_timeout
        return network.answer(network.EndpointLink(ep), value, timeout=wait, expect=config.kind,
                              max_epsilon=max_epsilon)
    finally:
        ep.close()


def _report(kind: str, res: Any) -> dict[str, Any]:
    value = res.value.tolist() if hasattr(res.value, "tolist") else res.value
    return {"query": kind, "value": value, "epsilon": res.epsilon, "delta": res.delta,
            "noise_std": res.noise_std, "clients": res.cost.clients,
            "survivors": res.cost.survivors, "ring_bits": res.cost.ring_bits,
            "server_seconds": res.cost.server_seconds}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mpc analytics", description="federated analytics across "
                                "processes and machines (secure sum, distributed DP, pinned TLS 1.3)")
    sub = p.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server", help="run the analyst (the query's server)")
    server.add_argument("--config", required=True, help="the query's TOML config")
    server.add_argument("--key", help="the server's private key (default: beside its certificate)")
    server.add_argument("--json", metavar="FILE", help="also write the result here")
    client = sub.add_parser("client", help="run one client of the query")
    client.add_argument("--config", required=True, help="the query's TOML config")
    client.add_argument("--id", type=int, required=True, help="this client's id in the config")
    source = client.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="FILE.csv", help="CSV with a header; the config's column")
    source.add_argument("--value", help="this client's value, given directly")
    client.add_argument("--key", help="this client's private key (default: beside its certificate)")
    client.add_argument("--max-epsilon", type=float,
                        help="refuse a query whose epsilon is above this (or that adds no noise)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    who = "server" if ns.role == "server" else f"client {ns.id}"
    try:
        config = load(ns.config)
        if ns.role == "server":
            res, refused = serve(config, key=ns.key)
            for reason in refused:
                print(f"server: refused a connection: {reason}", file=sys.stderr)
            report = _report(config.kind, res)
            if ns.json:
                Path(ns.json).write_text(json.dumps(report, indent=2) + "\n", "utf-8")
            print(f"{config.kind}: {json.dumps(report['value'])}")
            print(f"survivors: {report['survivors']} of {report['clients']}, epsilon "
                  f"{report['epsilon']:g}, noise std {report['noise_std']:.4g}")
            return 0
        text = ns.value if ns.value is not None else read_csv(ns.data, config.column)
        done = run_client(config, ns.id, read_value(config.kind, text), key=ns.key,
                          max_epsilon=ns.max_epsilon)
        print(f"client {ns.id}: {'answered' if done else 'dropped by the server'}")
        return 0
    except ConciliumError as exc:
        print(f"mpc analytics {who}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


__all__ = ["AnalyticsConfig", "from_dict", "load", "main", "parser", "read_csv", "read_value",
           "run_client", "serve"]
