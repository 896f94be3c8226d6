"""Oblivious transfer: base OT on Ed25519, IKNP extension, the bit transpose and the fixed-key hash."""

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import EncodingError, ParameterError, ProtocolError
from mpc.ot import IKNPReceiver, IKNPSender, base
from mpc.ot.iknp import _expand
from mpc.ot.crhash import FIXED_KEY, FixedKeyHash, blocks_from_bytes, blocks_to_bytes
from mpc.ot.transpose import transpose64, transpose_bits


def run2(sender, receiver, record_view=False):
    """Party 0 runs ``sender(party)``, party 1 ``receiver(party)``."""
    def prog(party):
        return sender(party) if party.id == 0 else receiver(party)
    return mpc.run(prog, 2, preprocessing=None, record_view=record_view)


# --- the transpose ------------------------------------------------------------------------
def _reference_transpose(mat, m):
    bits = np.unpackbits(mat, axis=1, bitorder="little")[:, :m]
    return np.packbits(bits.T, axis=1, bitorder="little")


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 5000), rows=st.sampled_from([64, 128, 256]), seed=st.integers(0, 2**32 - 1))
def test_transpose_matches_reference(m, rows, seed):
    mat = np.random.default_rng(seed).integers(0, 256, (rows, (m + 7) // 8), dtype=np.uint8)
    mat[:, -1] &= np.uint8((1 << (m % 8 or 8)) - 1)  # unused tail bits are zero, as packbits makes them
    assert np.array_equal(transpose_bits(mat, m), _reference_transpose(mat, m))


def test_transpose_large_spans_chunks():
    m = 2048 * 64 + 100  # more than one column chunk
    mat = np.random.default_rng(3).integers(0, 256, (128, (m + 7) // 8), dtype=np.uint8)
    mat[:, -1] &= 0x0F
    assert np.array_equal(transpose_bits(mat, m), _reference_transpose(mat, m))


def test_transpose64_is_an_involution():
    x = np.random.default_rng(0).integers(0, 2**63, (2, 64, 5), dtype=np.uint64)
    y = transpose64(transpose64(x.copy()))
    assert np.array_equal(x, y)


def test_transpose_rejects_bad_shapes():
    with pytest.raises(ParameterError):
        transpose_bits(np.zeros((100, 2), np.uint8), 16)
    with pytest.raises(ParameterError):
        transpose_bits(np.zeros((128, 3), np.uint8), 16)
    with pytest.raises(ParameterError):
        transpose64(np.zeros((1, 32, 2), np.uint64))


# --- the fixed-key hash -------------------------------------------------------------------
def _hash_reference(x: bytes, tweak: int) -> bytes:
    """H(x, i) = pi(sigma(x) ^ i) ^ sigma(x) ^ i, one block at a time, from the paper's definition."""
    xi = int.from_bytes(x, "little")
    lo, hi = xi & (2**64 - 1), xi >> 64  # x = x_L || x_R with x_L the high half
    sigma = ((lo ^ hi) << 64) | hi       # sigma(x_L || x_R) = (x_L ^ x_R) || x_L
    y = (sigma ^ tweak).to_bytes(16, "little")
    enc = Cipher(algorithms.AES(FIXED_KEY), modes.ECB()).encryptor()
    out = int.from_bytes(enc.update(y), "little") ^ int.from_bytes(y, "little")
    return out.to_bytes(16, "little")


def test_fixed_key_hash_matches_definition():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (20, 16), dtype=np.uint8)
    lo = rng.integers(0, 2**63, 20, dtype=np.uint64)
    hi = np.uint64(7)
    got = blocks_to_bytes(FixedKeyHash()(blocks_from_bytes(x), lo, hi))
    for i in range(20):
        want = _hash_reference(x[i].tobytes(), int(lo[i]) | (7 << 64))
        assert got[i].tobytes() == want


def test_fixed_key_hash_tweak_changes_output_and_rejects_bad_blocks():
    h = FixedKeyHash()
    x = np.zeros((4, 2), np.uint64)
    out = h(x, np.arange(4, dtype=np.uint64))
    assert len({bytes(r) for r in out.view(np.uint8).reshape(4, 16)}) == 4
    with pytest.raises(ParameterError):
        h(np.zeros((4, 3), np.uint64), 0)
    with pytest.raises(ParameterError):
        blocks_from_bytes(np.zeros((2, 8), np.uint8))


# --- base OT ------------------------------------------------------------------------------
def test_base_ot_chosen_messages():
    rng = np.random.default_rng(1)
    m0 = rng.integers(0, 256, (40, 24), dtype=np.uint8)
    m1 = rng.integers(0, 256, (40, 24), dtype=np.uint8)
    c = rng.integers(0, 2, 40).astype(np.uint8)
    res = run2(lambda p: base.send(p, 1, m0, m1), lambda p: base.receive(p, 0, c))
    assert np.array_equal(res.outputs[1], np.where(c[:, None] == 1, m1, m0))
    # one round each way for the keys, then the payload
    assert res.cost.rounds == 3


def test_base_random_ot_keys():
    c = np.array([0, 1, 1, 0, 1], np.uint8)
    res = run2(lambda p: base.random_send(p, 1, 5), lambda p: base.random_receive(p, 0, c))
    (k0, k1), k = res.outputs
    assert np.array_equal(k, np.where(c[:, None] == 1, k1, k0))
    assert not np.any(np.all(k0 == k1, axis=1))


def _bad_sender(point: bytes):
    def sender(party):
        with party.scope("base-ot#0"):
            party.send(1, "A", np.frombuffer(point, np.uint8))
            party.recv(1, "B")
    return sender


@pytest.mark.parametrize("point", [
    bytes([1]) + bytes(31),                              # identity (small order)
    bytes(32),                                           # a point of order 4
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # y = p - 1 non-canonical
    bytes([2]) + bytes(31),                              # y = 2: not on the curve
])
def test_base_ot_rejects_invalid_points(point):
    with pytest.raises(ProtocolError, match="invalid Ed25519 point"):
        run2(_bad_sender(point), lambda p: base.random_receive(p, 0, np.zeros(3, np.uint8)))


def test_base_ot_rejects_malformed_messages_and_parameters():
    def receiver(party):
        with party.scope("base-ot#0"):
            party.recv(0, "A")
            party.send(0, "B", np.zeros((2, 32), np.uint8))  # 2 points for 3 OTs

    with pytest.raises(EncodingError, match="expected \\(3, 32\\)"):
        run2(lambda p: base.random_send(p, 1, 3), receiver)
    with pytest.raises(ParameterError):
        run2(lambda p: base.random_send(p, 1, 0), lambda p: None)

    def two_arrays(party):  # the right points plus a stray array: counted, not unpacked blindly
        with party.scope("base-ot#0"):
            party.recv(0, "A")
            party.send(0, "B", np.zeros((3, 32), np.uint8), np.zeros(1, np.uint8))

    with pytest.raises(EncodingError, match="sent 2 arrays under 'base-ot#0/B', expected 1"):
        run2(lambda p: base.random_send(p, 1, 3), two_arrays)
    with pytest.raises(ParameterError):
        run2(lambda p: None, lambda p: base.random_receive(p, 0, np.array([0, 2])))
    with pytest.raises(ParameterError):
        run2(lambda p: base.send(p, 1, np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.uint8)),
             lambda p: None)


def test_base_ot_sender_view_independent_of_choices():
    # The receiver's points B_i = b_i G + c_i A are uniform in the group whatever c_i:
    # compare the low nibble of their encodings for all-0 and all-1 choices (chi-square, 16 bins).
    n = 600

    def view_for(choice):
        res = run2(lambda p: base.random_send(p, 1, n), lambda p: base.random_receive(p, 0, choice),
                   record_view=True)
        (b_pts,) = [a for frm, tag, a in res.views[0] if tag.endswith("/B")][0]
        return b_pts

    b0 = view_for(np.zeros(n, np.uint8))
    b1 = view_for(np.ones(n, np.uint8))
    h0 = np.bincount(b0[:, 0] & 15, minlength=16)
    h1 = np.bincount(b1[:, 0] & 15, minlength=16)
    tot = h0 + h1
    exp0 = tot * n / (2 * n)
    chi2 = float((((h0 - exp0) ** 2) / exp0).sum() + (((h1 - exp0) ** 2) / exp0).sum())
    assert chi2 < 45  # 15 degrees of freedom: P(chi2 > 45) < 1e-4
    # and the points are distinct (fresh b_i each time)
    assert len({bytes(r) for r in b0}) == n


# --- IKNP extension -----------------------------------------------------------------------
SIZES = [1, 7, 64, 1000, 4099]


@pytest.mark.parametrize("m", SIZES)
def test_iknp_random_correlated_chosen(m):
    rng = np.random.default_rng(m)
    c = rng.integers(0, 2, m).astype(np.uint8)
    c2 = rng.integers(0, 2, m).astype(np.uint8)
    c3 = rng.integers(0, 2, m).astype(np.uint8)
    delta = rng.integers(0, 256, 16, dtype=np.uint8)
    m0 = rng.integers(0, 256, (m, 32), dtype=np.uint8)
    m1 = rng.integers(0, 256, (m, 32), dtype=np.uint8)

    def sender(party):
        s = IKNPSender.setup(party, 1)
        x0, x1 = s.random(m)
        y0 = s.correlated(m, delta)
        s.chosen(m0, m1)
        return x0, x1, y0

    def receiver(party):
        r = IKNPReceiver.setup(party, 0)
        return r.random(c), r.correlated(c2), r.chosen(c3)

    res = run2(sender, receiver)
    (x0, x1, y0), (xr, yr, mr) = res.outputs
    assert np.array_equal(xr, np.where(c[:, None] == 1, x1, x0))
    assert not np.any(np.all(x0 == x1, axis=1))
    assert np.array_equal(yr, y0 ^ (c2[:, None] * delta))
    assert np.array_equal(mr, np.where(c3[:, None] == 1, m1, m0))
    # the two random OT batches and the correlated one never repeat a key
    assert len({bytes(r) for r in np.concatenate([x0, x1, y0])}) == 3 * m


def test_iknp_repeated_calls_give_fresh_keys():
    c = np.ones(100, np.uint8)

    def sender(party):
        s = IKNPSender.setup(party, 1)
        return [s.random(100) for _ in range(3)]

    def receiver(party):
        r = IKNPReceiver.setup(party, 0)
        return [r.random(c) for _ in range(3)]

    res = run2(sender, receiver)
    batches = res.outputs[0]
    for (x0, x1), got in zip(batches, res.outputs[1]):
        assert np.array_equal(got, x1)
    assert not np.array_equal(batches[0][0], batches[1][0])


def _sender_view(choices):
    """The u matrix the sender received, and u xor G(k_{s_j}) which it can compute from its keys."""
    def sender(party):
        s = IKNPSender.setup(party, 1)
        s.random(choices.size)
        return s._keys

    def receiver(party):
        IKNPReceiver.setup(party, 0).random(choices)

    res = run2(sender, receiver, record_view=True)
    (u,) = [a for frm, tag, a in res.views[0] if "iknp-u" in tag][0]
    z = u ^ _expand(res.outputs[0], 0, u.shape[1])
    unpack = lambda a: np.unpackbits(a, axis=1, count=choices.size, bitorder="little")  # noqa: E731
    return unpack(u), unpack(z)  # [128, m] each


def test_iknp_sender_view_independent_of_choices():
    m = 4096
    tol = 5 * 0.5 / np.sqrt(m)  # 5 sigma per row of m bits
    # (1) all-zero and all-one choices: every row of u has the same bit frequency ~ 1/2
    for choices in (np.zeros(m, np.uint8), np.ones(m, np.uint8)):
        for mat in _sender_view(choices):
            assert np.all(np.abs(mat.mean(axis=1) - 0.5) < tol)
    # (2) random choices: what the sender sees or computes is uncorrelated with the choice bits
    choices = np.random.default_rng(9).integers(0, 2, m).astype(np.uint8)
    for mat in _sender_view(choices):
        agree = (mat == choices[None, :]).mean(axis=1)
        assert np.all(np.abs(agree - 0.5) < tol)
        assert abs(agree.mean() - 0.5) < 5 * 0.5 / np.sqrt(m * 128)


def test_iknp_bytes_match_the_docstring():
    # setup: 32 bytes (A) one way, 128 points back; each extension of m OTs: the 128 x ceil(m/8)
    # matrix; correlated OT 16 m back, chosen OT 2 m L back (m = 100: not a multiple of 8)
    m, L = 100, 32

    def sender(party):
        s = IKNPSender.setup(party, 1)
        with party.phase("ext"):
            s.random(m)
            s.correlated(m, np.zeros(16, np.uint8))
            s.chosen(np.zeros((m, L), np.uint8), np.ones((m, L), np.uint8))

    def receiver(party):
        r = IKNPReceiver.setup(party, 0)
        with party.phase("ext"):
            r.random(np.zeros(m, np.uint8))
            r.correlated(np.ones(m, np.uint8))
            r.chosen(np.ones(m, np.uint8))

    res = run2(sender, receiver)
    ext = res.cost.phases()["ext"]
    matrix = 128 * -(-m // 8)
    assert ext.bytes_sent[1] == 3 * matrix                # receiver (party 1) -> sender
    assert ext.bytes_sent[0] == 16 * m + 2 * m * L        # sender -> receiver
    assert res.cost.bytes_sent[0] - ext.bytes_sent[0] == 128 * 32  # setup: base-OT receiver's points
    assert res.cost.bytes_sent[1] - ext.bytes_sent[1] == 32        # setup: the base-OT sender's A


def test_iknp_rejects_bad_arguments():
    def receiver(party, bad):
        IKNPReceiver.setup(party, 0).random(bad)

    def sender(party):
        IKNPSender.setup(party, 1)

    for bad in (np.array([0, 1, 2]), np.zeros((2, 2), np.uint8), np.zeros(0, np.uint8)):
        with pytest.raises(ParameterError):
            run2(sender, lambda p, b=bad: receiver(p, b))
    with pytest.raises(ParameterError):
        run2(lambda p: IKNPSender.setup(p, 1).correlated(4, np.zeros(8, np.uint8)),
             lambda p: IKNPReceiver.setup(p, 0))
    with pytest.raises(ParameterError):
        run2(lambda p: IKNPSender.setup(p, 1).chosen(np.zeros((4, 10), np.uint8),
                                                     np.zeros((4, 10), np.uint8)),
             lambda p: IKNPReceiver.setup(p, 0))


def test_iknp_rejects_malformed_matrix():
    def receiver(party):
        IKNPReceiver.setup(party, 0)
        party.send(0, party.fresh("iknp-u"), np.zeros((128, 3), np.uint8))  # 3 bytes: 24 OTs, not 100

    with pytest.raises(EncodingError, match="IKNP matrix"):
        run2(lambda p: IKNPSender.setup(p, 1).random(100), receiver)


def test_iknp_chosen_payloads_of_another_dtype_are_refused():
    # The second payload as uint16 of the same shape was accepted and returned as uint16.
    def sender(party):
        ot = IKNPSender.setup(party, 1)
        ot.random(8)                                      # consume the receiver's matrix...
        party.send(1, party.fresh("iknp-chosen"), np.zeros((8, 16), np.uint8),
                   np.zeros((8, 16), np.uint16))          # ...then send malformed payloads

    def receiver(party):
        return IKNPReceiver.setup(party, 0).chosen(np.zeros(8, np.uint8))

    with pytest.raises(EncodingError, match="OT payloads"):
        run2(sender, receiver)


def test_iknp_receiver_view_independent_of_unchosen_messages():
    # Choices all 0: the receiver's view (the sender's ciphertexts) must not depend on m1.
    m, width = 2000, 32
    m0 = np.zeros((m, width), np.uint8)
    choices = np.zeros(m, np.uint8)

    def view_for(m1):
        res = run2(lambda p: IKNPSender.setup(p, 1).chosen(m0, m1),
                   lambda p: IKNPReceiver.setup(p, 0).chosen(choices), record_view=True)
        assert np.array_equal(res.outputs[1], m0)
        (y0, y1) = [a for frm, tag, a in res.views[1] if "iknp-chosen" in tag][0]
        return np.unpackbits(y1, axis=1)  # [m, 8 width]

    va = view_for(np.zeros((m, width), np.uint8))
    vb = view_for(np.full((m, width), 0xFF, np.uint8))
    pa, pb = va.mean(axis=0), vb.mean(axis=0)
    pooled = (pa + pb) / 2
    z = np.abs(pa - pb) / np.sqrt(pooled * (1 - pooled) * 2 / m)
    assert z.max() < 5.5  # 256 positions


def test_fixed_key_hash_with_reused_scratch_matches_fresh():
    """The scratch-reusing form (one buffer for every garbling layer) gives the same
    H(x, i), including for a smaller input after a larger one; too small a scratch is refused."""
    from mpc.ot.crhash import FixedKeyHash
    from mpc.errors import ParameterError
    h = FixedKeyHash()
    rng = np.random.default_rng(5)
    work = np.empty(2 * 4 * 3 * 7 * 2 + 2, np.uint64)
    for shape in ((4, 3, 7, 2), (2, 1, 7, 2)):
        x = rng.integers(0, 2**63, shape, dtype=np.uint64)
        lo = rng.integers(0, 2**63, shape[:2] + (1,), dtype=np.uint64)
        hi = np.arange(7, dtype=np.uint64)
        want = h(x, lo, hi)
        got = h(x, lo, hi, work=work)
        assert np.array_equal(got, want)
        # and against the definition: pi(sigma(x) ^ i) ^ sigma(x) ^ i
        y = np.stack([x[..., 1] ^ lo, x[..., 0] ^ x[..., 1] ^ hi], axis=-1)
        assert np.array_equal(want, h.permute(y) ^ y)
    with pytest.raises(ParameterError, match="scratch"):
        h(x, lo, hi, work=np.empty(3, np.uint64))
