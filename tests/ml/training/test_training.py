"""Training on shares against the same training in float64, data splits, and the fixed-point plan."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import mpc
from ml.training.reference import train_plain
from ml.training.secure import Data, TrainConfig, private_train, secure_train
from ml.training.plan import plan
from mpc.errors import ParameterError


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    return np.clip((Xtr - mu) / sd, -8, 8), ytr, np.clip((Xte - mu) / sd, -8, 8), yte


def _weights(net):
    return [layer.weight for layer in net.layers if hasattr(layer, "weight")]


def test_breast_cancer_mlp_on_shares_matches_float64(cancer):
    """Two hospitals (rows), MLP 30-64-2, momentum, 2 epochs: accuracy within 1 point of float64."""
    Xtr, ytr, Xte, yte = cancer
    config = TrainConfig((30, 64, 2), epochs=2, batch_size=32, lr=0.1, momentum=0.5)
    parts = [Data(Xtr[:200], ytr[:200]), Data(Xtr[200:], ytr[200:])]
    res = secure_train(parts, config, test=(Xte, yte))
    plain = train_plain(Xtr, ytr, config)
    plain_acc = float(np.mean(plain.predict(Xte) == yte))
    opened_acc = float(np.mean(res.network.predict(Xte) == yte))
    assert plain_acc > 0.9
    assert abs(res.accuracy - plain_acc) <= 0.01        # scored on shares, the model never opened
    assert abs(opened_acc - plain_acc) <= 0.01
    for w, v in zip(_weights(res.network), _weights(plain)):
        np.testing.assert_allclose(w, v, atol=5e-3)
    assert len(res.epochs) == 2 and all(e.rounds > 0 and e.bytes_sent > 0 for e in res.epochs)


def test_vertical_split_aligned_by_psi_trains_as_the_joined_table():
    rng = np.random.default_rng(3)   # simulated data
    n = 48
    ids = np.arange(1000, 1000 + n)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] - X[:, 3] > 0).astype(int)
    extra = np.arange(5000, 5010)        # rows only the second party has: dropped by the PSI
    perm = rng.permutation(n + 10)
    ids_b = np.concatenate([ids, extra])[perm]
    Xb = np.concatenate([X[:, 3:], rng.normal(size=(10, 2))])[perm]
    config = TrainConfig((5, 6, 2), epochs=1, batch_size=16, lr=0.2, seed=4)
    parts = [Data(X[:, :3], y, ids), Data(Xb, None, ids_b)]
    res = secure_train(parts, config, split="columns", label_owner=0)
    plain = train_plain(X, y, config)     # ids sorted = the original order
    for w, v in zip(_weights(res.network), _weights(plain)):
        np.testing.assert_allclose(w, v, atol=2e-3)


def test_outsourced_to_three_compute_parties_with_sigmoid():
    rng = np.random.default_rng(5)   # simulated data
    X = rng.normal(size=(40, 4))
    y = (X.sum(axis=1) > 0).astype(int)
    config = TrainConfig((4, 5, 3), activation="sigmoid", epochs=1, batch_size=20, lr=0.5, momentum=0.9)
    res = secure_train([Data(X, y), None, None], config, split="outsourced")
    plain = train_plain(X, y, config)
    for w, v in zip(_weights(res.network), _weights(plain)):
        np.testing.assert_allclose(w, v, atol=2e-3)


def test_plan_refuses_an_overflowing_learning_rate_with_a_clear_error():
    with pytest.raises(mpc.RangeError, match="learning rate 50 .*weight_bound="):
        plan((30, 64, 2), activation="relu", input_bound=8.0, init_bound=0.2, lr=50.0, momentum=0.9,
             batch_size=32, steps=500, frac_bits=16, weight_bound=None)
    # the same schedule with clipped weights keeps every bound constant
    ok = plan((30, 64, 2), activation="relu", input_bound=8.0, init_bound=0.2, lr=50.0, momentum=0.9,
              batch_size=32, steps=500, frac_bits=16, weight_bound=4.0)
    assert ok.per_step_weights[-1] == 4.0 and ok.product < 1


@pytest.mark.parametrize("kwargs, match", [({"batch_size": 8192}, "batch size 8192"),
                                           ({"lr": 1e-6}, "learning rate 1e-06")])
def test_plan_refuses_settings_that_underflow(kwargs, match):
    args = dict(activation="relu", input_bound=8.0, init_bound=0.2, lr=0.1, momentum=0.0, batch_size=32,
                steps=10, frac_bits=16, weight_bound=4.0)
    args.update(kwargs)
    with pytest.raises(mpc.RangeError, match=match):
        plan((30, 64, 2), **args)


def test_private_train_refuses_before_the_first_step():
    """The plan runs on shares' public data only, before any training message."""
    X = np.ones((64, 3))
    config = TrainConfig((3, 4, 2), epochs=40, batch_size=1, lr=30.0, input_bound=1.0, weight_bound=None)

    def prog(party):
        private_train(party, Data(X, np.zeros(64, int)) if party.id == 0 else None, config)

    with pytest.raises(mpc.RangeError, match="learning rate 30"):
        mpc.run(prog, 2)


@pytest.mark.parametrize("clip_every, lr", [(1, 3.0), (3, 1.0)])
def test_clipped_weights_follow_the_float64_clipping(clip_every, lr):
    """A large step drives weights past weight_bound: the secure clip gives the float64 np.clip,
    on the same public schedule (every ``clip_every`` steps)."""
    config = TrainConfig((16, 16, 2), epochs=1, batch_size=16, lr=lr, weight_bound=0.3, seed=2,
                         clip_every=clip_every, input_bound=2.0)
    # Simulated data whose float64 run stays clear of every ReLU kink: there the fixed-point
    # error may flip a comparison bit and change a whole gradient row (a true, not a bug).
    for data_seed in range(9, 100):
        rng = np.random.default_rng(data_seed)
        X = np.clip(rng.normal(size=(48, 16)), -2, 2)
        y = (X[:, 0] > 0).astype(int)
        margins: list[float] = []
        plain = train_plain(X, y, config, margins)
        if min(margins) > 2e-3:
            break
    assert min(margins) > 2e-3, "no simulated data set clear of the ReLU kinks"
    res = secure_train([Data(X, y), None], config, split="outsourced")
    clipped = sum(int(np.sum(np.abs(w) == 0.3)) for w in _weights(plain))
    assert clipped >= 3                                    # the clip did bind
    for w, v in zip(_weights(res.network), _weights(plain)):
        np.testing.assert_allclose(w, v, atol=1e-3)
        assert np.max(np.abs(w)) <= 0.3    # 3 steps: the last one clips in both schedules


def test_a_small_cnn_step_on_shares_and_its_private_inference():
    """Conv2d -> ReLU -> Flatten -> Linear: one SGD step on shares equals lr times the float64
    gradient (finite differences), and the still-shared model runs in ml.inference.secure.forward."""
    from ml.inference.secure import forward
    from ml.training.autograd import Tape, softmax_cross_entropy
    from ml.training.nn import SGD, Conv2d, Flatten, Linear, ReLU, Sequential, public_tensor

    rng = np.random.default_rng(11)   # simulated data and weights
    X = rng.normal(size=(4, 1, 6, 6))
    Y = np.eye(2)[[0, 1, 1, 0]]
    k, b, w, c = (rng.normal(size=(2, 1, 3, 3)) * 0.5, rng.normal(size=2) * 0.1,
                  rng.normal(size=(18, 2)) * 0.2, rng.normal(size=2) * 0.1)     # 6x6, stride 2, pad 1: 2x3x3
    lr = 0.5

    def plain_loss(k, b, w, c):
        xp = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
        conv = np.zeros((4, 2, 3, 3))
        for i in range(3):
            for j in range(3):
                conv[:, :, i, j] = np.einsum("bchw,ochw->bo", xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3], k) + b
        z = np.maximum(conv, 0).reshape(4, -1) @ w + c
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return -np.sum(Y * np.log(e / e.sum(axis=1, keepdims=True))) / 4

    def prog(party):
        model = Sequential([Conv2d(public_tensor(party, k), public_tensor(party, b), stride=2, padding=1), ReLU(),
                            Flatten(), Linear(public_tensor(party, w), public_tensor(party, c))],
                           input_shape=(1, 6, 6))
        xs = mpc.share(party, X if party.id == 0 else None, 0, bound=8.0)
        ys = mpc.share(party, Y if party.id == 0 else None, 0, bound=1.0)
        tape = Tape()
        tape.backward(softmax_cross_entropy(model.forward(tape.leaf(xs, requires_grad=False)), ys))
        model.collect()
        SGD(model.parameters(), lr).step()
        scores = forward(model.skeleton(), model.inference_weights(), xs).reveal()
        return model.network(), scores

    net, scores = mpc.run(prog, 2).outputs[0]
    np.testing.assert_allclose(scores, net.forward(X), atol=1e-3)
    params = [k, b, w, c]
    after = [net.layers[0].weight, net.layers[0].bias, net.layers[3].weight, net.layers[3].bias]
    for i, (before, now) in enumerate(zip(params, after)):
        grad = np.zeros_like(before)
        for idx in np.ndindex(before.shape):
            d = np.zeros_like(before)
            d[idx] = 1e-6
            up = [p + d if j == i else p for j, p in enumerate(params)]
            down = [p - d if j == i else p for j, p in enumerate(params)]
            grad[idx] = (plain_loss(*up) - plain_loss(*down)) / 2e-6
        np.testing.assert_allclose((before - now) / lr, grad, atol=2e-3, err_msg=f"parameter {i}")


def test_dealer_free_preprocessing_trains_the_same():
    """OT-generated triples and masks (no trusted dealer) give the float64 weights too."""
    rng = np.random.default_rng(0)   # simulated data
    X = rng.normal(size=(32, 4))
    y = (X[:, 0] > 0).astype(int)
    config = TrainConfig((4, 8, 2), epochs=1, batch_size=16, lr=0.2)
    res = secure_train([Data(X, y), None], config, split="outsourced", preprocessing="ot")
    for w, v in zip(_weights(res.network), _weights(train_plain(X, y, config))):
        np.testing.assert_allclose(w, v, atol=1e-3)


@pytest.mark.parametrize("kw", [dict(lr=-0.1), dict(lr=0.0), dict(lr=float("nan")), dict(momentum=-0.5),
                                dict(momentum=1.0)])
def test_bad_learning_schedule_is_refused_by_the_config(kw):
    # lr <= 0 used to get a RangeError saying lr * 2^-f "rounds to zero"; momentum only failed in SGD
    with pytest.raises(ParameterError, match="lr > 0"):
        TrainConfig(sizes=(4, 8, 2), **kw)
