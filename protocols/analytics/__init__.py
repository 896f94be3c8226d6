"""Federated analytics: questions answered from data that never leaves the devices (layer: protocols).

Each device computes its contribution locally; only a secure sum of all of
them (SecAgg / SecAgg+, dropout-tolerant) reaches the analyst, made
differentially private by discrete Gaussian noise that the devices add
themselves (distributed DP). Every query returns the answer, its privacy cost
(epsilon at delta, noise std) and its protocol cost (rounds, bytes per client,
server and client seconds).

Quick start::

    from protocols import analytics

    res = analytics.histogram(bucket_of_each_device, buckets=20, epsilon=1.0)
    res.value, res.epsilon, res.noise_std, res.cost.bytes_per_client

    top = analytics.heavy_hitters(app_name_of_each_device, k=5, epsilon=1.0)

Threat model: honest-but-curious server and at most 10% colluding clients
(the secure sum's corruption bound); up to 30% of the clients may drop out of
each query. The noise is calibrated for the fewest survivors the secure sum
accepts, so the guarantee holds whoever drops. Clients colluding with the
server can remove their own noise share: the guarantee counts honest clients.
"""

from .heavy_hitters import heavy_hitters
from .privacy import NoisePlan, calibrate, per_query_epsilon, ring_bits
from .queries import QueryCost, QueryResult, count, histogram, mean, sum
from .secure_sum import DROPOUT_BOUND, SumOutcome, min_noisy_clients, secure_sum

__all__ = [
    "DROPOUT_BOUND", "NoisePlan", "QueryCost", "QueryResult", "SumOutcome", "calibrate",
    "count", "heavy_hitters", "histogram", "mean", "per_query_epsilon", "ring_bits", "secure_sum", "sum",
    "min_noisy_clients",
]
