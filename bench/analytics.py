"""Federated analytics: private histograms over SecAgg+, against the plaintext count.

Name: ``histogram`` (params clients, buckets, dropout, epsilon). ``seconds`` is
the wall time of the whole query in one process (every client's encoding and
noise, the four SecAgg+ rounds, the server's unmasking); ``baseline_seconds``
the plaintext ``numpy.bincount`` of the same values. Extra fields:
``l1_error`` (noisy vs true histogram of the survivors), ``noise_std``,
``server_seconds``, ``client_seconds`` (mean per client) and
``bytes_per_client`` (sent plus received).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.common import median_time, record
from protocols import analytics


def bench_histogram(quick: bool = False) -> list[dict[str, Any]]:
    """Private histograms over SecAgg+, 100 and 1000 clients: time, L1 error, bytes vs bincount."""
    grid = [(50, 20, 0.0, 1.0), (50, 20, 0.2, None)] if quick else [
        (100, 20, 0.0, 1.0), (100, 1000, 0.2, 1.0), (1000, 20, 0.0, 1.0),
        (1000, 20, 0.2, 1.0), (1000, 1000, 0.2, 1.0), (1000, 100, 0.2, None)]
    rng = np.random.default_rng(0)
    out = []
    for clients, buckets, dropout, epsilon in grid:
        values = np.minimum(rng.geometric(4.0 / buckets, size=clients) - 1, buckets - 1)
        dropped = rng.choice(clients, size=int(dropout * clients), replace=False)
        alive = np.setdiff1d(np.arange(clients), dropped)
        t0 = time.perf_counter()
        res = analytics.histogram(values, buckets, epsilon=epsilon, dropped=dropped)
        seconds = time.perf_counter() - t0
        base, _, true = median_time(lambda: np.bincount(values[alive], minlength=buckets), 5)
        c = res.cost
        out.append(record("histogram", {"clients": clients, "buckets": buckets,
                                         "dropout": dropout, "epsilon": epsilon},
                          seconds, base, c.bytes_per_client, c.rounds,
                          l1_error=float(np.abs(res.value - true).sum()),
                          noise_std=res.noise_std, server_seconds=c.server_seconds,
                          client_seconds=c.client_seconds, bytes_per_client=c.bytes_per_client))
    return out


BENCHMARKS = {"analytics": bench_histogram}
