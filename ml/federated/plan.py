"""Planning a federated run: validation, the aggregator, the DP plan, the seeds (layer: ml).

:func:`make_plan` checks every setting of :func:`ml.federated.train` and fixes
what does not change between rounds: the aggregator (set up for the update
size), the public weight cap, the DP mechanism and its noise randomness, the
master seed of sampling, batch order and dropouts, and the configuration
recorded in the :class:`~ml.federated.History`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from mpc.dp import DistributedDiscreteGaussian, GaussianMechanism
from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed, random_seed

from ..aggregators import Aggregator, make_aggregator
from ..compression import Compressor
from . import privacy
from .privacy import DPConfig


@dataclass(frozen=True)
class Settings:
    """The settings of a run, as :func:`ml.federated.train` takes them (see its docstring)."""

    rounds: int = 10
    clients_per_round: int | None = None
    local_epochs: int = 1
    batch_size: int = 32
    lr: float = 0.1
    server_lr: float = 1.0
    mu: float = 0.0
    dropout: float = 0.0
    dp: DPConfig | None = None
    compression: Compressor | None = None
    update_clip: float = 10.0
    weight_cap: int | None = None
    seed: int = 0
    selection: Any = None        # a selector of ml.federated.selection; None: uniform sampling


@dataclass
class Plan:
    """Everything fixed before round 1."""

    settings: Settings
    aggregator: Aggregator
    n_clients: int
    per_round: int                 # m, the clients sampled each round
    cap: int                       # public bound on a client's example count
    check_counts: bool             # whether fit's example counts weigh the updates
    master: bytes                  # seed of sampling, batch order and dropout simulation
    mech: GaussianMechanism | None
    ddg: DistributedDiscreteGaussian | None
    noisy_min: int                 # fewest survivors the distributed noise is planned for
    noise_prg: PRG
    config: dict[str, Any]


def _check_settings(s: Settings, n_clients: int) -> int:
    if s.rounds < 1 or s.local_epochs < 1 or s.batch_size < 1:
        raise ParameterError("rounds, local_epochs and batch_size must be at least 1")
    if not s.lr > 0 or not s.server_lr > 0 or s.mu < 0 or not 0 <= s.dropout < 1:
        raise ParameterError("need lr > 0, server_lr > 0, mu >= 0, 0 <= dropout < 1")
    if not n_clients:
        raise ParameterError("need at least one client")
    m = n_clients if s.clients_per_round is None else s.clients_per_round
    if not 1 <= m <= n_clients:
        raise ParameterError(f"clients_per_round must be in [1, {n_clients}]")
    return m


def _check_aggregator(s: Settings, agg: Aggregator, m: int) -> None:
    if m < agg.min_survivors:
        raise ParameterError(f"{agg.name} needs at least {agg.min_survivors} clients per round "
                             "(a sum of one client is that client's update)")
    if s.dp is not None and s.dp.mode == "distributed" and agg.name == "plaintext":
        raise ParameterError("distributed DP needs a secure aggregator: the plaintext server would "
                             "see each upload with only its client's share of the noise (use "
                             "aggregator='secagg+', or DPConfig('central'))")
    if s.compression is not None and agg.name != "plaintext":
        raise ParameterError("compression applies to plaintext uploads; secure aggregation "
                             "sums dense vectors (use the aggregator's own encoding)")
    if s.dp is not None and agg.name == "secagg-compressed" and getattr(agg, "bits", None) is not None:
        # stochastic rounding moves a clipped update by up to 2 clip / (2^bits - 1) per coordinate
        # (a zero update becomes +-clip at 1 bit): the sum's sensitivity is no longer dp.clip
        raise ParameterError("DP with quantized secure aggregation is not supported: the noise is "
                             "calibrated to the L2 clip, which quantization does not preserve (use "
                             "CompressedSecAggAggregator(bits=None), or no quantization)")
    if s.compression is not None and s.dp is not None:
        raise ParameterError("compression and DP together are not supported")


def weight_cap(s: Settings, sizes: Sequence[int | None]) -> int:
    """The public cap on example counts (p_k = n_k / cap), checked against the known counts.

    ``sizes[k]`` is None for a client that does not say how many examples it
    holds; then the cap must be given (unless DP weighs every client 1).
    """
    known = [n for n in sizes if n is not None]
    if known and min(known) < 1:
        raise ParameterError(f"every client needs at least one example (client "
                             f"{next(k for k, n in enumerate(sizes) if n is not None and n < 1)} has none)")
    if s.weight_cap is None and s.dp is None and len(known) < len(sizes):
        k = next(k for k, n in enumerate(sizes) if n is None)
        raise ParameterError(f"client {k} has no n_examples attribute, so the public weight cap "
                             "cannot be derived: give weight_cap")
    cap = s.weight_cap if s.weight_cap is not None else max(known, default=1)
    if known and cap < max(known):
        raise ParameterError("weight_cap is below a client's sample count")
    if s.dp is None and known and cap > 64 * max(known):
        warnings.warn(f"weight_cap {cap} is {cap // max(known)}x the largest client's count: every "
                      f"weighted update is that much smaller and loses about "
                      f"{math.log2(cap / max(known)):.0f} bits of the secure aggregators' fixed-point "
                      "precision; choose a cap close to the largest client", stacklevel=4)
    return cap


def make_plan(s: Settings, sizes: Sequence[int | None], dim: int,
              aggregator: str | Aggregator, aggregator_options: dict[str, Any] | None,
              label: str | None, *, keys: bool = True) -> Plan:
    """Validate the run and fix its aggregator, weight cap, DP mechanism and seeds.

    ``sizes`` are the clients' example counts (None where unknown), ``dim`` the
    number of model weights. ``keys=False`` (a deployed server or client) fixes the
    aggregator's parameters without making its keys (:meth:`Aggregator.configure`).
    """
    m = _check_settings(s, len(sizes))
    agg = make_aggregator(aggregator, **(aggregator_options or {}))
    _check_aggregator(s, agg, m)
    cap = weight_cap(s, sizes)
    master = derive_seed(b"concilium.ml.federated", "seed", int(s.seed) % (1 << 64))
    noisy_min = privacy.planned_survivors(m, s.dropout)
    mech, ddg, bound = privacy.dp_plan(s.dp, dim, noisy_min, s.rounds, s.update_clip)
    dp = s.dp
    noise_prg = PRG(dp.noise_seed if dp and dp.noise_seed else random_seed())
    # the weight entry is at most 1
    (agg.setup if keys else agg.configure)(len(sizes), dim + 1, max(bound, 1.0))
    agg.check_round_size(m)
    config = dict(aggregator=agg.name, rounds=s.rounds, clients=len(sizes), clients_per_round=m,
                  local_epochs=s.local_epochs, batch_size=s.batch_size, lr=s.lr,
                  server_lr=s.server_lr, mu=s.mu, dropout=s.dropout, seed=s.seed,
                  dp=None if dp is None else dp.mode,
                  noise_multiplier=None if dp is None else (mech.noise_multiplier if mech else
                                                            ddg.noise_multiplier),  # type: ignore[union-attr]
                  label=label or agg.name)
    return Plan(s, agg, len(sizes), m, cap, dp is None, master, mech, ddg, noisy_min,
                noise_prg, config)


__all__ = ["Plan", "Settings", "make_plan", "weight_cap"]
