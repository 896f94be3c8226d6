"""Approximations (exp, log, reciprocal, division, sqrt, rsqrt, sigmoid, tanh, softmax) against numpy."""

import numpy as np
import pytest

import mpc
from mpc.errors import ParameterError
from mpc.sharing import approx
from mpc.sharing.truncation import truncate

FP = mpc.FixedPoint()
LAYERS = {2: 0, 3: 1, 5: 3}


def _grid(x):
    return FP.decode(FP.encode(x))


def _run(fn, x, n=3, phase=True, bound=None):
    """Share x from party 0 (declared ``bound``), apply fn, reveal; returns (output, rounds of fn)."""

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=bound)
        with party.phase("fn"):
            y = fn(sx)
        return y.reveal()

    res = mpc.run(prog, n, timeout=120)
    for out in res.outputs[1:]:
        assert np.array_equal(out, res.outputs[0])
    return res.outputs[0], res.cost.phases()["fn"].rounds


def _sigmoid(v):
    with np.errstate(over="ignore"):  # exp(-v) = inf for v << 0 gives the right limit, 0
        return 1 / (1 + np.exp(-v))


# --- accuracy over the documented ranges (the targets are 1e-3) -----------------------
def test_sigmoid_and_tanh_within_5e_5_on_minus_10_to_10():
    x = _grid(np.concatenate([np.linspace(-10, 10, 4001), [0.0, 2.0**-16, -2.0**-16]]))
    got, rounds = _run(approx.sigmoid, x)
    assert np.abs(got - _sigmoid(x)).max() < 5e-5
    assert rounds == LAYERS[3] + 8 + 17 + 13 + 2
    got, _ = _run(lambda s: s.tanh(), x)
    assert np.abs(got - np.tanh(x)).max() < 5e-5


@pytest.mark.parametrize("n", [2, 5])
def test_sigmoid_for_other_party_counts(n):
    x = _grid(np.linspace(-12, 12, 301))
    got, rounds = _run(lambda s: s.sigmoid(), x, n)
    assert np.abs(got - _sigmoid(x)).max() < 5e-5
    assert rounds == LAYERS[n] + 8 + 17 + 13 + 2


def test_sigmoid_and_tanh_saturate_far_outside():
    x = _grid(np.array([-1e9, -1e3, -64.5, 64.5, 1e3, 1e9, 2.0**45]))
    got, _ = _run(approx.sigmoid, x, bound=2.0**45)
    assert np.abs(got - _sigmoid(x)).max() < 2e-5
    got, _ = _run(approx.tanh, x, bound=2.0**45)
    assert np.abs(got - np.tanh(x)).max() < 2e-5


def test_reciprocal_relative_error_below_1e_4_on_1e_2_to_1e_3():
    x = _grid(np.geomspace(1e-2, 1e3, 3001))
    got, rounds = _run(lambda s: s.reciprocal(), x)
    assert np.abs(got * x - 1).max() < 1e-4
    assert rounds == 2 * (LAYERS[3] + 8) + 15
    got, rounds = _run(lambda s: approx.reciprocal(s, positive=True), x)
    assert np.abs(got * x - 1).max() < 1e-4
    assert rounds == LAYERS[3] + 8 + 15


def test_reciprocal_of_negative_values_and_the_whole_range():
    x = _grid(np.geomspace(2.0**-8, 2.0**12 * 0.999, 1001) * np.where(np.arange(1001) % 2, 1, -1))
    got, _ = _run(approx.reciprocal, x)
    assert np.abs(got * x - 1).max() < 2e-4


def test_division_shared_and_public():
    rng = np.random.default_rng(3)
    a = _grid(rng.uniform(-100, 100, 500))
    b = _grid(rng.uniform(0.5, 50, 500) * rng.choice([-1, 1], 500))

    def prog(party):
        sa = mpc.share(party, a if party.id == 0 else None, 0)
        sb = mpc.share(party, b if party.id == 1 else None, 1)
        return (sa / sb).reveal(), (sa / 4).reveal(), (3.0 / sb).reveal(), (sa / np.full(500, -2.5)).reveal()

    q, q4, r3, qn = mpc.run(prog, 3).outputs[0]
    assert np.abs(q - a / b).max() < 1e-3 * np.abs(a / b).max()
    assert np.abs(q4 - a / 4).max() < 2e-5
    assert np.abs(r3 - 3 / b).max() < 1e-4
    # a public real factor keeps about f + 1 significant bits (the core's public products)
    assert np.abs(qn - a / -2.5).max() < 4e-4


def test_exp_accuracy_and_clamping():
    x = _grid(np.concatenate([np.linspace(-64, 20, 3001), [-1e6, -100.0, 25.0, 1e6]]))
    got, rounds = _run(lambda s: s.exp(), x, bound=1e6)
    want = np.exp(np.clip(x, -64, 20))
    neg = x <= 0
    assert np.abs(got[neg] - want[neg]).max() < 5e-5
    assert (np.abs(got[~neg] - want[~neg]) / want[~neg]).max() < 5e-5
    assert rounds == LAYERS[3] + 8 + 5 + 16


def test_log_sqrt_rsqrt_over_their_ranges():
    x = _grid(np.geomspace(2.0**-16, 2.0**24 * 0.999, 2001))
    got, _ = _run(approx.log, x, bound=2.0**24)
    assert np.abs(got - np.log(x)).max() < 3e-5
    got, _ = _run(approx.rsqrt, x, bound=2.0**24)
    want = 1 / np.sqrt(x)
    assert np.abs(got - want).max() < 2.0**-24 + 1e-6 * want.max()
    assert (np.abs(got - want) / want)[x < 2**16].max() < 3e-5
    xs = np.concatenate([[0.0], x])
    got, _ = _run(approx.sqrt, xs, bound=2.0**24)
    assert got[0] == 0.0
    assert (np.abs(got - np.sqrt(xs)) <= 2e-5 + 1e-7 * np.sqrt(xs)).all()


@pytest.mark.parametrize("n", [2, 3])
def test_rounds_of_log_sqrt_rsqrt_softmax_match_the_docstrings(n):
    L = LAYERS[n]
    x = np.array([0.5, 3.0, 700.0])
    assert _run(approx.log, x, n)[1] == L + 8 + 1 + 6 + 1
    assert _run(approx.rsqrt, x, n)[1] == L + 8 + 2 + 18 + 2
    assert _run(approx.sqrt, x, n)[1] == L + 8 + 2 + 18 + 2 + 2
    for k in (2, 4, 5):
        assert _run(lambda s: s.softmax(axis=1), np.zeros((2, k)), n)[1] == \
            (int(np.ceil(np.log2(k))) + 2) * (L + 8) + 35
    assert _run(lambda s: s.softmax(axis=1), np.zeros((2, 1)), n)[1] == L + 41


def test_softmax_within_5e_5_on_logits_in_minus_10_to_10():
    rng = np.random.default_rng(5)
    x = _grid(rng.uniform(-10, 10, (300, 10)))
    x[0] = 3.0  # all equal
    x[1, :] = -10.0
    x[1, 4] = 10.0  # one dominant
    got, _ = _run(lambda s: s.softmax(axis=1), x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    assert np.abs(got - want).max() < 5e-5


def test_softmax_axes_and_single_element():
    x = _grid(np.random.default_rng(6).uniform(-30, 30, (3, 4, 5)))

    def ref(v, axis):
        e = np.exp(v - v.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0)
        return [approx.softmax(sx, 0).reveal(), approx.softmax(sx, -1).reveal(), sx[:, :1].softmax(1).reveal()]

    a0, a2, one = mpc.run(prog, 2).outputs[0]
    assert np.abs(a0 - ref(x, 0)).max() < 5e-5
    assert np.abs(a2 - ref(x, 2)).max() < 5e-5
    assert np.abs(one - 1.0).max() < 5e-5


def test_integer_tensors_are_lifted_to_fixed_point():
    k = np.array([1, 2, 4, 10])

    def prog(party):
        sk = mpc.share(party, k if party.id == 0 else None, 0, integer=True)
        return sk.reciprocal().reveal(), sk.exp().reveal(), approx.log(sk).reveal()

    r, e, lg = mpc.run(prog, 2).outputs[0]
    assert np.abs(r - 1 / k).max() < 1e-5
    assert (np.abs(e - np.exp(k)) / np.exp(k)).max() < 5e-5
    assert np.abs(lg - np.log(k)).max() < 3e-5


def test_misuse_is_refused_clearly():
    def prog(party):
        sx = mpc.share(party, np.ones(3) if party.id == 0 else None, 0)
        with pytest.raises(ParameterError, match="SharedTensor"):
            approx.exp(np.ones(3))
        with pytest.raises(ParameterError, match="axis"):
            sx.softmax(axis=2)
        with pytest.raises(ParameterError, match="dimension"):
            approx.softmax(sx[0])
        with pytest.raises(ParameterError, match="zero"):
            sx / 0
        with pytest.raises(ParameterError, match="divide"):
            approx.divide(sx, "a")
        return True

    assert mpc.run(prog, 2).outputs[0]


def test_truncation_is_exact_near_the_range_limits():
    """Products up to |x| < 2^62 in the ring truncate to floor or ceil of x / 2^f, never wrap.

    (:mod:`mpc.sharing.truncation`: exact probabilistic truncation, no failure probability.)
    """
    rng = np.random.default_rng(8)
    big = 2**62 - 1
    vals = np.concatenate([rng.integers(-big, big, 100_000, dtype=np.int64, endpoint=True),
                           [big, -big, 0, 1, -1, 2**61, -(2**61)]])

    def prog(party):
        sx = mpc.share(party, vals if party.id == 0 else None, 0, integer=True, bound=2.0**62)
        return mpc.SharedTensor(party, truncate(party, sx.share, 16), 0).reveal()

    for n in (2, 3):
        got = mpc.run(prog, n).outputs[0]
        floor = vals >> 16
        assert np.all((got == floor) | (got == floor + 1))
        exact = vals % 2**16 == 0
        assert np.array_equal(got[exact], floor[exact])


def test_opened_values_during_sigmoid_do_not_depend_on_the_input():
    from tests.mpc.sharing.test_compare import _chi_square_uniform_and_same, _record_openings

    def prog(party, xs, sink):
        sx = mpc.share(party, xs if party.id == 0 else None, 0)
        if party.id == 1:
            _record_openings(party, sink)
        sx.sigmoid()
        return None

    # One histogram per kind of opening (and, inject, mul, ...): pooled with everything else,
    # the few bytes of the injected comparison bits could be all zero (the sign of every input
    # opened in the clear) and still pass.
    hists = {}
    for value in (0.0, -40.0):
        sink = []
        mpc.run(prog, 3, args=(np.full(400, value), sink))
        for kind in {k for k, _ in sink}:
            raw = np.concatenate([v.reshape(-1).view(np.uint8) for k, v in sink if k == kind])
            hists.setdefault(kind, []).append(np.bincount(raw, minlength=256))
    assert {"and", "inject-bits", "inject"} <= hists.keys()
    for kind, pair in hists.items():
        assert len(pair) == 2, kind
        _chi_square_uniform_and_same(*pair)
