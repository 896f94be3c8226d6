"""Federated training with the clients on Ray: each actor hosts a block of clients and runs their ``fit`` (layer: ml).

:class:`RayFitter` is the ``fitter`` of :func:`.rounds.run_round` behind
``train(backend="ray")``: the clients are moved once into Ray actors (one per
CPU, contiguous blocks of client indices), where they stay with their data and
state for the whole run; every round the driver puts the global weights in the
object store once and asks each actor for the updates of its sampled clients,
chunk by chunk. Everything after local training (clipping, compression, DP
noise, the secure sum, the server update) runs in the driver exactly as with
the local backend, so the run is the same for the same seed. A worker that
dies makes its clients dropouts from then on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mpc.backend import Pool, Ray, chunks, connect, peak_mb

from ..clients.base import Client
from .plan import Plan
from .rounds import Fits, RunState, fit_config, fit_update


class ClientHost:
    """The clients of one block, kept inside one Ray actor for the whole run."""

    def __init__(self, clients: dict[int, Client]) -> None:
        self.clients = clients

    def fit(self, weights: np.ndarray, shapes: list[tuple[int, ...]],
            jobs: list[tuple[int, dict]], round: int, cap: int | None) -> Fits:
        """Train the clients of ``jobs`` (``(client, fit config)``) from ``weights``."""
        return {k: fit_update(self.clients[k], weights, shapes, config,
                              f"client {k} in round {round}", cap) for k, config in jobs}

    def state(self) -> dict[int, dict]:
        """The clients' attributes (their trained state: a FedPer head, a Ditto model, ...)."""
        return {k: vars(c) for k, c in self.clients.items()}

    def peak_mb(self) -> float:
        """The actor's peak resident memory in MB."""
        return peak_mb()


class RayFitter:
    """Trains each round's sampled clients in Ray actors (a :data:`.rounds.Fitter`)."""

    def __init__(self, options: Ray, clients: Sequence[Client]) -> None:
        self.options = options
        self._ray, actors, each = connect(options, "ml.federated.train(backend='ray')")
        n = len(clients)
        self.blocks = [b.tolist() for b in np.array_split(np.arange(n), min(actors, n)) if b.size]
        self.owner = {k: a for a, block in enumerate(self.blocks) for k in block}
        self.pool = Pool(self._ray, ClientHost,
                         [({k: clients[k] for k in block},) for block in self.blocks], each)

    def __call__(self, plan: Plan, state: RunState, chosen: list[int], r: int) -> Fits:
        weights = self._ray.put(state.weights)
        cap = plan.cap if plan.check_counts else None
        calls = []
        for a in range(len(self.blocks)):
            mine = [k for k in chosen if self.owner[k] == a]
            for part in chunks(mine, self.options.chunk):
                jobs = [(k, fit_config(plan, k, r)) for k in part]
                calls.append((a, "fit", (weights, state.shapes, jobs, r, cap)))
        fits: Fits = {}
        for _, _, result in self.pool.run(calls):
            if result is not None:
                fits.update(result)
        return fits

    def peak_mb(self) -> float:
        """The largest peak resident memory of the live actors, in MB."""
        live = [(a, "peak_mb", ()) for a in range(len(self.blocks)) if a not in self.pool.dead]
        return max((r for _, _, r in self.pool.run(live) if r is not None), default=0.0)

    def sync(self, clients: Sequence[Client]) -> None:
        """Copy the clients' state back from the live actors into ``clients`` (the driver's
        objects), as the local backend leaves it; the clients of a dead worker keep theirs."""
        live = [(a, "state", ()) for a in range(len(self.blocks)) if a not in self.pool.dead]
        for _, _, result in self.pool.run(live):
            for k, attrs in (result or {}).items():
                vars(clients[k]).update(attrs)

    def close(self) -> None:
        self.pool.close()


__all__ = ["ClientHost", "RayFitter"]
