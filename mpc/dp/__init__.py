"""Differential-privacy primitives (layer: mpc core): clipping, noise, accounting.

Shared by :mod:`ml.federated` (DP-FedAvg, distributed DP with secure
aggregation) and the federated analytics protocols. All randomness comes from
:mod:`mpc.rand`.

* :mod:`mpc.dp.sampling` -- exact discrete Gaussian / Laplace, Bernoulli(exp(-x)),
  float Gaussian from the PRG;
* :mod:`mpc.dp.mechanisms` -- L2 clipping, the central Gaussian mechanism, the
  distributed discrete Gaussian mechanism for clients;
* :mod:`mpc.dp.accountant` -- an RDP / zCDP accountant reporting epsilon for delta.
"""

from .accountant import (PrivacyAccountant, ddg_zcdp, epsilon_from_rdp,
                         gaussian_rdp, subsampled_gaussian_rdp, wor_subsampled_gaussian_rdp)
from .mechanisms import (DistributedDiscreteGaussian, GaussianMechanism, clip_by_l2_norm,
                         clip_rows_by_l2_norm)
from .sampling import (bernoulli_exp, discrete_gaussian, discrete_laplace, gaussian,
                       rational_variance, uniform01, uniform_below)

__all__ = [
    "DistributedDiscreteGaussian", "GaussianMechanism", "PrivacyAccountant",
    "bernoulli_exp", "clip_by_l2_norm", "clip_rows_by_l2_norm", "ddg_zcdp",
    "discrete_gaussian", "discrete_laplace", "epsilon_from_rdp", "gaussian", "gaussian_rdp",
    "rational_variance", "subsampled_gaussian_rdp", "uniform01", "uniform_below",
    "wor_subsampled_gaussian_rdp",
]
