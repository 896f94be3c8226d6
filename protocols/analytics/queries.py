"""Secure count, sum, mean and histogram over many clients, with distributed DP.

Each query follows the same three steps:

1. **Encode** (client). The private value is checked against the declared
   bounds (values outside are clipped and counted, never wrapped), mapped to
   a non-negative integer vector (one-hot for a histogram, a stochastically
   rounded level in ``[0, resolution]`` for a sum) and, if an epsilon is set,
   given N_Z(0, sigma^2 / t) noise per coordinate (:mod:`.privacy`).
2. **Securely sum** the vectors modulo 2^k with SecAgg or SecAgg+
   (:mod:`protocols.secagg`), dropout-tolerant: the server learns only the
   total of the clients that finished. k is chosen so that the largest
   possible noiseless sum plus a noise tail fits (7.54 sigma, more for long
   vectors, so that the probability that any coordinate wraps stays below
   2^-40): overflow is ruled out by construction.
3. **Decode** (analyst). The total is read as a signed integer and scaled
   back.

Threat model: the server (analyst) and up to the secure sum's corruption bound
of clients are honest-but-curious; they see masked vectors and the noisy
total. The DP guarantee protects each client against everyone, including the
server, as long as at least ``t`` clients added their noise honestly.

Randomness: every query simulates all clients in one process. ``seed``
(default: fresh OS randomness) fixes all of its random choices, the
clients' rounding and noise included, so a query run with a known seed has
no privacy: whoever knows the seed can subtract the noise. Pass one only for
reproducible tests and benchmarks.

Cost per query: the cost of one secure sum of d = 1 (count, sum, mean) or
d = buckets (histogram) values of k bits per client; see :class:`QueryCost`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from mpc.backend import Ray
from mpc.dp import PrivacyAccountant, uniform01
from mpc.dp.sampling import discrete_gaussian_cdt
from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed, random_seed

from .privacy import NO_NOISE, NoisePlan, calibrate, check_privacy_parameters, ring_bits
from .secure_sum import SumOutcome, secure_sum, min_noisy_clients


@dataclass(frozen=True)
class QueryCost:
    """Protocol cost of one query (one secure sum)."""

    clients: int
    survivors: int
    rounds: int
    bytes_per_client: float
    server_bytes: int
    server_seconds: float
    client_seconds: float
    ring_bits: int


@dataclass
class QueryResult:
    """An analyst's answer: the value, what it cost in privacy and in protocol."""

    value: Any
    epsilon: float              # this query alone (inf when no noise was added)
    delta: float
    noise_std: float            # std of the noise in the released integer total
    clipped: int                # contributions that were out of bounds and clipped
    cost: QueryCost
    total_epsilon: float | None = None   # the accountant's epsilon after this query
    details: dict[str, Any] = field(default_factory=dict)


def _survivor_mask(n: int, dropped: Sequence[int] | np.ndarray) -> np.ndarray:
    alive = np.ones(n, dtype=bool)
    idx = np.asarray(dropped, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ParameterError(f"dropped client index out of range 0..{n - 1}")
    alive[idx] = False
    return alive


def _plan_noise(epsilon: float | None, delta: float, l2: float, l1: float,
                threshold: int) -> NoisePlan:
    check_privacy_parameters(epsilon, delta)
    if epsilon is None:
        return NO_NOISE
    return calibrate(epsilon, delta, l2=l2, l1=l1, threshold=threshold)


def _add_noise(levels: np.ndarray, plan: NoisePlan, seed: bytes) -> np.ndarray:
    """Each client's row gets its own N_Z(0, sigma^2/t) noise from its own PRG."""
    out = levels.astype(np.int64)
    if plan.noiseless:
        return out
    # The simulation draws every client's i.i.d. samples from one stream in one call;
    # a deployed client runs the same sampler on its own PRG.
    prg = PRG(derive_seed(seed, "noise"))
    out += discrete_gaussian_cdt(prg, plan.client_variance, out.size).reshape(out.shape)
    return out


def _run(contributions: np.ndarray, max_sum: int, plan: NoisePlan, alive: np.ndarray,
         variant: str, seed: bytes, keep_view: bool = False,
         progress: Callable[[int], None] | None = None,
         backend: str | Ray = "local") -> tuple[np.ndarray, SumOutcome]:
    """Noise, encode, securely sum; the survivors' noisy total in the contributions' units."""
    n = contributions.shape[0]
    bits = ring_bits(max_sum * plan.scale, plan, n, dim=contributions.shape[1])
    t0 = time.perf_counter()
    noisy = _add_noise(contributions * plan.scale, plan, seed)
    encode_seconds = (time.perf_counter() - t0) / max(n, 1)
    ring = noisy.astype(np.uint64) & np.uint64((1 << bits) - 1 if bits < 64 else (1 << 64) - 1)
    outcome = secure_sum(ring, bits, alive, variant=variant, seed=derive_seed(seed, "secagg"),
                         keep_view=keep_view, progress=progress, backend=backend)
    total = outcome.total.astype(np.int64)
    if bits < 64:                               # signed reading of the modular total
        total = np.where(total >= (1 << (bits - 1)), total - (1 << bits), total)
    outcome.client_seconds += encode_seconds
    return total / plan.scale if plan.scale != 1 else total.astype(np.float64), outcome


def _cost(outcome: SumOutcome, n: int) -> QueryCost:
    return QueryCost(clients=n, survivors=int(outcome.survivors.sum()), rounds=outcome.rounds,
                     bytes_per_client=outcome.bytes_per_client,
                     server_bytes=outcome.server_bytes,
                     server_seconds=outcome.server_seconds,
                     client_seconds=outcome.client_seconds, ring_bits=outcome.bits)


def _finish(value: Any, plan: NoisePlan, clipped: int, outcome: SumOutcome, n: int,
            accountant: PrivacyAccountant | None, scale: float = 1.0,
            details: dict[str, Any] | None = None) -> QueryResult:
    total_eps = None
    if accountant is not None and not plan.noiseless:
        accountant.add_zcdp(plan.rho)
        total_eps = accountant.epsilon(plan.delta)
    noise_std = 0.0 if plan.noiseless else float(
        np.sqrt(plan.client_variance * outcome.survivors.sum())) / plan.scale * scale
    return QueryResult(value, plan.epsilon if not plan.noiseless else float("inf"),
                       plan.delta, noise_std, clipped, _cost(outcome, n), total_eps,
                       details or {})


def histogram(values: Sequence[int] | np.ndarray, buckets: int, *,
              epsilon: float | None = None, delta: float = 1e-6,
              dropped: Sequence[int] | np.ndarray = (), variant: str = "secagg+",
              accountant: PrivacyAccountant | None = None,
              seed: bytes | None = None, record_server_view: bool = False,
              progress: Callable[[int], None] | None = None,
              backend: str | Ray = "local") -> QueryResult:
    """Histogram of one bucket index per client over ``range(buckets)``.

    Each client contributes a one-hot vector (L2 and L1 sensitivity 1 under
    add/remove of one client). Indices outside ``[0, buckets)`` are clipped
    to the nearest bucket and counted in ``clipped``. The value is a float
    array of ``buckets`` noisy counts. With ``record_server_view`` the masked
    vectors the server received are kept in ``details["server_view"]``.
    ``progress(1)`` is called after each client's step of each of the secure
    sum's four rounds (at most ``4 n`` calls; a tqdm bar's ``update`` fits).
    ``backend="ray"`` (or :class:`mpc.backend.Ray`) runs the secure sum's
    client steps in Ray actors, with the same result (every query takes it).
    """
    idx = np.asarray(values)
    if idx.ndim != 1:
        raise ParameterError("histogram takes one bucket index per client (a 1-D array)")
    if idx.size == 0:
        raise ParameterError("a histogram needs at least one client")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ParameterError(f"bucket indices must be integers, got dtype {idx.dtype}")
    if not 1 <= buckets <= 10 ** 6:
        raise ParameterError(f"buckets must be in 1..10^6, got {buckets}")
    n = idx.size
    clipped_idx = np.clip(idx, 0, buckets - 1)
    clipped = int(np.count_nonzero(clipped_idx != idx))
    onehot = np.zeros((n, buckets), dtype=np.int64)
    onehot[np.arange(n), clipped_idx] = 1
    plan = _plan_noise(epsilon, delta, 1.0, 1.0, min_noisy_clients(n))
    seed = seed if seed is not None else random_seed()
    total, outcome = _run(onehot, n, plan, _survivor_mask(n, dropped), variant, seed,
                          keep_view=record_server_view, progress=progress, backend=backend)
    details: dict[str, Any] = {"buckets": buckets}
    if record_server_view:
        details["server_view"] = outcome.server_view
    return _finish(total, plan, clipped, outcome, n, accountant, details=details)


def count(flags: Sequence[bool] | np.ndarray, **kwargs: Any) -> QueryResult:
    """How many clients hold a true flag (a two-bucket histogram's second bucket)."""
    f = np.asarray(flags)
    if f.ndim != 1 or f.dtype.kind not in "bi":
        raise ParameterError("count takes one boolean (or 0/1) flag per client")
    if f.dtype.kind == "i" and np.any((f != 0) & (f != 1)):
        raise ParameterError("count flags must be 0 or 1")
    return _scalar_query(f.astype(np.float64), 0.0, 1.0, 1, **kwargs)


def sum(values: Sequence[float] | np.ndarray, lo: float, hi: float, *,
        resolution: int = 1024, **kwargs: Any) -> QueryResult:
    """Sum of one bounded real per client, quantised to ``resolution`` levels on [lo, hi].

    Stochastic rounding keeps the sum unbiased; the quantisation error of the
    total has std at most ``(hi - lo) / resolution * sqrt(n) / 2``.
    """
    return _scalar_query(np.asarray(values, dtype=np.float64), lo, hi, resolution, **kwargs)


def mean(values: Sequence[float] | np.ndarray, lo: float, hi: float, *,
         resolution: int = 1024, **kwargs: Any) -> QueryResult:
    """Mean over the surviving clients: the secure sum divided by their (public) number."""
    res = _scalar_query(np.asarray(values, dtype=np.float64), lo, hi, resolution, **kwargs)
    res.value = res.value / res.cost.survivors
    res.noise_std /= res.cost.survivors
    return res


def _scalar_query(x: np.ndarray, lo: float, hi: float, resolution: int, *,
                  epsilon: float | None = None, delta: float = 1e-6,
                  dropped: Sequence[int] | np.ndarray = (), variant: str = "secagg+",
                  accountant: PrivacyAccountant | None = None,
                  seed: bytes | None = None, backend: str | Ray = "local") -> QueryResult:
    if x.ndim != 1 or x.size == 0:
        raise ParameterError("expected one value per client and at least one client")
    if not np.all(np.isfinite(x)):
        raise ParameterError("values must be finite (no NaN or infinity)")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ParameterError(f"bounds must be finite with lo < hi, got [{lo}, {hi}]")
    if not 1 <= resolution <= 2 ** 24:
        raise ParameterError(f"resolution must be in 1..2^24, got {resolution}")
    n = x.size
    clipped_x = np.clip(x, lo, hi)
    clipped = int(np.count_nonzero(clipped_x != x))
    seed = seed if seed is not None else random_seed()
    step = (hi - lo) / resolution
    y = (clipped_x - lo) / step
    low = np.floor(y)
    # Stochastic rounding, each client with its own PRG stream.
    u = uniform01(PRG(derive_seed(seed, "rounding")), n)
    levels = np.minimum(low + (u < (y - low)), resolution).astype(np.int64)[:, None]
    plan = _plan_noise(epsilon, delta, float(resolution), float(resolution),
                       min_noisy_clients(n))
    alive = _survivor_mask(n, dropped)
    total, outcome = _run(levels, n * resolution, plan, alive, variant, seed, backend=backend)
    value = float(total[0]) * step + lo * int(outcome.survivors.sum())
    return _finish(value, plan, clipped, outcome, n, accountant, scale=step,
                   details={"lo": lo, "hi": hi, "resolution": resolution})
