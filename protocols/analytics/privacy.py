"""Distributed discrete Gaussian noise for one secure sum, and the ring it needs.

Every client adds N_Z(0, sigma^2 / t) to each integer coordinate it contributes,
where ``t`` is the fewest *honest survivors* a sum can have
(:func:`protocols.analytics.secure_sum.min_noisy_clients`: n minus the 30%
that may drop minus the 10% that may collude with the server; the secure sum
refuses to release a total with fewer survivors). The noise of the ``s >= t``
honest survivors then has variance ``s sigma^2 / t >= sigma^2``: the total has
at least the planned noise although no client added more than a ``1/t`` share
of it (Kairouz, Liu, Steinke 2021).

Privacy of one query is the zCDP bound of KLS21 Theorem 1 for ``t`` noisy
summands (:func:`mpc.dp.ddg_zcdp`), so it holds whoever drops out.
:func:`calibrate` finds the smallest sigma that reaches a target epsilon at a
given delta, and :func:`ring_bits` the smallest power-of-two modulus in which
no coordinate of the noisy sum wraps except with probability below ``2^-40``
(a union bound over the coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mpc.dp import PrivacyAccountant, ddg_zcdp
from mpc.errors import ParameterError

#: Probability that any coordinate of one query's total wraps (a union bound over coordinates).
WRAP_PROBABILITY = 2.0 ** -40


def tail_stds(dim: int) -> float:
    """Standard deviations of noise tail per coordinate so that none of ``dim`` wraps.

    A discrete Gaussian N_Z(0, s^2) is s-subgaussian (Canonne, Kamath, Steinke
    2020), and so is a sum of them with the summed variance: P(|X| > z s) <=
    2 exp(-z^2 / 2). The z with ``dim * 2 exp(-z^2/2) = WRAP_PROBABILITY``:
    7.54 for one coordinate, 8.68 for 10^4, 9.19 for 10^6 (a proof, where the
    normal tail 2 Phi(-z) would only be an approximation).
    """
    if dim < 1:
        raise ParameterError("a sum has at least one coordinate")
    return math.sqrt(2 * math.log(2 * dim / WRAP_PROBABILITY))


def check_privacy_parameters(epsilon: float | None, delta: float) -> None:
    """Refuse an epsilon or delta that gives no meaningful guarantee."""
    if epsilon is not None and not (0 < epsilon <= 50 and math.isfinite(epsilon)):
        raise ParameterError(f"epsilon must be in (0, 50], got {epsilon!r}")
    if not (0 < delta < 0.01):
        raise ParameterError(f"delta must be in (0, 0.01), got {delta!r}")


def epsilon_of(rho: float, delta: float, queries: int = 1) -> float:
    """Epsilon at ``delta`` of ``queries`` compositions of a rho-zCDP mechanism."""
    acc = PrivacyAccountant()
    acc.add_zcdp(rho, queries)
    return acc.epsilon(delta)


def per_query_epsilon(total: float, delta: float, queries: int) -> float:
    """Epsilon each of ``queries`` equal queries may spend so that together they spend ``total``."""
    check_privacy_parameters(total, delta)
    if queries < 1:
        raise ParameterError("queries must be at least 1")
    # Under zCDP, equal queries compose by adding rho; find rho for the total, split it.
    lo, hi = 0.0, 1.0
    while epsilon_of(hi, delta) < total:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if epsilon_of(mid, delta) < total else (lo, mid)
    rho = lo / queries
    return epsilon_of(rho, delta)


#: Largest per-client variance :func:`mpc.dp.sampling.discrete_gaussian_cdt` samples.
MAX_CLIENT_VARIANCE = 1e8


@dataclass(frozen=True)
class NoisePlan:
    """Noise of one secure-sum query: what each client adds and what it buys."""

    client_variance: float      # sigma^2 / t, as the exact sampler's rational
    total_std: float            # std of the noise in a sum of ``threshold`` clients
    threshold: int              # fewest noisy summands the guarantee assumes
    rho: float                  # zCDP of the query
    epsilon: float              # epsilon at ``delta`` for this query alone
    delta: float
    scale: int = 1              # contributions are multiplied by this before the noise

    @property
    def std(self) -> float:
        """Noise std of a ``threshold``-client total in the contributions' own units."""
        return self.total_std / self.scale

    @property
    def noiseless(self) -> bool:
        return self.client_variance == 0.0


NO_NOISE = NoisePlan(0.0, 0.0, 1, math.inf, math.inf, 0.0)


def calibrate(epsilon: float, delta: float, *, l2: float, l1: float, threshold: int,
              queries: int = 1, max_scale: int = 1024) -> NoisePlan:
    """The least noisy plan meeting ``epsilon`` over ``queries`` queries.

    ``l2``/``l1`` are the sensitivities of one client's integer contribution.
    With many clients each one's share of the noise is small, and KLS21's
    bound then charges for the discreteness of each share; contributions
    scaled up by a power of two (up to ``max_scale``) avoid that, at the
    price of a few more ring bits. The plan with the smallest noise in the
    contributions' own units is returned.
    """
    best = _calibrate_at(epsilon, delta, l2, l1, threshold, queries)
    scale = 2
    while scale <= max_scale:
        try:
            plan = _calibrate_at(epsilon, delta, l2 * scale, l1 * scale, threshold, queries, scale)
        except ParameterError:                  # the scaled noise exceeds the sampler's range
            break
        if plan.std > 0.99 * best.std:
            break
        best, scale = plan, scale * 2
    return best


def _calibrate_at(epsilon: float, delta: float, l2: float, l1: float, threshold: int,
                  queries: int, scale: int = 1) -> NoisePlan:
    """Smallest total noise std whose ``queries``-fold composition meets ``epsilon``."""
    check_privacy_parameters(epsilon, delta)
    if threshold < 1:
        raise ParameterError("at least one client must add noise")
    if queries < 1:
        raise ParameterError("queries must be at least 1")

    def eps(total_std: float) -> float:
        return epsilon_of(ddg_zcdp(l2, l1, total_std ** 2 / threshold, threshold), delta, queries)

    lo = 0.5 * math.sqrt(threshold) * (1 + 1e-9)      # sigma_client >= 1/2 (KLS21)
    hi = max(l2, 2 * lo)
    while eps(hi) > epsilon:
        hi *= 2
        if hi ** 2 / threshold > MAX_CLIENT_VARIANCE:
            raise ParameterError(
                f"epsilon={epsilon} at delta={delta} needs per-client noise variance above "
                f"{MAX_CLIENT_VARIANCE:.0e} (the table sampler's limit): lower the resolution "
                "or raise epsilon")
    if eps(lo) <= epsilon:
        hi = lo
    else:
        for _ in range(50):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if eps(mid) <= epsilon else (mid, hi)
    var = hi ** 2 / threshold
    rho = ddg_zcdp(l2, l1, var, threshold)
    return NoisePlan(float(var), math.sqrt(float(var) * threshold), threshold, rho,
                     epsilon_of(rho, delta, 1), delta, scale)


def ring_bits(max_sum: int, noise: NoisePlan, clients: int, dim: int = 1) -> int:
    """Bits of the modulus 2^k that holds ``[-tail, max_sum + tail]`` without wrapping.

    ``max_sum`` bounds the noiseless integer sum of one coordinate; the tail is
    :func:`tail_stds` ``(dim)`` standard deviations of the noise of all
    ``clients`` clients, so that no coordinate of a ``dim``-long sum wraps
    except with probability :data:`WRAP_PROBABILITY`.
    """
    if max_sum < 0:
        raise ParameterError("max_sum must be non-negative")
    tail = 0 if noise.noiseless else math.ceil(tail_stds(dim) * math.sqrt(noise.client_variance * clients))
    # Signed reading: [-tail, max_sum + tail] must lie in [-2^(bits-1), 2^(bits-1)).
    bits = max(8, (int(max_sum) + tail).bit_length() + 1)
    if bits > 64:
        raise ParameterError(
            f"a sum of up to {max_sum} with noise tail {tail} needs {bits} bits, more than the "
            "64-bit ring: lower the resolution or the number of clients")
    return bits
