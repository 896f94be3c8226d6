"""SecAgg+ communication graphs and parameter choice with failure bounds (layer: protocols).

In SecAgg+ [BBG+20] each client shares its keys with, and masks against, only
its neighbours in a random k-regular graph: a Harary graph H(n, k) (each node
joined to the k/2 nearest nodes on each side of a cycle) under a uniformly random
relabelling of the nodes. Every node's neighbourhood is then a uniformly random
k-subset of the other n - 1 nodes, which makes the failure events below exact
hypergeometric tails. SecAgg [BIK+17] is the complete graph (k = n - 1).

Failure bounds (union bounds over the nodes), for n clients of which at most
``gamma n`` are corrupted (colluding with the server) and at most ``delta n``
drop out; ``t`` is the Shamir threshold among the k + 1 shareholders (the
neighbours and the node itself):

* privacy, corrupted neighbours: an honest node with t or more corrupted
  neighbours could have both its secrets reconstructed by the adversary alone;
  ``n * P[Hyp(n-1, gamma n, k) >= t]``;
* privacy, disconnection: if the honest surviving clients split into two
  components, the server learns each component's sum. In the relabelled
  Harary graph that needs two disjoint runs of k/2 consecutive "bad" (corrupted
  or dropped) nodes on the cycle: ``<= n^2 prod_{i<k} (B - i)/(n - i)`` with
  B = (gamma + delta) n;
* correctness: a node whose surviving shareholders number fewer than t cannot
  be unmasked; ``n * P[Hyp(n-1, delta n, k) >= k - t + 2]`` for a live node
  (``Hyp(n-1, delta n - 1, k) >= k - t + 1`` for a dropped one, the larger counts).

:func:`choose` takes the smallest even k (and the largest t) meeting
``privacy <= 2^-sigma`` and ``correctness <= 2^-eta`` with t a strict majority
of the k + 1 shareholders (2t > k + 1, the rule that stops a server splitting
the survivor list, :func:`protocols.secagg.config.check_majority`); when none
exists below n - 1 it returns the complete graph, where the bounds are exact
(0 or 1). Since t is already the largest the correctness bound allows, a k
whose t is no majority is passed over for a larger k rather than given a
larger t: the majority rule costs neighbours, not dropout tolerance.

References
----------
[BIK+17] K. Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving
Machine Learning", CCS 2017.
[BBG+20] J. Bell, K. Bonawitz, A. Gascon, T. Lepoint, M. Raykova, "Secure
Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS 2020.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mpc.errors import ParameterError
from mpc.rand import PRG


@dataclass(frozen=True)
class Graph:
    """Who is paired with whom: ``table`` (n, k) of neighbour ids, or None for complete."""

    n: int
    table: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        return self.table is None

    @property
    def degree(self) -> int:
        return self.n - 1 if self.table is None else int(self.table.shape[1])

    def neighbours(self, u: int) -> np.ndarray:
        """Sorted neighbour ids of client ``u`` (never ``u`` itself)."""
        if self.table is None:
            ids = np.arange(self.n, dtype=np.int64)
            return ids[ids != u]
        return self.table[u]

    def holders(self, u: int) -> np.ndarray:
        """Shareholders of client ``u``: its neighbours and itself, sorted."""
        return np.sort(np.append(self.neighbours(u), np.int64(u)))


def harary(n: int, k: int, prg: PRG) -> Graph:
    """A k-regular Harary graph on n nodes under a random relabelling (k even, or k >= n - 1)."""
    if n < 2:
        raise ParameterError(f"a graph needs at least 2 nodes, got {n}")
    if k >= n - 1:
        return Graph(n)
    if k < 2 or k % 2:
        raise ParameterError(f"the degree k must be even and at least 2, got {k}")
    perm = np.argsort(prg.uint64(n), kind="stable").astype(np.int64)  # cycle position -> node
    offsets = np.concatenate([np.arange(1, k // 2 + 1), -np.arange(1, k // 2 + 1)])
    pos = np.arange(n).reshape(-1, 1)
    table = np.empty((n, k), dtype=np.int64)
    table[perm] = np.sort(perm[(pos + offsets) % n], axis=1)
    return Graph(n, table)


def _log_comb(a: int, b: int) -> float:
    if b < 0 or b > a:
        return -math.inf
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


def hypergeom_sf(population: int, successes: int, draws: int, at_least: int) -> float:
    """P[X >= at_least] for X ~ Hypergeometric(population, successes, draws)."""
    successes = max(0, min(successes, population))
    lo = max(at_least, 0, draws - (population - successes))
    hi = min(draws, successes)
    if lo > hi:
        return 0.0
    total = _log_comb(population, draws)
    terms = [_log_comb(successes, i) + _log_comb(population - successes, draws - i) - total
             for i in range(lo, hi + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(x - top) for x in terms))


@dataclass(frozen=True)
class GraphChoice:
    """A (k, t) choice and its failure probabilities (union bounds)."""

    n: int
    k: int
    threshold: int
    privacy_failure: float
    correctness_failure: float


def counts(n: int, dropout: float, corruption: float) -> tuple[int, int]:
    """(dropped, corrupt): the client counts the fractions bound, ``ceil`` and ``floor``
    of ``fraction * n`` up to float rounding (``7/25 * 25`` is 7, not 8)."""
    return math.ceil(dropout * n - 1e-9), math.floor(corruption * n + 1e-9)


def failure_bounds(n: int, k: int, t: int, dropout: float, corruption: float) -> tuple[float, float]:
    """(privacy, correctness) failure probability bounds for degree k and threshold t."""
    k = min(k, n - 1)
    dropped, corrupt = counts(n, dropout, corruption)
    privacy = min(1.0, n * hypergeom_sf(n - 1, corrupt, k, t))
    bad = corrupt + dropped
    if k < n - 1 and 2 * (k // 2) <= bad:
        log_run = sum(math.log((bad - i) / (n - i)) for i in range(2 * (k // 2)))
        privacy = min(1.0, privacy + math.exp(2 * math.log(n) + log_run))
    # a dropped node keeps k - X live holders (X ~ Hyp(n-1, D-1, k)); a live one k + 1 - X.
    # (Without dropouts there is no dropped node: only the second term applies.)
    live = hypergeom_sf(n - 1, dropped, k, k - t + 2)
    gone = hypergeom_sf(n - 1, dropped - 1, k, k - t + 1) if dropped else 0.0
    correctness = min(1.0, n * max(gone, live))
    return privacy, correctness


def best_threshold(n: int, k: int, dropout: float, corruption: float,
                   sigma: int = 40, eta: int = 20) -> GraphChoice | None:
    """Largest t meeting the correctness bound, if it also meets the privacy bound and
    is a strict majority of the k + 1 shareholders."""
    lo, hi = 1, k + 1
    if failure_bounds(n, k, lo, dropout, corruption)[1] > 2.0 ** -eta:
        return None
    while lo < hi:  # correctness failure grows with t: binary search its last good t
        mid = (lo + hi + 1) // 2
        if failure_bounds(n, k, mid, dropout, corruption)[1] <= 2.0 ** -eta:
            lo = mid
        else:
            hi = mid - 1
    privacy, correctness = failure_bounds(n, k, lo, dropout, corruption)
    k = min(k, n - 1)
    if privacy > 2.0 ** -sigma or lo < 2 or 2 * lo <= k + 1:
        return None
    return GraphChoice(n, k, lo, privacy, correctness)


def choose(n: int, dropout: float, corruption: float, *, sigma: int = 40, eta: int = 20,
           complete: bool = False) -> GraphChoice:
    """Choose degree k and threshold t for n clients, a dropout and a corruption fraction.

    Parameters
    ----------
    n:
        Number of clients.
    dropout:
        Bound on the fraction of clients that drop out over the whole protocol.
    corruption:
        Bound on the fraction of clients colluding with the server.
    sigma, eta:
        Targets: privacy failure <= 2^-sigma, correctness failure <= 2^-eta.
    complete:
        Force the complete graph (SecAgg).

    Raises
    ------
    ParameterError
        No threshold tolerates the dropouts while exceeding the corruption bound
        and half the shareholders.
    """
    if n < 2:
        raise ParameterError(f"secure aggregation needs at least 2 clients, got {n}")
    if not 0 <= dropout < 1 or not 0 <= corruption < 1:
        raise ParameterError("dropout and corruption must be fractions in [0, 1)")
    if not complete:
        k = 2
        while k < n - 1:
            found = best_threshold(n, k, dropout, corruption, sigma, eta)
            if found is not None:
                return found
            k += 2 if k < 64 else max(2, (k // 16) * 2)
    found = best_threshold(n, n - 1, dropout, corruption, sigma, eta)
    if found is None:
        dropped, corrupt = counts(n, dropout, corruption)
        raise ParameterError(
            f"no Shamir threshold for n = {n} clients tolerates a dropout of {dropout:.0%} "
            f"while exceeding the {corruption:.0%} corruption bound and half the clients (need "
            f"{corrupt} < t <= {n - dropped}, t >= 2 and 2t > {n})")
    return found
