"""Tests for ml.clients: the client interface, its adapters, and train() driving them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from ml.clients import NumpyClient, SklearnClient, TorchClient, flatten, unflatten
from ml.data import partition_dirichlet, split_clients, standardize, train_test_split
from ml.federated import train
from ml.models import MLP, LogisticRegression, SoftmaxRegression
from mpc.errors import ParameterError
from mpc.optional import MissingExtra

# The hospitals demo's split and settings (examples/federated_hospitals.py).
SETTINGS = dict(rounds=15, local_epochs=2, batch_size=16, lr=0.1, dropout=0.1, seed=2026,
                progress=False)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    clients = split_clients(Xtr, ytr, partition_dirichlet(ytr, 5, alpha=0.5, seed=3, min_size=20))
    return clients, (Xte, yte)


def absent(monkeypatch, name):
    import sys
    for mod in list(sys.modules):
        if mod.partition(".")[0] == name:
            monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, name, None)


# -- the interface and the numpy adapter -------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=3), min_size=1, max_size=4),
       st.integers(0, 2 ** 32 - 1))
def test_unflatten_inverts_flatten(shapes, seed):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=tuple(s)).astype(np.float32 if i % 2 else np.float64)
               for i, s in enumerate(shapes)]
    back = unflatten(flatten(weights), [w.shape for w in weights])
    assert [b.shape for b in back] == [w.shape for w in weights]
    assert all(b.dtype == np.float64 and np.array_equal(b, w) for b, w in zip(back, weights))


@pytest.mark.parametrize("model", [LogisticRegression(4), SoftmaxRegression(4, 3),
                                   MLP(4, 3, hidden=(5, 2), seed=1)], ids=type)
def test_numpy_client_weights_are_the_layers_of_params(model):
    rng = np.random.default_rng(0)
    model.set_params(rng.normal(size=model.n_params))
    client = NumpyClient(model.copy(), (rng.normal(size=(6, 4)), rng.integers(0, 2, 6)))
    weights = client.get_weights()
    assert [w.shape for w in weights] == model.layer_shapes()
    assert np.array_equal(flatten(weights), model.params)
    doubled = [2 * w for w in weights]
    client.set_weights(doubled)
    assert np.array_equal(client.model.params, 2 * model.params)
    with pytest.raises(ParameterError, match="do not fit"):
        client.set_weights(weights[::-1])
    with pytest.raises(ParameterError, match="do not fill"):
        unflatten(np.zeros(model.n_params + 1), model.layer_shapes())


def test_ready_clients_and_a_factory_give_the_default_run(cancer):
    """One code path: data sets, ready NumpyClients and a factory train the same model."""
    clients, test = cancer
    kw = dict(SETTINGS, rounds=4)
    default_model = LogisticRegression(30, l2=1e-3)
    default = train(default_model, clients, test, **kw)
    ready = [NumpyClient(LogisticRegression(30, l2=1e-3), d) for d in clients]
    by_objects = train(lambda d: NumpyClient(LogisticRegression(30, l2=1e-3), d), ready, test, **kw)
    assert [r.loss for r in by_objects.rounds] == [r.loss for r in default.rounds]
    assert np.array_equal(flatten(by_objects.weights), default_model.params)
    assert np.array_equal(flatten(default.weights), default_model.params)


class _Liar(NumpyClient):
    """A client whose fit answers with the wrong layout or the wrong count."""

    def __init__(self, model, data, mode):
        super().__init__(model, data)
        self.mode = mode

    def fit(self, config):
        weights, n, metrics = super().fit(config)
        if self.mode == "shape":
            return weights[:1], n, metrics
        return weights, 10 ** 6, metrics


@pytest.mark.parametrize("mode,match", [("shape", r"client 1 in round 1 returned weights of shapes"),
                                        ("count", r"client 1 in round 1 reported 1000000 examples")])
def test_a_client_with_a_wrong_answer_is_named(cancer, mode, match):
    clients, test = cancer
    ready = [NumpyClient(LogisticRegression(30), clients[0]),
             _Liar(LogisticRegression(30), clients[1], mode)]
    with pytest.raises(ParameterError, match=match):
        train(LogisticRegression(30), ready, test, rounds=1, progress=False)


def test_a_client_that_hides_its_count_needs_a_weight_cap(cancer):
    clients, test = cancer

    class Quiet:
        """The four methods and nothing else (no n_examples)."""

        def __init__(self, inner):
            self.get_weights, self.set_weights = inner.get_weights, inner.set_weights
            self.fit, self.evaluate = inner.fit, inner.evaluate

    ready = [Quiet(NumpyClient(LogisticRegression(30), d)) for d in clients[:2]]
    with pytest.raises(ParameterError, match="client 0 has no n_examples attribute.*weight_cap"):
        train(LogisticRegression(30), ready, test, rounds=1, progress=False)
    h = train(LogisticRegression(30), ready, test, rounds=1, progress=False, weight_cap=400)
    assert h.rounds[0].survivors == 2
    with pytest.raises(ParameterError, match="client factory"):
        train("logistic", clients, test, rounds=1, progress=False)


# -- scikit-learn ------------------------------------------------------------------------------
def test_sklearn_sgd_trains_to_the_numpy_models_accuracy(cancer):
    """SGDClassifier through the adapter ends where the built-in logistic regression ends.

    Same objective (log loss + alpha/2 ||w||^2 with alpha = l2 = 1e-3), same split, same
    seeds (so the same sampled clients, dropouts and batches), and a per-sample step of
    lr / batch_size: the only difference is that scikit-learn takes the 16 steps of a batch
    one after the other where the numpy model takes their mean at once, which agrees to first
    order in the step. So the final accuracies may differ by a test patient near the decision
    boundary, not more: at most 1 of the 113 held-out patients; the loss within 5%.
    """
    from sklearn.linear_model import SGDClassifier

    clients, test = cancer
    plain = train(LogisticRegression(30, l2=1e-3), clients, test, **SETTINGS)

    def make(data):
        sgd = SGDClassifier(loss="log_loss", alpha=1e-3, learning_rate="constant",
                            eta0=SETTINGS["lr"] / SETTINGS["batch_size"], random_state=0)
        return SklearnClient(sgd, data, classes=[0, 1])

    sk = train(make, clients, test, **SETTINGS)
    assert sk.initial[1] < 0.8 and sk.final_accuracy > 0.95        # it did learn
    assert abs(sk.final_accuracy - plain.final_accuracy) <= 1 / test[1].size + 1e-12
    assert abs(sk.rounds[-1].loss / plain.rounds[-1].loss - 1) < 0.05
    assert [r.survivors for r in sk.rounds] == [r.survivors for r in plain.rounds]


def test_sklearn_mlp_and_warm_started_logistic_regression_learn(cancer):
    from sklearn.linear_model import LogisticRegression as SkLogistic
    from sklearn.neural_network import MLPClassifier

    clients, test = cancer
    makers = {"mlp": lambda d: SklearnClient(MLPClassifier((8,), learning_rate_init=0.01,
                                                           random_state=0), d, classes=[0, 1]),
              "logistic": lambda d: SklearnClient(SkLogistic(warm_start=True, max_iter=5), d)}
    for name, make in makers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few iterations per round: ConvergenceWarning
            h = train(make, clients, test, **dict(SETTINGS, rounds=6))
        assert h.initial[1] < 0.8 and h.final_accuracy > 0.95, name
    # the layout of ml.models.MLP (a binary MLPClassifier has one logistic output, so 3 classes)
    mlp = SklearnClient(MLPClassifier((8,)), clients[0], classes=[0, 1, 2])
    assert [w.shape for w in mlp.get_weights()] == MLP(30, 3, hidden=(8,)).layer_shapes()


def test_sklearn_initial_weights_owe_nothing_to_the_data(cancer):
    from sklearn.neural_network import MLPClassifier

    clients, test = cancer
    a = SklearnClient(MLPClassifier((8,)), clients[0], classes=[0, 1], seed=4)
    b = SklearnClient(MLPClassifier((8,)), test, classes=[0, 1], seed=4)
    c = SklearnClient(MLPClassifier((8,)), test, classes=[0, 1], seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    assert not np.array_equal(flatten(b.get_weights()), flatten(c.get_weights()))
    assert not hasattr(b.estimator, "_optimizer")


def test_sklearn_refusals(cancer):
    from sklearn.linear_model import SGDClassifier
    from sklearn.tree import DecisionTreeClassifier

    data = cancer[0][0]
    with pytest.raises(ParameterError, match="neither partial_fit nor warm_start"):
        SklearnClient(DecisionTreeClassifier(), data)
    with pytest.raises(ParameterError, match="average"):
        SklearnClient(SGDClassifier(average=True), data)
    client = SklearnClient(SGDClassifier(), data)
    with pytest.raises(ParameterError, match="FedProx"):
        client.fit({"mu": 0.1})
    with pytest.raises(ParameterError, match="weight array 0 has shape"):
        client.set_weights([np.zeros((1, 3)), np.zeros(1)])


def test_sklearn_adapter_without_sklearn_names_the_extra(monkeypatch, cancer):
    absent(monkeypatch, "sklearn")
    with pytest.raises(MissingExtra, match=r"SklearnClient.*pip install 'concilium\[sklearn\]'"):
        SklearnClient(object(), cancer[0][0])


# -- PyTorch -----------------------------------------------------------------------------------
def test_torch_adapter_without_torch_names_the_extra(monkeypatch, cancer):
    absent(monkeypatch, "torch")
    with pytest.raises(MissingExtra, match=r"TorchClient.*pip install 'concilium\[torch\]'"):
        TorchClient(object(), cancer[0][0])


def test_torch_linear_trains_as_the_numpy_softmax_regression(cancer):
    """nn.Linear(30, 2) with SGD and cross-entropy is SoftmaxRegression(30, 2): same seeds give
    the same run up to float32 rounding (FedProx included)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install "
                                                "'concilium[torch]' to run the adapter's test")
    clients, test = cancer
    kw = dict(SETTINGS, rounds=5, mu=0.1)
    model = SoftmaxRegression(30, 2)
    plain = train(model, clients, test, **kw)

    def make(data):
        linear = torch.nn.Linear(30, 2)
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        return TorchClient(linear, data)

    tq = train(make, clients, test, **kw)
    assert tq.initial[1] < 0.8 and tq.final_accuracy > 0.95
    assert tq.final_accuracy == plain.final_accuracy
    assert np.allclose([r.loss for r in tq.rounds], [r.loss for r in plain.rounds], atol=1e-5)
    W, b = plain.weights
    weight, bias = tq.weights                      # torch stores W transposed, (out, in)
    assert make(clients[0]).get_weights()[0].dtype == np.float32   # the client keeps its dtype
    assert np.allclose(weight.T, W, atol=1e-5) and np.allclose(bias, b, atol=1e-5)
