"""Federated training with the clients on Ray: the same run as in one process."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ml.clients.numpy_model import NumpyClient
from ml.data import partition_iid, split_clients, standardize, train_test_split
from ml.federated import train
from ml.models import SoftmaxRegression
from mpc.backend import Ray


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    return split_clients(Xtr, ytr, partition_iid(len(ytr), 12, seed=0)), (Xte, yte)


def test_three_fedavg_rounds_identical_to_local(ray_cluster, digits):
    clients, test = digits
    kw = dict(rounds=3, clients_per_round=10, dropout=0.2, progress=False, seed=5)
    local = train(SoftmaxRegression(64, 10), clients, test, **kw)
    on_ray = train(SoftmaxRegression(64, 10), clients, test, backend=Ray(chunk=3), **kw)
    for a, b in zip(local.weights, on_ray.weights):
        assert a.tobytes() == b.tobytes()
    assert [r.survivors for r in on_ray.rounds] == [r.survivors for r in local.rounds]
    assert [r.loss for r in on_ray.rounds] == [r.loss for r in local.rounds]
    assert on_ray.memory["worker_mb"] > 0


class _Fragile(NumpyClient):
    """A client whose worker dies when it is asked to train in the second round."""

    def fit(self, config):
        if config["round"] == 2:
            os._exit(1)
        return super().fit(config)


def test_a_dying_worker_makes_its_clients_dropouts(ray_cluster, digits):
    data, test = digits
    clients = [NumpyClient(SoftmaxRegression(64, 10), d) for d in data]
    clients[11] = _Fragile(SoftmaxRegression(64, 10), data[11])   # in the last actor's block
    h = train(SoftmaxRegression(64, 10), clients, test, rounds=3, progress=False, seed=5,
              backend=Ray(cpus=2, actors=4))
    assert [r.survivors for r in h.rounds] == [12, 9, 9]   # actor 3 held clients 9, 10, 11
    assert not any(r.skipped for r in h.rounds)
    assert np.isfinite(h.rounds[-1].loss)


def test_personal_state_comes_back_from_the_actors(ray_cluster, digits):
    # Ditto's personal models are trained inside the actors; after the run the caller's client
    # objects must hold them, as after a local run (they used to be left untrained: None).
    from ml.federated import DittoClient, personal_accuracy
    data, test = digits
    runs = {}
    for backend in ("local", Ray(chunk=2)):
        clients = [DittoClient(SoftmaxRegression(64, 10), d, test, lam=0.5) for d in data[:4]]
        h = train(SoftmaxRegression(64, 10), clients, test, rounds=1, progress=False, seed=5,
                  backend=backend)
        runs["local" if backend == "local" else "ray"] = (clients, h)
    (local, hl), (remote, hr) = runs["local"], runs["ray"]
    for a, b in zip(local, remote):
        assert b.personal is not None and a.personal.tobytes() == b.personal.tobytes()
    assert personal_accuracy(remote, hr.weights).accuracy == personal_accuracy(local, hl.weights).accuracy
