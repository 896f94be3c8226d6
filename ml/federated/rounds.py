"""One round of federated training over clients of any framework (layer: ml).

:func:`run_round` samples the round's clients, has each one ``fit`` from the
global weights (through the client interface of :mod:`ml.clients`), turns the
results into uploads (clipping, compression or DP), sums them with the
aggregator, updates the global weights and has the server's evaluator score
them. The steps and their security are described in :mod:`ml.federated`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mpc.dp import PrivacyAccountant, clip_by_l2_norm
from mpc.errors import ParameterError, ProtocolAbort
from mpc.rand import PRG, derive_seed

from ..aggregators import AggregationResult
from ..clients.base import Client, check_weights, flatten, unflatten
from ..clients.numpy_model import permutation
from ..compression import ErrorFeedback
from .history import RoundMetrics
from .plan import Plan
from .privacy import client_uploads, server_average


@dataclass
class RunState:
    """What changes from round to round: the global weights and the clients' state."""

    weights: np.ndarray                      # the global model, flat float64
    shapes: list[tuple[int, ...]]            # its layout as the clients' weight lists
    clients: list[Client]
    evaluator: Client                        # the server's model on the held-out set
    accountant: PrivacyAccountant | None
    feedback: dict[int, ErrorFeedback] = field(default_factory=dict)
    unamplified: PrivacyAccountant | None = None   # the same rounds without sampling amplification

    def __post_init__(self) -> None:
        if self.accountant is not None and self.unamplified is None:
            self.unamplified = PrivacyAccountant()


def sample(plan: Plan, r: int) -> tuple[list[int], set[int]]:
    """Round ``r``'s sampled clients (sorted) and those that drop out, from the run's seed."""
    rprg = PRG(derive_seed(plan.master, "round", r))
    chosen = np.sort(permutation(rprg, plan.n_clients)[:plan.per_round])
    drops = {int(k) for k, u in zip(chosen, rprg.uint64(plan.per_round))
             if u < plan.settings.dropout * 2.0 ** 64}
    return [int(k) for k in chosen], drops


def select(plan: Plan, state: RunState, r: int) -> tuple[list[int], set[int]]:
    """Round ``r``'s clients by ``settings.selection`` (sorted) and those that drop out."""
    rprg = PRG(derive_seed(plan.master, "select", r))
    global_weights = unflatten(state.weights, state.shapes)

    def losses(ids: list[int]) -> dict[int, float]:
        out = {}
        for k in ids:                  # each candidate evaluates the global model on its own data
            state.clients[k].set_weights(global_weights)
            loss, _, _ = state.clients[k].evaluate({"round": r})
            out[k] = plan.settings.selection.report(loss, plan.noise_prg)
        return out

    chosen, _ = plan.settings.selection.select(plan.n_clients, plan.per_round, rprg, losses)
    drops = {int(k) for k, u in zip(chosen, rprg.uint64(len(chosen)))
             if u < plan.settings.dropout * 2.0 ** 64}
    return chosen, drops


def fit_config(plan: Plan, k: int, r: int) -> dict:
    """What client ``k`` is told in round ``r`` (its batch-order seed is its own)."""
    s = plan.settings
    return {"round": r, "local_epochs": s.local_epochs, "batch_size": s.batch_size, "lr": s.lr,
            "mu": s.mu, "seed": derive_seed(plan.master, f"client/{k}", r)}


def fit_client(plan: Plan, state: RunState, k: int, r: int) -> tuple[np.ndarray, int]:
    """Client ``k`` trains from the global weights; its update and example count."""
    return fit_update(state.clients[k], state.weights, state.shapes, fit_config(plan, k, r),
                      f"client {k} in round {r}", plan.cap if plan.check_counts else None)


def fit_update(client: Client, weights: np.ndarray, shapes: list[tuple[int, ...]], config: dict,
               what: str, cap: int | None) -> tuple[np.ndarray, int]:
    """``client`` trains from the flat global ``weights``; its update and example count.

    ``cap``: the largest example count allowed (None: not checked). Wherever the
    client runs (this process or a Ray actor), this is its whole step.
    """
    client.set_weights(unflatten(weights, shapes))
    fitted, n, _ = client.fit(config)
    check_weights(fitted, shapes, what)
    if cap is not None and not (isinstance(n, (int, np.integer)) and 1 <= n <= cap):
        raise ParameterError(f"{what} reported {n!r} examples, outside [1, weight_cap = {cap}]")
    return flatten(fitted) - weights, int(n)


Fits = dict[int, tuple[np.ndarray, int]]
"""``{client: (update, example count)}`` of one round's sampled clients."""

Fitter = Callable[[Plan, RunState, list[int], int], Fits]
"""Runs the sampled clients' ``fit`` elsewhere (Ray); a client missing from the result died."""


def local_updates(plan: Plan, state: RunState, chosen: list[int], drops: set[int], r: int,
                  fits: Fits | None = None) -> tuple[dict[int, np.ndarray], int, int]:
    """The sampled clients' uploads, and the compressed and dense bytes they would send.

    ``fits``: the clients' updates when they trained elsewhere (default: here, now).
    """
    s = plan.settings
    deltas: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    upload = dense = 0
    for k in chosen:
        delta, counts[k] = fits[k] if fits is not None else fit_client(plan, state, k, r)
        if s.dp is None:
            delta, _ = clip_by_l2_norm(delta, s.update_clip)
            if s.compression is not None:   # the sent vector keeps the clip bound
                fb = state.feedback.setdefault(k, ErrorFeedback(s.compression))
                msg, delta = fb.step(plan.noise_prg, delta, clip=s.update_clip,
                                     delivered=k not in drops)
                upload += msg.nbytes
                dense += msg.dense_bytes
        deltas[k] = delta
    return client_uploads(deltas, counts, plan.cap, s.dp, plan.ddg, plan.noise_prg), upload, dense


def aggregate(plan: Plan, vectors: dict[int, np.ndarray], chosen: list[int], drops: set[int]
              ) -> tuple[AggregationResult | None, str]:
    """The secure sum of the survivors, or None and why the round is skipped."""
    survivors = len(chosen) - len(drops)
    if plan.ddg is not None and survivors < plan.noisy_min:
        # Survivors are known once the masked inputs are in, before the sum is revealed.
        return None, (f"round skipped: {survivors} survivors, fewer than the "
                      f"{plan.noisy_min} the distributed noise is planned for")
    try:
        return plan.aggregator.aggregate(vectors, dropped=drops), ""
    except ProtocolAbort as exc:  # too few survivors: skip the round, keep training
        return None, f"round skipped: {exc}"


def evaluate(state: RunState, r: int) -> tuple[float, float]:
    """The server's held-out (loss, accuracy) of the global weights."""
    loss, _, metrics = state.evaluator.evaluate({"round": r})
    return float(loss), float(metrics.get("accuracy", float("nan")))


def apply_result(plan: Plan, state: RunState, res: AggregationResult | None) -> None:
    """Server update from a round's aggregate: ``w += server_lr * sum / count`` (DP applied)."""
    if res is None:
        return
    # amplification only for the uniform draw of m of n it is proved for
    rate = plan.per_round / plan.n_clients if plan.settings.selection is None else 1.0
    summed, count = server_average(res, plan.mech, plan.ddg, state.accountant, plan.noise_prg,
                                   rate, state.unamplified)
    if count > 0:
        state.weights = state.weights + plan.settings.server_lr * summed / count
        state.evaluator.set_weights(unflatten(state.weights, state.shapes))


def round_metrics(plan: Plan, state: RunState, r: int, res: AggregationResult | None, note: str,
                  t0: float, upload: int = 0, dense: int = 0) -> RoundMetrics:
    """Evaluate the global weights and record round ``r``."""
    s = plan.settings
    loss, acc = evaluate(state, r)
    eps = state.accountant.epsilon(s.dp.delta) if state.accountant is not None and s.dp else None
    eps_plain = state.unamplified.epsilon(s.dp.delta) if state.unamplified is not None and s.dp else None
    return RoundMetrics(
        round=r, loss=loss, accuracy=acc, sampled=plan.per_round,
        survivors=len(res.survivors) if res else 0,
        bytes_per_client=res.bytes_per_client if res else 0.0,
        seconds=time.perf_counter() - t0, server_seconds=res.server_seconds if res else 0.0,
        client_seconds=res.client_seconds if res else 0.0,
        epsilon=eps, epsilon_unamplified=eps_plain, skipped=res is None, note=note,
        upload_bytes=upload if s.compression else None,
        dense_bytes=dense if s.compression else None)


def run_round(plan: Plan, state: RunState, r: int, fitter: Fitter | None = None
              ) -> tuple[RoundMetrics, AggregationResult | None]:
    """Round ``r``: sample, fit, upload, aggregate, update the global weights, evaluate.

    With a ``fitter`` (``train(backend="ray")``) the clients train there; one
    whose worker died is a dropout (it uploads nothing; a zero stands in its
    place in the aggregator's input, as for any dropped client, and is not summed).
    """
    t0 = time.perf_counter()
    chosen, drops = sample(plan, r) if plan.settings.selection is None else select(plan, state, r)
    if not chosen:
        return round_metrics(plan, state, r, None, "round skipped: no client available", t0), None
    fits = None
    if fitter is not None:
        fits = fitter(plan, state, chosen, r)
        lost = set(chosen) - set(fits)
        drops = drops | lost
        fits.update({k: (np.zeros_like(state.weights), 1) for k in lost})
    vectors, upload, dense = local_updates(plan, state, chosen, drops, r, fits)
    res, note = aggregate(plan, vectors, chosen, drops)
    apply_result(plan, state, res)
    return round_metrics(plan, state, r, res, note, t0, upload, dense), res


__all__ = ["Fits", "Fitter", "RunState", "aggregate", "apply_result", "evaluate", "fit_client",
           "fit_config", "fit_update", "local_updates", "round_metrics", "run_round", "sample", "select"]
