"""Client selection beyond uniform sampling: availability-aware and power-of-choice (layer: ml).

``train(..., selection=...)`` replaces the uniform draw of ``clients_per_round``
clients:

* :class:`AvailabilitySampler`: client k is online in a round with
  probability ``availability[k]`` (simulated from the run's seed); the round
  samples its m clients uniformly among those online (all of them if fewer),
  as a deployment can only pick devices that are charging and on Wi-Fi.
* :class:`PowerOfChoice` (Cho, Wang, Joshi, AISTATS 2022 / arXiv 2020): draw
  ``candidates`` d >= m clients uniformly, each reports its loss on the current
  global model over its own data, the server keeps the m with the highest
  loss (biasing towards clients the model serves worst, which speeds
  convergence on heterogeneous data).

What the server learns from power-of-choice: every candidate's local loss on
the current model, each round it is a candidate: a function of the client's
data (how well the global model fits it, hence something of its label mix
and of whether its examples resemble the training data). With
``loss_epsilon`` each candidate clips its loss to ``[0, loss_bound]`` and adds
discrete Laplace noise of scale ``loss_bound / loss_epsilon`` (in units of
``1e-3``, Canonne, Kamath, Steinke 2020's exact sampler) before reporting:
each report is ``loss_epsilon``-local-DP, and the reports of a client compose
over the rounds it is a candidate (k reports: ``k loss_epsilon``). This
budget is separate from the model's :class:`~ml.federated.DPConfig` epsilon.

A non-uniform selection forfeits the amplification by sampling in the
model's DP accounting: with a selection, the reported ``epsilon`` equals
``epsilon_unamplified``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from mpc.dp import discrete_laplace
from mpc.errors import ParameterError
from mpc.rand import PRG

from ..clients.numpy_model import permutation

LOSS_UNIT = 1e-3
"""Resolution of a reported loss under DP (the discrete Laplace noise is in these units)."""


class AvailabilitySampler:
    """Uniform among the clients online this round; client k is online with ``availability[k]``."""

    name = "availability"

    def __init__(self, availability: Sequence[float]) -> None:
        p = np.asarray(availability, dtype=np.float64)
        if p.ndim != 1 or p.size == 0 or np.any(~(p >= 0) | (p > 1)):
            raise ParameterError("availability must be one probability in [0, 1] per client")
        self.availability = p

    def select(self, n: int, m: int, prg: PRG,
               losses: Callable[[list[int]], dict[int, float]]) -> tuple[list[int], dict]:
        if self.availability.size != n:
            raise ParameterError(f"availability has {self.availability.size} entries for {n} clients")
        online = np.flatnonzero(prg.uint64(n) < self.availability * 2.0 ** 64)
        chosen = online[permutation(prg, online.size)[:m]] if online.size else online
        return sorted(int(k) for k in chosen), {"online": int(online.size)}


class PowerOfChoice:
    """Draw ``candidates`` clients uniformly, keep the m with the highest reported loss.

    Parameters
    ----------
    candidates:
        d, the clients asked for their loss each round (d >= clients_per_round).
    loss_epsilon:
        If given, each candidate reports its loss clipped to ``[0, loss_bound]``
        plus discrete Laplace noise: ``loss_epsilon``-local-DP per report.
    loss_bound:
        Clipping bound of a reported loss under DP.
    """

    name = "power-of-choice"

    def __init__(self, candidates: int, loss_epsilon: float | None = None,
                 loss_bound: float = 5.0) -> None:
        if candidates < 1:
            raise ParameterError("power-of-choice needs at least one candidate")
        if loss_epsilon is not None and not (loss_epsilon > 0 and math.isfinite(loss_epsilon)):
            raise ParameterError(f"loss_epsilon must be positive and finite, got {loss_epsilon!r}")
        if not loss_bound > 0:
            raise ParameterError("loss_bound must be positive")
        self.candidates, self.loss_epsilon, self.loss_bound = candidates, loss_epsilon, loss_bound

    def report(self, loss: float, noise_prg: PRG) -> float:
        """What a candidate sends: its loss, or with DP its clipped loss plus discrete Laplace noise."""
        if self.loss_epsilon is None:
            return float(loss)
        units = round(min(max(float(loss), 0.0), self.loss_bound) / LOSS_UNIT)
        return (units + int(discrete_laplace(noise_prg, self.noise_scale, 1)[0])) * LOSS_UNIT

    @property
    def noise_scale(self) -> int:
        """The discrete Laplace scale: the reports' range in units (the bound *after* rounding,
        which may exceed ``loss_bound / LOSS_UNIT`` by 1/2) over ``loss_epsilon``."""
        assert self.loss_epsilon is not None
        return max(1, math.ceil(round(self.loss_bound / LOSS_UNIT) / self.loss_epsilon))

    def select(self, n: int, m: int, prg: PRG,
               losses: Callable[[list[int]], dict[int, float]]) -> tuple[list[int], dict]:
        if not m <= self.candidates <= n:
            raise ParameterError(f"power-of-choice needs clients_per_round ({m}) <= candidates "
                                 f"({self.candidates}) <= clients ({n})")
        cand = sorted(int(k) for k in permutation(prg, n)[:self.candidates])
        reported = losses(cand)
        ranked = sorted(cand, key=lambda k: (-reported[k], k))     # ties: lower id first
        return sorted(ranked[:m]), {"reported_losses": reported}


__all__ = ["AvailabilitySampler", "LOSS_UNIT", "PowerOfChoice"]
