"""Tests for ml.models: gradients against finite differences, training, interface, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.models import MLP, LogisticRegression, SoftmaxRegression, make_model
from mpc.errors import ParameterError


def data(n=40, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)  # simulated data
    X = rng.normal(size=(n, d))
    y = rng.integers(0, k, size=n)
    return X, y


def models(d=5, k=3):
    return [LogisticRegression(d, l2=0.1), SoftmaxRegression(d, k, l2=0.1),
            MLP(d, k, hidden=(6,), activation="tanh", l2=0.1, seed=1),
            MLP(d, k, hidden=(4, 3), activation="relu", seed=2)]


def numeric_grad(model, X, y, p, eps=1e-6):
    g = np.zeros_like(p)
    for i in range(p.size):  # test code: finite differences per coordinate
        e = np.zeros_like(p)
        e[i] = eps
        g[i] = (model.loss_and_grad(X, y, p + e)[0] - model.loss_and_grad(X, y, p - e)[0]) / (2 * eps)
    return g


@pytest.mark.parametrize("idx", range(4))
def test_gradient_matches_finite_differences(idx):
    model = models()[idx]
    X, y = data(k=model.n_classes)
    rng = np.random.default_rng(idx)
    p = rng.normal(size=model.n_params) * 0.3
    _, g = model.loss_and_grad(X, y, p)
    assert np.allclose(g, numeric_grad(model, X, y, p), atol=1e-6, rtol=1e-5)


def test_known_answers_at_zero():
    X, y = data(k=2)
    # cross-entropy of the uniform prediction: log 2 and log k (no regularisation at 0)
    assert LogisticRegression(5).loss_and_grad(X, y)[0] == pytest.approx(math.log(2))
    X, y = data(k=4)
    assert SoftmaxRegression(5, 4).loss_and_grad(X, y)[0] == pytest.approx(math.log(4))


def test_logistic_equals_two_class_softmax_prediction():
    X, y = data(k=2)
    m = LogisticRegression(5)
    m.set_params(np.arange(6) * 0.1)
    p1 = m.predict_proba(X)[:, 1]
    assert np.allclose(p1, 1 / (1 + np.exp(-(X @ (np.arange(5) * 0.1) + 0.5))))


@pytest.mark.parametrize("idx", range(4))
def test_sgd_learns_a_separable_problem(idx):
    rng = np.random.default_rng(3)
    k = 2 if idx == 0 else 3
    centers = rng.normal(size=(k, 5)) * 4
    y = rng.integers(0, k, size=300)
    X = centers[y] + rng.normal(size=(300, 5))
    model = models(k=k)[idx] if idx else LogisticRegression(5)
    loss0, _ = model.evaluate(X, y)
    for _ in range(30):
        for s in range(0, 300, 30):
            model.step(X[s:s + 30], y[s:s + 30], lr=0.1)
    loss1, acc = model.evaluate(X, y)
    assert loss1 < loss0 and acc > 0.95


def test_fedprox_step_pulls_towards_center():
    X, y = data(k=3)
    a, b = SoftmaxRegression(5, 3), SoftmaxRegression(5, 3)
    center = np.full(a.n_params, 5.0)
    a.step(X, y, lr=0.1)
    b.step(X, y, lr=0.1, prox_center=center, mu=1.0)
    # the proximal gradient mu (w - c) = -5 moves b by +0.5 more than a
    assert np.allclose(b.params - a.params, 0.5)
    with pytest.raises(ParameterError):
        a.step(X, y, lr=0.1, mu=1.0)


def test_copy_is_independent_and_params_roundtrip():
    m = MLP(5, 3, hidden=(4,), seed=7)
    c = m.copy()
    c.params[:] = 0
    assert np.any(m.params != 0)
    assert np.array_equal(MLP(5, 3, hidden=(4,), seed=7).params, m.params)
    assert not np.array_equal(MLP(5, 3, hidden=(4,), seed=8).params, m.params)
    m.set_params(np.ones(m.n_params))
    assert np.all(m.params == 1)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.integers(2, 6), st.integers(1, 12))
def test_shapes(d, k, n):
    X = np.ones((n, d))
    for m in (SoftmaxRegression(d, k), MLP(d, k, hidden=(3,))):
        assert m.predict(X).shape == (n,)
        assert np.allclose(m.predict_proba(X).sum(axis=1), 1)
        assert m.loss_and_grad(X, np.zeros(n, int))[1].shape == (m.n_params,)


def test_errors():
    m = SoftmaxRegression(5, 3)
    X, y = data()
    with pytest.raises(ParameterError):
        m.predict(np.ones((3, 4)))
    with pytest.raises(ParameterError):
        m.loss_and_grad(X, y[:-1])
    with pytest.raises(ParameterError):
        m.loss_and_grad(X, y + 5)
    with pytest.raises(ParameterError, match="class indices"):
        m.loss_and_grad(X, y + 0.5)                  # fractions are not silently truncated
    m.loss_and_grad(X, y.astype(np.float64))         # integer-valued floats are fine
    with pytest.raises(ParameterError):
        m.loss_and_grad(X[:0], y[:0])
    with pytest.raises(ParameterError):
        m.set_params(np.ones(3))
    with pytest.raises(ParameterError):
        m.set_params(np.full(m.n_params, np.nan))
    with pytest.raises(ParameterError):
        m.step(X, y, lr=0.0)
    with pytest.raises(ParameterError):
        make_model("tree", 5, 3)
    with pytest.raises(ParameterError):
        make_model("logistic", 5, 3)
    with pytest.raises(ParameterError):
        MLP(5, 3, activation="sigmoid")
    assert isinstance(make_model("mlp", 5, 3, hidden=(4,)), MLP)
