"""OT-based PSI (KKRT16): exact against sets and the DH protocol, hashing, privacy, malformed peers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import MalformedPeerData, ParameterError, ProtocolError
from mpc.ot.kkrt import KKRTSender
from mpc.rand import PRG
from protocols import psi as P
from protocols.psi import oprf as O


def run(x, y, **kw):
    return mpc.run(lambda party, items: P.psi(party, items, protocol="oprf", **kw), parties=2,
                   inputs=[x, y], preprocessing=None, timeout=60)


def _sets(rng, n_x, n_y, common):
    pool = rng.choice(2**62, n_x + n_y - common, replace=False).astype(np.int64) - 2**61
    x, y = pool[:n_x], np.concatenate([pool[:common], pool[n_x:]])
    return rng.permutation(x), rng.permutation(y)


# -- pure parts -----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7, 100, 511, 512, 1024, 5000])
def test_cuckoo_places_every_item_in_one_of_its_bins(n):
    prg = PRG(bytes(range(16)))
    blocks = prg.uint64((n, 2))
    m = O.table_size(n)
    pos = O.bin_positions(blocks, prg.bytes(16), m)
    assert pos.shape == (n, 3) and pos.min() >= 0 and pos.max() < m
    table, choice = O.cuckoo(pos, m, prg.bits)
    full = np.flatnonzero(table >= 0)
    assert len(full) == n                                     # one bin per item, none lost
    assert np.array_equal(np.sort(table[full]), np.arange(n))
    assert np.array_equal(pos[table[full], choice[table[full]]], full)


def test_cuckoo_reports_an_impossible_table():
    pos = np.array([[0, 1, 2]] * 4)                            # 4 items, 3 bins
    assert O.cuckoo(pos, 3, PRG(bytes(16)).bits, rounds=50) is None


def test_table_and_value_sizes_follow_the_stated_parameters():
    # sigma = 240 e - 256 - log2 n (n >= 512), per-size lines below: libOTe's stash-less fit
    assert O.table_size(10**6) == 1_316_382 and O.table_size(1024) == 1306
    assert O.table_size(100) == 178 and O.table_size(1) == 7
    with pytest.raises(ParameterError):
        O.table_size(0)
    assert O.value_bytes(10**6, 10**6) == 11                   # 40 + 19.9 + 21.5 bits
    assert O.value_bytes(1, 1) == 6 and O.value_bytes(2**40, 2**40) == 16


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=2, max_size=2), max_size=60),
       st.lists(st.binary(min_size=2, max_size=2), max_size=60))
def test_found_in_is_exact_membership(a, b):
    # 2-byte rows: the first-word ties that OPRF values almost never have happen here.
    rows = lambda v: np.frombuffer(b"".join(v), np.uint8).reshape(-1, 2)   # noqa: E731
    want = np.array([r in set(b) for r in a], bool)
    assert np.array_equal(O.found_in(rows(a), rows(b)), want)
    srt = rows(b)[O.sort_values(rows(b))] if b else rows(b)
    assert np.array_equal(O.found_in(rows(a), srt, b_sorted=True), want)


def test_items_become_distinct_blocks_per_kind_and_hash_index():
    kind, values, blocks = O.item_blocks(np.array([5, 3, 5, -1]))
    assert values.tolist() == [-1, 3, 5] and len(blocks) == 3
    _, _, s = O.item_blocks(["5", "3"])
    _, _, b = O.item_blocks([b"5", b"3"])
    assert not set(map(bytes, s)) & set(map(bytes, b))
    idx = [O.with_hash_index(blocks, i) for i in range(3)]
    assert len({r.tobytes() for arr in idx for r in arr}) == 9


# -- the protocol against plaintext and DH ----------------------------------------------------
@pytest.mark.parametrize("n_x, n_y, common", [(0, 0, 0), (0, 50, 0), (50, 0, 0), (200, 200, 0),
                                              (300, 300, 300), (1, 2000, 1), (2000, 30, 17)])
def test_equals_set_intersection_and_dh(n_x, n_y, common):
    rng = np.random.default_rng(n_x * 7 + n_y + common)
    x, y = _sets(rng, n_x, n_y, common)
    res = run(x, y)
    want = np.intersect1d(x, y)
    assert np.array_equal(res.outputs[0], want) and res.outputs[1] is None
    dh = mpc.run(lambda party, items: P.psi(party, items), parties=2, inputs=[x, y], preprocessing=None)
    assert np.array_equal(dh.outputs[0], res.outputs[0])


def test_both_size_strings_bytes_and_receiver_choice():
    x, y = ["ann", "bob", "cy", "dee"], ["bob", "dee", "eve"]
    assert run(x, y, both=True).outputs == [["bob", "dee"], ["bob", "dee"]]
    assert run(x, y, output="size").outputs == [2, None]
    assert run(x, y, output="size", both=True).outputs == [2, 2]
    assert run([b"a", b"b"], [b"b"]).outputs[0] == [b"b"]
    assert run(x, y, receiver=1).outputs == [None, ["bob", "dee"]]
    assert run([], ["a"]).outputs[0] == []


def test_duplicates_are_removed_as_in_the_dh_protocol():
    res = run(np.array([4, 4, 9, 1, 1]), np.array([1, 1, 1, 4]), both=True)
    assert res.outputs[0].tolist() == [1, 4] and res.outputs[1].tolist() == [1, 4]


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 1500), st.integers(0, 1500), st.floats(0, 1), st.integers(0, 2**32))
def test_intersection_property(n_x, n_y, frac, seed):
    x, y = _sets(np.random.default_rng(seed), n_x, n_y, int(frac * min(n_x, n_y)))
    res = run(x, y, both=True)
    want = np.intersect1d(x, y)
    assert np.array_equal(res.outputs[0], want) and np.array_equal(res.outputs[1], want)


def test_rounds_and_bytes_match_the_cost_formula():
    n_r, n_s = 3000, 700
    x, y = _sets(np.random.default_rng(1), n_r, n_s, 100)
    res = run(x, y)
    ell, m = O.value_bytes(n_r, n_s), O.table_size(n_r)
    assert res.cost.rounds == 6
    assert res.cost.bytes_sent[0] == 12 + 128 * 32 + 16 + 512 * ((m + 7) // 8)
    assert res.cost.bytes_sent[1] == 12 + 32 + 128 * 64 + 16 + 3 * n_s * ell
    assert run(x, y, both=True).cost.rounds == 7


# -- privacy ----------------------------------------------------------------------------------
def _sender_view(x, y):
    res = mpc.run(lambda party, items: P.psi(party, items, protocol="oprf"), parties=2,
                  inputs=[x, y], preprocessing=None, record_view=True)
    return {tag.rsplit("/", 1)[-1]: arrs for frm, tag, arrs in res.views[1] if frm == 0}


def _chi2_two_sample(a, b):
    h0 = np.bincount(a.ravel(), minlength=256).astype(float)
    h1 = np.bincount(b.ravel(), minlength=256).astype(float)
    return float((((h0 - h1) ** 2) / (h0 + h1)).sum())


def test_sender_view_does_not_depend_on_the_receivers_set():
    # Same size, very different sets: consecutive integers vs random ones. The sender sees
    # the header (size only), the hash seed and the OT matrix; the matrix bytes must be
    # indistinguishable (two-sample chi-square, 255 df: mean 255, sd 22.6; 400 is > 6 sd).
    n = 3000
    y = np.arange(100)
    structured = _sender_view(np.arange(n), y)
    rand = _sender_view(np.random.default_rng(5).choice(2**62, n, replace=False), y)
    assert structured.keys() == rand.keys()
    for tag in structured:
        assert [a.shape for a in structured[tag]] == [a.shape for a in rand[tag]]
    u0, u1 = structured["kkrt-u#0"][0], rand["kkrt-u#0"][0]
    assert _chi2_two_sample(u0, u1) < 400
    assert abs(np.unpackbits(u0).mean() - 0.5) < 0.002
    # Negative control: the statistic does see structure, e.g. the receiver's own items.
    raw = np.arange(n, dtype=np.int64).view(np.uint8)
    assert _chi2_two_sample(raw, u1[:, :raw.size // 512 + 1].ravel()[:raw.size]) > 1000


def test_sender_matrix_reveals_no_codeword_of_the_receivers_items():
    # The sender knows the code: were the matrix unmasked, its rows would be the codewords
    # C(x, i) of the receiver's items (and this test would find all of them).
    from mpc.ot.kkrt import PseudorandomCode
    from mpc.ot.transpose import transpose_bits

    x = np.arange(500)
    res = mpc.run(lambda party, items: P.psi(party, items, protocol="oprf"), parties=2,
                  inputs=[x, np.arange(10)], preprocessing=None, record_view=True)
    (u,) = [a[0] for frm, tag, a in res.views[1] if tag.endswith("kkrt-u#0")]
    (seed,) = [a[0] for frm, tag, a in res.views[0] if tag.endswith("kkrt-setup/code")]
    rows = {r.tobytes() for r in transpose_bits(u, O.table_size(len(x)))}
    _, _, blocks = O.item_blocks(x)
    code = PseudorandomCode(seed.tobytes())
    words = {r.tobytes() for i in range(3) for r in code(O.with_hash_index(blocks, i)).view(np.uint8)}
    assert len(rows) == O.table_size(len(x)) and not rows & words


# -- malformed peers --------------------------------------------------------------------------
def _fake_sender(mutate):
    """A sender that follows the protocol up to its values, then sends ``mutate(values)``."""
    def prog(party, items):
        with party.scope(party.fresh("psi0-1")):
            kind, values, blocks = O.item_blocks(items)
            _, n_r = O._hello(party, 0, "s", np.array([O.VERSION, kind, 0, 0], np.uint8),
                              len(values), None)
            kkrt = KKRTSender.setup(party, 0)
            m = O.table_size(n_r)
            (seed,) = party.recv(0, "hash-seed")
            keys = kkrt.keys(m)
            pos = O.bin_positions(blocks, seed.tobytes(), m)
            inputs = np.concatenate([O.with_hash_index(blocks, i) for i in range(3)])
            vals = keys.evaluate(pos.T.ravel(), inputs)[:, :O.value_bytes(n_r, len(values))]
            party.send(0, "values", *mutate(vals[O.sort_values(vals)]))
    return prog


@pytest.mark.parametrize("mutate, error, match", [
    (lambda v: (v[:-1],), MalformedPeerData, r"sent uint8\[194, 7\] under 'psi0-1#0/values', "
                                             r"expected uint8\[195, 7\]"),        # one value short
    (lambda v: (v[:, :-1],), MalformedPeerData, r"uint8\[195, 6\] under .*expected uint8\[195, 7\]"),
    (lambda v: (v, v), MalformedPeerData, "sent 2 arrays under 'psi0-1#0/values', expected 1"),
    (lambda v: (v[::-1].copy(),), ProtocolError, "not sorted"),
])
def test_malformed_values_are_refused(mutate, error, match):
    prog = _fake_sender(mutate)
    with pytest.raises(error, match=match):
        mpc.run(lambda party, items: P.psi(party, items, protocol="oprf") if party.id == 0 else prog(party, items),
                parties=2, inputs=[np.arange(50), np.arange(25, 90)], preprocessing=None, timeout=20)


def test_malformed_header_and_mismatched_settings_are_refused():
    def short_header(party, items):
        with party.scope(party.fresh("psi0-1")):
            party.send(0, "hello-s", np.zeros(4, np.uint8))           # no set size
            party.recv(0, "hello-r")

    with pytest.raises(MalformedPeerData, match="hello-s"):
        mpc.run(lambda party, items: P.psi(party, items, protocol="oprf") if party.id == 0
                else short_header(party, items), parties=2, inputs=[[1], [1]], preprocessing=None, timeout=20)
    with pytest.raises(ParameterError, match="settings differ"):
        mpc.run(lambda party, items: P.psi(party, items, protocol="oprf",
                                           output="size" if party.id else "intersection"),
                parties=2, inputs=[[1], [1]], preprocessing=None, timeout=20)
    with pytest.raises(ParameterError, match="holds (integers|strings) but party [01] holds (strings|integers)"):
        run([1, 2], ["a"])
    with pytest.raises(ParameterError, match="protocol must be"):
        mpc.run(lambda party, items: P.psi(party, items, protocol="kkrt"), parties=2, inputs=[[1], [1]],
            preprocessing=None, timeout=20)


def test_max_peer_items_is_checked_before_any_ot():
    with pytest.raises(ProtocolError, match="sent 500 items, more than max_peer_items = 100"):
        run(np.arange(10), np.arange(500), max_peer_items=100)


def test_pair_inside_a_larger_session():
    def prog(party, items):
        if party.id == 1:
            return None
        return P.psi(party, items, peer=2 - party.id, receiver=2, protocol="oprf")

    res = mpc.run(prog, parties=3, inputs=[[1, 2, 3], [], [3, 4, 1]], preprocessing=None, timeout=30)
    assert res.outputs[0] is None and res.outputs[2].tolist() == [1, 3]


def test_parties_choosing_different_protocols_fail_fast_naming_both_tags():
    # whichever party notices first: both tags are named
    with pytest.raises(ProtocolError, match="expected 'psi0-1#0/(blinded-s' .* received 'psi0-1#0/hello-s|"
                                            "hello-r' .* received 'psi0-1#0/blinded-r)'"):
        mpc.run(lambda party, items: P.psi(party, items, protocol="oprf" if party.id else "dh"),
                parties=2, inputs=[[1], [1]], preprocessing=None, timeout=10)
