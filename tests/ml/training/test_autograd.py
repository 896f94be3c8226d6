"""Backward rules of ml.training.autograd on shares against finite differences in float64.

Each test runs a small forward pass on shares (2 parties), seeds the backward
pass with a public random ``R`` (so the loss is ``sum(out * R)``), opens the
gradients and compares them with central differences of the same loss in
numpy. Tolerances: the fixed-point error (2^-16 per truncation, summed over
an inner dimension) and the approximations' stated error (5e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from ml.training.autograd import Tape, conv2d, mean, reduce_sum, softmax_cross_entropy, transpose
from ml.training.nn import public_tensor


def _numeric(f, args, i, eps=1e-6):
    x = args[i]
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = eps
        hi = [a + d if j == i else a for j, a in enumerate(args)]
        lo = [a - d if j == i else a for j, a in enumerate(args)]
        out[idx] = (f(*hi) - f(*lo)) / (2 * eps)
    return out


def _check(shared_fn, plain_fn, args, atol=2e-4, seed=0):
    """Gradients of ``sum(fn(*args) * R)`` on shares against finite differences."""
    rng = np.random.default_rng(seed)
    R = rng.normal(size=np.shape(plain_fn(*args)))

    def prog(party):
        tape = Tape()
        leaves = [tape.leaf(mpc.share(party, a if party.id == 0 else None, 0, bound=8.0)) for a in args]
        out = shared_fn(*leaves)
        tape.backward(out, public_tensor(party, R))
        return out.value.reveal(), [v.grad.reveal() for v in leaves]

    value, grads = mpc.run(prog, 2).outputs[0]
    np.testing.assert_allclose(value, plain_fn(*args), atol=atol)
    for i, g in enumerate(grads):
        want = _numeric(lambda *a: float(np.sum(plain_fn(*a) * R)), list(args), i)
        np.testing.assert_allclose(g, want, atol=atol * max(1.0, np.abs(want).max()), err_msg=f"argument {i}")


RNG = np.random.default_rng(7)  # simulated inputs


def _away_from_zero(shape):
    x = RNG.normal(size=shape)
    return np.where(np.abs(x) < 0.05, 0.5, x)


def test_add_with_broadcast_and_sub():
    a, b = RNG.normal(size=(4, 3)), RNG.normal(size=3)
    _check(lambda x, y: (x + y) - x * 0.5, lambda x, y: (x + y) - x * 0.5, [a, b])


def test_mul_shared_and_public():
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    _check(lambda x, y: x * y * 1.5, lambda x, y: x * y * 1.5, [a, b])


@settings(max_examples=3, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_matmul(m, k, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    _check(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], atol=2e-4 * k)


def test_sum_mean_reshape_transpose():
    a = RNG.normal(size=(3, 4))
    _check(lambda x: reduce_sum(transpose(x), axis=0) + mean(x.reshape(4, 3), axis=0).reshape(3),
           lambda x: x.T.sum(axis=0) + x.reshape(4, 3).mean(axis=0), [a])
    _check(lambda x: reduce_sum(x).reshape(1) + mean(x).reshape(1),
           lambda x: np.array([x.sum() + x.mean()]), [a])


def test_relu_reuses_its_comparison_bit():
    a = _away_from_zero((5, 4))
    _check(lambda x: x.relu(), lambda x: np.maximum(x, 0.0), [a])


def test_sigmoid():
    a = RNG.normal(size=(4, 3)) * 3
    _check(lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), [a], atol=3e-4)


def test_mlp_layer_chain():
    """Linear -> ReLU -> Linear: the rules compose (gradient flows through two products)."""
    x, w1, w2 = RNG.normal(size=(6, 4)), RNG.normal(size=(4, 5)) * 0.5, RNG.normal(size=(5, 2)) * 0.5
    pre = x @ w1
    w1 = np.where(np.abs(pre).min(axis=0) < 0.02, w1 + 0.1, w1)  # keep pre-activations off the kink
    _check(lambda a, b, c: (a @ b).relu() @ c, lambda a, b, c: np.maximum(a @ b, 0) @ c, [x, w1, w2],
           atol=1e-3)


@pytest.mark.parametrize("k", [2, 4])
def test_softmax_cross_entropy(k):
    B = 6
    logits = RNG.normal(size=(B, k)) * 2
    Y = np.eye(k)[RNG.integers(0, k, B)]

    def plain(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return -np.sum(Y * np.log(e / e.sum(axis=1, keepdims=True))) / B

    def prog(party):
        tape = Tape()
        z = tape.leaf(mpc.share(party, logits if party.id == 0 else None, 0, bound=8.0))
        y = mpc.share(party, Y if party.id == 1 else None, 1, bound=1.0)
        loss = softmax_cross_entropy(z, y, with_loss=True)
        tape.backward(loss)
        return loss.value.reveal(), z.grad.reveal()

    loss, grad = mpc.run(prog, 2).outputs[0]
    # loss as log-sum-exp: log within 3e-5, exp within 5e-5 per term (relative to a sum >= 1)
    assert abs(loss - plain(logits)) < 3e-5 + 5e-5 * k + 2.0**-12
    # gradient (p - y) / B: within 5e-5 / B + 2^-16 per element (the stated error), plus slack
    np.testing.assert_allclose(grad, _numeric(plain, [logits], 0), atol=5e-5 / B + 2 * 2.0**-16)


def test_backward_without_gradient_needs_a_loss():
    def prog(party):
        tape = Tape()
        x = tape.leaf(public_tensor(party, np.ones(3)))
        tape.backward(x.relu())

    with pytest.raises(mpc.ParameterError, match="loss node"):
        mpc.run(prog, 2)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_conv2d_through_patches_and_col2im(stride, padding):
    x, w, b = RNG.normal(size=(2, 2, 5, 5)), RNG.normal(size=(3, 2, 3, 3)) * 0.5, RNG.normal(size=3) * 0.1

    def plain(x, w, b):   # direct definition of the cross-correlation, window by window
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        oh = (xp.shape[2] - 3) // stride + 1
        out = np.zeros((x.shape[0], 3, oh, oh))
        for i in range(oh):
            for j in range(oh):
                win = xp[:, :, i * stride:i * stride + 3, j * stride:j * stride + 3]
                out[:, :, i, j] = np.einsum("bchw,ochw->bo", win, w) + b
        return out

    _check(lambda x, w, b: conv2d(x, w, b, stride, padding), plain, [x, w, b], atol=1e-3)


def test_a_loss_inside_further_operations_is_refused():
    # loss * 3 then backward: the loss rule used to drop the incoming gradient (3) and give
    # the logits (p - y) / B, silently a third of the true gradient.
    def prog(party):
        tape = Tape()
        z = tape.leaf(mpc.share(party, np.ones((2, 2)) if party.id == 0 else None, 0, bound=8.0))
        y = public_tensor(party, np.eye(2))
        scaled = softmax_cross_entropy(z, y, with_loss=True) * 3.0
        tape.backward(scaled, public_tensor(party, np.array(1.0)))
        return z.grad.reveal()

    from mpc.errors import ParameterError
    with pytest.raises(ParameterError, match="output of Tape.backward"):
        mpc.run(prog, 2)
