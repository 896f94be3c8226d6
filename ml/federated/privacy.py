"""Differential privacy of federated training: the configuration, the plan, the clients' and server's steps (layer: ml).

Central DP (DP-FedAvg, McMahan et al. 2018): clients clip, the server adds
N(0, (z C)^2) to the sum. Distributed DP (Kairouz, Liu, Steinke 2021): every
client clips, scales, rounds and adds discrete Gaussian noise before the secure
sum. :func:`dp_plan` solves the noise for the target epsilon over the run;
:func:`client_uploads` is the clients' step, :func:`server_average` the server's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from mpc.dp import (DistributedDiscreteGaussian, GaussianMechanism, PrivacyAccountant,
                    clip_by_l2_norm, discrete_gaussian, uniform01)
from mpc.dp.accountant import noise_multiplier_for
from mpc.errors import ParameterError
from mpc.rand import PRG

from ..aggregators import AggregationResult


MAX_DELTA = 0.01
"""Largest delta a :class:`DPConfig` accepts (the analytics queries use the same bound)."""
MAX_EPSILON = 50.0
"""Largest target epsilon a :class:`DPConfig` accepts: beyond it the guarantee is void."""


@dataclass(frozen=True)
class DPConfig:
    """Client-level differential privacy for the training run.

    Parameters
    ----------
    mode:
        ``"central"``: the server adds N(0, (z C)^2) to the sum (DP-FedAvg;
        trusts the server to add it). ``"distributed"``: every client adds
        discrete Gaussian noise before the secure sum (no one sees a less noisy
        value; Kairouz et al. 2021).
    clip:
        L2 bound C on each client's update.
    epsilon, delta:
        Target privacy after all rounds; the noise multiplier z is solved for.
        Alternatively give ``noise_multiplier`` (then ``epsilon`` is reported).
    scale:
        Distributed mode: quantization scale (integers per unit); by default
        ``16 sqrt(d) / C`` so that rounding adds about 6% to the sensitivity.
    noise_seed:
        Fixed noise seed for reproducible tests; ``None`` (default) draws from
        the OS CSPRNG.

    Notes
    -----
    With DP every client has weight 1 (each contribution is bounded by C; a
    sample-count weight would multiply the sensitivity). Distributed noise is
    planned for :func:`planned_survivors` of the round's clients (all of them
    without dropouts); a round with fewer survivors is skipped before its sum
    is revealed, so the target epsilon holds under dropouts too.

    The guarantee is user-level (McMahan et al. 2018), for one client's
    update replaced by zero ("zero-out" adjacency): the L2 sensitivity of the
    sum is C. Who took part in a round is not hidden (the server sees it, and
    the weight entry counts the survivors exactly). For replacing one
    client's data by another the sensitivity doubles, i.e. the reported
    epsilon holds for noise z / 2. Distributed mode needs a secure
    aggregator (the plaintext server would see each client's noisy update).
    """

    mode: str = "central"
    clip: float = 1.0
    epsilon: float | None = 8.0
    delta: float = 1e-5
    noise_multiplier: float | None = None
    scale: float | None = None
    noise_seed: bytes | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("central", "distributed"):
            raise ParameterError("DP mode must be 'central' or 'distributed'")
        if not (self.clip > 0 and math.isfinite(self.clip)):
            raise ParameterError(f"clip must be positive and finite, got {self.clip!r}")
        if not 0 < self.delta < MAX_DELTA:
            raise ParameterError(f"delta must be in (0, {MAX_DELTA}), got {self.delta!r}: a larger delta "
                                 "allows the mechanism to fail outright that often")
        if (self.epsilon is None) == (self.noise_multiplier is None):
            raise ParameterError("give exactly one of epsilon and noise_multiplier")
        if self.epsilon is not None and not 0 < self.epsilon <= MAX_EPSILON:
            raise ParameterError(f"epsilon must be in (0, {MAX_EPSILON}], got {self.epsilon!r}")
        if self.noise_multiplier is not None and not self.noise_multiplier > 0:
            raise ParameterError("noise_multiplier must be positive")



def _ddg_epsilon(ddg: DistributedDiscreteGaussian, rounds: int, delta: float) -> float:
    acc = PrivacyAccountant()
    acc.add_zcdp(ddg.zcdp(), steps=rounds)
    return acc.epsilon(delta)


def _solve_ddg(dp: DPConfig, dim: int, n: int, rounds: int, scale: float
               ) -> DistributedDiscreteGaussian:
    def make(z: float) -> DistributedDiscreteGaussian:
        return DistributedDiscreteGaussian(dp.clip, scale, dim, z, n)

    def epsilon(z: float) -> float:
        if (z * dp.clip * scale) ** 2 / n < 0.25 * (1 + 1e-9):
            return math.inf       # each client's share of the noise is below what KLS21 covers
        return _ddg_epsilon(make(z), rounds, dp.delta)

    if dp.noise_multiplier is not None:
        return make(dp.noise_multiplier)
    target = float(dp.epsilon)  # type: ignore[arg-type]
    lo = noise_multiplier_for(target, dp.delta, rounds) * 0.5
    hi = lo * 4
    while epsilon(hi) > target:
        hi *= 2
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if epsilon(mid) <= target else (mid, hi)
    return make(hi)


def client_uploads(deltas: dict[int, np.ndarray], sizes: Mapping[int, int] | Sequence[int],
                   cap: int, dp: DPConfig | None, ddg: DistributedDiscreteGaussian | None,
                   noise_prg: PRG) -> dict[int, np.ndarray]:
    """Each client's vector for the secure sum: ``[w_k * delta_k, w_k]``.

    Without DP, w_k = n_k / cap. With DP every w_k = 1 and the update is clipped
    to C (central) or clipped, scaled, rounded and noised by the client
    (distributed). The clients' discrete Gaussian noises are drawn in one
    vectorised batch (one independent row per client) because the exact sampler
    has a large per-call overhead; each row is added before the row leaves its client.
    """
    ids = sorted(deltas)
    if dp is None:
        return {k: np.concatenate([sizes[k] / cap * deltas[k], [sizes[k] / cap]]) for k in ids}
    if ddg is None:
        return {k: np.concatenate([clip_by_l2_norm(deltas[k], dp.clip)[0], [1.0]]) for k in ids}
    rows = np.stack([clip_by_l2_norm(deltas[k], ddg.clip)[0] for k in ids]) * ddg.scale
    low = np.floor(rows)
    rounded = low + (uniform01(noise_prg, rows.size).reshape(rows.shape) < rows - low)
    noise = discrete_gaussian(noise_prg, ddg.client_variance, rows.size).reshape(rows.shape)
    noisy = rounded + noise.astype(np.float64)
    return {k: np.concatenate([noisy[i], [1.0]]) for i, k in enumerate(ids)}


def planned_survivors(m: int, dropout: float) -> int:
    """Fewest survivors of a round of ``m`` that distributed DP plans its noise for.

    About two standard deviations below the expected ``m (1 - dropout)``
    (Binomial), so that few rounds fall short; a round that does is skipped
    before the sum is revealed, and the noise of every released sum is at
    least the planned one.
    """
    if dropout <= 0:
        return m
    spread = 2.0 * math.sqrt(m * dropout * (1.0 - dropout))
    return max(1, math.floor(m * (1.0 - dropout) - spread))


def dp_plan(dp: DPConfig | None, dim: int, m: int, rounds: int, update_clip: float
             ) -> tuple[GaussianMechanism | None, DistributedDiscreteGaussian | None, float]:
    """The run's mechanism and the public bound on every summed entry (``m``: the fewest
    noisy survivors a released round has)."""
    if dp is None:
        return None, None, update_clip
    if dp.mode == "central":
        z = dp.noise_multiplier or noise_multiplier_for(float(dp.epsilon), dp.delta, rounds)  # type: ignore[arg-type]  # validated: epsilon is set without a multiplier
        if dp.noise_multiplier is not None:
            acc = PrivacyAccountant()
            acc.add_gaussian(z, steps=rounds)
            _check_run_epsilon(acc.epsilon(dp.delta), z, rounds)
        return GaussianMechanism(dp.clip, z), None, dp.clip
    scale = dp.scale or 16.0 * math.sqrt(dim) / dp.clip
    ddg = _solve_ddg(dp, dim, m, rounds, scale)
    if dp.noise_multiplier is not None:
        _check_run_epsilon(_ddg_epsilon(ddg, rounds, dp.delta), dp.noise_multiplier, rounds)
    sigma = math.sqrt(float(ddg.client_variance))
    return None, ddg, dp.clip * scale + 1 + 12 * sigma  # 12 sigma: tail mass below 1e-32


def _check_run_epsilon(epsilon: float, z: float, rounds: int) -> None:
    """An explicit noise multiplier gets the same bound as a target epsilon."""
    if not epsilon <= MAX_EPSILON:
        raise ParameterError(f"noise_multiplier {z:g} gives epsilon {epsilon:.3g} over {rounds} rounds, "
                             f"above {MAX_EPSILON:g}: a guarantee in name only; add more noise")


def server_average(res: AggregationResult, mech: GaussianMechanism | None,
                   ddg: DistributedDiscreteGaussian | None,
                   accountant: PrivacyAccountant | None, noise_prg: PRG,
                   sampling_rate: float = 1.0, unamplified: PrivacyAccountant | None = None
                   ) -> tuple[np.ndarray, float]:
    """Server side: (sum of weighted updates, sum of weights) from the aggregate, with
    central noise added or distributed noise decoded, and the round accounted.

    ``sampling_rate`` is m / n, the fraction of the clients sampled (uniformly,
    without replacement, fixed size): central DP's Gaussian is accounted in
    ``accountant`` with the amplification of that sampling (Wang, Balle,
    Kasiviswanathan 2019; see :func:`mpc.dp.wor_subsampled_gaussian_rdp`) and in
    ``unamplified`` without it. The amplified epsilon holds for whoever sees the
    models but not who was sampled; the server picks the sample, so against it
    only the unamplified one holds. Distributed noise (zCDP) is accounted
    without amplification in both.
    """
    total = res.total
    if ddg is not None and accountant is not None:
        accountant.add_zcdp(ddg.zcdp(len(res.survivors)))  # noise from the survivors only
        if unamplified is not None:
            unamplified.add_zcdp(ddg.zcdp(len(res.survivors)))
        return ddg.decode(np.round(total[:-1])), float(np.round(total[-1]))
    if mech is not None and accountant is not None:
        accountant.add_gaussian(mech.noise_multiplier, sampling_rate, sampling="without_replacement")
        if unamplified is not None:
            unamplified.add_gaussian(mech.noise_multiplier)
        return mech.apply(noise_prg, total[:-1]), float(np.round(total[-1]))
    return total[:-1], float(total[-1])


__all__ = ["DPConfig", "MAX_DELTA", "MAX_EPSILON", "client_uploads", "dp_plan", "planned_survivors",
           "server_average"]
