"""Secure comparisons, sign, abs, ReLU, where, max/argmax/min and clip: exact against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import ParameterError
from mpc.sharing import compare
from mpc.sharing.tensor import where

PARTIES = [2, 3, 5]
LAYERS = {2: 0, 3: 1, 4: 2, 5: 3}
FP = mpc.FixedPoint()
TOP = 2.0**46 - 1.0  # near the encodable limit |x| < 2^46 that float64 represents exactly


def _grid(x):
    return FP.decode(FP.encode(x))


def _pairs(n_pairs, seed):
    """Random pairs with negatives, zeros, equal values, odd fractions and the range limits."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1000, 1000, n_pairs)
    y = rng.uniform(-1000, 1000, n_pairs)
    q = n_pairs // 10
    x[:q] = y[:q]                                       # equal
    x[q:2 * q] = 0.0                                    # zero against anything
    y[2 * q:3 * q] = 0.0
    x[3 * q:4 * q] = -x[3 * q:4 * q] * 1e-6            # tiny magnitudes, both signs
    y[4 * q:5 * q] = x[4 * q:5 * q] + 2.0**-16          # one unit apart
    x[5 * q:6 * q] = rng.uniform(-TOP, TOP, q)          # the whole range
    y[5 * q:6 * q] = rng.uniform(-TOP, TOP, q)
    lim = np.array([[TOP, -TOP], [-TOP, TOP], [TOP, TOP], [-TOP, -TOP], [TOP, 0], [0, -TOP],
                    [TOP, TOP - 2.0**-16 * 64], [-TOP, 2.0**-16]])
    x[-len(lim):], y[-len(lim):] = lim[:, 0], lim[:, 1]
    return _grid(x), _grid(y)


def _run_pair(n, x, y, fn, **kw):
    kw.setdefault("bound", TOP)  # the inputs reach the range limits: their declared public bound

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0, **kw)
        sy = mpc.share(party, y if party.id == party.n - 1 else None, party.n - 1, **kw)
        return [o.reveal() for o in fn(sx, sy)]

    res = mpc.run(prog, n, timeout=120)
    for out in res.outputs[1:]:
        for a, b in zip(out, res.outputs[0]):
            assert np.array_equal(a, b)
    return res.outputs[0], res.cost


def _six(sx, sy):
    return [sx < sy, sx <= sy, sx > sy, sx >= sy, sx == sy, sx != sy]


def _check_six(got, x, y):
    want = [x < y, x <= y, x > y, x >= y, x == y, x != y]
    for g, w in zip(got, want):
        assert g.dtype == np.int64
        assert np.array_equal(g, w.astype(np.int64))


@pytest.mark.parametrize("n,pairs", [(2, 100_000), (3, 100_000), (5, 100_000)])
def test_comparisons_are_exact_on_random_pairs(n, pairs):
    x, y = _pairs(pairs, n)
    got, _ = _run_pair(n, x, y, _six)
    _check_six(got, x, y)


@pytest.mark.parametrize("n", PARTIES)
def test_comparisons_exact_at_the_ring_limits(n):
    """Fixed-point values whose encodings reach +-(2^62 - 1), the largest the encoder allows."""
    e = np.array([2**62 - 1, -(2**62 - 1), 0, 1, -1, 2**62 - 2, -(2**62 - 2), 2**61], np.int64)
    x = np.repeat(e, e.size)
    y = np.tile(e, e.size)

    def lift(fn):
        def inner(sx, sy):
            return fn(mpc.SharedTensor(sx.party, sx.share, 16), mpc.SharedTensor(sy.party, sy.share, 16))
        return inner

    got, _ = _run_pair(n, x, y, lift(_six), integer=True, bound=2.0**62)
    _check_six(got, x, y)
    # as integers as well, with bounds whose difference fits the signed ring (|x - y| < 2^63)
    got, _ = _run_pair(n, x // 2, y // 2, lambda a, b: _six(a, b), integer=True, bound=2.0**61)
    _check_six(got, x // 2, y // 2)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_rounds_and_bytes_of_a_comparison(n):
    m = 640

    def prog(party):
        sx = mpc.share(party, np.linspace(-5, 5, m) if party.id == 0 else None, 0)
        with party.phase("lt"):
            lt = sx < 0.25
        with party.phase("relu"):
            r = sx.relu()
        with party.phase("eq"):
            eq = sx == 1.0
        return lt.reveal(), r.reveal(), eq.reveal()

    res = mpc.run(prog, n)
    lt, r, eq = res.outputs[0]
    v = _grid(np.linspace(-5, 5, m))
    assert np.array_equal(lt, (v < 0.25).astype(np.int64)) and np.array_equal(r, np.maximum(v, 0))
    assert np.array_equal(eq, (v == 1.0).astype(np.int64))
    ph = res.cost.phases()
    L = LAYERS[n]
    for name in ("lt", "relu", "eq"):
        assert ph[name].rounds == L + 8
    # msb: 16 m L (carry-save) + 16 * 189 m / 64 (prefix tree); inject: m / 8 (+ 16 m with a product)
    base = 16 * m * L + 16 * (m + m + m // 2 + m // 4 + m // 8 + m // 16 + m // 64) + m // 8
    assert ph["lt"].bytes_sent[0] == base * (n - 1)
    assert ph["relu"].bytes_sent[0] == (base + 16 * m) * (n - 1)
    assert ph["eq"].bytes_sent[0] == (2 * base) * (n - 1)


def test_public_operands_and_integer_tensors():
    x = _grid(np.array([-2.5, -1.0, 0.0, 0.5, 1.0, 3.0]))
    k = np.array([-3, -1, 0, 0, 1, 7])

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0)
        sk = mpc.share(party, k if party.id == 1 else None, 1, integer=True)
        outs = [sx < 0.5, 0.5 < sx, sx >= np.array([0, 0, 0, 1, 1, 1]), sx == 1, 1.0 != sx,
                sk < 0.5, sk <= 0, sk > sx, sk == sx, sk >= -1]
        return [o.reveal() for o in outs]

    got = mpc.run(prog, 3).outputs[0]
    want = [x < 0.5, 0.5 < x, x >= np.array([0, 0, 0, 1, 1, 1]), x == 1, x != 1.0,
            k < 0.5, k <= 0, k > x, k == x, k >= -1]
    for g, w in zip(got, want):
        assert np.array_equal(g, w.astype(np.int64))


@pytest.mark.parametrize("n", PARTIES)
def test_sign_abs_relu_where_clip(n):
    rng = np.random.default_rng(n)
    x = _grid(np.concatenate([rng.uniform(-50, 50, 300), [0.0, -0.0, 2.0**-16, -2.0**-16, TOP, -TOP]]))
    y = _grid(rng.uniform(-50, 50, x.size))

    def fn(sx, sy):
        c = sx < sy
        return [sx.sign(), abs(sx), sx.relu(), where(c, sx, sy), where(c, 1.5, -2.0), where(c, 3, 4),
                where(x > 0, sx, sy), where(c, sx, 0.0), sx.clip(-10, 10), sx.clip(lo=sy), sx.clip(hi=sy),
                sx.clip(-1, sy.abs()), compare.clip(sx, None, 2)]

    got, _ = _run_pair(n, x, y, fn)
    want = [np.sign(x), np.abs(x), np.maximum(x, 0), np.where(x < y, x, y), np.where(x < y, 1.5, -2.0),
            np.where(x < y, 3, 4), np.where(x > 0, x, y), np.where(x < y, x, 0.0), np.clip(x, -10, 10),
            np.maximum(x, y), np.minimum(x, y), np.clip(x, -1, np.abs(y)), np.minimum(x, 2)]
    for i, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g, w), i


@pytest.mark.parametrize("n", [2, 3])
def test_max_min_argmax_along_axes_with_ties(n):
    rng = np.random.default_rng(7)
    x = _grid(rng.integers(-4, 5, (5, 7, 3)) * 0.75)  # many ties

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0)
        outs = [sx.max(), sx.min(), sx.argmax(), compare.argmin(sx), sx.max(axis=1), sx.min(axis=0),
                sx.argmax(axis=1), sx.argmax(axis=-1, keepdims=True), sx.max(axis=2, keepdims=True),
                compare.argmin(sx, axis=0), sx.max(keepdims=True)]
        return [o.reveal() for o in outs]

    got = mpc.run(prog, n).outputs[0]
    want = [x.max(), x.min(), x.argmax(), x.argmin(), x.max(axis=1), x.min(axis=0), x.argmax(axis=1),
            x.argmax(axis=-1, keepdims=True), x.max(axis=2, keepdims=True), x.argmin(axis=0),
            x.max(keepdims=True)]
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == np.shape(w) and np.array_equal(g, w), i


def test_max_rounds_follow_the_tree():
    def prog(party):
        sx = mpc.share(party, np.arange(12.0).reshape(2, 6) if party.id == 0 else None, 0)
        with party.phase("max"):
            m = sx.max(axis=1)
        return m.reveal()

    res = mpc.run(prog, 3)
    assert list(res.outputs[0]) == [5.0, 11.0]
    assert res.cost.phases()["max"].rounds == 3 * (LAYERS[3] + 8)  # ceil(log2 6) levels


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_property_random_shapes_and_values(data):
    shape = data.draw(st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple))
    size = int(np.prod(shape, dtype=np.int64))
    vals = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
    x = _grid(np.array(data.draw(st.lists(vals, min_size=size, max_size=size))).reshape(shape))
    y = _grid(np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0, -1.0]) | vals,
                                          min_size=size, max_size=size))).reshape(shape))
    n = data.draw(st.sampled_from([2, 3]))
    got, _ = _run_pair(n, x, y, lambda a, b: [*_six(a, b), a.relu(), where(a < b, a, b)])
    _check_six(got[:6], x, y)
    assert np.array_equal(got[6], np.maximum(x, 0)) and np.array_equal(got[7], np.minimum(x, y))


def _record_openings(party, sink):
    """Wrap ``party.exchange`` to keep every value it opens (all this protocol's messages are openings)."""
    exchange = party.exchange

    def wrapped(name, *arrays, peers=None, strict=False):
        got = exchange(name, *arrays, peers=peers, strict=strict)
        for k, mine in enumerate(arrays):
            xor = name.startswith("and") or (name.startswith("inject") and k == 0)
            total = np.array(mine, dtype=np.uint64, copy=True)
            for theirs in got.values():
                total = total ^ theirs[k] if xor else total + theirs[k]
            kind = name.split("#")[0]
            sink.append((kind + "-bits" if kind == "inject" and k == 0 else kind, total))
        return got

    party.exchange = wrapped


def _chi_square_uniform_and_same(h0, h1):
    for h in (h0, h1):
        e = h.sum() / 256
        assert ((h - e) ** 2 / e).sum() < 400  # 255 dof: mean 255, sd ~22.6
    tot = h0 + h1
    half = np.maximum(tot / 2, 0.5)  # a byte value neither run produced contributes 0
    assert (((h0 - tot / 2) ** 2 + (h1 - tot / 2) ** 2) / half).sum() < 400


def test_view_during_a_comparison_is_independent_of_the_inputs():
    """What party 1 receives, and every value it learns opened, look uniform for very different inputs.

    Chi-square on the bytes of (a) the messages party 1 receives and (b) the
    values opened to it (the XOR or sum of all parties' messages and its own),
    for all-zero inputs and for inputs at the range limits.
    """

    def prog(party, xs, ys, sink):
        sx = mpc.share(party, xs if party.id == 0 else None, 0, bound=TOP)
        sy = mpc.share(party, ys if party.id == 2 else None, 2, bound=TOP)
        if party.id == 1:
            _record_openings(party, sink)
        with party.scope("measured"):
            (sx < sy, sx.relu(), sx == sy)
        return None

    m = 2000
    cases = [(np.zeros(m), np.zeros(m)), (np.full(m, -TOP), np.full(m, TOP))]
    received_hists, opened_hists, shapes, kinds = [], [], [], {}
    for xs, ys in cases:
        sink = []
        res = mpc.run(prog, 3, args=(xs, ys, sink), record_view=True)
        received = [(tag, a) for sender, tag, arrays in res.views[1] if sender >= 0 and tag.startswith("measured")
                    for a in arrays]
        shapes.append([(t, a.shape, a.dtype) for t, a in received])
        raw = np.concatenate([a.reshape(-1).view(np.uint8) for _, a in received])
        received_hists.append(np.bincount(raw, minlength=256))
        opened = np.concatenate([v.reshape(-1).view(np.uint8) for _, v in sink])
        opened_hists.append(np.bincount(opened, minlength=256))
        for kind in {k for k, _ in sink}:  # per kind too: a small leak drowns in the pooled bytes
            raw = np.concatenate([v.reshape(-1).view(np.uint8) for k, v in sink if k == kind])
            kinds.setdefault(kind, []).append(np.bincount(raw, minlength=256))
    assert shapes[0] == shapes[1]  # same messages, same sizes, whatever the inputs
    _chi_square_uniform_and_same(*received_hists)
    _chi_square_uniform_and_same(*opened_hists)
    assert {"and", "inject-bits", "inject"} <= kinds.keys()
    for kind, pair in kinds.items():
        assert len(pair) == 2, kind
        _chi_square_uniform_and_same(*pair)


def test_misuse_is_refused_clearly():
    def prog(party):
        sx = mpc.share(party, np.arange(3.0) if party.id == 0 else None, 0)
        with pytest.raises(ParameterError, match="compare"):
            sx < "a"
        with pytest.raises(ParameterError, match="0/1"):
            where(sx, sx, sx)
        with pytest.raises(ParameterError, match="0/1"):
            where(np.array([0, 2, 1]), sx, sx)
        with pytest.raises(ParameterError, match="lo <= hi"):
            sx.clip(2, 1)
        with pytest.raises(ParameterError, match="at least one"):
            sx.clip()
        with pytest.raises(ParameterError, match="axis"):
            sx.max(axis=3)
        with pytest.raises(ParameterError, match="empty"):
            sx[:0].max()
        with pytest.raises(ParameterError, match="broadcast"):
            where(sx < 1, sx, mpc.share(party, np.zeros(2) if party.id == 0 else None, 0))
        with pytest.raises(TypeError):
            bool(sx < 1)
        assert (sx == "a") is False  # not a number: Python's default equality
        return {sx: 1}[sx]  # still hashable

    assert mpc.run(prog, 2).outputs[0] == 1


def test_integer_tensor_against_non_integer_reals_beyond_the_fixed_point_range():
    # An integer tensor is not lifted to fixed point (2^50 would overflow it): a
    # non-integer bound is replaced by floor(y) + 1/2, which orders integers the same way.
    xs = np.array([2**50, -(2**50), 3, 2, 0, -1, 7], dtype=np.int64)
    ys = np.array([0.5, 0.5, 2.5, 2.5, 0.0, -0.5, 7.0])

    def prog(party):
        x = mpc.share(party, xs if party.id == 0 else None, 0, integer=True, bound=2.0**50)
        return [(x < ys).reveal(), (x <= ys).reveal(), (x > ys).reveal(), (x >= ys).reveal(),
                (x == ys).reveal(), (x != ys).reveal(), (ys < x).reveal(), (ys >= x).reveal()]

    got = mpc.run(prog, 2).outputs[0]
    want = [xs < ys, xs <= ys, xs > ys, xs >= ys, xs == ys, xs != ys, ys < xs, ys >= xs]
    for g, w in zip(got, want):
        assert np.array_equal(g, w.astype(np.int64))


def test_integer_valued_real_factors_need_no_truncation():
    def prog(party):
        x = mpc.share(party, np.array([2.0**40, -3.5]) if party.id == 0 else None, 0, bound=2.0**40)
        return (x * 2.0).reveal(), (x * np.array([3.0, -4.0])).reveal()

    doubled, scaled = mpc.run(prog, 2).outputs[0]
    assert np.array_equal(doubled, [2.0**41, -7.0]) and np.array_equal(scaled, [3 * 2.0**40, 14.0])

    def big(party):
        x = mpc.share(party, np.array([3, -1]) if party.id == 0 else None, 0, integer=True, bound=3)
        return (x * 2.0**54).reveal()

    assert mpc.run(big, 2).outputs[0].tolist() == [3 * 2**54, -(2**54)]


def test_axis_of_a_zero_dimensional_tensor_is_refused():
    from mpc.errors import ParameterError

    def prog(party):
        x = mpc.share(party, np.array(3.0) if party.id == 0 else None, 0)
        with pytest.raises(ParameterError, match="axis 0 out of range"):
            x.max(axis=0)
        return x.max().reveal()

    assert mpc.run(prog, 2).outputs[0] == 3.0
