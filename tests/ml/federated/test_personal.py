"""Personalization (ml.federated.personal): FedPer keeps its head local, Ditto's update and
global trajectory, per-client metrics."""

from __future__ import annotations

import numpy as np
import pytest

from ml.clients import NumpyClient
from ml.federated import DittoClient, FedPerClient, personal_accuracy, train
from ml.federated.personal import global_accuracy, split_local
from ml.models import MLP, SoftmaxRegression
from mpc.errors import ParameterError


@pytest.fixture(scope="module")
def task():
    """Four clients, each with mostly two of four classes (non-IID), and a local test set."""
    rng = np.random.default_rng(3)
    centers = rng.normal(0, 2.5, (4, 5))
    data = []
    for k in range(4):
        y = np.where(rng.random(80) < 0.9, rng.choice([k, (k + 1) % 4], 80), rng.integers(0, 4, 80))
        data.append((centers[y] + rng.normal(0, 2.0, (80, 5)), y))
    trains, tests = split_local(data, 0.25, seed=1)
    return trains, tests


def _mlp():
    return MLP(5, 4, hidden=(8,), seed=0)


def test_fedper_uploads_no_head_and_keeps_heads_local(task):
    trains, tests = task
    clients = [FedPerClient(_mlp(), d, te) for d, te in zip(trains, tests)]
    head = 8 * 4 + 4                                      # the output layer's W and b
    uploads = []
    start = _mlp().params.copy()
    h = train(_mlp(), clients, trains[0], rounds=3, lr=0.1, seed=2, progress=False,
              on_round=lambda m, res: uploads.extend(res.server_state["received"].values()))
    assert len(uploads) == 12
    for v in uploads:                                     # [p delta_body, p delta_head = 0, p]
        assert np.all(v[-1 - head:-1] == 0) and np.any(v[:-1 - head] != 0)
    final = np.concatenate([w.reshape(-1) for w in h.weights])
    assert np.array_equal(final[-head:], start[-head:])  # the global head never moves
    heads = [np.concatenate([w.reshape(-1) for w in c.head]) for c in clients]
    assert all(not np.array_equal(a, start[-head:]) for a in heads)
    assert len({a.tobytes() for a in heads}) == 4
    p = personal_accuracy(clients, h.weights)
    assert len(p.accuracy) == 4 and p.worst <= p.mean <= 1
    # the personal model is the global body with the client's own head
    m = clients[1].personal_model(h.weights)
    assert np.array_equal(m.params, np.concatenate([final[:-head], heads[1]]))


def test_ditto_global_trajectory_is_fedavg(task):
    trains, tests = task
    plain = train(_mlp(), [NumpyClient(_mlp(), d) for d in trains], trains[0], rounds=3,
                  clients_per_round=3, lr=0.1, seed=4, progress=False)
    ditto = [DittoClient(_mlp(), d, te, lam=0.5) for d, te in zip(trains, tests)]
    h = train(_mlp(), ditto, trains[0], rounds=3, clients_per_round=3, lr=0.1, seed=4, progress=False)
    for a, b in zip(h.weights, plain.weights):
        assert np.array_equal(a, b)
    assert [m.accuracy for m in h.rounds] == [m.accuracy for m in plain.rounds]
    assert all(c.personal is not None for c in ditto)   # 3 of 4 over 3 rounds: all sampled here


def test_ditto_personal_step_known_answer(task):
    """Full-batch step: v' = v - lr (grad F(v) + lam (v - w_global)), w_global the model received."""
    (X, y), test = task[0][0], task[1][0]
    lam, lr = 0.7, 0.05
    c = DittoClient(SoftmaxRegression(5, 4), (X, y), test, lam=lam)
    w1 = np.linspace(-0.3, 0.3, 24)
    w2 = np.linspace(0.2, -0.1, 24)
    cfg = {"lr": lr, "batch_size": 1000, "local_epochs": 1, "seed": b"\x05" * 16}
    shapes = c.model.layer_shapes()
    c.set_weights([w1[:20].reshape(shapes[0]), w1[20:]])
    c.fit(cfg)
    m = SoftmaxRegression(5, 4)
    m.set_params(w1)
    v1 = w1 - lr * m.loss_and_grad(X, y)[1]              # first round: v starts at w_global
    np.testing.assert_allclose(c.personal, v1, rtol=1e-12, atol=1e-15)
    c.set_weights([w2[:20].reshape(shapes[0]), w2[20:]])
    c.fit(cfg)
    m.set_params(v1)
    v2 = v1 - lr * (m.loss_and_grad(X, y)[1] + lam * (v1 - w2))
    np.testing.assert_allclose(c.personal, v2, rtol=1e-12, atol=1e-15)


def test_ditto_lam_pulls_personal_models_to_the_global_one(task):
    trains, tests = task
    gaps = []
    for lam in (0.0, 5.0):
        ditto = [DittoClient(_mlp(), d, te, lam=lam) for d, te in zip(trains, tests)]
        h = train(_mlp(), ditto, trains[0], rounds=3, lr=0.1, seed=5, progress=False)
        w = np.concatenate([a.reshape(-1) for a in h.weights])
        gaps.append(max(np.linalg.norm(c.personal - w) for c in ditto))
    assert gaps[1] < 0.5 * gaps[0]


def test_personalization_beats_one_global_model_on_non_iid_clients(task):
    trains, tests = task
    kw = dict(rounds=4, lr=0.1, local_epochs=2, seed=6, progress=False)
    fedavg = train(_mlp(), trains, trains[0], **kw)
    base = global_accuracy(_mlp(), tests, fedavg.weights)
    for make in (lambda d, te: DittoClient(_mlp(), d, te, lam=0.1), lambda d, te: FedPerClient(_mlp(), d, te)):
        clients = [make(d, te) for d, te in zip(trains, tests)]
        h = train(_mlp(), clients, trains[0], **kw)
        p = personal_accuracy(clients, h.weights)
        # measured: FedAvg 0.825 mean / 0.70 worst; Ditto 0.94 / 0.85; FedPer 0.90 / 0.85 (20 tests each)
        assert p.mean > base.mean + 0.04 and p.worst > base.worst + 0.1


def test_personal_parameters_are_checked(task):
    (d, te) = task[0][0], task[1][0]
    with pytest.raises(ParameterError, match="head_layers"):
        FedPerClient(SoftmaxRegression(5, 4), d, te, head_layers=2)   # no body left
    with pytest.raises(ParameterError, match="lam"):
        DittoClient(_mlp(), d, te, lam=-1.0)
    with pytest.raises(ParameterError, match="test_fraction"):
        split_local([d], 1.0)
