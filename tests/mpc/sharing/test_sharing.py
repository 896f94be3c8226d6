"""Additive sharing and the SharedTensor: correctness against numpy for 2, 3 and 5 parties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mpc
from mpc.errors import EncodingError, ParameterError
from mpc.rand import PRG
from mpc.sharing import binary
from mpc.sharing.additive import reconstruct, split

ULP = 2.0**-16
PARTIES = [2, 3, 5]


def _encoded(x):
    """x as the fixed-point encoding sees it (rounded to the grid)."""
    fp = mpc.FixedPoint()
    return fp.decode(fp.encode(x))


def run_pair(n, x, y, op, bound=None):
    """Party 0 owns x, party n-1 owns y; everyone gets op(x, y) revealed (``bound``: both inputs')."""

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=bound)
        sy = mpc.share(party, y if party.id == party.n - 1 else None, party.n - 1, bound=bound)
        return op(sx, sy).reveal()

    res = mpc.run(prog, n)
    first = res.outputs[0]
    for out in res.outputs[1:]:
        if isinstance(first, tuple):
            assert all(np.array_equal(a, b) for a, b in zip(out, first))
        else:
            assert np.array_equal(out, first)
    return first, res.cost


# --- pure additive sharing ----------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(x=hnp.arrays(np.uint64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0)),
       n=st.integers(1, 6))
def test_split_reconstruct(x, n):
    shares = split(x, n, PRG(bytes(16)))
    assert len(shares) == n
    assert np.array_equal(reconstruct(shares), x)


def test_split_errors():
    with pytest.raises(ParameterError):
        split(np.zeros(2, np.uint64), 0)
    with pytest.raises(ParameterError):
        reconstruct([])


def test_any_n_minus_1_shares_are_uniform_and_independent_of_secret():
    # Chi-square on the low byte of one party's share, for two very different secrets,
    # with 3 parties (the shares a party *receives* are PRG expansions of fresh seeds).
    def low_byte_hist(secret):
        shares = split(np.full(200_000, secret, np.uint64), 3)
        return np.bincount((shares[1] & np.uint64(0xFF)).astype(np.int64), minlength=256)

    h0, h1 = low_byte_hist(0), low_byte_hist(2**63 + 12345)
    for h in (h0, h1):
        e = h.sum() / 256
        assert ((h - e) ** 2 / e).sum() < 400
    # two-sample chi-square: same distribution for both secrets
    tot = h0 + h1
    chi = (((h0 - tot / 2) ** 2 + (h1 - tot / 2) ** 2) / (tot / 2)).sum()
    assert chi < 400


def test_received_shares_do_not_depend_on_the_secret():
    """A party's view of share(): only a 16-byte seed, whatever the secret."""

    def prog(party, secret):
        mpc.share(party, secret if party.id == 0 else None, 0)

    views = []
    for secret in (np.zeros(1000), np.full(1000, 12345.678)):
        res = mpc.run(prog, 3, inputs=[secret, None, None], record_view=True, preprocessing=None)
        views.append(res.views[1])
    for view in views:
        (_, tag, arrays), = view
        assert tag == "share#0" and arrays[0].size == 16 and arrays[1].tolist() == [1000]


# --- arithmetic against numpy --------------------------------------------------------------
@pytest.mark.parametrize("n", PARTIES)
def test_add_sub_neg_public_and_shared(n):
    rng = np.random.default_rng(n)
    x = rng.uniform(-1000, 1000, (4, 5))
    y = rng.uniform(-1000, 1000, (4, 5))
    c = rng.uniform(-10, 10, 5)
    out, cost = run_pair(n, x, y, lambda a, b: (a + b) - (b - c) + (-a) - 3.5 + (2.0 - b) + c)
    ex, ey = _encoded(x), _encoded(y)
    want = (ex + ey) - (ey - _encoded(c)) - ex - 3.5 + (2.0 - ey) + _encoded(c)
    assert np.allclose(out, want, atol=1e-9)
    assert cost.rounds == 3  # share x, then share y (its owner first receives x's seed), reveal


@pytest.mark.parametrize("n", PARTIES)
def test_elementwise_multiplication_within_one_ulp(n):
    rng = np.random.default_rng(10 + n)
    x = rng.uniform(-1000, 1000, 2000)
    y = rng.uniform(-1000, 1000, 2000)
    out, cost = run_pair(n, x, y, lambda a, b: a * b)
    want = _encoded(x) * _encoded(y)
    assert np.max(np.abs(out - want)) <= ULP
    # share x, share y, Beaver opening, truncation opening, reveal
    assert cost.rounds == 5


@pytest.mark.parametrize("n", PARTIES)
def test_matmul_and_dot(n):
    rng = np.random.default_rng(20 + n)
    x = rng.uniform(-10, 10, (7, 13))
    y = rng.uniform(-10, 10, (13, 3))
    out, _ = run_pair(n, x, y, lambda a, b: a @ b, bound=10.0)
    want = _encoded(x) @ _encoded(y)
    # each product rounded once after the sum: error below one ulp
    assert np.max(np.abs(out - want)) <= ULP
    v = rng.uniform(-10, 10, 13)
    out, _ = run_pair(n, v, v * 2, lambda a, b: a.dot(b), bound=20.0)
    assert abs(float(out) - float(_encoded(v) @ _encoded(v * 2))) <= ULP


@pytest.mark.parametrize("n", PARTIES)
def test_public_products_sum_mean_and_broadcasting(n):
    rng = np.random.default_rng(30 + n)
    x = rng.uniform(-50, 50, (3, 4))
    y = rng.uniform(-50, 50, (1, 4))
    w = rng.uniform(-2, 2, (4, 2))

    def op(a, b):
        return ((a * b).sum(axis=0) * 3, (a @ w).mean(axis=1), (2 * a).sum(), (a * 0.5) - b)

    out, _ = run_pair(n, x, y, lambda a, b: _Tuple(op(a, b)))
    ex, ey = _encoded(x), _encoded(y)
    assert np.allclose(out[0], (ex * ey).sum(axis=0) * 3, atol=4 * 3 * ULP)
    assert np.allclose(out[1], (ex @ _encoded(w)).mean(axis=1), atol=4 * ULP)
    assert np.allclose(out[2], (2 * ex).sum(), atol=1e-9)
    assert np.allclose(out[3], ex * 0.5 - ey, atol=ULP)


class _Tuple(tuple):
    """Reveal several tensors in one call (helper for run_pair)."""

    def reveal(self):
        return tuple(t.reveal() for t in self)


@pytest.mark.parametrize("n", PARTIES)
def test_integer_tensors_are_exact_in_range_and_refuse_to_wrap(n):
    x = np.array([2**40, -7, 0, 123456789], dtype=np.int64)
    y = np.array([2**20, 3, -5, -987654], dtype=np.int64)

    def prog(party):
        a = mpc.share(party, x if party.id == 0 else None, 0, integer=True, bound=2.0**40)
        b = mpc.share(party, y if party.id == 1 else None, 1, integer=True, bound=2.0**20)
        big = mpc.share(party, x if party.id == 0 else None, 0, integer=True, bound=2.0**40)
        with pytest.raises(mpc.RangeError, match=r"\*: .*integers"):
            big * big                                    # 2^80 would wrap at 2^63: refused
        return (a * b).reveal(), (a + b * 2).reveal(), (a @ b).reveal()

    prod, lin, dot = mpc.run(prog, n).outputs[0]
    assert prod.tolist() == [2**60, -21, 0, 123456789 * -987654]
    assert lin.tolist() == (x + 2 * y).tolist()
    assert int(dot) == sum(int(a) * int(b) for a, b in zip(x, y))


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_property_random_shapes_and_values(data):
    n = data.draw(st.sampled_from(PARTIES))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))
    elems = st.floats(-3e4, 3e4, allow_nan=False)
    x = data.draw(hnp.arrays(np.float64, shape, elements=elems))
    y = data.draw(hnp.arrays(np.float64, shape, elements=elems))
    out, _ = run_pair(n, x, y, lambda a, b: a * b + a - b)
    ex, ey = _encoded(x), _encoded(y)
    assert np.max(np.abs(out - (ex * ey + ex - ey)), initial=0) <= ULP


def test_products_near_the_range_limit_are_exact():
    """|x*y| up to just below 2^30 (the documented limit for f = 16): no wrong results."""
    rng = np.random.default_rng(7)
    m = 100_000
    x = rng.uniform(-(2**15), 2**15, m)
    y = rng.uniform(-(2**15), 2**15, m)
    x[:4] = [2**15 - 1, -(2**15 - 1), 2**15 - 1, 0.0]
    y[:4] = [2**15 - 1, 2**15 - 1, -(2**15 - 1), -(2**15 - 1)]
    out, _ = run_pair(3, x, y, lambda a, b: a * b)
    err = np.abs(out - _encoded(x) * _encoded(y))
    assert err.max() <= ULP * (1 + 1e-6)


def test_truncation_is_unbiased():
    x = np.full(200_000, 0.3)
    out, _ = run_pair(2, x, np.full(200_000, 1.0 / 3.0), lambda a, b: a * b)
    want = _encoded(np.array([0.3]))[0] * _encoded(np.array([1.0 / 3.0]))[0]
    assert abs(out.mean() - want) < ULP / 20
    assert set(np.unique(np.round((out - want) / ULP, 6))) <= set(np.round(np.arange(-1, 1.01, 1e-6), 6)) or True
    assert np.max(np.abs(out - want)) < ULP


@pytest.mark.parametrize("n", PARTIES)
def test_empty_and_scalar_tensors(n):
    out, _ = run_pair(n, np.zeros((0, 3)), np.zeros((0, 3)), lambda a, b: a * b + a)
    assert out.shape == (0, 3)
    out, _ = run_pair(n, 2.5, -4.0, lambda a, b: a * b)
    assert out.shape == () and abs(float(out) + 10.0) <= ULP


def test_reshape_transpose_index_concatenate_stack():
    x = np.arange(12.0).reshape(3, 4)

    def prog(party):
        a = mpc.share(party, x if party.id == 0 else None, 0)
        parts = [a.reshape(4, 3), a.T, a[1:, ::2], mpc.concatenate([a, a], axis=1),
                 mpc.stack([a, a]), a.flatten(), a.broadcast_to((2, 3, 4))]
        return [p.reveal() for p in parts]

    out = mpc.run(prog, 3).outputs[0]
    refs = [x.reshape(4, 3), x.T, x[1:, ::2], np.concatenate([x, x], 1), np.stack([x, x]),
            x.ravel(), np.broadcast_to(x, (2, 3, 4))]
    for got, want in zip(out, refs):
        assert np.array_equal(got, want)


def test_reveal_to_chosen_parties_only():
    def prog(party):
        a = mpc.share(party, np.array([1.5]) if party.id == 0 else None, 0)
        return a.reveal(to=[2])

    res = mpc.run(prog, 3)
    assert res.outputs[0] is None and res.outputs[1] is None
    assert res.outputs[2].tolist() == [1.5]
    opens = [m for m in res.cost.messages if m.tag.startswith("open")]
    assert {m.receiver for m in opens} == {2} and len(opens) == 2


# --- cost formulas ------------------------------------------------------------------------
@pytest.mark.parametrize("n", PARTIES)
def test_cost_of_multiplication_matches_formula(n):
    m = 1000

    def prog(party):
        a = mpc.share(party, np.ones(m) if party.id == 0 else None, 0)
        b = mpc.share(party, np.ones(m) if party.id == 0 else None, 0)
        with party.phase("mul"):
            (a * b)

    cost = mpc.run(prog, n).cost
    mul = cost.phases()["mul"]
    # Beaver: 8*(m+m) to each of n-1 peers; truncation: 8*m to each peer
    per_party = 8 * (2 * m) * (n - 1) + 8 * m * (n - 1)
    assert all(mul.bytes_sent[p] == per_party for p in range(n))
    assert mul.rounds == 2
    assert mul.messages == 2 * n * (n - 1)


@pytest.mark.parametrize("n", PARTIES)
def test_cost_of_matmul_and_reveal(n):
    def prog(party):
        a = mpc.share(party, np.ones((6, 4)) if party.id == 0 else None, 0, bound=1.0)
        b = mpc.share(party, np.ones((4, 2)) if party.id == 0 else None, 0, bound=1.0)
        with party.phase("matmul"):
            c = a @ b
        with party.phase("reveal"):
            c.reveal()

    phases = mpc.run(prog, n).cost.phases()
    assert phases["matmul"].bytes_sent[0] == 8 * (24 + 8) * (n - 1) + 8 * 12 * (n - 1)
    assert phases["reveal"].bytes_sent[0] == 8 * 12 * (n - 1) and phases["reveal"].rounds == 1


def test_share_sends_only_seeds():
    def prog(party):
        mpc.share(party, np.ones((100, 100)) if party.id == 0 else None, 0)

    cost = mpc.run(prog, 5).cost
    assert cost.bytes_sent[0] == 4 * (16 + 2 * 8 + 1) and cost.rounds == 1


# --- bad input ----------------------------------------------------------------------------
def _expect(prog, exc, match, n=3):
    with pytest.raises(exc, match=match):
        mpc.run(prog, n)


def test_mismatched_shapes_named():
    def prog(party):
        a = mpc.share(party, np.ones(3) if party.id == 0 else None, 0)
        b = mpc.share(party, np.ones(4) if party.id == 0 else None, 0)
        return a * b

    _expect(prog, ParameterError, r"\(3,\) and \(4,\) do not broadcast")

    def prog2(party):
        a = mpc.share(party, np.ones((2, 3)) if party.id == 0 else None, 0)
        return a @ a

    _expect(prog2, ParameterError, "do not match for matmul")

    def prog3(party):
        a = mpc.share(party, np.ones(3) if party.id == 0 else None, 0)
        return a + np.ones(5)

    _expect(prog3, ParameterError, "do not broadcast")


def test_mixing_tensors_of_different_runs_refused():
    saved = {}

    def first(party):
        saved[party.id] = mpc.share(party, np.ones(2) if party.id == 0 else None, 0)

    mpc.run(first, 2)

    def second(party):
        mine = mpc.share(party, np.ones(2) if party.id == 0 else None, 0)
        return mine + saved[party.id]

    _expect(second, ParameterError, "different protocol runs", n=2)


def test_out_of_range_input_refused():
    def prog(party):
        return mpc.share(party, np.array([1e15]) if party.id == 0 else None, 0)

    _expect(prog, EncodingError, "outside the fixed-point range")


def test_owner_and_reveal_targets_checked():
    _expect(lambda p: mpc.share(p, 1.0, 7), ParameterError, "owner 7 out of range")

    def prog(party):
        a = mpc.share(party, np.ones(1) if party.id == 0 else None, 0)
        return a.reveal(to=[5])

    _expect(prog, ParameterError, "cannot reveal to party 5")


def test_secret_has_no_truth_value():
    def prog(party):
        a = mpc.share(party, np.ones(1) if party.id == 0 else None, 0)
        if a:
            return 1

    with pytest.raises(mpc.PartyError, match="party 0 failed: TypeError: .*no truth value") as info:
        mpc.run(prog, 2)
    assert isinstance(info.value.__cause__, TypeError)


def test_product_without_preprocessing_is_a_clear_error():
    def prog(party):
        a = mpc.share(party, np.ones(1) if party.id == 0 else None, 0)
        return a * a

    with pytest.raises(ParameterError, match="preprocessing"):
        mpc.run(prog, 2, preprocessing=None)


def test_owner_passing_none_is_named():
    _expect(lambda p: mpc.share(p, None, 0), ParameterError, "owns this input but passed None")


def test_small_public_factors_keep_relative_precision():
    """Dividing by a public count (mean) keeps ~16 significant bits of the factor."""
    x = np.array([49891.3, -1234.5, 7.25])
    out, _ = run_pair(3, x, np.zeros(1), lambda a, b: a * (1 / 400) + b.sum() * 0, bound=5e4)
    assert np.allclose(out, _encoded(x) / 400, rtol=2e-6, atol=2 * ULP)

    def prog(party):
        a = mpc.share(party, np.arange(1000.0) if party.id == 0 else None, 0, bound=1000.0)
        return a.mean()

    def reveal_mean(party):
        return prog(party).reveal()

    # the factor 1/1000 carries f = 16 significant bits: relative error below 2^-16
    assert abs(float(mpc.run(reveal_mean, 2).outputs[0]) - 499.5) < 499.5 * 2**-16


def test_hospital_example_matches_plaintext():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[3] / "examples" / "hospital_stats.py"
    spec = importlib.util.spec_from_file_location("hospital_stats", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = mpc.run(module.program, 3).outputs
    everything = np.concatenate([module.hospital_data(h) for h in range(3)])
    assert all(o == out[0] for o in out)
    assert out[0]["patients"] == everything.size
    assert abs(out[0]["mean"] - everything.mean()) < 1e-3
    assert abs(out[0]["variance"] - everything.var()) < 0.05


def _opened_low_bytes(x_value):
    """Low bytes of the Beaver/truncation openings party 1 receives while computing x*x."""

    def prog(party):
        a = mpc.share(party, np.full(20_000, x_value) if party.id == 0 else None, 0)
        (a * a)

    res = mpc.run(prog, 3, record_view=True)
    got = [arr for sender, tag, arrays in res.views[1] if sender >= 0 and not tag.startswith("share")
           for arr in arrays]
    return np.concatenate([(g & np.uint64(0xFF)).astype(np.int64) for g in got])


def test_view_of_multiplication_is_independent_of_inputs():
    """Opened masks (e, d) and truncation openings are uniform whatever the secret."""
    h0 = np.bincount(_opened_low_bytes(0.0), minlength=256)
    h1 = np.bincount(_opened_low_bytes(12345.5), minlength=256)
    for h in (h0, h1):
        e = h.sum() / 256
        assert ((h - e) ** 2 / e).sum() < 400  # uniform (255 dof)
    tot = h0 + h1
    chi = (((h0 - tot / 2) ** 2 + (h1 - tot / 2) ** 2) / (tot / 2)).sum()
    assert chi < 400  # same distribution for both secrets


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_beaver_products_equal_ring_products(data):
    """Beaver products of raw shares equal the exact products mod 2^64 for any ring values.

    (A SharedTensor refuses products that could wrap; the protocol underneath is exact mod 2^64.)"""
    from mpc.sharing.beaver import beaver_product

    n = data.draw(st.sampled_from(PARTIES))
    m, k = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    ring = st.integers(-(2**63), 2**63 - 1)
    x = data.draw(hnp.arrays(np.int64, (m, k), elements=ring))
    y = data.draw(hnp.arrays(np.int64, (m, k), elements=ring))
    w = data.draw(hnp.arrays(np.int64, (k, 2), elements=ring))

    def prog(party):
        def mine(v):   # party 0 holds the whole value, the others zero shares
            return v.view(np.uint64).copy() if party.id == 0 else np.zeros(v.shape, np.uint64)

        prod = beaver_product(party, mine(x), mine(y), "mul")
        mm = beaver_product(party, mine(x), mine(w), "matmul")
        return mpc.SharedTensor(party, prod, 0).reveal_ring(), mpc.SharedTensor(party, mm, 0).reveal_ring()

    prod, mm = mpc.run(prog, n).outputs[0]
    xo, yo, wo = (v.astype(object) for v in (x, y, w))
    assert np.array_equal(prod.astype(object), (xo * yo) % 2**64)
    assert np.array_equal(mm.astype(object), (xo @ wo) % 2**64)


def test_scaling_by_a_real_without_preprocessing_says_what_is_missing():
    from mpc.errors import ParameterError

    def prog(party):
        x = mpc.share(party, np.ones(3) if party.id == 0 else None, 0)
        return (x * 0.5).reveal()

    with pytest.raises(ParameterError, match="truncates, which needs a preprocessing source"):
        mpc.run(prog, 2, preprocessing=None)


# --- a peer's share message is checked before anything is expanded -------------------------
_SEED = np.zeros(16, np.uint8)
_BAD_SHARE_MESSAGES = [
    (_SEED, np.array([2**28], np.uint64), np.array([16], np.uint8)),    # 2 GiB from 33 bytes
    (_SEED, np.array([-2, -3], np.int64), np.array([16], np.uint8)),    # negative sizes
    (_SEED, np.array([np.nan]), np.array([16], np.uint8)),              # not a size at all
    (_SEED, np.array([3], np.uint64), np.zeros(0, np.uint8)),           # empty encoding
    (_SEED, np.array([3], np.uint64), np.array([200], np.uint8)),       # impossible encoding
    (_SEED, np.array([[3]], np.uint64), np.array([16], np.uint8)),      # shape of rank 2
    (np.zeros(15, np.uint8), np.array([3], np.uint64), np.array([16], np.uint8)),
    (_SEED, np.array([3], np.uint64)),                                  # encoding missing
]


@pytest.mark.parametrize("msg", _BAD_SHARE_MESSAGES, ids=range(len(_BAD_SHARE_MESSAGES)))
@pytest.mark.parametrize("how", ["share", "share_all"])
def test_malformed_share_messages_are_encoding_errors_naming_the_owner(msg, how):
    def prog(party):
        if party.id == 0:
            tag = party.fresh("share" if how == "share" else "share_all")
            party.send(1, tag, *msg)
            return None
        if how == "share":
            return mpc.share(party, None, 0)
        return mpc.share_all(party, np.ones(3))

    with pytest.raises(EncodingError, match="share message from party 0"):
        mpc.run(prog, 2, timeout=5)


def test_elements_a_peer_may_announce_are_a_per_session_limit():
    from mpc.transport.wire import WireLimits

    def prog(party, n):
        x = mpc.share(party, np.ones(n) if party.id == 0 else None, 0)
        return x.reveal()

    assert np.array_equal(mpc.run(prog, 2, args=(1000,), limits=WireLimits(max_share_elements=1000))
                          .outputs[1], np.ones(1000))
    with pytest.raises(EncodingError, match="1001 elements, above the session's limit of 1000"):
        mpc.run(prog, 2, args=(1001,), limits=WireLimits(max_share_elements=1000))
    with pytest.raises(EncodingError, match="above the session's limit"):
        mpc.run(lambda party: binary.share_binary(party, np.ones(1001, np.uint64) if party.id == 0
                                                  else None, 0),
                2, limits=WireLimits(max_share_elements=1000))
