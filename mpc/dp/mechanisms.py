"""Clipping and noise mechanisms: central Gaussian, distributed discrete Gaussian (layer: mpc core).

* :func:`clip_by_l2_norm` / :func:`clip_rows_by_l2_norm` bound each
  contribution's L2 norm (the sensitivity of a sum).
* :class:`GaussianMechanism` -- the central mechanism of DP-FedAvg
  (McMahan et al. 2018): the aggregator adds N(0, (z C)^2) to a sum of
  contributions clipped to C. The server must be trusted to add it.
* :class:`DistributedDiscreteGaussian` -- the clients' side of distributed DP
  with secure aggregation (Kairouz, Liu, Steinke 2021): each client clips to C,
  scales by ``scale``, rounds stochastically to integers and adds exact
  discrete Gaussian noise N_Z(0, sigma_c^2) with sigma_c^2 = (z C scale)^2 / n;
  the secure sum of n clients then carries noise of total variance about
  (z C scale)^2 and nobody, not even the server, sees a less noisy value.

Security
--------
Central: the server sees exact clipped updates unless they are also securely
aggregated; the guarantee protects against whoever reads the released model.
Distributed: if fewer clients than planned survive, the total noise shrinks;
:meth:`DistributedDiscreteGaussian.zcdp` is evaluated with the actual number of
noise-adding survivors. Clients that collude with the server can subtract their
own noise: count only honest clients in ``n``.

References
----------
H. B. McMahan, D. Ramage, K. Talwar, L. Zhang. "Learning Differentially Private
Recurrent Language Models." ICLR 2018.
P. Kairouz, Z. Liu, T. Steinke. "The Distributed Discrete Gaussian Mechanism for
Federated Learning with Secure Aggregation." ICML 2021.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import ParameterError
from ..rand import PRG
from .accountant import ddg_zcdp, gaussian_rdp
from .sampling import discrete_gaussian, gaussian, rational_variance, uniform01


def clip_by_l2_norm(x: np.ndarray, bound: float) -> tuple[np.ndarray, bool]:
    """Scale ``x`` down to L2 norm at most ``bound``; return (clipped, was_clipped)."""
    if not bound > 0:
        raise ParameterError("clipping bound must be positive")
    v = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ParameterError("cannot clip a vector with NaN or infinite entries")
    norm = float(np.linalg.norm(v))
    if norm <= bound:
        return v.copy(), False
    return v * (bound / norm), True


def clip_rows_by_l2_norm(x: np.ndarray, bound: float) -> tuple[np.ndarray, int]:
    """Clip every row of a 2-D array to L2 norm ``bound``; return (clipped, rows clipped)."""
    if not bound > 0:
        raise ParameterError("clipping bound must be positive")
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 2:
        raise ParameterError("clip_rows_by_l2_norm needs a 2-D array")
    if not np.all(np.isfinite(v)):
        raise ParameterError("cannot clip rows with NaN or infinite entries")
    norms = np.linalg.norm(v, axis=1)
    factor = np.minimum(1.0, bound / np.maximum(norms, 1e-300))
    return v * factor[:, None], int(np.sum(norms > bound))


@dataclass(frozen=True)
class GaussianMechanism:
    """Central Gaussian mechanism: noise std ``noise_multiplier * l2_sensitivity``."""

    l2_sensitivity: float
    noise_multiplier: float

    def __post_init__(self) -> None:
        if not self.l2_sensitivity > 0 or not self.noise_multiplier >= 0:
            raise ParameterError("need l2_sensitivity > 0 and noise_multiplier >= 0")

    @property
    def std(self) -> float:
        return self.noise_multiplier * self.l2_sensitivity

    def apply(self, prg: PRG, value: np.ndarray) -> np.ndarray:
        """``value`` plus fresh Gaussian noise of this mechanism's std."""
        v = np.asarray(value, dtype=np.float64)
        return v + gaussian(prg, v.shape, self.std)

    def rdp(self, orders: tuple[float, ...] | np.ndarray) -> np.ndarray:
        if self.noise_multiplier == 0:
            return np.full(len(orders), np.inf)
        return gaussian_rdp(self.noise_multiplier, orders)


@dataclass(frozen=True)
class DistributedDiscreteGaussian:
    """Client-side distributed discrete Gaussian noise for a secure sum.

    Parameters
    ----------
    clip:
        L2 bound C applied to each client's real vector.
    scale:
        Quantization scale: a real x becomes about ``x * scale`` in integers.
    dim:
        Vector length d (needed for the rounding part of the sensitivity).
    noise_multiplier:
        z: the total noise std is ``z * C * scale`` integer units when all
        ``n_clients`` add theirs.
    n_clients:
        Number of clients expected to add noise to one sum.
    """

    clip: float
    scale: float
    dim: int
    noise_multiplier: float
    n_clients: int

    def __post_init__(self) -> None:
        if not (self.clip > 0 and self.scale > 0 and self.noise_multiplier > 0):
            raise ParameterError("clip, scale and noise_multiplier must be positive")
        if self.dim < 1 or self.n_clients < 1:
            raise ParameterError("dim and n_clients must be at least 1")
        if self.client_variance < Fraction(1, 4):
            raise ParameterError(f"each client's noise would have sigma^2 = {float(self.client_variance):.3g}, "
                                 "below the 1/4 KLS21 needs: more noise, fewer clients or a larger scale")

    @property
    def client_variance(self) -> Fraction:
        """sigma_c^2 of each client's discrete Gaussian, as the sampler's rational."""
        total = (self.noise_multiplier * self.clip * self.scale) ** 2
        return rational_variance(total / self.n_clients)

    @property
    def l2_sensitivity(self) -> float:
        """Integer-domain L2 sensitivity: C * scale plus sqrt(d) for the rounding."""
        return self.clip * self.scale + math.sqrt(self.dim)

    @property
    def l1_sensitivity(self) -> float:
        """L1 bound of an integer vector of L2 norm D2: min(sqrt(d) D2, D2^2)."""
        d2 = self.l2_sensitivity
        return min(math.sqrt(self.dim) * d2, d2 * d2)

    def encode(self, prg: PRG, x: np.ndarray) -> tuple[np.ndarray, bool]:
        """Clip, scale, round stochastically and add noise; (int64 vector, was_clipped)."""
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        if v.size != self.dim:
            raise ParameterError(f"expected a vector of length {self.dim}, got {v.size}")
        clipped, was = clip_by_l2_norm(v, self.clip)
        y = clipped * self.scale
        low = np.floor(y)
        rounded = (low + (uniform01(prg, y.size) < (y - low))).astype(np.int64)
        return rounded + discrete_gaussian(prg, self.client_variance, self.dim), was

    def decode(self, total: np.ndarray) -> np.ndarray:
        """Real-valued sum from the integer sum of the clients' encodings."""
        return np.asarray(total, dtype=np.float64) / self.scale

    def zcdp(self, n_noisy: int | None = None) -> float:
        """rho of one sum to which ``n_noisy`` clients (default: all) added noise."""
        n = self.n_clients if n_noisy is None else n_noisy
        return ddg_zcdp(self.l2_sensitivity, self.l1_sensitivity,
                        float(self.client_variance), n)
