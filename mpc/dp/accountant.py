"""Privacy accounting in Renyi DP and zero-concentrated DP (layer: mpc core).

A mechanism's privacy loss is tracked as its Renyi divergence bound rdp(alpha)
over a grid of orders; compositions add the curves; the (epsilon, delta)
guarantee is the best conversion over the orders.

* Gaussian mechanism with noise multiplier z (std z * sensitivity):
  rdp(alpha) = alpha / (2 z^2) (Mironov 2017, Prop. 7).
* Poisson-subsampled Gaussian with rate q, integer alpha:
  rdp(alpha) = log A_alpha / (alpha - 1),
  A_alpha = sum_k C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 z^2))
  (Mironov, Talwar, Zhang 2019, Sec. 3.3).
* rho-zCDP is rdp(alpha) = rho * alpha for every alpha (Bun and Steinke 2016).
* Distributed discrete Gaussian: the sum of n clients' N_Z(0, sigma^2) noise
  gives epsilon^2/2-concentrated DP with
  epsilon = min(sqrt(D2^2/(n sigma^2) + tau D1 / 2), D2/(sqrt(n) sigma) + tau sqrt(D1)),
  tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k/(k+1))
  (Kairouz, Liu, Steinke, ICML 2021, Theorem 1).
* Conversion to (epsilon, delta): epsilon = rdp(alpha) + log((alpha-1)/alpha)
  - (log delta + log alpha)/(alpha - 1) (Canonne, Kamath, Steinke 2020,
  Prop. 12), never worse than the classical rdp(alpha) + log(1/delta)/(alpha-1).

* Gaussian on a uniform sample of fixed size without replacement, fraction
  gamma (Wang, Balle, Kasiviswanathan, AISTATS 2019, Theorem 9, for replace-one
  neighbours, whose base curve is eps(j) = 2 j / z^2 as the sensitivity doubles),
  integer alpha >= 2:
  rdp(alpha) <= log(1 + gamma^2 C(alpha, 2) min(4 (e^eps(2) - 1), 2 e^eps(2))
                    + sum_{j=3}^alpha 2 gamma^j C(alpha, j) e^((j - 1) eps(j))) / (alpha - 1)
  (the min(2, (e^eps(inf) - 1)^j) factors are 2: the Gaussian has eps(inf) = inf).
  A replace-one bound holds for zero-out neighbours too (zeroing is one
  replacement), so the curve reported is the orderwise minimum with the
  unamplified zero-out alpha / (2 z^2); a fractional order uses the bound of
  the next integer order (Renyi divergence grows with the order).
Subsampling amplification is applied only to the Gaussian curve; zCDP terms
(the distributed discrete Gaussian) are counted without amplification, which is
conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError

DEFAULT_ORDERS: tuple[float, ...] = (
    1.25, 1.5, 1.75, *[float(a) for a in range(2, 65)], 80.0, 96.0, 128.0, 192.0, 256.0, 512.0)


def _orders(orders: tuple[float, ...] | np.ndarray) -> np.ndarray:
    a = np.asarray(orders, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or np.any(a <= 1):
        raise ParameterError("Renyi orders must be a non-empty list of numbers > 1")
    return a


def gaussian_rdp(noise_multiplier: float,
                 orders: tuple[float, ...] | np.ndarray = DEFAULT_ORDERS) -> np.ndarray:
    """RDP curve alpha / (2 z^2) of one Gaussian mechanism with multiplier z."""
    if not noise_multiplier > 0:
        raise ParameterError("noise_multiplier must be positive")
    return _orders(orders) / (2.0 * noise_multiplier ** 2)


def _log_add(terms: list[float]) -> float:
    m = max(terms)
    return m + math.log(sum(math.exp(t - m) for t in terms))


def subsampled_gaussian_rdp(sampling_rate: float, noise_multiplier: float,
                            orders: tuple[float, ...] | np.ndarray = DEFAULT_ORDERS
                            ) -> np.ndarray:
    """RDP curve of the Poisson-subsampled Gaussian (integer orders; others are inf).

    With ``sampling_rate == 1`` this is :func:`gaussian_rdp` for every order.
    """
    if not 0 < sampling_rate <= 1:
        raise ParameterError("sampling_rate must be in (0, 1]")
    a = _orders(orders)
    if sampling_rate == 1.0:
        return gaussian_rdp(noise_multiplier, a)
    if not noise_multiplier > 0:
        raise ParameterError("noise_multiplier must be positive")
    q, s2 = sampling_rate, noise_multiplier ** 2
    out = np.full(a.size, np.inf)
    for i, alpha in enumerate(a):  # one term per order: a grid of ~70, not a hot path
        if alpha != int(alpha):
            continue
        n = int(alpha)
        terms = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                 + (n - k) * math.log1p(-q) + (k * math.log(q) if k else 0.0)
                 + (k * k - k) / (2 * s2) for k in range(n + 1)]
        out[i] = max(_log_add(terms), 0.0) / (n - 1)
    return out


def wor_subsampled_gaussian_rdp(sampling_fraction: float, noise_multiplier: float,
                                orders: tuple[float, ...] | np.ndarray = DEFAULT_ORDERS
                                ) -> np.ndarray:
    """RDP curve of the Gaussian on a fixed-size sample drawn without replacement.

    ``sampling_fraction`` is gamma = m / n (m of n records, uniformly, without
    replacement). WBK19 Theorem 9 (see the module docstring) bounds the
    replace-one divergence; the curve returned is its orderwise minimum with the
    unamplified zero-out curve alpha / (2 z^2), valid for zero-out neighbours.
    With ``sampling_fraction == 1`` this is :func:`gaussian_rdp`.
    """
    if not 0 < sampling_fraction <= 1:
        raise ParameterError("sampling_fraction must be in (0, 1]")
    plain = gaussian_rdp(noise_multiplier, orders)
    if sampling_fraction == 1.0:
        return plain
    a = _orders(orders)
    g, z2 = sampling_fraction, noise_multiplier ** 2
    out = plain.copy()
    for i, alpha in enumerate(a):  # one sum per order: a grid of ~70, not a hot path
        n = max(2, math.ceil(alpha))
        j = np.arange(3, n + 1, dtype=np.float64)
        eps2 = 2 * 2 / z2                                        # replace-one eps(2)
        # log min(4 (e^eps2 - 1), 2 e^eps2) without overflow: 2 e^x is the smaller from x = log 2 on
        second = math.log(4 * math.expm1(eps2)) if eps2 < math.log(2) else math.log(2) + eps2
        log_binom = np.array([math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                              for k in range(n + 1)])
        terms = [0.0, 2 * math.log(g) + log_binom[2] + second]
        terms += list(math.log(2) + j * math.log(g) + log_binom[3:] + (j - 1) * (2 * j / z2))
        out[i] = min(plain[i], _log_add(terms) / (n - 1))
    return out


def epsilon_from_rdp(rdp: np.ndarray, orders: tuple[float, ...] | np.ndarray,
                     delta: float) -> tuple[float, float]:
    """Best (epsilon, order) for a given delta from an RDP curve."""
    if not 0 < delta < 1:
        raise ParameterError("delta must be in (0, 1)")
    a = _orders(orders)
    r = np.asarray(rdp, dtype=np.float64)
    if r.shape != a.shape:
        raise ParameterError("rdp and orders must have the same length")
    with np.errstate(invalid="ignore"):
        classic = r + math.log(1 / delta) / (a - 1)
        improved = r + np.log1p(-1 / a) - (math.log(delta) + np.log(a)) / (a - 1)
    eps = np.fmin(classic, improved)
    eps = np.where(np.isfinite(r), eps, np.inf)
    i = int(np.argmin(eps))
    return max(float(eps[i]), 0.0), float(a[i])


def ddg_zcdp(l2_sensitivity: float, l1_sensitivity: float, sigma2: float, n_clients: int
             ) -> float:
    """rho (zCDP) of one sum of ``n_clients`` N_Z(0, sigma2) noises (KLS21 Thm 1).

    Sensitivities are in the integer units of the noise. Returns
    rho = epsilon^2 / 2 for the epsilon of the theorem, minimised over the
    first ``k <= n_clients`` noises: the others are independent of the data
    (post-processing), and the theorem's tau term grows with n, so the bound
    for n alone would not be monotone in n.
    """
    if n_clients < 1:
        raise ParameterError("at least one client must add noise")
    if not sigma2 >= 0.25:
        raise ParameterError("KLS21 Theorem 1 needs sigma >= 1/2")
    if l2_sensitivity < 0 or l1_sensitivity < 0:
        raise ParameterError("sensitivities must be non-negative")
    k = np.arange(1, n_clients, dtype=np.float64)
    terms = np.exp(-2 * math.pi ** 2 * sigma2 * k / (k + 1))
    tau = 10.0 * np.concatenate([[0.0], np.cumsum(terms)])     # tau for n = 1 .. n_clients
    n = np.arange(1, n_clients + 1, dtype=np.float64)
    e1 = np.sqrt(l2_sensitivity ** 2 / (n * sigma2) + 0.5 * tau * l1_sensitivity)
    e2 = l2_sensitivity / np.sqrt(n * sigma2) + tau * math.sqrt(l1_sensitivity)
    eps = float(np.min(np.minimum(e1, e2)))
    return 0.5 * eps * eps


@dataclass
class PrivacyAccountant:
    """Composes mechanisms over rounds and reports epsilon for a given delta.

    Examples
    --------
    >>> acc = PrivacyAccountant()
    >>> acc.add_gaussian(noise_multiplier=1.0, steps=10)
    >>> eps = acc.epsilon(1e-5)
    """

    orders: tuple[float, ...] = DEFAULT_ORDERS
    rdp: np.ndarray = field(init=False)
    steps: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rdp = np.zeros(_orders(self.orders).size)

    def add_gaussian(self, noise_multiplier: float, sampling_rate: float = 1.0,
                     steps: int = 1, sampling: str = "poisson") -> None:
        """Account ``steps`` (subsampled) Gaussian mechanisms.

        ``sampling``: ``"poisson"`` (each record in with probability
        ``sampling_rate``; MTZ19) or ``"without_replacement"`` (a fixed-size
        uniform sample, ``sampling_rate`` = m / n; WBK19).
        """
        if steps < 0:
            raise ParameterError("steps must be non-negative")
        if sampling == "poisson":
            curve = subsampled_gaussian_rdp(sampling_rate, noise_multiplier, self.orders)
        elif sampling == "without_replacement":
            curve = wor_subsampled_gaussian_rdp(sampling_rate, noise_multiplier, self.orders)
        else:
            raise ParameterError(f"sampling must be 'poisson' or 'without_replacement', got {sampling!r}")
        self.rdp = self.rdp + steps * curve
        self.steps += steps

    def add_zcdp(self, rho: float, steps: int = 1) -> None:
        """Account ``steps`` mechanisms that are each rho-zCDP."""
        if rho < 0 or steps < 0:
            raise ParameterError("rho and steps must be non-negative")
        self.rdp = self.rdp + steps * rho * np.asarray(self.orders)
        self.steps += steps

    def epsilon(self, delta: float) -> float:
        """Epsilon of everything accounted so far, for this ``delta``."""
        if self.steps == 0:
            return 0.0
        return epsilon_from_rdp(self.rdp, self.orders, delta)[0]


def noise_multiplier_for(epsilon: float, delta: float, steps: int, sampling_rate: float = 1.0,
                         orders: tuple[float, ...] = DEFAULT_ORDERS) -> float:
    """Smallest Gaussian noise multiplier reaching ``epsilon`` after ``steps`` (bisection)."""
    if not epsilon > 0 or steps < 1:
        raise ParameterError("epsilon must be positive and steps at least 1")

    def eps_of(z: float) -> float:
        rdp = steps * subsampled_gaussian_rdp(sampling_rate, z, orders)
        return epsilon_from_rdp(rdp, orders, delta)[0]

    lo, hi = 1e-2, 1.0
    while eps_of(hi) > epsilon:
        hi *= 2
        if hi > 1e6:
            raise ParameterError("epsilon unreachable")
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if eps_of(mid) <= epsilon else (mid, hi)
    return hi
