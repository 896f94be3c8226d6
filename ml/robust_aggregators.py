"""Byzantine-robust aggregators: coordinate-wise median, trimmed mean, Krum and multi-Krum (layer: ml).

A robust aggregator reads every client's update (they are plaintext
aggregators: no privacy against the server) and replaces the mean by an
estimate that a minority of malicious clients cannot drag arbitrarily far:

=================  ============================================================
``median``         coordinate-wise median (Yin et al., ICML 2018)
``trimmed_mean``   per coordinate, drop the ``trim`` fraction of largest and of
                   smallest values, average the rest (Yin et al. 2018)
``krum``           the update with the smallest sum of squared distances to
                   its n - f - 2 nearest others (Blanchard et al., NeurIPS 2017)
``multi_krum``     the mean of the ``m`` updates with the best Krum scores
=================  ============================================================

Under secure aggregation the server cannot read updates, so none of these
applies; :mod:`ml.twoserver_aggregator` bounds each update's L2 norm in MPC
between two servers instead.

The federated loop sends ``[w_k delta_k, w_k]`` and divides the sum's first
entries by its last. These aggregators estimate from the clients' updates
``delta_k`` (the weights w_k are divided out: robust statistics are
unweighted, since a malicious client could claim any count) and return
``total = s * [estimate, 1]`` with ``s`` the number of survivors, so the
loop's division yields the estimate.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Iterable

import numpy as np

from mpc.errors import ParameterError, ProtocolAbort

from .aggregators import AggregationResult, Aggregator, ServerMessage


def coordinate_median(updates: np.ndarray) -> np.ndarray:
    """Coordinate-wise median of the rows of ``updates`` (n, d)."""
    return np.median(updates, axis=0)


def trimmed_mean(updates: np.ndarray, trim: float) -> np.ndarray:
    """Per coordinate, the mean without the ``floor(trim n)`` largest and smallest values."""
    n = updates.shape[0]
    k = math.floor(trim * n)
    if not 0 <= trim < 0.5 or n - 2 * k < 1:
        raise ParameterError(f"trim must be in [0, 0.5) and leave a value; got {trim} for {n} updates")
    ordered = np.sort(updates, axis=0)
    return ordered[k:n - k].mean(axis=0)


def krum_scores(updates: np.ndarray, f: int) -> np.ndarray:
    """Krum score of each row: the sum of squared distances to its n - f - 2 nearest other rows."""
    n = updates.shape[0]
    if not 0 <= f or n - f - 2 < 1:
        raise ParameterError(f"Krum needs n - f - 2 >= 1 (n={n}, f={f})")
    sq = np.sum(updates * updates, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * updates @ updates.T, 0.0)
    np.fill_diagonal(d2, np.inf)                      # a row is not its own neighbour
    nearest = np.sort(d2, axis=1)[:, :n - f - 2]
    return nearest.sum(axis=1)


def multi_krum(updates: np.ndarray, f: int, m: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the ``m`` rows with the lowest Krum scores (``m = 1``: Krum), and their indices."""
    if not 1 <= m <= updates.shape[0]:
        raise ParameterError(f"multi-Krum selects 1 to {updates.shape[0]} updates, got m={m}")
    chosen = np.argsort(krum_scores(updates, f), kind="stable")[:m]
    return updates[chosen].mean(axis=0), chosen


class RobustAggregator(Aggregator):
    """Plaintext aggregator with a robust estimate instead of the mean (see the module docstring).

    Parameters
    ----------
    rule:
        ``"median"``, ``"trimmed_mean"``, ``"krum"`` or ``"multi_krum"``.
    trim:
        Trimmed mean: fraction cut from each end per coordinate (0.1).
    byzantine:
        Krum: the number f of malicious clients tolerated per round; by default
        ``floor((n - 3) / 2)`` of the round's n survivors, the most Krum allows
        (it needs n >= 2 f + 3).
    multi:
        Multi-Krum: how many best-scored updates to average (default n - f).

    Security
    --------
    None against the server, which reads every update (as ``plaintext``);
    robustness against a minority of malicious clients sending any update.

    Cost
    ----
    One round, as plaintext: 8 d bytes up and down per client. Server: O(n d log n)
    (median, trimmed mean) or O(n^2 d) (Krum).
    """

    RULES = ("median", "trimmed_mean", "krum", "multi_krum")

    def __init__(self, rule: str = "median", trim: float = 0.1, byzantine: int | None = None,
                 multi: int | None = None) -> None:
        super().__init__()
        if rule not in self.RULES:
            raise ParameterError(f"unknown robust rule {rule!r}: choose one of {', '.join(self.RULES)}")
        if not 0 <= trim < 0.5:
            raise ParameterError(f"trim must be in [0, 0.5), got {trim}")
        if byzantine is not None and not byzantine >= 0:
            raise ParameterError(f"byzantine must be a number of clients >= 0, got {byzantine}")
        if multi is not None and not multi >= 1:
            raise ParameterError(f"multi-Krum averages at least one update, got multi={multi}")
        self.rule, self.trim, self.byzantine, self.multi = rule, trim, byzantine, multi
        self.name = rule
        self.min_survivors = 3 if rule in ("krum", "multi_krum") else 1

    def estimate(self, updates: np.ndarray) -> tuple[np.ndarray, list[int] | None]:
        """The robust estimate from the updates (rows), and for Krum the rows it chose."""
        if self.rule == "median":
            return coordinate_median(updates), None
        if self.rule == "trimmed_mean":
            if self.trim > 0 and math.floor(self.trim * updates.shape[0]) == 0:
                warnings.warn(f"trimmed mean: trim {self.trim:g} of {updates.shape[0]} updates drops no "
                              f"value (floor(trim n) = 0), so this round is a plain mean; use trim >= "
                              f"1/{updates.shape[0]} to drop the extremes", RuntimeWarning, stacklevel=2)
            return trimmed_mean(updates, self.trim), None
        n = updates.shape[0]
        f = (n - 3) // 2 if self.byzantine is None else self.byzantine
        m = 1 if self.rule == "krum" else (self.multi or n - f)
        est, chosen = multi_krum(updates, f, min(m, n))
        return est, sorted(int(c) for c in chosen)

    def aggregate(self, vectors: dict[int, np.ndarray],
                  dropped: Iterable[int] = ()) -> AggregationResult:
        ids, drop, vecs = self._check(vectors, dropped)
        survivors = [i for i in ids if i not in drop]
        if len(survivors) < self.min_survivors:
            raise ProtocolAbort(f"{self.name}: {len(survivors)} survivors, needs {self.min_survivors}")
        t0 = time.perf_counter()
        weights = np.array([vecs[i][-1] for i in survivors])
        if np.any(weights <= 0):
            raise ParameterError(f"{self.name}: every client's weight entry must be positive")
        updates = np.stack([vecs[i][:-1] for i in survivors]) / weights[:, None]
        est, chosen = self.estimate(updates)
        s = float(len(survivors))
        total = np.concatenate([s * est, [s]])
        secs = time.perf_counter() - t0
        transcript = [ServerMessage(i, "update", vecs[i].copy(), vecs[i].nbytes) for i in survivors]
        state = {"received": {m.sender: m.payload for m in transcript}, "total": total}
        if chosen is not None:
            state["krum_selected"] = [survivors[c] for c in chosen]
        return AggregationResult(total, survivors, bytes_per_client=2.0 * 8 * self.dim,
                                 server_seconds=secs, client_seconds=0.0, transcript=transcript,
                                 server_state=state)


__all__ = ["RobustAggregator", "ScaledUpdateClient", "coordinate_median", "krum_scores", "multi_krum", "trimmed_mean"]


class ScaledUpdateClient:
    """A model-poisoning client for experiments: trains honestly, then sends ``scale`` times its update.

    Wraps any client (:class:`~ml.clients.Client` methods); with ``scale = -10``
    its update points the other way, ten times as long (the "scaled update"
    attack of Bhagoji et al. 2019 / Bagdasaryan et al. 2020, in its simplest form).
    """

    def __init__(self, client: object, scale: float = -10.0) -> None:
        self.client, self.scale = client, float(scale)
        self.n_examples = getattr(client, "n_examples", None)
        self._global: list[np.ndarray] | None = None

    def get_weights(self) -> list[np.ndarray]:
        return self.client.get_weights()  # type: ignore[attr-defined]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self._global = [np.array(w, dtype=np.float64) for w in weights]
        self.client.set_weights(weights)  # type: ignore[attr-defined]

    def fit(self, config: dict) -> tuple[list[np.ndarray], int, dict[str, float]]:
        weights, n, metrics = self.client.fit(config)  # type: ignore[attr-defined]
        if self._global is None:
            raise ParameterError("ScaledUpdateClient: set_weights must come before fit")
        return [g + self.scale * (np.asarray(w) - g) for w, g in zip(weights, self._global)], n, metrics

    def evaluate(self, config: dict) -> tuple[float, int, dict[str, float]]:
        return self.client.evaluate(config)  # type: ignore[attr-defined]
