"""Dealer-free OT preprocessing: correctness of every item, offline/online split, uniformity, views.

The second half re-runs representative arithmetic and comparison tests of the
foundation and nonlinear suites with ``preprocessing="ot"`` at 2 parties: the
program is planned once, its triples produced offline by OT, and the online
cost (rounds, bytes) must equal what those tests assert for the dealer.
"""

import json

import numpy as np
import pytest
from tests.mpc.sharing import test_approx
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.mpc.sharing import test_binary
from tests.mpc.sharing import test_compare
from tests.mpc.sharing import test_sharing
from tests.conftest import TwoPartyOT

import mpc
from mpc.arith.ring import ring_matmul
from mpc.errors import EncodingError, ParameterError, PreprocessingExhausted
from mpc.preprocessing import store
from mpc.preprocessing.ot import OTSource, ot_factory
from mpc.preprocessing.plan import online_only, planned, record_plan
from mpc.runner import default_preprocessing
from mpc.sharing.binary import unpack_bits

SHAPES = [("mul", (5, 3), (3,)), ("mul", (), (4,)), ("mul", (0, 3), (0, 3)),
          ("matmul", (4, 3), (3, 2)), ("matmul", (3,), (2, 3, 5)), ("matmul", (2, 1, 3), (3, 4)), ("matmul", (2, 2, 3), (1, 3, 2)),
          ("matmul", (3,), (3,))]


def _add(a, b):
    return [x + y for x, y in zip(a, b)]


def _items(party):
    p = party.preprocessing
    return {"triples": [p.triple(op, sa, sb) for op, sa, sb in SHAPES],
            "trunc": [p.trunc_pair((9,), f) for f in (1, 16, 40)],
            "binary": p.binary_triple((3, 2)), "dabit": p.dabit((70,)), "dabit0": p.dabit((0,))}


def test_every_item_is_correct():
    res = mpc.run(_items, 2, preprocessing="ot")
    o0, o1 = res.outputs
    for (op, sa, sb), t0, t1 in zip(SHAPES, o0["triples"], o1["triples"]):
        a, b, c = _add(t0, t1)
        assert a.shape == sa and b.shape == sb
        want = a * b if op == "mul" else ring_matmul(a, b)
        assert c.shape == np.shape(want) and np.array_equal(c, want)
    for f, t0, t1 in zip((1, 16, 40), o0["trunc"], o1["trunc"]):
        r, hi, msb = _add(t0, t1)
        assert np.array_equal(hi, r >> np.uint64(f)) and np.array_equal(msb, r >> np.uint64(63))
    a, b, c = [x ^ y for x, y in zip(o0["binary"], o1["binary"])]
    assert a.shape == (3, 2) and np.array_equal(a & b, c)
    bits = unpack_bits(o0["dabit"][0] ^ o1["dabit"][0], 70)
    assert np.array_equal(o0["dabit"][1] + o1["dabit"][1], bits.astype(np.uint64))
    assert 10 < bits.sum() < 60
    assert o0["dabit0"][1].shape == (0,)
    # all of it is offline traffic, labelled as such
    assert set(res.cost.phases()) == {"offline"}


@settings(max_examples=6, deadline=None)
@given(m=st.integers(1, 4), k=st.integers(1, 4), n=st.integers(0, 3), batch=st.sampled_from([(), (2,), (1, 2)]),
       count=st.integers(1, 3), f=st.integers(1, 62))
def test_property_random_shapes_and_batches(m, k, n, batch, count, f):
    """Every item of a bulk prefetch is a valid triple / pair, for random shapes and frac_bits."""
    sa, sb = batch + (m, k), (k, n) if n else (k,)

    def prog(party):
        p = party.preprocessing
        p.prefetch("matmul", sa, sb, count=count)
        p.prefetch("mul", (m, 1), (k,), count=count)
        p.prefetch("trunc", (m, k), f, count=count)
        return ([p.triple("matmul", sa, sb) for _ in range(count)],
                [p.triple("mul", (m, 1), (k,)) for _ in range(count)],
                [p.trunc_pair((m, k), f) for _ in range(count)])

    o0, o1 = mpc.run(prog, 2, preprocessing="ot").outputs
    for i in range(count):
        a, b, c = _add(o0[0][i], o1[0][i])
        assert np.array_equal(c, ring_matmul(a, b))
        a, b, c = _add(o0[1][i], o1[1][i])
        assert np.array_equal(c, a * b)
        r, hi, msb = _add(o0[2][i], o1[2][i])
        assert np.array_equal(hi, r >> np.uint64(f)) and np.array_equal(msb, r >> np.uint64(63))


def test_a_wrong_share_would_be_caught():
    """The reconstruction check above can fail: one flipped bit of a c share breaks a*b == c."""
    o0, o1 = mpc.run(lambda party: party.preprocessing.triple("mul", (8,), (8,)), 2,
                     preprocessing="ot").outputs
    a, b, c = _add(o0, o1)
    assert np.array_equal(a * b, c)
    c[3] ^= np.uint64(1 << 40)
    assert not np.array_equal(a * b, c)


def test_fewer_than_two_parties_and_unknown_names_refused():
    # Any n >= 2 is served (tests/mpc/preprocessing/test_preprocessing_ot_nparty.py); fewer is refused by name.
    with pytest.raises(ParameterError, match="at least 2 parties, not 1"):
        ot_factory(1)
    with pytest.raises(ParameterError, match="'ot'"):
        mpc.run(lambda party: None, 2, preprocessing="OT")


def test_bulk_prefetch_is_one_batch_and_is_served_without_messages():
    def prog(party):
        p = party.preprocessing
        p.prefetch("mul", (100,), (100,), count=10)
        p.prefetch("trunc", (100,), 16, count=10)
        p.prefetch("binary", (100,), count=10)
        p.prefetch("dabit", (100,), count=10)
        before = len(party.log)
        with party.phase("online"):
            items = [p.triple("mul", (100,), (100,)) for _ in range(10)]
            items += [p.trunc_pair((100,), 16) for _ in range(10)]
            items += [p.binary_triple((100,)) for _ in range(10)]
        return items, len(party.log) - before, dict(p.produced), p.ots

    res = mpc.run(prog, 2, preprocessing="ot")
    (items0, extra0, produced, ots), (items1, extra1, _, ots1) = res.outputs
    assert extra0 == extra1 == 0
    assert produced == {"mul": 10, "trunc": 10, "binary": 10, "dabit": 10}
    # 128 OTs per product, 64 per truncation pair, 128 per AND word, 1 per daBit
    assert ots == ots1 == 1000 * (128 + 64 + 128 + 1)
    # one setup (2 rounds) + 2 rounds per kind (binary: 1)
    assert res.cost.phases()["offline"].rounds <= 2 + 2 + 2 + 1 + 2 + 1
    for k in range(10):
        a, b, c = _add(items0[k], items1[k])
        assert np.array_equal(a * b, c)
        a, b, c = [x ^ y for x, y in zip(items0[20 + k], items1[20 + k])]
        assert np.array_equal(a & b, c)
    # the ten triples differ from each other
    assert len({items0[k][0].tobytes() for k in range(10)}) == 10


def test_bytes_per_triple_match_the_formula():
    def offline(count):
        def prog(party):
            party.preprocessing.prefetch("mul", (count,), (count,), count=1)
        return mpc.run(prog, 2, preprocessing="ot").cost.phases()["offline"]

    small, large = offline(1000), offline(3000)
    # party 1 sends the IKNP matrix (16 bytes per OT), party 0 the corrections (8 bytes per OT)
    assert large.bytes_sent[1] - small.bytes_sent[1] == 2000 * 128 * 16
    assert large.bytes_sent[0] - small.bytes_sent[0] == 2000 * 128 * 8
    assert small.rounds == large.rounds == 2 + 2   # base-OT setup, then matrix and corrections


def test_sealed_source_says_how_many_were_needed():
    def prog(party):
        p = party.preprocessing
        p.prefetch("mul", (4,), (4,), count=2)
        p.seal()
        for _ in range(3):
            p.triple("mul", (4,), (4,))

    with pytest.raises(PreprocessingExhausted, match=r"at least 3 mul triples of shapes \(4,\) and \(4,\)"):
        mpc.run(prog, 2, preprocessing="ot")


def test_planned_run_online_cost_equals_the_dealer_run():
    x, y = np.linspace(-3, 3, 50), np.linspace(2, -2, 50)

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=3.0)
        sy = mpc.share(party, y if party.id == 1 else None, 1, bound=3.0)
        return ((sx * sy) @ sy).reveal(), (sx < sy).reveal()

    plan = record_plan(prog, 2)
    kinds = {key[0] for key, _ in plan}
    assert {"mul", "matmul", "trunc", "dabit"} <= kinds
    dealer = mpc.run(prog, 2)
    ot = mpc.run(prog, 2, preprocessing=planned("ot", plan))
    assert np.allclose(ot.outputs[0][0], dealer.outputs[0][0], atol=1e-2)
    assert np.array_equal(ot.outputs[0][1], (x < y).astype(np.int64))
    online = online_only(ot.cost)
    assert online.rounds == dealer.cost.rounds
    for p in (0, 1):
        assert online.bytes_sent[p] == dealer.cost.bytes_sent[p]
    offline = ot.cost.phases()["offline"]
    assert offline.bytes_sent[0] > 0
    # the whole plan in one go: setup 2, triples 2 (two vector widths: 4), shared bits 2,
    # AND triples 1, clock alignment 1, whatever the number of keys
    assert len(plan) > 5 and offline.rounds <= 10

    def once(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=3.0)
        return (sx * sx).reveal()

    def twice(party):  # multiplies twice as often as planned
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=3.0)
        return (sx * sx * sx).reveal()

    for source in ("ot", "dealer"):      # every source is sealed after its plan
        with pytest.raises(PreprocessingExhausted, match=r"needed at least 2 mul triples of shapes \(50,\)"):
            mpc.run(twice, 2, preprocessing=planned(source, record_plan(once, 2)))


def _save_offline(tmp_path, prefix, **counts):
    def offline(party):
        party.preprocessing.prefetch("mul", (6,), (6,), count=counts.get("mul", 3))
        party.preprocessing.prefetch("trunc", (6,), 16, count=counts.get("trunc", 1))
        saved = store.save(party.preprocessing, tmp_path / f"{prefix}{party.id}.npz", party=party)
        return saved, sum(len(v) for v in party.preprocessing._store.values())

    return mpc.run(offline, 2, preprocessing="ot").outputs


def _from_file(tmp_path, *prefixes):
    return lambda n: lambda party: store.load(tmp_path / f"{prefixes[party.id]}{party.id}.npz",
                                              party=party)


def test_offline_store_to_file_and_back(tmp_path):
    assert _save_offline(tmp_path, "p") == [(4, 0), (4, 0)]   # the items moved to the files
    x = np.arange(6) / 4
    y = np.arange(6)[::-1] / 2.0

    def online(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0)
        sy = mpc.share(party, y if party.id == 1 else None, 1)
        left = party.preprocessing.remaining()
        return (sx * sy).reveal(), left, party.preprocessing.remaining()

    res = mpc.run(online, 2, preprocessing=_from_file(tmp_path, "p", "p"))
    got, before, after = res.outputs[0]
    assert np.allclose(got, x * y, atol=2**-15)
    assert before[("mul", (6,), (6,))] == 3 and after[("mul", (6,), (6,))] == 2
    assert ("trunc", (6,), 16) not in after
    # The files were consumed: serving the same triples to a second run is refused.
    with pytest.raises(ParameterError, match="already loaded once"):
        mpc.run(online, 2, preprocessing=_from_file(tmp_path, "p", "p"))
    _save_offline(tmp_path, "r")
    with pytest.raises(PreprocessingExhausted, match=r"at least 2 truncation pairs of shape \(6,\)"):
        mpc.run(lambda party: [online(party) for _ in range(2)], 2,
                preprocessing=_from_file(tmp_path, "r", "r"))


def test_files_of_different_offline_runs_are_not_mixed(tmp_path):
    _save_offline(tmp_path, "a")
    _save_offline(tmp_path, "b")
    with pytest.raises(ParameterError, match="another offline session"):
        mpc.run(lambda party: None, 2, preprocessing=_from_file(tmp_path, "a", "b"))
    # A refused file is not consumed: the right pair still loads.
    assert (tmp_path / "a0.npz").exists() and (tmp_path / "b1.npz").exists()
    mpc.run(lambda party: None, 2, preprocessing=_from_file(tmp_path, "a", "a"))
    assert not (tmp_path / "a0.npz").exists() and (tmp_path / "a0.npz.used").exists()


def test_bad_preprocessing_files_are_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(EncodingError, match="cannot read"):
        store.load(bad)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(EncodingError, match="no manifest"):
        store.load(tmp_path / "other.npz")

    def offline(party):
        party.preprocessing.prefetch("binary", (2,), count=1)
        party.preprocessing.prefetch("mul", (3,), (3,), count=2)
        store.save(party.preprocessing, tmp_path / f"q{party.id}.npz", party=party)

    mpc.run(offline, 2, preprocessing="ot")
    with pytest.raises(ParameterError, match="party 0's shares, not party 1's"):
        store.load(tmp_path / "q0.npz", party_id=1)
    assert (tmp_path / "q0.npz").exists()            # refused, so not consumed
    # An item whose arrays do not have the shapes of its kind is refused.
    with np.load(tmp_path / "q1.npz") as data:
        arrays = dict(data)
    manifest = json.loads(bytes(arrays["manifest"]).decode())
    mul = next(g for g in manifest["groups"] if g["key"][0] == "mul")
    arrays[f"g{mul['id']}_0"] = arrays[f"g{mul['id']}_0"][:, :2]
    np.savez(tmp_path / "q1.npz", **arrays)
    with pytest.raises(EncodingError, match="does not match its manifest"):
        store.load(tmp_path / "q1.npz", party_id=1)


def test_malformed_corrections_are_refused():
    class Short(OTSource):
        def _expand(self, keys, w):
            pads = super()._expand(keys, w)
            return pads[:-1] if self.party.id == 0 else pads

    with pytest.raises(Exception, match="expected|shape"):
        mpc.run(lambda party: party.preprocessing.triple("mul", (3,), (3,)), 2,
                preprocessing=lambda n: Short, timeout=5)


# --- statistics: uniform shares, views independent of the other party's shares --------------
CHI2_LIMIT = 255 + 6 * np.sqrt(2 * 255)   # 256 byte values: about 6 sigma above the mean


def _chi2_bytes(arr):
    counts = np.bincount(np.ascontiguousarray(arr).view(np.uint8).reshape(-1), minlength=256)
    expected = counts.sum() / 256
    return float(((counts - expected) ** 2 / expected).sum())


def test_each_partys_triple_shares_are_uniform():
    def prog(party):
        p = party.preprocessing
        return p.triple("mul", (20000,), (20000,)), p.trunc_pair((5000,), 16), p.binary_triple((5000,))

    o0, o1 = mpc.run(prog, 2, preprocessing="ot").outputs
    for out in (o0, o1):
        for item in out:
            for share in item:
                if share.size and share.max() > 1:  # msb shares are ring elements too
                    assert _chi2_bytes(share) < CHI2_LIMIT
        # the statistic detects structure: a local product a_i * b_i is not uniform
        a, b, _ = out[0]
        assert _chi2_bytes(a * b) > CHI2_LIMIT
    # and the two parties' random shares are not correlated byte-wise
    assert _chi2_bytes(o0[0][0] ^ o1[0][0]) < CHI2_LIMIT
    assert _chi2_bytes(o0[0][1] - o1[0][1]) < CHI2_LIMIT


class _FixedShares(OTSource):
    """Party 0 draws all-zero (or all-ones) shares: the other party's view must not change."""

    value = 0

    def _random(self, shape):
        if self.party.id == 0:
            return np.full(shape, self.value, np.uint64)
        return super()._random(shape)


class _Ones(_FixedShares):
    value = 0xFFFFFFFFFFFFFFFF


class _NoPads(_FixedShares):
    """A broken sender that forgets the OT pads: its corrections reveal its shares."""

    def _expand(self, keys, w):
        pads = super()._expand(keys, w)
        return np.zeros_like(pads) if self.party.id == 0 else pads


def _view_of_party1(cls):
    def prog(party):
        party.preprocessing.triple("mul", (3000,), (3000,))

    res = mpc.run(prog, 2, preprocessing=lambda n: cls, record_view=True)
    got = [arrays[0] for frm, tag, arrays in res.views[1] if "ole#" in tag]
    return np.concatenate([g.reshape(-1) for g in got])


def _view_of_party0(fixed_party1):
    class P1Fixed(OTSource):
        def _random(self, shape):
            if self.party.id == 1 and fixed_party1:
                return np.zeros(shape, np.uint64)
            return super()._random(shape)

    res = mpc.run(lambda party: party.preprocessing.triple("mul", (3000,), (3000,)), 2,
                  preprocessing=lambda n: P1Fixed, record_view=True)
    got = [arrays[0] for frm, tag, arrays in res.views[0] if "iknp-u#" in tag]
    return np.concatenate([g.reshape(-1) for g in got])


def test_offline_view_does_not_depend_on_the_other_partys_shares():
    # party 1 sees only corrections d = p0 - p1 + 2^j x: uniform for x = 0, all ones or random
    views = [_view_of_party1(cls) for cls in (_FixedShares, _Ones, OTSource)]
    for v in views:
        assert v.size == 3000 * 128 and _chi2_bytes(v) < CHI2_LIMIT
    # two views' byte histograms are alike (two-sample chi-square)
    h = [np.bincount(v.view(np.uint8), minlength=256) for v in views[:2]]
    two = float((((h[0] - h[1]) ** 2) / (h[0] + h[1])).sum())
    assert two < CHI2_LIMIT
    # party 0 sees only the IKNP matrix: uniform whatever party 1's shares (its choice bits)
    for fixed in (True, False):
        assert _chi2_bytes(_view_of_party0(fixed)) < CHI2_LIMIT


def test_views_of_truncation_pairs_daBits_and_and_triples():
    class ZeroBits(_FixedShares):
        def _random_bits(self, count):
            if self.party.id == 0:
                return np.zeros(count, np.uint8)
            return super()._random_bits(count)

    def prog(party):
        p = party.preprocessing
        p.prefetch("trunc", (200,), 16, count=2)
        p.prefetch("dabit", (3000,), count=1)
        p.prefetch("binary", (400,), count=1)

    res = mpc.run(prog, 2, preprocessing=lambda n: ZeroBits, record_view=True)
    to1 = [(tag, arrays) for frm, tag, arrays in res.views[1] if "setup" not in tag]
    # party 1 gets only OLE corrections (one per shared bit), uniform although party 0's bits are 0
    assert all("ole#" in tag or "bits#" in tag for tag, _ in to1)
    d = np.concatenate([a[0].reshape(-1) for _, a in to1])
    assert d.size == 2 * 200 * 64 + 3000 and _chi2_bytes(d) < CHI2_LIMIT
    # party 0 gets only IKNP matrices, uniform
    to0 = [(tag, arrays) for frm, tag, arrays in res.views[0] if "setup" not in tag]
    assert all("iknp-u#" in tag for tag, _ in to0)
    assert _chi2_bytes(np.concatenate([a[0].reshape(-1) for _, a in to0])) < CHI2_LIMIT


def test_the_view_statistic_detects_a_leak():
    leaky = _view_of_party1(_NoPads)   # corrections are 2^j * 0 = 0: the share shows through
    assert _chi2_bytes(leaky) > CHI2_LIMIT


# --- the foundation and nonlinear suites at 2 parties with OT preprocessing --------------------
@pytest.fixture
def ot_everywhere():
    """Two-party dealer runs become: plan, produce offline by OT, run online; cost = online part."""
    with default_preprocessing(TwoPartyOT()):
        yield


REUSED = [
    (test_sharing, "test_elementwise_multiplication_within_one_ulp", {"n": 2}),
    (test_sharing, "test_matmul_and_dot", {"n": 2}),
    (test_sharing, "test_public_products_sum_mean_and_broadcasting", {"n": 2}),
    (test_sharing, "test_integer_tensors_are_exact_in_range_and_refuse_to_wrap", {"n": 2}),
    (test_sharing, "test_empty_and_scalar_tensors", {"n": 2}),
    (test_sharing, "test_products_near_the_range_limit_are_exact", {}),
    (test_sharing, "test_cost_of_multiplication_matches_formula", {"n": 2}),
    (test_sharing, "test_cost_of_matmul_and_reveal", {"n": 2}),
    (test_sharing, "test_small_public_factors_keep_relative_precision", {}),
    (test_compare, "test_comparisons_exact_at_the_ring_limits", {"n": 2}),
    (test_compare, "test_rounds_and_bytes_of_a_comparison", {"n": 2}),
    (test_compare, "test_sign_abs_relu_where_clip", {"n": 2}),
    (test_binary, "test_xor_not_shift_and_or_against_numpy", {"n": 2}),
    (test_binary, "test_and_costs_one_round_and_16_bytes_per_word", {"n": 2}),
    (test_binary, "test_dealer_dabits_agree_in_both_domains", {"n": 2}),
    (test_binary, "test_a2b_b2a_round_trip_and_rounds", {"n": 2}),
    (test_binary, "test_msb_and_bit_injection", {"n": 2}),
    (test_approx, "test_sigmoid_and_tanh_within_5e_5_on_minus_10_to_10", {}),
    (test_approx, "test_reciprocal_relative_error_below_1e_4_on_1e_2_to_1e_3", {}),
    (test_approx, "test_exp_accuracy_and_clamping", {}),
    (test_approx, "test_division_shared_and_public", {}),
]


@pytest.mark.parametrize("module,name,kwargs", REUSED, ids=[r[1] for r in REUSED])
def test_existing_suite_with_ot_preprocessing(ot_everywhere, module, name, kwargs):
    getattr(module, name)(**kwargs)


def test_comparisons_exact_on_random_pairs_with_ot(ot_everywhere):
    test_compare.test_comparisons_are_exact_on_random_pairs(2, 1000)


def test_the_fixture_really_uses_ot(ot_everywhere):
    res = mpc.run(lambda party: type(party.preprocessing).__name__, 2)
    assert res.outputs == ["OTSource", "OTSource"]
    assert not any(m.sender == -1 for m in res.cost.messages)  # no dealer message


@pytest.mark.parametrize("source", ["ot", "he"])
def test_empty_matmul_dimensions_on_dealer_free_sources(source):
    import warnings

    from mpc.preprocessing.he import he_factory

    def prog(party):
        out = []
        for sa, sb in (((0, 3), (3, 2)), ((2, 3), (3, 0)), ((2, 0), (0, 3))):
            a = mpc.share(party, np.ones(sa) if party.id == 0 else None, 0, bound=1.0)
            b = mpc.share(party, np.ones(sb) if party.id == 1 else None, 1, bound=1.0)
            out.append((a @ b).reveal())
        return out

    pre = "ot" if source == "ot" else (lambda n: he_factory(n, key_bits=1024, insecure_for_testing=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = mpc.run(prog, 2, preprocessing=pre).outputs[0]
    assert [g.shape for g in got] == [(0, 2), (2, 0), (2, 3)]
    assert np.array_equal(got[2], np.zeros((2, 3)))
