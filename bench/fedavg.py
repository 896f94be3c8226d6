"""Federated averaging with each aggregator against plaintext FedAvg, 10 and 100 clients.

Name: ``fedavg``. Task: scikit-learn's digits (10 classes, 8x8 pixels), softmax
regression (650 parameters, 651 summed entries with the weight), IID split over
the clients, every client in every round, one local epoch, same seed for every
aggregator. Per aggregator and client count one record:

* ``seconds``: median wall time of one round (all clients' local training, the
  aggregation's client and server work, the model update), one process;
* ``baseline_seconds``: the same for plaintext FedAvg in the same run;
* ``bytes_per_party`` = ``bytes_per_client``: what one client sent and received
  for the aggregation in a round (mean over rounds);
* ``server_seconds`` / ``client_seconds``: the aggregation alone (server role,
  one client's role);
* ``accuracy`` and ``accuracy_gap`` (points against plaintext) after the rounds.

Aggregators whose module is missing are reported with ``seconds: null`` and a
``note``, not dropped silently.
"""

from __future__ import annotations

import statistics

import numpy as np
from sklearn.datasets import load_digits

from bench.common import record
from ml.aggregators import AGGREGATORS, make_aggregator
from ml.data import partition_iid, split_clients, standardize, train_test_split
from ml.federated import History, train
from ml.models import SoftmaxRegression


def _task(n_clients: int):
    X, y = load_digits(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    return split_clients(Xtr, ytr, partition_iid(ytr.size, n_clients, seed=0)), (Xte, yte)


def _run(aggregator: str, clients, test, rounds: int) -> History:
    model = SoftmaxRegression(test[0].shape[1], 10)
    return train(model, clients, test, aggregator=aggregator, rounds=rounds, local_epochs=1,
                 batch_size=16, lr=0.1, seed=11, progress=False)


def _available(name: str) -> str | None:
    try:
        make_aggregator(name)
    except (ImportError, ModuleNotFoundError) as exc:
        return f"not available: {exc}"
    return None


def bench_fedavg(quick: bool) -> list[dict]:
    """One FedAvg round on digits per aggregator, 10 and 100 clients: seconds and bytes vs plaintext."""
    rounds = 2 if quick else 4
    out = []
    for n in (10,) if quick else (10, 100):
        clients, test = _task(n)
        plain = _run("plaintext", clients, test, rounds)
        base = statistics.median(r.seconds for r in plain.rounds)
        for name in AGGREGATORS:
            params = {"aggregator": name, "clients": n, "rounds": rounds,
                      "dim": int(test[0].shape[1] * 10 + 10 + 1)}
            missing = _available(name)
            if missing:
                out.append(record("fedavg", params, None, base, note=missing))
                continue
            h = plain if name == "plaintext" else _run(name, clients, test, rounds)
            per_client = float(np.mean([r.bytes_per_client for r in h.rounds]))
            out.append(record(
                "fedavg", params, statistics.median(r.seconds for r in h.rounds), base,
                bytes_per_party=per_client, rounds=None,
                accuracy=h.final_accuracy,
                accuracy_gap=100 * (h.final_accuracy - plain.final_accuracy),
                bytes_per_client=per_client,
                server_seconds=statistics.median(r.server_seconds for r in h.rounds),
                client_seconds=statistics.median(r.client_seconds for r in h.rounds)))
    return out


BENCHMARKS = {"fedavg": bench_fedavg}
