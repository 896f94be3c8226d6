"""Paillier: textbook known answers, CRT decryption against the textbook formula,
exact homomorphic properties, signed/fixed-point encoding and overflow, packing,
key-size refusals, serialization and its negative cases."""

import math

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.errors import EncodingError, IntegrityError, ParameterError
from mpc.he import (EncryptedArray, PackedArray, Packing, PaillierKeypair, PaillierPublicKey,
                    PaillierSecretKey, paillier, paillier_keygen, serial)


@pytest.fixture(scope="module")
def kp():
    return paillier_keygen(1024, insecure_for_testing=True)


# --- known answers ---------------------------------------------------------------------

def test_textbook_example():
    """Wikipedia, "Paillier cryptosystem", worked example: p = 7, q = 11, g = 5652,
    m = 42, r = 23 gives c = 4624 (mod n^2 = 5929), which decrypts to 42."""
    n = 77
    c = pow(5652, 42, n * n) * pow(23, n, n * n) % (n * n)
    assert c == 4624
    pk = PaillierPublicKey(n, pow(4, n, n * n), insecure_for_testing=True)
    sk = PaillierSecretKey(pk, 7, 11, g=5652)
    assert sk.decrypt_raw([gmpy2.mpz(4624)]) == [42]
    # and with g = n + 1: E(42; r=23) = (1 + 42 n) 23^n mod n^2
    c2 = pk.encrypt_raw([42], randomness=[gmpy2.mpz(pow(23, n, n * n))])[0]
    assert c2 == pow(n + 1, 42, n * n) * pow(23, n, n * n) % (n * n)
    assert PaillierSecretKey(pk, 7, 11).decrypt_raw([c2]) == [42]


def test_crt_decryption_matches_the_textbook_formula(kp):
    """m = L(c^lambda mod n^2) * mu mod n, with lambda = lcm(p-1, q-1), mu = L(g^lambda)^-1."""
    pk, sk = kp
    p, q = sk._p, sk._q
    n, n2 = pk.n, pk.n_squared
    lam = gmpy2.lcm(p - 1, q - 1)
    mu = gmpy2.invert((gmpy2.powmod(n + 1, lam, n2) - 1) // n, n)
    rng = np.random.default_rng(1)
    ms = [gmpy2.mpz(int(v)) for v in rng.integers(0, 2**62, 20)] + [n - 1, gmpy2.mpz(0)]
    for m, c in zip(ms, pk.encrypt_raw(ms)):
        assert (gmpy2.powmod(c, lam, n2) - 1) // n * mu % n == m
    assert sk.decrypt_raw(pk.encrypt_raw(ms)) == ms


# --- exact arithmetic --------------------------------------------------------------------

ints = st.integers(-(2**100), 2**100)


@settings(max_examples=15, deadline=None)
@given(a=st.lists(ints, min_size=1, max_size=6), k=st.integers(-(2**40), 2**40), data=st.data())
def test_homomorphic_properties(kp, a, k, data):
    pk, sk = kp
    b = data.draw(st.lists(ints, min_size=len(a), max_size=len(a)))
    ea, eb = pk.encrypt(np.array(a, dtype=object)), pk.encrypt(np.array(b, dtype=object))
    av, bv = np.array(a, dtype=object), np.array(b, dtype=object)
    assert list(sk.decrypt(ea)) == a
    assert list(sk.decrypt(ea + eb)) == list(av + bv)
    assert list(sk.decrypt(ea - eb)) == list(av - bv)
    assert list(sk.decrypt(ea + bv)) == list(av + bv)
    assert list(sk.decrypt(bv - ea)) == list(bv - av)
    assert list(sk.decrypt(-ea)) == [-v for v in a]
    assert list(sk.decrypt(ea * k)) == [v * k for v in a]
    assert list(sk.decrypt(k * ea)) == [v * k for v in a]
    assert sk.decrypt(ea.sum()) == sum(a)
    assert sk.decrypt(ea.dot(np.array(b, dtype=object))) == sum(x * y for x, y in zip(a, b))


def test_int64_round_trip_and_shapes(kp):
    pk, sk = kp
    x = np.random.default_rng(2).integers(-(2**63), 2**63 - 1, (3, 4), dtype=np.int64)
    got = sk.decrypt(pk.encrypt(x))
    assert got.dtype == np.int64 and np.array_equal(got, x)
    assert np.array_equal(sk.decrypt(pk.encrypt(x).sum(axis=0)), x.astype(object).sum(axis=0))
    assert sk.decrypt(pk.encrypt(7)) == 7 and pk.encrypt(7).shape == ()
    s = pk.encrypt(x).sum()  # 0-d results stay EncryptedArrays through every operation
    for out in (s + 1, 1 - s, s * 3, -s, s + s, s - 2 * s, s.mul(0.5)):
        assert out.shape == () and isinstance(out.ciphertexts, np.ndarray)
    total = int(x.astype(object).sum())
    assert sk.decrypt(s + 1) == total + 1 and sk.decrypt(1 - s) == 1 - total
    assert sk.decrypt(s * 3) == 3 * total and sk.decrypt(s - 2 * s) == -total
    e = pk.encrypt(x)
    assert np.array_equal(sk.decrypt(e[1]), x[1]) and np.array_equal(sk.decrypt(e[1:, 2]), x[1:, 2])


def test_matrix_vector(kp):
    pk, sk = kp
    rng = np.random.default_rng(3)
    m, v = rng.integers(-1000, 1000, (4, 9)), rng.integers(-(10**6), 10**6, 9)
    assert np.array_equal(sk.decrypt(m @ pk.encrypt(v)), m @ v)
    w = rng.integers(-1000, 1000, (9, 3))
    assert np.array_equal(sk.decrypt(pk.encrypt(v) @ w), v @ w)
    with pytest.raises(ParameterError, match="2-D"):
        pk.encrypt(v) @ np.ones(9)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), f=st.sampled_from([8, 16, 32]))
def test_fixed_point(kp, seed, f):
    pk, sk = kp
    rng = np.random.default_rng(seed)
    x, w, m = rng.uniform(-1e3, 1e3, 12), rng.uniform(-2, 2, 12), rng.uniform(-1, 1, (3, 12))
    ex = pk.encrypt(x, frac_bits=f)
    ulp = 2.0**-f
    assert np.abs(sk.decrypt(ex) - x).max() <= ulp / 2
    assert np.abs(sk.decrypt(ex + ex * 0.5) - 1.5 * x).max() <= 2 * ulp
    assert abs(sk.decrypt(ex.dot(w)) - x @ w) <= 12 * (2 * ulp + 1e3 * 2**-16)
    assert np.abs(sk.decrypt(m @ ex) - m @ x).max() <= 12 * (2 * ulp + 1e3 * 2**-16)
    # mixed fractional bits align automatically
    assert np.abs(sk.decrypt(ex + pk.encrypt(x, frac_bits=f + 3)) - 2 * x).max() <= 2 * ulp


def test_overflow_is_detected(kp):
    pk, sk = kp
    top = int(pk.max_int)
    assert sk.decrypt(pk.encrypt(np.array([top, -top], dtype=object))).tolist() == [top, -top]
    with pytest.raises(EncodingError, match="signed range"):
        pk.encrypt(np.array([top + 1], dtype=object))
    with pytest.raises(EncodingError, match="overflow"):
        sk.decrypt(pk.encrypt(np.array([top], dtype=object)) * 2)
    with pytest.raises(EncodingError, match="overflow"):
        big = pk.encrypt(np.array([-top], dtype=object))
        sk.decrypt(big + big)


def test_bad_values(kp):
    pk, _ = kp
    with pytest.raises(EncodingError, match="frac_bits > 0"):
        pk.encrypt([0.5])
    with pytest.raises(EncodingError, match="NaN"):
        pk.encrypt([float("nan")], frac_bits=8)
    with pytest.raises(EncodingError, match="dtype"):
        pk.encrypt(np.array(["a"]))
    with pytest.raises(TypeError, match="cannot multiply two ciphertexts"):
        pk.encrypt([1]) * pk.encrypt([1])
    with pytest.raises(TypeError):
        bool(pk.encrypt([1]))
    with pytest.raises(ParameterError, match="shape"):
        np.ones((2, 3)) @ pk.encrypt([1, 2])


def test_encryption_is_randomized_and_table_path_agrees(kp):
    pk, sk = kp
    a, b = pk.encrypt([5]), pk.encrypt([5])
    assert a.ciphertexts[0] != b.ciphertexts[0]
    fresh = PaillierPublicKey(pk.n, pk.hs, insecure_for_testing=True)
    assert fresh._table is None
    many = fresh.encrypt(np.arange(70))  # >= 64 values: fixed-base table
    assert fresh._table is not None
    assert np.array_equal(sk.decrypt(many), np.arange(70))
    rs = fresh.randomness(70)
    assert len(set(rs)) == 70
    # every r is an n-th residue: it decrypts to 0
    assert sk.decrypt_raw(rs) == [0] * 70


# --- packing ---------------------------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 130), vb=st.integers(2, 70),
       k=st.integers(1, 9))
def test_packing_round_trip_and_sums(kp, seed, n, vb, k):
    pk, sk = kp
    p = Packing(value_bits=vb, max_additions=k)
    rng = np.random.default_rng(seed)
    lo, hi = -(2 ** (vb - 1)), 2 ** (vb - 1)
    xs = [np.array([lo + int.from_bytes(rng.bytes(9), "big") % (hi - lo) for _ in range(n)], dtype=object)
          for _ in range(k)]
    xs[0][0] = lo if n > 1 else hi - 1  # the extremes
    enc = [pk.encrypt_packed(x, p) for x in xs]
    assert enc[0].n_ciphertexts == len(enc[0].ciphertexts) == math.ceil(n / p.slots(pk))
    assert list(sk.decrypt_packed(enc[0])) == list(xs[0])
    assert list(sk.decrypt_packed(sum(enc))) == list(sum(xs))
    assert list(sk.decrypt_packed(enc[0] * k)) == [v * k for v in xs[0]]


def test_packing_layout_and_headroom(kp):
    pk, sk = kp
    p = Packing(value_bits=32, max_additions=1000, frac_bits=16)
    assert p.slot_bits == 42 and p.slots(pk) == 1023 // 42
    x = np.random.default_rng(4).uniform(-1000, 1000, 100)
    e = pk.encrypt_packed(x, p)
    assert np.abs(sk.decrypt_packed(e * 1000) - 1000 * x).max() <= 1000 * 2.0**-17
    with pytest.raises(EncodingError, match="weight 1001, over the headroom"):
        e * 1001
    two = Packing(8, 2)
    c = pk.encrypt_packed(np.array([-128, 127, 3]), two)
    assert list(sk.decrypt_packed(c + c)) == [-256, 254, 6]
    with pytest.raises(EncodingError, match="headroom"):
        c + c + c
    with pytest.raises(EncodingError, match="does not fit"):
        pk.encrypt_packed(np.array([128]), two)
    with pytest.raises(EncodingError, match="does not fit"):
        pk.encrypt_packed(np.array([-129]), two)
    with pytest.raises(ParameterError, match="different layouts"):
        c + pk.encrypt_packed(np.array([1, 2, 3]), Packing(8, 3))
    with pytest.raises(ParameterError, match="integers >= 0"):
        c * -1
    with pytest.raises(ParameterError):
        Packing(1)
    with pytest.raises(ParameterError):
        Packing(8, 0)


def test_unsigned_packing_holds_32_bit_values_at_their_edges(kp):
    pk, sk = kp
    u32 = Packing(value_bits=32, max_additions=3, signed=False)
    assert u32.slot_bits == 34 and u32.slots(pk) == 1023 // 34  # no sign bit spent
    edges = np.array([0, 1, 2**31, 2**32 - 1, 2**32 - 2, 0], dtype=np.uint32)
    c = pk.encrypt_packed(edges, u32)
    back = sk.decrypt_packed(c)
    assert back.dtype == np.uint64 and list(back) == [int(v) for v in edges]
    assert list(sk.decrypt_packed(c + c + c)) == [3 * int(v) for v in edges]  # no carries
    assert list(sk.decrypt_packed(c * 3)) == [3 * int(v) for v in edges]
    for bad in ([2**32], [-1], [0, 2**40]):          # overflow and negatives are refused
        with pytest.raises(EncodingError, match="does not fit"):
            pk.encrypt_packed(np.array(bad, dtype=object), u32)
    with pytest.raises(EncodingError, match="does not fit"):
        pk.encrypt_packed(np.array([-0.5]), Packing(8, 1, frac_bits=2, signed=False))
    with pytest.raises(EncodingError, match="headroom"):
        c + c + c + c
    # the signed layout still needs a 33rd bit for the same values
    with pytest.raises(EncodingError, match="does not fit"):
        pk.encrypt_packed(edges, Packing(value_bits=32, max_additions=3))
    # the layout travels with the ciphertexts; a signed one cannot be added to it
    again = pk.load_packed((c + c).serialize())
    assert again.packing == u32 and list(sk.decrypt_packed(again)) == [2 * int(v) for v in edges]
    with pytest.raises(ParameterError, match="different layouts"):
        c + pk.encrypt_packed(np.zeros(6, np.int64), Packing(value_bits=32, max_additions=3))
    with pytest.raises(ParameterError, match="signed"):
        Packing(8, signed=1)
    # blobs written before unsigned packing existed (no "signed" in the header) load as signed
    signed = pk.encrypt_packed(np.array([-5, 7]), Packing(8, 2))
    header, body = serial.load(signed.serialize(), serial.Kind.PAILLIER_PACKED)
    del header["packing"]["signed"]
    old = pk.load_packed(serial.dump(serial.Kind.PAILLIER_PACKED, header, body))
    assert old.packing == Packing(8, 2) and list(sk.decrypt_packed(old)) == [-5, 7]
    header["packing"]["signed"] = "no"
    with pytest.raises(EncodingError, match="bad packing"):
        pk.load_packed(serial.dump(serial.Kind.PAILLIER_PACKED, header, body))
    # a full 64-bit unsigned slot decodes exactly, beyond int64
    top = pk.encrypt_packed(np.array([2**64 - 1, 5], dtype=np.uint64), Packing(64, signed=False))
    assert list(sk.decrypt_packed(top)) == [2**64 - 1, 5]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80), k=st.integers(1, 6))
def test_unsigned_packing_sums_any_uint32_values(kp, seed, n, k):
    pk, sk = kp
    layout = Packing(value_bits=32, max_additions=k, signed=False)
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32) for _ in range(k)]
    xs[0][0] = 2**32 - 1
    total = sum(pk.encrypt_packed(x, layout) for x in xs)
    assert list(sk.decrypt_packed(total)) == [int(v) for v in sum(x.astype(object) for x in xs)]


def test_packing_detects_foreign_or_overflowing_plaintexts(kp):
    """A ciphertext whose plaintext does not respect the layout is refused, not
    silently unpacked: here a large unpacked value passed off as packed."""
    pk, sk = kp
    p = Packing(8, 1)
    fake = PackedArray(pk, pk.encrypt(np.array([2**900], dtype=object)).ciphertexts, p, 3, 1)
    with pytest.raises(EncodingError, match="above its last slot"):
        sk.decrypt_packed(fake)
    slot = PackedArray(pk, pk.encrypt(np.array([0xFFFF], dtype=object)).ciphertexts, Packing(15, 2), 1, 1)
    with pytest.raises(EncodingError, match="slot out of range"):
        sk.decrypt_packed(slot)


# --- keys and safety ---------------------------------------------------------------------

def test_small_keys_are_refused():
    with pytest.raises(ParameterError, match="1024-bit Paillier modulus is insecure; at least 2048"):
        paillier_keygen(1024)
    with pytest.raises(ParameterError, match="even number of bits"):
        paillier_keygen(2049)
    kp = paillier_keygen(512, insecure_for_testing=True)
    with pytest.raises(ParameterError, match="insecure"):
        PaillierPublicKey.load(kp.public.serialize())
    with pytest.raises(ParameterError, match="insecure"):
        PaillierSecretKey.load(kp.secret.serialize())


def test_default_key_is_2048_bits():
    kp = paillier_keygen()
    assert isinstance(kp, PaillierKeypair) and kp.public.bits == 2048 == paillier.DEFAULT_BITS
    assert kp.secret.decrypt(kp.public.encrypt([-3, 4])).tolist() == [-3, 4]
    assert 512 < len(kp.public.encrypt([1]).serialize()) < 640
    assert gmpy2.is_prime(kp.secret._p) and kp.secret._p.bit_length() == 1024


def test_key_serialization(kp):
    pk, sk = kp
    pk2 = PaillierPublicKey.load(pk.serialize(), insecure_for_testing=True)
    sk2 = PaillierSecretKey.load(sk.serialize(), insecure_for_testing=True)
    assert pk2 == pk and pk2.key_id == pk.key_id
    assert sk2.decrypt(pk2.encrypt([11, -12])).tolist() == [11, -12]
    assert str(int(sk._p)) not in repr(sk) and b"secret" not in pk.serialize()
    blob = bytearray(sk.serialize())
    blob[30] ^= 4
    with pytest.raises(IntegrityError):
        PaillierSecretKey.load(bytes(blob), insecure_for_testing=True)
    with pytest.raises(EncodingError, match="expected a serialized PAILLIER_PUBLIC_KEY"):
        PaillierPublicKey.load(sk.serialize(), insecure_for_testing=True)
    # p * q != n
    header, body = serial.load(sk.serialize(), serial.Kind.PAILLIER_SECRET_KEY)
    n, hs, p, q = serial.split_parts(body, 4, "x")
    swapped = serial.dump(serial.Kind.PAILLIER_SECRET_KEY, header,
                          serial.join_parts([n, hs, p, (int.from_bytes(q, "big") + 2).to_bytes(len(q), "big")]))
    with pytest.raises(ParameterError, match="does not match"):
        PaillierSecretKey.load(swapped, insecure_for_testing=True)


def test_ciphertext_serialization(kp):
    pk, sk = kp
    x = np.arange(-5, 7).reshape(3, 4)
    e = pk.encrypt(x * 0.25, frac_bits=4)
    back = pk.load_ciphertexts(e.serialize())
    assert isinstance(back, EncryptedArray) and back.shape == (3, 4) and back.frac_bits == 4
    assert np.array_equal(sk.decrypt(back), x * 0.25)
    packed = pk.encrypt_packed(np.arange(50), Packing(16, 4))
    assert list(sk.decrypt_packed(pk.load_packed((packed + packed).serialize()))) == list(2 * np.arange(50))
    other = paillier_keygen(512, insecure_for_testing=True).public
    with pytest.raises(ParameterError, match="encrypted under key"):
        other.load_ciphertexts(e.serialize())
    with pytest.raises(ParameterError, match="under key"):
        paillier_keygen(512, insecure_for_testing=True).secret.decrypt(e)
    blob = bytearray(e.serialize())
    blob[-40] ^= 1
    with pytest.raises(IntegrityError):
        pk.load_ciphertexts(bytes(blob))
    with pytest.raises(EncodingError, match="expected a serialized PAILLIER_CIPHERTEXTS"):
        pk.load_ciphertexts(packed.serialize())


def test_malformed_ciphertexts_are_refused(kp):
    pk, _ = kp
    width = (pk.n_squared.bit_length() + 7) // 8
    header = {"key_id": pk.key_id, "shape": [1], "frac_bits": 0}
    for bad in (0, int(pk.n_squared), int(pk.n_squared) + 5, int(pk.n) * 3):
        blob = serial.dump(serial.Kind.PAILLIER_CIPHERTEXTS, header, bad.to_bytes(width + 1, "big")[-width:])
        with pytest.raises(EncodingError):
            pk.load_ciphertexts(blob)
    short = serial.dump(serial.Kind.PAILLIER_CIPHERTEXTS, {**header, "shape": [2]}, b"\x01" * width)
    with pytest.raises(EncodingError, match="bytes for 2 ciphertexts"):
        pk.load_ciphertexts(short)
    lie = serial.dump(serial.Kind.PAILLIER_CIPHERTEXTS, {**header, "shape": [-1]}, b"")
    with pytest.raises(EncodingError, match="bad shape"):
        pk.load_ciphertexts(lie)


@settings(max_examples=25, deadline=None)
@given(exps=st.lists(st.integers(-(2**70), 2**70), min_size=0, max_size=12), w=st.sampled_from([1, 3, 4, 8]))
def test_multiexp_matches_separate_powers(exps, w):
    mod = gmpy2.mpz(1000003 * 999983) ** 2
    bases = [gmpy2.mpz(7 + 2 * i) for i in range(len(exps))]
    want = gmpy2.mpz(1)
    for b, e in zip(bases, exps):
        want = want * gmpy2.powmod(b, e, mod) % mod
    assert paillier.multiexp(bases, exps, mod, w) == want


def test_ciphertexts_look_uniform(kp):
    """Encryptions of 0 and of 2^40 are both randomized: their low bytes pass a
    chi-square test of uniformity (a deterministic or low-entropy encryption fails)."""
    pk, _ = kp
    for value in (0, 2**40):
        cts = pk.encrypt(np.full(800, value, dtype=np.int64)).ciphertexts
        counts = np.bincount([int(c) & 0xF for c in cts], minlength=16)
        chi2 = float(((counts - 50.0) ** 2 / 50.0).sum())
        assert chi2 < 45.0  # 15 degrees of freedom: p ~ 1e-4
        assert len({int(c) for c in cts}) == 800


def test_rerandomize_hides_the_plain_factors(kp):
    """The key holder can read a ciphertext's randomness r = c^(1/n) mod n; for
    E(x)^k it is r_x^k, which reveals k. After rerandomize() it is fresh."""
    pk, sk = kp
    p, q = sk._p, sk._q
    n = pk.n
    lam = gmpy2.lcm(p - 1, q - 1)
    n_inv = gmpy2.invert(n, lam)

    def randomness(c):  # r with c = (1 + m n) r^n mod n^2, computed by the key holder
        return gmpy2.powmod(c % n, n_inv, n)

    x = pk.encrypt([5])
    r_x = randomness(x.ciphertexts[0])
    k = 12345
    scaled = x * k
    assert randomness(scaled.ciphertexts[0]) == gmpy2.powmod(r_x, k, n)  # the leak
    fresh = scaled.rerandomize()
    assert sk.decrypt(fresh).tolist() == [5 * k]
    assert randomness(fresh.ciphertexts[0]) != gmpy2.powmod(r_x, k, n)
    assert (x * 0).ciphertexts[0] == 1 and (x * 0).rerandomize().ciphertexts[0] != 1
    packed = pk.encrypt_packed(np.array([1, -2]), Packing(8, 2))
    again = packed.rerandomize()
    assert again.ciphertexts[0] != packed.ciphertexts[0]
    assert sk.decrypt_packed(again).tolist() == [1, -2]


# --- the envelope (mpc.he.serial) ----------------------------------------------------------

def _reseal(raw: bytes) -> bytes:
    """Recompute the digest so that the checks after it are reached."""
    import hashlib
    body = raw[:-serial.DIGEST_BYTES]
    if body[4] == 1:   # format version 1
        return body + hashlib.blake2b(body, digest_size=serial.DIGEST_BYTES, person=b"concilium-he").digest()
    return body + hashlib.sha256(b"concilium-he" + body).digest()[:serial.DIGEST_BYTES]


def test_envelope_layout_and_checks(kp):
    pk, _ = kp
    blob = pk.serialize()
    assert blob[:4] == b"CNHE" and blob[4] == 2 and blob[5] == serial.Kind.PAILLIER_PUBLIC_KEY
    assert _reseal(blob) == blob   # the digest is SHA-256(b"concilium-he" || bytes), 16 bytes
    hlen = int.from_bytes(blob[6:10], "big")
    blen = int.from_bytes(blob[10 + hlen:18 + hlen], "big")
    assert len(blob) == 18 + hlen + blen + 16
    assert PaillierPublicKey.load(_reseal(blob), insecure_for_testing=True) == pk
    with pytest.raises(EncodingError, match="bad magic"):
        serial.load(_reseal(b"XXXX" + blob[4:]), serial.Kind.PAILLIER_PUBLIC_KEY)
    with pytest.raises(EncodingError, match="version 3 is not supported"):
        serial.load(_reseal(blob[:4] + b"\x03" + blob[5:]), serial.Kind.PAILLIER_PUBLIC_KEY)
    v1 = _reseal(blob[:4] + b"\x01" + blob[5:-16] + bytes(16))   # format 1 (BLAKE2b) still loads
    assert PaillierPublicKey.load(v1, insecure_for_testing=True) == pk
    with pytest.raises(IntegrityError):   # a v2 digest under a v1 version byte, and back
        serial.load(v1[:-16] + blob[-16:], serial.Kind.PAILLIER_PUBLIC_KEY)
    with pytest.raises(IntegrityError):
        serial.load(blob[:4] + b"\x01" + blob[5:], serial.Kind.PAILLIER_PUBLIC_KEY)
    with pytest.raises(EncodingError, match="kind 99"):
        serial.load(_reseal(blob[:5] + b"\x63" + blob[6:]), serial.Kind.PAILLIER_PUBLIC_KEY)
    with pytest.raises(EncodingError, match="header length"):
        serial.load(_reseal(blob[:6] + (10**6).to_bytes(4, "big") + blob[10:]), serial.Kind.PAILLIER_PUBLIC_KEY)
    with pytest.raises(EncodingError, match="body length"):
        serial.load(_reseal(blob[:-16] + b"\x00" + blob[-16:]), serial.Kind.PAILLIER_PUBLIC_KEY)
    bad_json = blob[:10] + b"{" * hlen + blob[10 + hlen:]
    with pytest.raises(EncodingError, match="unreadable header"):
        serial.load(_reseal(bad_json), serial.Kind.PAILLIER_PUBLIC_KEY)
    with pytest.raises(EncodingError, match="exceeds 10"):
        serial.load(blob, serial.Kind.PAILLIER_PUBLIC_KEY, max_body=10)
    for cut in (1, 17, len(blob) // 2):
        with pytest.raises((IntegrityError, EncodingError)):
            serial.load(blob[:-cut], serial.Kind.PAILLIER_PUBLIC_KEY)


@pytest.mark.parametrize("head", [b"[" * 5000 + b"]" * 5000, b'{"a":' + b"1" * 5000 + b"}"])
def test_envelope_header_nested_or_huge_int_is_an_encoding_error(head):
    # a peer can reseal anything (the digest is no MAC): deep nesting / over-long ints in the
    # header must be refused as EncodingError, not escape as RecursionError / ValueError
    blob = b"CNHE" + bytes([2, serial.Kind.PAILLIER_PUBLIC_KEY]) + len(head).to_bytes(4, "big") + head + bytes(8)
    with pytest.raises(EncodingError, match="unreadable header"):
        serial.load(_reseal(blob + bytes(16)), serial.Kind.PAILLIER_PUBLIC_KEY)


def test_envelope_parts():
    parts = [b"", b"abc", bytes(300)]
    joined = serial.join_parts(parts)
    listed = serial.dump(serial.Kind.CKKS_VECTOR, {"a": 1}, parts)   # parts joined inside dump
    assert listed == serial.dump(serial.Kind.CKKS_VECTOR, {"a": 1}, joined)
    assert bytes(serial.load(np.frombuffer(listed, np.uint8), serial.Kind.CKKS_VECTOR)[1]) == joined
    assert serial.split_parts(memoryview(joined), 3, "t") == parts
    with pytest.raises(EncodingError, match="trailing"):
        serial.split_parts(memoryview(joined + b"x"), 3, "t")
    with pytest.raises(EncodingError, match="runs past"):
        serial.split_parts(memoryview(joined[:-1]), 3, "t")
    with pytest.raises(EncodingError, match="ends inside part 3"):
        serial.split_parts(memoryview(joined), 4, "t")


def test_subtracting_unsigned_and_bool_arrays_and_huge_frac_bits(kp):
    pk, sk = kp
    e = pk.encrypt(np.array([10, 10]))
    assert sk.decrypt(e - np.array([3, 4], dtype=np.uint8)).tolist() == [7, 6]       # no uint wrap
    assert sk.decrypt(e - np.array([3, 4], dtype=np.uint64)).tolist() == [7, 6]
    assert sk.decrypt(e - np.array([True, False])).tolist() == [9, 10]
    with pytest.raises(EncodingError, match="signed range"):
        pk.encrypt([0.5], frac_bits=1100)                 # was a raw OverflowError
    assert sk.decrypt(pk.encrypt([0.5, -1.25], frac_bits=16)).tolist() == [0.5, -1.25]


def test_offline_randomness(kp):
    pk, sk = kp
    pool = pk.randomness(5)
    e = pk.encrypt(np.array([1, 2, 3, 4, 5]), randomness=pool)
    assert np.array_equal(sk.decrypt(e), [1, 2, 3, 4, 5])
    assert pool == []                                      # consumed: it cannot serve twice
    with pytest.raises(ParameterError, match="already used"):
        pk.encrypt(np.array([1, 2, 3, 4, 5]), randomness=pool)
    pool = pk.randomness(5)
    with pytest.raises(ParameterError, match="5 plaintexts but 4 random values"):
        pk.encrypt(np.arange(5), randomness=pool[:4])
    p = pk.encrypt_packed(np.arange(3), Packing(8), randomness=pk.randomness(1))
    assert list(sk.decrypt_packed(p)) == [0, 1, 2]


def test_masked_slot_packing_round_trip():
    # Packing encrypted values without the key (ml.vertical's masked gradients).
    from mpc.he import paillier
    from mpc.he.packing import decrypt_packed, pack_encrypted
    from mpc.rand import PRG

    ring, offset, mask_bits = 1 << 64, 1 << 255, 296
    keys = paillier.keygen(1024, insecure_for_testing=True)        # 3 slots per ciphertext
    values = [0, 1, -1, 2**191, -(2**191), 12345, -987654321]
    enc = keys.public.encrypt(np.array(values, dtype=object))
    raw = PRG(bytes(16)).bytes(37 * len(values))
    masks = [offset + (int.from_bytes(raw[k:k + 37], "big") >> (8 * 37 - mask_bits))
             for k in range(0, len(raw), 37)]
    packed = pack_encrypted(enc, Packing(value_bits=mask_bits + 1, signed=False), masks)
    assert packed.n_ciphertexts == 3
    slots = decrypt_packed(keys.secret, packed)
    got = [(int(s) - m) % ring for s, m in zip(slots, masks)]
    assert got == [v % ring for v in values]
    signed = pack_encrypted(enc, Packing(value_bits=200))          # offsets, no masks
    assert [int(v) for v in decrypt_packed(keys.secret, signed)] == values
