"""A federated histogram with the clients as separate processes (layer: protocols).

The same query as :func:`protocols.analytics.histogram`, split between the
machines: each client encodes its own bucket (one-hot), adds its own share of
the discrete Gaussian noise from its own OS randomness, and enters the secure
sum of :func:`protocols.secagg.network.serve` through the server; the server
(the analyst) decodes the noisy total. The noise plan, ring size and SecAgg
parameters are those of the in-process query for the same number of
clients, and every client recomputes the plan from the query's public
parameters (it refuses a query above its own epsilon limit, or whose ring or
session does not match), so a server cannot make a client add less noise.

Links: the server reaches client ``u`` of the query at node ``ids[u]`` of an
:class:`mpc.transport.star.Hub`; a client its server over the endpoint of
:func:`mpc.transport.star.dial` (node 0). Messages are wire frames tagged
``<prefix>/...``.

Threat model and dropouts: as :mod:`protocols.analytics` (honest-but-curious
server, at most 10% colluding clients, up to 30% dropouts); fewer survivors
than the noise is planned for and the total is not released
(:class:`~mpc.errors.ProtocolAbort`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mpc.errors import (EncodingError, IntegrityError, ParameterError, ProtocolAbort,
                        TransportError)
from mpc.rand import random_seed
from mpc.transport.wire import decode_frame, encode_frame
from protocols.secagg import Client as SecAggClient
from protocols.secagg import make_config
from protocols.secagg.network import attend, config_arrays, config_from_arrays, serve

from .privacy import ring_bits
from .queries import QueryResult, _add_noise, _finish, _plan_noise
from .secure_sum import CORRUPTION_BOUND, DROPOUT_BOUND, SumOutcome, _variant, min_noisy_clients

_LINK_ERRORS = (TransportError, EncodingError, ProtocolAbort, IntegrityError)


def _recv(endpoint: Any, peer: int, tag: str, timeout: float) -> tuple[np.ndarray, ...]:
    frame = decode_frame(endpoint.recv_frame(peer, timeout, tag))
    if frame.tag != tag:
        raise EncodingError(f"{endpoint.name(peer)} sent {frame.tag!r} where {tag!r} was expected")
    return tuple(np.array(a) for a in frame.arrays)


class HubLink:
    """The analyst's link to the query's clients: client u is node ``ids[u]`` of ``hub``."""

    def __init__(self, hub: Any, ids: list[int]) -> None:
        self.hub, self.ids = hub, ids
        self.view: list[tuple[int, str, tuple[np.ndarray, ...]]] = []

    def send(self, u: int, tag: str, arrays: tuple[np.ndarray, ...]) -> None:
        ep = self.hub.endpoint(self.ids[u])
        if ep is None:
            raise TransportError(f"node {self.ids[u]} is not connected")
        ep.send_frame(self.ids[u], encode_frame(tag, arrays))

    def recv(self, u: int, tag: str, timeout: float) -> tuple[np.ndarray, ...] | None:
        ep = self.hub.endpoint(self.ids[u])
        if ep is None:
            return None
        try:
            arrays = _recv(ep, self.ids[u], tag, timeout)
        except _LINK_ERRORS:
            return None
        self.view.append((u, tag, arrays))
        return arrays


class EndpointLink:
    """A client's link to the analyst (node 0 of its endpoint)."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint

    def send(self, tag: str, arrays: tuple[np.ndarray, ...]) -> None:
        self.endpoint.send_frame(0, encode_frame(tag, arrays))

    def recv(self, tag: str, timeout: float) -> tuple[np.ndarray, ...]:
        return _recv(self.endpoint, 0, tag, timeout)


def _plan(n: int, buckets: int, epsilon: float | None, delta: float) -> tuple[Any, int]:
    plan = _plan_noise(epsilon, delta, 1.0, 1.0, min_noisy_clients(n))
    return plan, ring_bits(n * plan.scale, plan, n, dim=buckets)


def serve_histogram(link: HubLink, buckets: int, *, epsilon: float | None = None,
                    delta: float = 1e-6, variant: str = "secagg+", round_timeout: float = 10.0,
                    first_timeout: float | None = None, prefix: str = "histogram",
                    accountant: Any = None) -> QueryResult:
    """The analyst's side of a histogram over the clients of ``link``; see the module docstring."""
    n = len(link.ids)
    if not 1 <= buckets <= 10 ** 6:
        raise ParameterError(f"buckets must be in 1..10^6, got {buckets}")
    plan, bits = _plan(n, buckets, epsilon, delta)
    config = make_config(n, buckets, variant=_variant(n, variant), bits=bits,
                         dropout=int(DROPOUT_BOUND * n) / n, corruption=CORRUPTION_BOUND)
    query = (np.array([buckets], np.int64), np.array([epsilon or 0.0, delta], np.float64))
    for u in range(n):
        try:
            link.send(u, f"{prefix}/query", (*query, *config_arrays(config), np.array([u])))
        except _LINK_ERRORS:
            pass   # gone: a dropout of this query
    t0 = time.perf_counter()
    ring, survivors, server = serve(config, link, round_timeout=round_timeout,
                                    first_timeout=first_timeout, prefix=f"{prefix}/secagg")
    planned = n - int(DROPOUT_BOUND * n)
    if len(survivors) < planned:
        raise ProtocolAbort(f"only {len(survivors)} of {n} clients survived the secure sum, fewer "
                            f"than the {planned} its noise is planned for: the total is not released")
    total = np.asarray(ring, dtype=np.uint64).astype(np.int64)
    if bits < 64:
        total = np.where(total >= (1 << (bits - 1)), total - (1 << bits), total)
    alive = np.zeros(n, dtype=bool)
    alive[survivors] = True
    outcome = SumOutcome(total=np.asarray(ring, np.uint64), survivors=alive, bits=bits, rounds=4,
                         bytes_per_client=0.0, server_bytes=0,
                         server_seconds=time.perf_counter() - t0, client_seconds=0.0,
                         threshold=config.threshold)
    value = total / plan.scale if plan.scale != 1 else total.astype(np.float64)
    return _finish(value, plan, 0, outcome, n, accountant, details={"buckets": buckets})


def answer_histogram(link: EndpointLink, bucket: int, *, timeout: float,
                     max_epsilon: float | None = None, prefix: str = "histogram") -> bool:
    """A client's side: answer one histogram query with ``bucket``; True if it finished.

    ``timeout`` bounds each wait for the analyst. A query whose epsilon exceeds
    ``max_epsilon`` (or asks for no noise while a limit is set), or whose
    ring or session differs from the plan this client computes, is refused
    (:class:`~mpc.errors.ProtocolAbort`) before anything about the value is sent.
    """
    ints, floats, *params, index = link.recv(f"{prefix}/query", timeout)
    if ints.shape != (1,) or floats.shape != (2,) or index.shape != (1,):
        raise ProtocolAbort("the analyst's histogram query is malformed")
    buckets, epsilon, delta = int(ints[0]), float(floats[0]) or None, float(floats[1])
    if max_epsilon is not None and (epsilon is None or epsilon > max_epsilon):
        raise ProtocolAbort(f"refused: the query asks for epsilon {epsilon}, above this client's "
                            f"limit {max_epsilon}")
    config = config_from_arrays(*params)
    plan, bits = _plan(config.n, buckets, epsilon, delta)
    if config.bits != bits or config.dim != buckets or config.threshold < 2:
        raise ProtocolAbort("refused: the query's ring or session does not match its noise plan")
    onehot = np.zeros((1, buckets), dtype=np.int64)
    onehot[0, min(max(int(bucket), 0), buckets - 1)] = 1
    noisy = _add_noise(onehot * plan.scale, plan, random_seed())[0]
    ring = (noisy.astype(np.uint64) & np.uint64((1 << bits) - 1 if bits < 64 else (1 << 64) - 1))
    client = SecAggClient(int(index[0]), config, ring.astype(config.dtype))
    return attend(client, link, timeout=timeout, prefix=f"{prefix}/secagg")


__all__ = ["EndpointLink", "HubLink", "answer_histogram", "serve_histogram"]
