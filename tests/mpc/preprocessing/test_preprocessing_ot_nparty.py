"""Dealer-free OT preprocessing for three and four parties: items, programs, cost, views, refusals.

Every pair of parties runs its own IKNP extension (mpc/preprocessing/pairwise.py);
these tests reconstruct what the n parties produced, run SharedTensor programs
against the dealer, check the byte and round formulas of the docstring and that
a party's (or a coalition's) offline view does not depend on the others' shares.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.arith.ring import ring_matmul
from mpc.errors import ParameterError
from mpc.preprocessing.ot import OTSource, ot_factory
from mpc.preprocessing.plan import online_only, planned, record_plan
from mpc.sharing.binary import unpack_bits

CHI2_LIMIT = 255 + 6 * np.sqrt(2 * 255)   # 256 byte values: about 6 sigma above the mean


def _chi2_bytes(arr):
    counts = np.bincount(np.ascontiguousarray(arr).view(np.uint8).reshape(-1), minlength=256)
    expected = counts.sum() / 256
    return float(((counts - expected) ** 2 / expected).sum())


def _sum(items):
    return [sum(parts[1:], parts[0].copy()) for parts in zip(*items)]


def _xor(items):
    return [np.bitwise_xor.reduce(parts) for parts in zip(*items)]


def _items(party):
    p = party.preprocessing
    return {"mul": p.triple("mul", (5, 3), (3,)), "mm": p.triple("matmul", (2, 4, 3), (3, 5)),
            "mm1": p.triple("matmul", (3,), (3, 2)),
            "trunc": [p.trunc_pair((9,), f) for f in (1, 16, 40)],
            "and": p.binary_triple((3, 2)), "dabit": p.dabit((70,))}


@pytest.mark.parametrize("n", [3, 4])
def test_every_item_is_correct_for_n_parties(n):
    res = mpc.run(_items, n, preprocessing="ot")
    outs = res.outputs
    a, b, c = _sum([o["mul"] for o in outs])
    assert np.array_equal(a * b, c)
    for key in ("mm", "mm1"):
        a, b, c = _sum([o[key] for o in outs])
        assert np.array_equal(ring_matmul(a, b), c)
    for i, f in enumerate((1, 16, 40)):
        r, hi, msb = _sum([o["trunc"][i] for o in outs])
        assert np.array_equal(hi, r >> np.uint64(f)) and np.array_equal(msb, r >> np.uint64(63))
    a, b, c = _xor([o["and"] for o in outs])
    assert np.array_equal(a & b, c) and a.shape == (3, 2)
    xor_words, arith = _xor([(o["dabit"][0],) for o in outs])[0], _sum([(o["dabit"][1],) for o in outs])[0]
    bits = unpack_bits(xor_words, 70)
    assert np.array_equal(arith, bits.astype(np.uint64)) and 10 < bits.sum() < 60
    # a single party's shares are not the items: every party contributes
    a_all = _sum([o["mul"] for o in outs])[0]
    assert all(not np.array_equal(o["mul"][0], a_all) for o in outs)
    assert set(res.cost.phases()) == {"offline"}


@settings(max_examples=4, deadline=None)
@given(n=st.sampled_from([3, 4]), m=st.integers(1, 3), k=st.integers(1, 3), cols=st.integers(1, 3),
       count=st.integers(1, 2), f=st.integers(1, 62))
def test_property_bulk_prefetch_for_n_parties(n, m, k, cols, count, f):
    def prog(party):
        p = party.preprocessing
        p.prefetch("matmul", (m, k), (k, cols), count=count)
        p.prefetch("mul", (m, 1), (k,), count=count)
        p.prefetch("trunc", (m,), f, count=count)
        p.prefetch("binary", (k,), count=count)
        return ([p.triple("matmul", (m, k), (k, cols)) for _ in range(count)],
                [p.triple("mul", (m, 1), (k,)) for _ in range(count)],
                [p.trunc_pair((m,), f) for _ in range(count)],
                [p.binary_triple((k,)) for _ in range(count)])

    outs = mpc.run(prog, n, preprocessing="ot").outputs
    for i in range(count):
        a, b, c = _sum([o[0][i] for o in outs])
        assert np.array_equal(c, ring_matmul(a, b))
        a, b, c = _sum([o[1][i] for o in outs])
        assert np.array_equal(c, a * b)
        r, hi, msb = _sum([o[2][i] for o in outs])
        assert np.array_equal(hi, r >> np.uint64(f)) and np.array_equal(msb, r >> np.uint64(63))
        a, b, c = _xor([o[3][i] for o in outs])
        assert np.array_equal(c, a & b)


X, Y = np.linspace(-3, 3, 40), np.linspace(2.5, -2, 40)
M = np.linspace(-1, 1, 40 * 3).reshape(40, 3)


def _program(party):
    sx = mpc.share(party, X if party.id == 0 else None, 0, bound=3.0)
    sy = mpc.share(party, Y if party.id == 1 else None, 1, bound=3.0)
    sm = mpc.share(party, M if party.id == party.n - 1 else None, party.n - 1, bound=1.0)
    prod = sx * sy                       # fixed-point product: one truncation
    return prod.reveal(), (prod @ sm).reveal(), (sx < sy).reveal(), (sx * sx * sy).reveal()


def test_shared_tensor_program_with_three_parties_matches_the_dealer():
    dealer = mpc.run(_program, 3)
    ot = mpc.run(_program, 3, preprocessing="ot")
    planned_ot = mpc.run(_program, 3, preprocessing=planned("ot", record_plan(_program, 3)))
    ulp = 2.0 ** -16
    for res in (ot, planned_ot):
        assert all(len(o) == 4 for o in res.outputs)
        prod, mat, less, cube = res.outputs[2]
        # each truncation is off by at most one unit in the last place (2^-16)
        assert np.abs(prod - X * Y).max() <= 2 * ulp
        assert np.abs(mat - (X * Y) @ M).max() <= 40 * 2 * ulp + 3 * ulp
        assert np.array_equal(less, (X < Y).astype(np.int64))
        assert np.abs(cube - X * X * Y).max() <= 3 * 3 * ulp + 2 * ulp
        for got, want in zip(res.outputs[0], dealer.outputs[0]):
            assert np.allclose(got, want, atol=50 * ulp)
    # a planned run's online cost is the dealer's
    online = online_only(planned_ot.cost)
    assert online.rounds == dealer.cost.rounds
    assert [online.bytes_sent[p] for p in range(3)] == [dealer.cost.bytes_sent[p] for p in range(3)]


# --- cost: the formulas of mpc/preprocessing/pairwise.py ------------------------------------
def _align_clocks(party):
    """Start the next batch at one round for every party (Lamport clocks differ after the warm-up)."""
    mine = party.clock
    got = party.exchange(party.fresh("align"), np.array([mine], np.int64))
    party.clock = max(party.clock, 1 + max([mine, *(int(a[0][0]) for a in got.values())]))


def _batch(n, kind, size):
    """Bytes each party sent and rounds spanned by one batch, after the setup."""
    def prog(party):
        p = party.preprocessing
        p.triple("mul", (1,), (1,))            # warm-up: the base OTs of every pair
        _align_clocks(party)
        start = len(party.log)
        if kind == "mul":
            p.prefetch("mul", (size,), (size,), count=1)
        elif kind == "bits":
            p.prefetch("dabit", (size,), count=1)
        else:
            p.prefetch("binary", (size,), count=1)
        mine = [m for m in party.log[start:] if m.sender == party.id]
        return sum(m.payload_bytes for m in mine), [m.round for m in mine]

    outs = mpc.run(prog, n, preprocessing="ot").outputs
    stamps = [r for _, rs in outs for r in rs]
    return [b for b, _ in outs], max(stamps) - min(stamps) + 1


@pytest.mark.parametrize("n", [2, 3, 4])
def test_bytes_and_rounds_per_item_match_the_formulas(n):
    small, r_small = _batch(n, "mul", 100)
    large, r_large = _batch(n, "mul", 300)
    # per triple and pair: 128 OTs, 16 bytes of matrix from the higher party, 8 of corrections
    # from the lower one; party i is the lower party of n-1-i pairs and the higher of i
    for i in range(n):
        assert large[i] - small[i] == 200 * 128 * (8 * (n - 1 - i) + 16 * i)
    assert r_small == r_large == 2                # all pairs in the same two rounds
    small, r_bits = _batch(n, "bits", 1000)
    large, _ = _batch(n, "bits", 3000)
    for i in range(n):
        assert large[i] - small[i] == 2000 * (8 * (n - 1 - i) + 16 * i)
    assert r_bits == n                            # the matrices, then a chain of n - 1 replies
    small, r_and = _batch(n, "and", 10)
    large, _ = _batch(n, "and", 30)
    for i in range(n):
        # 2 bits per AND bit (16 bytes per word) to every higher party; pair (0, 1) replies nothing
        corrections = 16 * ((n - 2) if i == 0 else (n - 1 - i))
        assert large[i] - small[i] == 20 * (128 * 16 * i + corrections)
    assert r_and == (1 if n == 2 else 2)


def test_chunks_of_every_pair_are_pipelined():
    # 1024 OTs per chunk and pair: 40 products (80 scalars of 64 bits) are 5 chunks, so are
    # 40 AND words (128 OTs each); the next chunk's matrices go out before this chunk's replies
    def prog(party):
        p = party.preprocessing
        p.triple("mul", (1,), (1,))
        out = []
        for make in (lambda: p.triple("mul", (40,), (40,)), lambda: p.binary_triple((40,))):
            _align_clocks(party)
            start = len(party.log)
            out.append((make(), [m.round for m in party.log[start:] if m.sender == party.id]))
        return out

    outs = mpc.run(prog, 3, preprocessing=lambda n: (lambda party: OTSource(party, batch_ots=1024))).outputs
    a, b, c = _sum([o[0][0] for o in outs])
    assert np.array_equal(a * b, c)
    a, b, c = _xor([o[1][0] for o in outs])
    assert np.array_equal(a & b, c)
    for k in range(2):
        stamps = [r for o in outs for r in o[k][1]]
        assert max(stamps) - min(stamps) + 1 == 5 + 1


# --- views ---------------------------------------------------------------------------------
class _Fixed(OTSource):
    """Parties in ``fixed`` draw constant shares and bits: the others' views must not change."""

    fixed: tuple[int, ...] = ()
    value = 0

    def _random(self, shape):
        if self.party.id in self.fixed:
            return np.full(shape, self.value, np.uint64)
        return super()._random(shape)

    def _random_bits(self, count):
        if self.party.id in self.fixed:
            return np.full(count, self.value & 1, np.uint8)
        return super()._random_bits(count)


def _views(cls, watchers):
    """Bytes of every offline message (setup excluded) the ``watchers`` received from others."""
    def prog(party):
        p = party.preprocessing
        p.prefetch("mul", (1500,), (1500,), count=1)
        p.prefetch("matmul", (4, 6), (6, 5), count=2)
        p.prefetch("trunc", (60,), 16, count=1)
        p.prefetch("binary", (200,), count=1)

    res = mpc.run(prog, 3, preprocessing=lambda n: cls, record_view=True)
    got = [a.view(np.uint8).reshape(-1) for w in watchers for frm, tag, arrays in res.views[w]
           if "setup" not in tag and frm not in watchers for a in arrays]
    return np.concatenate(got)


def _fixed(parties, value):
    return type("F", (_Fixed,), {"fixed": parties, "value": value})


def test_a_partys_offline_view_does_not_depend_on_the_others_shares():
    # party 2 receives corrections from parties 0 and 1: uniform whatever their shares
    for value in (0, 0xFFFFFFFFFFFFFFFF):
        assert _chi2_bytes(_views(_fixed((0, 1), value), (2,))) < CHI2_LIMIT
    # party 0 receives only IKNP matrices from 1 and 2; party 1 both kinds
    assert _chi2_bytes(_views(_fixed((1, 2), 0), (0,))) < CHI2_LIMIT
    assert _chi2_bytes(_views(_fixed((0, 2), 0), (1,))) < CHI2_LIMIT
    # a coalition of parties 0 and 1 (dishonest majority) learns nothing of party 2's shares
    zero, rand = _views(_fixed((2,), 0), (0, 1)), _views(OTSource, (0, 1))
    assert zero.size == rand.size and _chi2_bytes(zero) < CHI2_LIMIT
    h = [np.bincount(v, minlength=256) for v in (zero, rand)]
    assert float((((h[0] - h[1]) ** 2) / (h[0] + h[1])).sum()) < CHI2_LIMIT


def test_the_view_statistic_detects_a_leak():
    class NoPads(_Fixed):       # parties 0 and 1 forget the OT pads: their corrections show their shares
        fixed = (0, 1)

        def _expand(self, keys, w):
            pads = super()._expand(keys, w)
            return np.zeros_like(pads) if self.party.id in (0, 1) else pads

    assert _chi2_bytes(_views(NoPads, (2,))) > CHI2_LIMIT


# --- refusals ------------------------------------------------------------------------------
def test_unsupported_combinations_are_refused_by_name():
    with pytest.raises(ParameterError, match="at least 2 parties, not 1"):
        ot_factory(1)
    with pytest.raises(ParameterError, match="exactly 2 parties, not 3"):   # Paillier: two parties only
        mpc.run(lambda party: None, 3, preprocessing="he")
    assert ot_factory(4) is OTSource
