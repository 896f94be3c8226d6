"""Federated analytics with the clients as separate processes (layer: protocols).

The queries of :mod:`protocols.analytics` — count, sum, mean, histogram and
heavy hitters — split between the machines. The analyst (server) sends every
client the query's public parameters; each client recomputes the noise plan
from them, encodes its own value exactly as the in-process query encodes that
client's (clipping, stochastic rounding, one-hot, prefix sketch), adds its own
share of the discrete Gaussian noise, and enters the secure sum of
:func:`protocols.secagg.network.serve` through the server; the server decodes
the noisy total (and, for heavy hitters, walks the prefix tree on it). The
noise plan, ring size and SecAgg parameters are those of the in-process query
for the same number of clients, and a client refuses a query above its own
epsilon limit, of another kind than it agreed to answer, or whose ring or
session does not match the plan it computes, so a server cannot make a client
add less noise.

Randomness: a client draws its rounding and noise from its own OS
randomness. For tests and benchmarks, :func:`answer` takes the ``seed`` of
the in-process query and draws the same values the simulation gives that
client (its slice of the simulation's streams): then the network result
equals the in-process one for the same seed and the same survivors. A query
run with a known seed has no privacy.

Links: the server reaches client ``u`` of the query at node ``ids[u]`` of an
:class:`mpc.transport.star.Hub`; a client its server over the endpoint of
:func:`mpc.transport.star.dial` (node 0). Messages are wire frames tagged
``<prefix>/query`` and ``<prefix>/secagg/<round>`` (``prefix`` default
``"analytics"``; give each query of a session its own).

Threat model and dropouts: as :mod:`protocols.analytics` (honest-but-curious
server, at most 10% colluding clients, up to 30% dropouts); a client that
never answers is dropped at its round's deadline (``round_timeout``; the
first round waits ``first_timeout``); fewer survivors than the noise is
planned for and the total is not released (:class:`~mpc.errors.ProtocolAbort`).
What the analyst does not learn, unlike the simulation: which clients clipped
(``clipped`` is 0 in a network result).

Cost: one secure sum, as in process (:class:`~.queries.QueryCost`), plus one
query message per client; ``cost.server_seconds`` is the server's wall time
of the secure sum.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np

from mpc.dp import uniform01
from mpc.dp.sampling import discrete_gaussian_cdt
from mpc.errors import (EncodingError, IntegrityError, ParameterError, ProtocolAbort,
                        TransportError)
from mpc.rand import PRG, derive_seed, random_seed
from mpc.transport.wire import decode_frame, encode_frame
from protocols.secagg import Client as SecAggClient
from protocols.secagg import make_config
from protocols.secagg.network import attend, config_arrays, config_from_arrays, serve

from .heavy_hitters import SketchLayout, walk
from .privacy import NO_NOISE, NoisePlan, calibrate, ring_bits
from .queries import QueryResult, _finish, _plan_noise
from .secure_sum import CORRUPTION_BOUND, DROPOUT_BOUND, SumOutcome, _variant, min_noisy_clients

KINDS = ("count", "sum", "mean", "histogram", "heavy_hitters")
"""The queries that run over the network, in the order of their wire code."""
_N_INTS = {"count": 0, "sum": 1, "mean": 1, "histogram": 1, "heavy_hitters": 4}
_N_FLOATS = {"count": 0, "sum": 2, "mean": 2, "histogram": 0, "heavy_hitters": 0}
_LINK_ERRORS = (TransportError, EncodingError, ProtocolAbort, IntegrityError)


def _recv(endpoint: Any, peer: int, tag: str, timeout: float) -> tuple[np.ndarray, ...]:
    frame = decode_frame(endpoint.recv_frame(peer, timeout, tag))
    if frame.tag != tag:
        raise EncodingError(f"{endpoint.name(peer)} sent {frame.tag!r} where {tag!r} was expected")
    return tuple(np.array(a) for a in frame.arrays)


class HubLink:
    """The analyst's link to the query's clients: client u is node ``ids[u]`` of ``hub``.

    ``view`` records every message received: ``(client, tag, arrays)``.
    """

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


# -- the query's public parameters, shared by both sides ---------------------------------
class _Query:
    """What both sides derive from a query's public parameters: noise plan, vector size, ring."""

    def __init__(self, kind: str, n: int, ints: tuple[int, ...], floats: tuple[float, ...],
                 key: bytes, epsilon: float | None, delta: float) -> None:
        self.kind, self.n, self.ints, self.floats, self.key = kind, n, ints, floats, key
        self.epsilon, self.delta = epsilon, delta
        self.layout: SketchLayout | None = None
        if kind == "histogram":
            (buckets,) = ints
            if not 1 <= buckets <= 10 ** 6:
                raise ParameterError(f"buckets must be in 1..10^6, got {buckets}")
            self.dim, self.max_sum, l2, l1 = buckets, n, 1.0, 1.0
        elif kind == "heavy_hitters":
            max_bytes, rows, item_rows, width = ints
            if not 1 <= max_bytes <= 64:
                raise ParameterError(f"max_bytes must be in 1..64, got {max_bytes}")
            if not (1 <= rows <= 8 and 1 <= item_rows <= 8 and 16 <= width <= 2 ** 16):
                raise ParameterError("rows and item_rows must be in 1..8 and width in 16..65536")
            if len(key) != 32:
                raise ParameterError("the heavy-hitters hash key must be 32 bytes")
            self.layout = SketchLayout(key, max_bytes, rows, item_rows, width)
            ones = rows * max_bytes + item_rows
            self.dim, self.max_sum, l2, l1 = self.layout.size, n, float(np.sqrt(ones)), float(ones)
        elif kind in ("count", "sum", "mean"):
            if kind == "count":
                ints, floats = (1,), (0.0, 1.0)
            (resolution,), (lo, hi) = ints, floats
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ParameterError(f"bounds must be finite with lo < hi, got [{lo}, {hi}]")
            if not 1 <= resolution <= 2 ** 24:
                raise ParameterError(f"resolution must be in 1..2^24, got {resolution}")
            self.lo, self.hi, self.resolution = lo, hi, resolution
            self.dim, self.max_sum, l2, l1 = 1, n * resolution, float(resolution), float(resolution)
        else:
            raise ParameterError(f"unknown query kind {kind!r}; use one of {', '.join(KINDS)}")
        if kind == "heavy_hitters":
            self.plan: NoisePlan = NO_NOISE if epsilon is None else calibrate(
                epsilon, delta, l2=l2, l1=l1, threshold=min_noisy_clients(n))
        else:
            self.plan = _plan_noise(epsilon, delta, l2, l1, min_noisy_clients(n))
        self.bits = ring_bits(self.max_sum * self.plan.scale, self.plan, n, dim=self.dim)

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (np.array([KINDS.index(self.kind), *self.ints], np.int64),
                np.array([self.epsilon or 0.0, self.delta, *self.floats], np.float64),
                np.frombuffer(self.key, np.uint8).copy())

    @classmethod
    def from_arrays(cls, n: int, ints: np.ndarray, floats: np.ndarray, key: np.ndarray) -> "_Query":
        if ints.ndim != 1 or floats.ndim != 1 or key.ndim != 1 or ints.dtype.kind != "i" \
                or floats.dtype.kind != "f" or key.dtype != np.uint8 or not ints.size \
                or not 0 <= int(ints[0]) < len(KINDS):
            raise ParameterError("the analyst's query is malformed")
        kind = KINDS[int(ints[0])]
        if ints.size != 1 + _N_INTS[kind] or floats.size != 2 + _N_FLOATS[kind]:
            raise ParameterError(f"the analyst's {kind} query is malformed")
        if not np.all(np.isfinite(floats)):
            raise ParameterError(f"the analyst's {kind} query has a non-finite parameter")
        epsilon = float(floats[0]) or None
        return cls(kind, n, tuple(int(x) for x in ints[1:]), tuple(float(x) for x in floats[2:]),
                   key.tobytes(), epsilon, float(floats[1]))

    def encode(self, value: Any, index: int, seed: bytes | None) -> np.ndarray:
        """Client ``index``'s noisy ring vector for ``value`` (as the simulation encodes it)."""
        own = seed is None
        key: bytes = random_seed() if seed is None else seed
        if self.kind == "histogram":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ParameterError(f"a histogram client holds a bucket index (an integer), got "
                                     f"{type(value).__name__}")
            levels = np.zeros(self.dim, np.int64)
            levels[min(max(int(value), 0), self.dim - 1)] = 1
        elif self.kind == "heavy_hitters":
            if not isinstance(value, str):
                raise ParameterError(f"heavy hitters take a string, got {type(value).__name__}")
            assert self.layout is not None
            raw = value.encode("utf-8")
            if len(raw) > self.layout.max_bytes:
                raw = raw[:self.layout.max_bytes].decode("utf-8", errors="ignore").encode("utf-8")
            levels = np.zeros(self.dim, np.int64)
            levels[self.layout.client_offsets(raw)] = 1
        else:
            x = float(value)
            if self.kind == "count" and x not in (0.0, 1.0):
                raise ParameterError("a count client holds a flag: 0 or 1 (or a boolean)")
            if not np.isfinite(x):
                raise ParameterError("the client's value must be finite (no NaN or infinity)")
            step = (self.hi - self.lo) / self.resolution
            y = (min(max(x, self.lo), self.hi) - self.lo) / step
            u = uniform01(PRG(derive_seed(key, "rounding")), 1 if own else self.n)[0 if own else index]
            low = np.floor(y)
            levels = np.array([min(low + (u < (y - low)), self.resolution)], np.int64)
        noisy = levels * self.plan.scale
        if not self.plan.noiseless:   # this client's row of the simulation's noise stream
            draws = self.dim if own else self.n * self.dim
            start = 0 if own else index * self.dim
            noise = discrete_gaussian_cdt(PRG(derive_seed(key, "noise")), self.plan.client_variance,
                                          draws)
            noisy = noisy + noise[start:start + self.dim]
        mask = np.uint64((1 << self.bits) - 1 if self.bits < 64 else (1 << 64) - 1)
        return noisy.astype(np.int64).astype(np.uint64) & mask


# -- the analyst's side ---------------------------------------------------------------------
def serve_query(link: HubLink, kind: str, *, ints: tuple[int, ...] = (),
                floats: tuple[float, ...] = (), key: bytes = b"", epsilon: float | None = None,
                delta: float = 1e-6, variant: str = "secagg+", round_timeout: float = 10.0,
                first_timeout: float | None = None, prefix: str = "analytics",
                accountant: Any = None, record_server_view: bool = False
                ) -> tuple[QueryResult, _Query]:
    """Send the query, run the secure sum, decode the noisy total (before any walk or mean).

    ``first_timeout`` (default ``round_timeout``) bounds the first round, in
    which every client encodes its value and draws its noise (a second or more
    for the wide noise of a fine ``resolution``); ``round_timeout`` each later
    round.
    """
    n = len(link.ids)
    if n < 2:
        raise ParameterError(f"a network query needs at least 2 clients, got {n}")
    q = _Query(kind, n, ints, floats, key, epsilon, delta)
    config = make_config(n, q.dim, variant=_variant(n, variant), bits=q.bits,
                         dropout=int(DROPOUT_BOUND * n) / n, corruption=CORRUPTION_BOUND)
    for u in range(n):
        try:
            link.send(u, f"{prefix}/query", (*q.arrays(), *config_arrays(config), np.array([u])))
        except _LINK_ERRORS:
            pass   # gone: a dropout of this query
    t0 = time.perf_counter()
    view: list = []
    planned = n - int(DROPOUT_BOUND * n)
    # stops before the unmask round, so that not even this server sees an under-noised sum
    ring, survivors, _ = serve(config, link, round_timeout=round_timeout, first_timeout=first_timeout,
                               prefix=f"{prefix}/secagg", view=view, min_survivors=planned)
    if len(survivors) < planned:
        raise ProtocolAbort(f"only {len(survivors)} of {n} clients survived the secure sum, fewer "
                            f"than the {planned} its noise is planned for: the total is not released")
    total = np.asarray(ring, dtype=np.uint64).astype(np.int64)
    if q.bits < 64:
        total = np.where(total >= (1 << (q.bits - 1)), total - (1 << q.bits), total)
    alive = np.zeros(n, dtype=bool)
    alive[survivors] = True
    received = sum(int(a.nbytes) for _, _, m in view for a in m)
    outcome = SumOutcome(total=np.asarray(ring, np.uint64), survivors=alive, bits=q.bits, rounds=4,
                         bytes_per_client=received / max(len(survivors), 1), server_bytes=received,
                         server_seconds=time.perf_counter() - t0, client_seconds=0.0,
                         threshold=config.threshold)
    value = total / q.plan.scale if q.plan.scale != 1 else total.astype(np.float64)
    details: dict[str, Any] = {}
    if record_server_view:
        details["server_view"] = [m[0] for _, name, m in view if name == "masked" and len(m)]
    if kind in ("count", "sum", "mean"):
        step = (q.hi - q.lo) / q.resolution
        scalar = float(value[0]) * step + q.lo * len(survivors)
        details.update(lo=q.lo, hi=q.hi, resolution=q.resolution)
        res = _finish(scalar, q.plan, 0, outcome, n, accountant, scale=step, details=details)
    else:
        res = _finish(value, q.plan, 0, outcome, n, accountant, details=details)
    return res, q


def serve_count(link: HubLink, **kwargs: Any) -> QueryResult:
    """How many clients hold a true flag: :func:`protocols.analytics.count` over ``link``."""
    return serve_query(link, "count", **kwargs)[0]


def serve_sum(link: HubLink, lo: float, hi: float, *, resolution: int = 1024,
              **kwargs: Any) -> QueryResult:
    """Sum of one bounded real per client: :func:`protocols.analytics.sum` over ``link``."""
    return serve_query(link, "sum", ints=(resolution,), floats=(lo, hi), **kwargs)[0]


def serve_mean(link: HubLink, lo: float, hi: float, *, resolution: int = 1024,
               **kwargs: Any) -> QueryResult:
    """Mean over the surviving clients: :func:`protocols.analytics.mean` over ``link``."""
    res = serve_query(link, "mean", ints=(resolution,), floats=(lo, hi), **kwargs)[0]
    res.value = res.value / res.cost.survivors
    res.noise_std /= res.cost.survivors
    return res


def serve_histogram(link: HubLink, buckets: int, **kwargs: Any) -> QueryResult:
    """Noisy counts per bucket: :func:`protocols.analytics.histogram` over ``link``."""
    res = serve_query(link, "histogram", ints=(buckets,), **kwargs)[0]
    res.details["buckets"] = buckets
    return res


def serve_heavy_hitters(link: HubLink, k: int = 10, *, max_bytes: int = 10, rows: int = 1,
                        item_rows: int = 3, width: int = 1024, threshold: float | None = None,
                        min_count: int = 5, max_candidates: int = 64, seed: bytes | None = None,
                        **kwargs: Any) -> QueryResult:
    """The ``k`` most common strings: :func:`protocols.analytics.heavy_hitters` over ``link``.

    ``seed`` fixes the public hash key as the in-process query derives it
    (default: a fresh key); the clients' noise is their own.
    """
    if not 1 <= k <= max_candidates:
        raise ParameterError(f"need 1 <= k <= max_candidates, got k={k}")
    key = hashlib.blake2b(seed if seed is not None else random_seed(), digest_size=32,
                          person=b"hh-key").digest()
    res, q = serve_query(link, "heavy_hitters", ints=(max_bytes, rows, item_rows, width), key=key,
                         **kwargs)
    assert q.layout is not None
    noise_std = 0.0 if q.plan.noiseless else q.plan.std
    keep_at = threshold if threshold is not None else max(float(min_count), 4.0 * noise_std)
    found = walk(np.asarray(res.value), q.layout, keep_at, max_candidates)
    top = sorted(found.items(), key=lambda kv: -kv[1])[:k]
    res.value = [(p.decode("utf-8", errors="replace"), c) for p, c in top]
    res.details.update(threshold=keep_at, prefix_levels=max_bytes, rows=rows, item_rows=item_rows,
                       width=width, sketch_values=q.layout.size)
    return res


# -- a client's side --------------------------------------------------------------------------
def answer(link: EndpointLink, value: Any, *, timeout: float, expect: str | None = None,
           max_epsilon: float | None = None, seed: bytes | None = None,
           prefix: str = "analytics") -> bool:
    """A client's side: answer one query with ``value``; True if it finished the secure sum.

    ``value`` is a flag (count), a real (sum, mean), a bucket index
    (histogram) or a string (heavy hitters). ``timeout`` bounds each wait for
    the analyst. A query of another kind than ``expect``, whose epsilon
    exceeds ``max_epsilon`` (or that asks for no noise while a limit is set),
    or whose ring or session differs from the plan this client computes, is
    refused (:class:`~mpc.errors.ProtocolAbort`) before anything about the
    value is sent. ``seed``: see the module docstring (tests only).
    """
    message = link.recv(f"{prefix}/query", timeout)
    if len(message) != 7 or message[6].shape != (1,) or message[6].dtype.kind != "i":
        raise ProtocolAbort(f"the analyst's query under {prefix!r} is malformed")
    q_ints, q_floats, q_key, *params, index_arr = message
    try:
        config = config_from_arrays(*params)
        q = _Query.from_arrays(config.n, q_ints, q_floats, q_key)
    except ParameterError as exc:
        raise ProtocolAbort(f"refused the analyst's query: {exc}") from None
    if expect is not None and q.kind != expect:
        raise ProtocolAbort(f"refused: the analyst asks a {q.kind} query, this client answers "
                            f"{expect} only")
    if max_epsilon is not None and (q.epsilon is None or q.epsilon > max_epsilon):
        raise ProtocolAbort(f"refused: the query asks for epsilon {q.epsilon}, above this client's "
                            f"limit {max_epsilon}")
    index = int(index_arr[0])
    if config.bits != q.bits or config.dim != q.dim or config.threshold < 2 \
            or not 0 <= index < config.n:
        raise ProtocolAbort("refused: the query's ring or session does not match its noise plan")
    ring = q.encode(value, index, seed)
    client = SecAggClient(index, config, ring.astype(config.dtype))
    return attend(client, link, timeout=timeout, prefix=f"{prefix}/secagg")


def answer_histogram(link: EndpointLink, bucket: int, *, timeout: float,
                     max_epsilon: float | None = None, prefix: str = "analytics",
                     seed: bytes | None = None) -> bool:
    """:func:`answer` for a histogram query (kept for the first network query's callers)."""
    return answer(link, int(bucket), timeout=timeout, expect="histogram", max_epsilon=max_epsilon,
                  seed=seed, prefix=prefix)


__all__ = ["EndpointLink", "HubLink", "KINDS", "answer", "answer_histogram", "serve_count",
           "serve_heavy_hitters", "serve_histogram", "serve_mean", "serve_query", "serve_sum"]
