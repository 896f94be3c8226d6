"""Tests for ml.inference.ckks and ml.inference.train: CKKS inference against plaintext."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from ml.inference.ckks import HEClient, HEServer, ckks_predict, compile_network, fit_polynomial
from ml.inference.layers import (Activation, AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Network, Polynomial,
                                 UnsupportedModelError, mlp)
from ml.inference.plan import vector_input
from ml.inference.train import train_polynomial_mlp
from mpc.errors import ParameterError
from mpc.he.params import MAX_COEFF_MODULUS_BITS, check_security


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def test_square_mlp_on_digits_within_two_points_of_plaintext():
    """The issue's acceptance: CKKS inference of a square-activation model within 2 points."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    net = train_polynomial_mlp(Xtr, ytr, (16,), epochs=150, lr=0.01, seed=1)
    plain_acc = np.mean(net.predict(Xte) == yte)
    assert plain_acc > 0.9
    res = ckks_predict(net, Xte, layout="batch")
    assert res.depth == 3 and res.params.poly_modulus_degree == 8192
    assert abs(np.mean(res.outputs == yte) - plain_acc) <= 0.02
    assert np.mean(res.outputs == net.predict(Xte)) >= 0.995
    assert np.allclose(res.scores, net.forward(Xte), atol=1e-3)


def _small_net(rng, activation="square"):
    return mlp([(rng.normal(size=(8, 5)) * 0.5, rng.normal(size=5) * 0.2),
                (rng.normal(size=(5, 3)), rng.normal(size=3))], activation)


@pytest.mark.parametrize("activation, layouts", [
    ("square", ("vector", "batch")),
    (Polynomial((0.3, -0.4, 0.25)), ("vector",)),
    (Polynomial((0.1, 0.5, 0.0, 0.05)), ("batch",)),  # degree 3: polyval, depth 4, N = 16384
])
def test_vector_and_batch_layouts_match_plaintext(activation, layouts):
    rng = np.random.default_rng(7)
    net = _small_net(rng, activation)
    X = rng.uniform(-1, 1, size=(3, 8))
    want = net.forward(X)
    for layout in layouts:
        res = ckks_predict(net, X, layout=layout)
        assert res.scores.shape == want.shape
        assert np.allclose(res.scores, want, atol=1e-3), layout
        assert np.array_equal(res.outputs, net.predict(X))


def _conv_net(rng):
    return Network((1, 6, 6), (
        Conv2d(rng.normal(size=(2, 1, 3, 3)) * 0.5, rng.normal(size=2) * 0.1, 1, 1),
        Activation("square"), AvgPool2d(2), Flatten(),
        Dense(rng.normal(size=(18, 4)) * 0.5, rng.normal(size=4)), Activation("identity"),
        Dense(rng.normal(size=(4, 3)), np.zeros(3))))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_compiled_plan_equals_the_network(seed):
    """Merging linear layers, folding shifts and the constant slot change nothing in plaintext."""
    rng = np.random.default_rng(seed)
    for net in (_conv_net(rng), _small_net(rng, Polynomial(tuple(rng.normal(size=3)))),
                _small_net(rng, Polynomial((0.2, 0.1, 0.3, 0.05)))):
        X = rng.uniform(-1, 1, size=(4, *net.input_shape))
        plan = compile_network(net)
        assert np.allclose(plan.forward_plain(X), net.forward(X), atol=1e-9)
        h = np.concatenate([X.reshape(4, -1), np.ones((4, 1))], axis=1)  # the vector layout's matrices
        for stage, m in zip(plan.stages, plan.matrices):
            if m is not None:
                h = h @ m.T
            elif hasattr(stage, "coefficients"):
                h = np.polynomial.polynomial.polyval(h, np.asarray(stage.coefficients))
            else:
                h = h * h
        assert np.allclose(h[:, :-1], net.forward(X), atol=1e-9)


def test_conv_net_under_ckks():
    rng = np.random.default_rng(3)
    net = _conv_net(rng)
    X = rng.uniform(0, 1, size=(2, 1, 6, 6))
    res = ckks_predict(net, X, layout="batch")
    assert res.depth == 3  # conv, square, then pool + two dense layers merged into one map
    assert np.allclose(res.scores, net.forward(X), atol=1e-3)


@pytest.mark.parametrize("depth_layers", [1, 2, 3, 5])
def test_parameters_fit_the_128_bit_table(depth_layers):
    rng = np.random.default_rng(0)
    weights = [(rng.normal(size=(4, 4)), np.zeros(4)) for _ in range(depth_layers + 1)]
    plan = compile_network(mlp(weights, "square"))
    p = plan.requirements.params
    assert plan.requirements.depth == 2 * depth_layers + 1 == p.depth
    assert p.total_bits <= MAX_COEFF_MODULUS_BITS[p.poly_modulus_degree]
    check_security(p.poly_modulus_degree, p.coeff_mod_bit_sizes)
    p.check()
    assert p.scale_bits >= 36


def test_unsupported_activations_are_refused_by_name_and_can_be_approximated():
    rng = np.random.default_rng(1)
    net = _small_net(rng, "relu")
    with pytest.raises(UnsupportedModelError, match="'relu'"):
        compile_network(net)
    poly = fit_polynomial("relu", 2, 4.0)
    z = np.linspace(-4, 4, 101)
    assert np.max(np.abs(poly(z) - np.maximum(z, 0))) < 0.5
    plan = compile_network(net, approximate={"relu": poly})
    assert plan.requirements.depth == 3
    X = rng.uniform(-1, 1, size=(5, 8))
    assert np.allclose(plan.forward_plain(X), _small_net(np.random.default_rng(1), poly).forward(X))
    with pytest.raises(UnsupportedModelError, match="softplus"):
        fit_polynomial("softplus", 2, 1.0)
    pooled = Network((1, 4, 4), (MaxPool2d(2), Flatten(), Dense(np.ones((4, 2)), np.zeros(2))))
    with pytest.raises(UnsupportedModelError, match="MaxPool2d"):
        compile_network(pooled)
    with pytest.raises(ParameterError, match="layout"):
        compile_network(_small_net(rng), layout="diagonal")


def test_roles_check_what_they_receive():
    rng = np.random.default_rng(2)
    server = HEServer(_small_net(rng), layout="batch")
    client = HEClient(server.requirements)
    ctx = server.load_context(client.public_context())
    with pytest.raises(ParameterError, match="features"):
        client.query(np.ones((2, 7)))
    with pytest.raises(ParameterError, match="encrypted features"):
        server.answer(ctx, client.query(np.ones((2, 8)))[:3])
    with pytest.raises(ParameterError, match="evaluate_batch"):
        server.evaluate(ctx.encrypt(np.ones(9)))
    other = HEServer(mlp([(np.ones((8, 2)), np.zeros(2))] * 1, "square"), layout="vector")
    with pytest.raises(ParameterError, match="parameters|rotation"):
        other.load_context(client.public_context())
    with pytest.raises(ParameterError):
        train_polynomial_mlp(np.ones((3, 2)), np.zeros(2))


def test_breast_cancer_logistic_regression_under_ckks():
    """A linear model (depth 1, sigmoid head) from a scikit-learn pipeline: every prediction agrees."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ml.inference.convert import to_network

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xtr, ytr)
    res = ckks_predict(to_network(model), Xte, layout="batch")
    assert res.depth == 1 and res.scores.shape == (len(Xte), 1)
    assert np.mean(res.outputs == model.predict(Xte)) >= 0.995
    assert np.allclose(res.scores[:, 0], model.decision_function(Xte), atol=1e-3)


def test_value_range_is_checked_when_the_input_range_is_known():
    rng = np.random.default_rng(4)
    net = _small_net(rng)
    X = rng.uniform(-1, 1, size=(200, 8))
    plan = compile_network(net, input_bound=1.0)
    assert plan.value_bound >= np.max(np.abs(plan.forward_plain(X)))  # a true worst case
    big = mlp([(np.full((8, 5), 30.0), np.zeros(5)), (np.full((5, 3), 30.0), np.zeros(3))], "square")
    with pytest.raises(ParameterError, match=r"stage 2 \(Affine\).*scale the inputs"):
        compile_network(big, input_bound=1.0)
    assert compile_network(big).value_bound is None  # no input range, no check
    with pytest.raises(ParameterError, match="input_bound"):
        compile_network(net, input_bound=-1.0)


def test_inputs_beyond_the_checked_range_are_refused_not_decrypted_wrong():
    rng = np.random.default_rng(5)
    net = _small_net(rng)
    X = rng.uniform(-1, 1, size=(6, 8))
    # The server's plan is checked for |x| <= 1; the client refuses larger inputs.
    server = HEServer(net, layout="batch", input_bound=1.0)
    assert server.requirements.input_bound == (1.0,) * 8
    client = HEClient(server.requirements)
    with pytest.raises(ParameterError, match="feature 3 of an input reaches 100"):
        client.query(np.where(np.arange(8) == 3, 100.0, X))
    # ckks_predict checks the range of the inputs it is given (per feature): inputs 300x
    # too large would overflow the CKKS range, so the plan is refused instead.
    with pytest.raises(ParameterError, match="scale the inputs"):
        ckks_predict(net, X * 300, layout="batch")
    res = ckks_predict(net, X, layout="batch")
    assert np.allclose(res.scores, net.forward(X), atol=1e-3)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 12), st.integers(2, 6), st.booleans())
def test_vector_layout_diagonals_reproduce_the_network_in_plaintext(seed, n_in, hidden, n_out, three):
    """The slot layout (input in blocks, outputs repeated as far as the next map reads) is exact,
    for two and three maps, and leaves nothing but the scores in the reply."""
    rng = np.random.default_rng(seed)
    layers = [(rng.normal(size=(n_in, hidden)), rng.normal(size=hidden))]
    if three:
        layers.append((rng.normal(size=(hidden, hidden)) * 0.5, rng.normal(size=hidden)))
    net = mlp(layers + [(rng.normal(size=(hidden, n_out)), rng.normal(size=n_out))], Polynomial((0.3, -0.4, 0.25)))
    plan = compile_network(net)
    slots = plan.requirements.params.slots
    x = rng.uniform(-1, 1, size=n_in)
    z = vector_input(np.append(x, 1.0), slots, plan.requirements.input_blocks)
    for stage, d in zip(plan.stages, plan.diagonals):
        if d is not None:
            z = d.apply(z)
        else:
            z = z * z
    assert np.allclose(z[:n_out], net.forward(x[None])[0], atol=1e-9)
    assert np.allclose(z[n_out + 1:], 0.0)  # the client decrypts the scores and the constant slot only
    steps = set(plan.requirements.rotation_steps)
    assert steps == {k for d in plan.diagonals if d is not None for k in d.steps}
    n = max(n_in, hidden) + 1  # baby-step giant-step: about 2 sqrt(n) rotations per map, not n
    assert all(d.rotations <= 2 * int(np.ceil(np.sqrt(n))) for d in plan.diagonals if d is not None)


def test_single_image_digits_under_ckks_with_few_rotations():
    """Batch 1 (vector layout): every prediction agrees; keys only for the plan's steps."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, _ = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    net = train_polynomial_mlp(Xtr, ytr, (16,), epochs=60, lr=0.01, seed=1)
    server = HEServer(net, layout="vector")
    req = server.requirements
    rotations = sum(d.rotations for d in server.plan.diagonals if d is not None)
    assert rotations <= 17  # the per-input-value diagonal method needed 65 + 17 = 82
    client = HEClient(req)
    ctx = server.load_context(client.public_context())
    assert ctx.steps == req.rotation_steps and ctx.rotations == ()
    res = ckks_predict(server, Xte[:4], layout="vector")
    assert np.array_equal(res.outputs, net.predict(Xte[:4]))
    assert np.allclose(res.scores, net.forward(Xte[:4]), atol=1e-3)
    reply = server.answer(ctx, client.query(Xte[0]))
    assert np.allclose(client.scores(reply), net.forward(Xte[:1])[0], atol=1e-3)
    # SECURITY: every other slot of the reply decrypts to ~0 (CKKS noise), the constant slot to 1:
    # the client learns the 10 scores, no partial sums of the server's weights
    full = client._secret.decrypt(client._secret.public().load_vector(reply[0]))
    assert abs(full[10] - 1.0) < 1e-3 and np.max(np.abs(full[11:])) < 1e-3
    with pytest.raises(ParameterError, match="expects"):
        server.evaluate(ctx.encrypt(np.append(Xte[0], 1.0)))  # not repeated along the slots
    other = mlp([(np.ones((64, 2)), np.zeros(2)), (np.ones((2, 3)), np.zeros(3))], "square")  # same depth
    fewer = HEClient(HEServer(other, layout="vector").requirements)
    with pytest.raises(ParameterError, match="rotation keys for steps"):
        server.load_context(fewer.public_context())


def test_vector_layout_general_path_under_ckks():
    """A small input (two blocks) and a second map of more rows than blocks."""
    rng = np.random.default_rng(9)
    net = mlp([(rng.normal(size=(2, 5)), rng.normal(size=5)), (rng.normal(size=(5, 3)), rng.normal(size=3))],
              "square")
    plan = compile_network(net)
    assert plan.requirements.input_blocks == 2
    X = rng.uniform(-1, 1, size=(2, 2))
    res = ckks_predict(net, X, layout="vector")
    assert np.allclose(res.scores, net.forward(X), atol=1e-3)
