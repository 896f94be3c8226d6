"""CKKS on TenSEAL: results against numpy within the documented bounds, vectors
shorter and longer than one ciphertext, depth tracking, the secret/public split,
serialization and its negative cases."""

import numpy as np
import pytest
import tenseal as ts
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.errors import EncodingError, IntegrityError, ParameterError
from mpc.he import CKKSParams, DepthError, EncryptedVector, PublicContext, SecretContext, ckks

# Documented bounds (docs/he.md) for scale 2^40 and inputs |x| <= 8.
ADD_TOL = 1e-6
MUL_TOL = 1e-4   # one product, dot of <= 10^4 terms, matvec, polynomials of degree <= 3
SLOTS = 4096     # N = 8192
LENGTHS = [1, 7, 64, SLOTS - 1, SLOTS, SLOTS + 1, 2 * SLOTS + 123]


@pytest.fixture(scope="module")
def sc():
    return SecretContext.create("quadratic", rotations=("sum", "matvec"))


@pytest.fixture(scope="module")
def pc(sc):
    return sc.public()


@pytest.fixture(scope="module")
def lite():
    """A context with few rotation keys, for tests that serialize whole contexts."""
    return SecretContext.create("linear", rotations=("sum",), max_length=16)


def vec(n, seed, bound=8.0):
    return np.random.default_rng(seed).uniform(-bound, bound, n)


@settings(max_examples=12, deadline=None)
@given(n=st.sampled_from(LENGTHS), seed=st.integers(0, 2**32 - 1))
def test_elementwise_matches_numpy(sc, pc, n, seed):
    x, y, p = vec(n, seed), vec(n, seed + 1), vec(n, seed + 2)
    ex, ey = pc.encrypt(x), sc.encrypt(y)
    assert len(ex) == n and ex.n_ciphertexts == -(-n // SLOTS) and ex.depth == 2
    assert not hasattr(ex, "ciphertexts")  # a count is n_ciphertexts, as in Paillier's
    d = sc.decrypt
    assert np.abs(d(ex + ey) - (x + y)).max() < ADD_TOL
    assert np.abs(d(ex - ey) - (x - y)).max() < ADD_TOL
    assert np.abs(d(ex + p) - (x + p)).max() < ADD_TOL
    assert np.abs(d(p - ex) - (p - x)).max() < ADD_TOL
    assert np.abs(d(2.5 + ex) - (x + 2.5)).max() < ADD_TOL
    assert np.abs(d(-ex) + x).max() < ADD_TOL
    assert np.abs(d(ex * ey) - x * y).max() < MUL_TOL
    assert np.abs(d(p * ex) - x * p).max() < MUL_TOL
    assert np.abs(d(ex * -1.5) - x * -1.5).max() < MUL_TOL
    prod = ex * ey * ex
    assert prod.depth == 0
    assert np.abs(d(prod) - x * y * x).max() < 10 * MUL_TOL


@pytest.mark.parametrize("n", [1, 5, 100, SLOTS, SLOTS + 1, 2 * SLOTS + 123])
def test_sum_and_dot(sc, pc, n):
    x, y = vec(n, n), vec(n, n + 1)
    ex, ey = pc.encrypt(x), pc.encrypt(y)
    s = ex.sum()
    assert len(s) == 1 and s.n_ciphertexts == 1 and s.depth == 2
    assert abs(sc.decrypt(s)[0] - x.sum()) < 1e-4
    assert abs(sc.decrypt(ex.dot(y))[0] - x @ y) < 1e-3
    assert abs(sc.decrypt(ex.dot(ey))[0] - x @ y) < 1e-3
    assert ex.dot(ey).depth == 1


@pytest.mark.parametrize("shape", [(3, 10), (30, 10), (1, 33), (SLOTS - 11, 12), (SLOTS + 5, 12), (7, 1)])
def test_matvec(sc, pc, shape):
    rng = np.random.default_rng(shape[0])
    m, x = rng.uniform(-1, 1, shape), vec(shape[1], 3)
    ex = pc.encrypt(x)
    out = m @ ex
    assert len(out) == shape[0] and out.depth == 1
    assert np.abs(sc.decrypt(out) - m @ x).max() < MUL_TOL
    assert np.abs(sc.decrypt(ex @ m.T) - x @ m.T).max() < MUL_TOL
    # chained: (M2 @ (M @ x)) and after an encrypted product
    sq = ex * ex
    assert np.abs(sc.decrypt(m @ sq) - m @ (x * x)).max() < 1e-3


def test_matvec_after_plain_vector_ops(sc, pc):
    """TenSEAL's diagonal method silently returns wrong values after a product
    with a plain vector (plain vectors are not replicated across the slots): we
    use the row method there, with the same rotation keys."""
    x, p, m = vec(10, 1), vec(10, 2), vec(30, 3).reshape(3, 10)
    got = m @ (pc.encrypt(x) * p)
    assert got.n_ciphertexts == 3 and got.depth == 0
    assert np.abs(sc.decrypt(got) - m @ (x * p)).max() < MUL_TOL
    assert np.abs(sc.decrypt((pc.encrypt(x) + p) @ m.T) - (x + p) @ m.T).max() < MUL_TOL
    only_diag = SecretContext.create("linear", rotations=("matvec",), max_length=16)
    y = only_diag.encrypt(x)
    assert np.abs(only_diag.decrypt(m @ y) - m @ x).max() < MUL_TOL
    assert np.abs(only_diag.decrypt(m @ (y + p)) - m @ (x + p)).max() < MUL_TOL
    # what TenSEAL alone returns for the same product: wrong
    wrong = (y + p)._chunks[0].mm(ts._ts_cpp.PlainTensorDouble(m.T.tolist()))
    assert np.abs(np.array(wrong.decrypt(only_diag._sk)) - m @ (x + p)).max() > 0.1


def test_matvec_long_input_uses_rows(sc, pc):
    x = vec(SLOTS + 5, 4, bound=1.0)
    m = np.random.default_rng(5).uniform(-1, 1, (3, SLOTS + 5))
    out = m @ pc.encrypt(x)
    assert len(out) == 3 and out.n_ciphertexts == 3 and out.depth == 1
    assert np.abs(sc.decrypt(out) - m @ x).max() < 1e-3
    assert abs(sc.decrypt(out.sum())[0] - (m @ x).sum()) < 1e-3
    back = pc.load_vector(out.serialize())
    assert np.abs(sc.decrypt(back) - m @ x).max() < 1e-3
    with pytest.raises(ParameterError, match="split differently"):
        out + pc.encrypt(m @ x)


@pytest.mark.parametrize("coeffs", [[0.5, 1.0], [1.0, -0.5, 0.25], [0.1, 0.2, 0.0, -0.01], [3.0], [0.0, 0.0]])
def test_polyval(sc, pc, coeffs):
    x = vec(SLOTS + 10, 4, bound=2.0)
    out = pc.encrypt(x).polyval(coeffs)
    want = np.polynomial.polynomial.polyval(x, coeffs)
    assert np.abs(sc.decrypt(out) - want).max() < MUL_TOL
    degree = max([i for i, c in enumerate(coeffs) if c] or [0])
    assert out.depth == (2 - degree.bit_length() if degree else 2)


def test_depth_is_tracked_and_refused_before_corruption(sc, pc):
    x = vec(20, 5, bound=1.0)
    ex = pc.encrypt(x)
    e2 = ex * ex
    e1 = e2 * ex          # mixes levels 1 and 2
    assert (ex.depth, e2.depth, e1.depth) == (2, 1, 0)
    assert ex.depth == 2  # TenSEAL would have mod-switched ex in place; we do not let it
    assert np.abs(sc.decrypt(ex * ex) - x * x).max() < MUL_TOL
    with pytest.raises(DepthError, match="needs 1 multiplicative level.*has 0 left"):
        e1 * ex
    with pytest.raises(DepthError):
        e1 * 2.0
    with pytest.raises(DepthError, match="polyval of degree 4 needs 3"):
        ex.polyval([0, 0, 0, 0, 1])
    with pytest.raises(DepthError):
        e1.dot(x)
    assert isinstance(DepthError("x"), ParameterError)
    # additions still work at depth 0 and the value is intact
    assert np.abs(sc.decrypt(e1 + e1) - 2 * x**3).max() < MUL_TOL
    assert (ex - ex).depth == 2 and np.abs(sc.decrypt(ex - ex)).max() < ADD_TOL


def test_aggregate_preset_has_no_depth():
    sc = SecretContext.create("aggregate")
    x = vec(3000, 6)
    total = sum(sc.public().encrypt(x + i) for i in range(5))
    assert np.abs(sc.decrypt(total) - (5 * x + 10)).max() < ADD_TOL
    with pytest.raises(DepthError):
        total * 2.0


def test_missing_rotation_keys_are_named():
    sc = SecretContext.create("linear", rotations=("sum",), max_length=16)
    x = vec(16, 7)
    assert abs(sc.decrypt(sc.encrypt(x).sum())[0] - x.sum()) < 1e-4
    with pytest.raises(ParameterError, match="needs rotations 'sum' for max_length >= 17"):
        sc.encrypt(vec(17, 7)).sum()
    # without "matvec" keys a matrix product uses the row method
    assert np.abs(sc.decrypt(np.ones((2, 16)) @ sc.encrypt(x)) - x.sum()).max() < 1e-4
    bare = SecretContext.create("linear")
    with pytest.raises(ParameterError, match="needs rotations 'matvec'"):
        np.ones((2, 16)) @ bare.encrypt(x)
    with pytest.raises(ParameterError, match="unknown rotation kind"):
        SecretContext.create("linear", rotations=("all",))


def test_bad_inputs(sc, pc):
    with pytest.raises(EncodingError, match="non-empty 1-D"):
        pc.encrypt([])
    with pytest.raises(EncodingError, match="non-empty 1-D"):
        pc.encrypt(np.ones((2, 2)))
    with pytest.raises(EncodingError, match=r"\|x\| < 524288"):
        pc.encrypt([2.0**19])
    with pytest.raises(EncodingError):
        pc.encrypt([float("nan")])
    ex = pc.encrypt(vec(10, 8))
    with pytest.raises(ParameterError, match="lengths differ"):
        ex + pc.encrypt(vec(11, 8))
    with pytest.raises(ParameterError, match="does not match"):
        ex * np.ones(11)
    with pytest.raises(ParameterError, match="expected \\(m, 10\\)"):
        ex.matvec(np.ones((3, 9)))
    with pytest.raises(TypeError):
        bool(ex)
    with pytest.raises(ParameterError, match="bound of 218 bits for N=8192"):
        SecretContext.create(CKKSParams(8192, (60, 40, 40, 40, 40, 60), 40))


def test_different_keys_are_refused(sc):
    other = SecretContext.create("quadratic")
    x = vec(10, 9)
    ex, ox = sc.encrypt(x), other.encrypt(x)
    with pytest.raises(ParameterError, match="different keys"):
        ex + ox
    with pytest.raises(EncodingError, match="encrypted under key"):
        sc.decrypt(ox)
    with pytest.raises(ParameterError, match="encrypted under key"):
        sc.public().load_vector(ox.serialize())


def test_encryption_is_randomized(sc, pc):
    a, b = pc.encrypt(np.zeros(8)).serialize(), pc.encrypt(np.zeros(8)).serialize()
    assert a != b


def test_public_context_holds_no_secret_key(lite):
    sc, pc = lite, lite.public()
    blob = pc.serialize()
    assert blob == sc.serialize_public()
    with pytest.raises(TypeError, match="serialize_public.*serialize_with_secret_key"):
        sc.serialize()                     # ambiguous: refused rather than guessed
    with pytest.raises(TypeError, match="ambiguous"):
        sc.serialize(include_secret_key=True)
    loaded = PublicContext.load(blob)
    assert loaded.key_id == pc.key_id and loaded._ts.is_public()
    assert not hasattr(loaded, "decrypt")
    # the secret key's bytes are nowhere in the public serialization
    sk = sc._ts.serialize(save_public_key=False, save_secret_key=True,
                          save_galois_keys=False, save_relin_keys=False)
    assert len(sk) > 10_000 and sk[-4096:] not in blob
    # a server computes with the loaded context; the key holder decrypts
    x = vec(16, 10)
    out = loaded.encrypt(x) * 2.0 + loaded.load_vector(pc.encrypt(x).serialize())
    assert abs(sc.decrypt(pc.load_vector(out.sum().serialize()))[0] - 3 * x.sum()) < 1e-3
    with pytest.raises(EncodingError, match="expected a serialized CKKS_SECRET_CONTEXT"):
        SecretContext.load(blob)


def test_secret_context_round_trip(lite):
    sc, pc = lite, lite.public()
    blob = sc.serialize_with_secret_key()
    again = SecretContext.load(blob)
    x = vec(2 * 4096 + 3, 11)
    enc = pc.encrypt(x).serialize()
    assert np.abs(again.decrypt(again.public().load_vector(enc)) - x).max() < ADD_TOL
    with pytest.raises(EncodingError, match="expected a serialized CKKS_PUBLIC_CONTEXT"):
        PublicContext.load(blob)


def test_spliced_secret_context_is_refused(lite):
    """A secret key from one context with the public key of another."""
    from mpc.he import serial
    sc = lite
    other = SecretContext.create("linear", rotations=("sum",), max_length=16)
    _, mine = serial.load(sc.serialize_with_secret_key(), serial.Kind.CKKS_SECRET_CONTEXT)
    header, theirs = serial.load(other.serialize_with_secret_key(), serial.Kind.CKKS_SECRET_CONTEXT)
    private, _ = serial.split_parts(mine, 2, "x")
    _, public = serial.split_parts(theirs, 2, "x")
    blob = serial.dump(serial.Kind.CKKS_SECRET_CONTEXT, header, serial.join_parts([private, public]))
    with pytest.raises(EncodingError, match="does not match the public key"):
        SecretContext.load(blob)


def test_vector_serialization(sc, pc):
    x = vec(SLOTS + 17, 12)
    ex = pc.encrypt(x) * 0.5
    blob = ex.serialize()
    back = pc.load_vector(blob)
    assert isinstance(back, EncryptedVector) and len(back) == len(x) and back.depth == 1
    assert np.abs(sc.decrypt(back) - x / 2).max() < MUL_TOL
    s = pc.load_vector(pc.encrypt(x).sum().serialize())
    assert len(s) == 1 and abs(sc.decrypt(s)[0] - x.sum()) < 1e-4


@pytest.mark.parametrize("where", [0, 5, 40, 1000, -20, -1])
def test_corrupted_bytes_are_refused(pc, where):
    blob = bytearray(pc.encrypt(vec(100, 13)).serialize())
    blob[where] ^= 0x01
    with pytest.raises(IntegrityError):
        pc.load_vector(bytes(blob))


def test_truncated_and_malformed(pc):
    blob = pc.encrypt(vec(100, 14)).serialize()
    with pytest.raises(IntegrityError):
        pc.load_vector(blob[:-1])
    with pytest.raises(EncodingError, match="too short"):
        pc.load_vector(blob[:10])
    with pytest.raises(EncodingError):
        pc.load_vector("not bytes")  # type: ignore[arg-type]
    # a well-formed envelope whose chunk is garbage
    from mpc.he import serial
    header = {"key_id": pc.key_id, "length": 100, "chunks": 1, "replicated": True}
    bad = serial.dump(serial.Kind.CKKS_VECTOR, header, serial.join_parts([b"\x00" * 64]))
    with pytest.raises(EncodingError):
        pc.load_vector(bad)
    # a header that lies about the length
    good = serial.load(blob, serial.Kind.CKKS_VECTOR)[1]
    lie = serial.dump(serial.Kind.CKKS_VECTOR, {**header, "length": 99}, bytes(good))
    with pytest.raises(EncodingError, match="chunk sizes"):
        pc.load_vector(lie)


def test_public_context_refuses_unsafe_header(lite):
    pc = lite.public()
    from mpc.he import serial
    header, body = serial.load(pc.serialize(), serial.Kind.CKKS_PUBLIC_CONTEXT)
    bad = serial.dump(serial.Kind.CKKS_PUBLIC_CONTEXT, {**header, "bits": [60, 60, 60, 60]}, bytes(body))
    with pytest.raises(ParameterError, match="exceeds the 128-bit security bound"):
        PublicContext.load(bad)
    wrong = serial.dump(serial.Kind.CKKS_PUBLIC_CONTEXT, {**header, "bits": [60, 40, 40, 60]}, bytes(body))
    with pytest.raises(EncodingError, match="do not match"):
        PublicContext.load(wrong)


def test_module_exports():
    assert ckks.SecretContext is SecretContext and "EncryptedVector" in ckks.__all__


def test_through_a_party_message(sc, pc):
    """Serialized objects travel as uint8 arrays between parties."""
    import mpc

    x = vec(100, 15)

    def program(party):
        if party.id == 0:
            party.send(1, "ct", np.frombuffer(pc.encrypt(x).serialize(), np.uint8))
            (back,) = party.recv(1, "sum")
            return sc.decrypt(pc.load_vector(back))
        (arr,) = party.recv(0, "ct")
        v = pc.load_vector(arr)
        party.send(0, "sum", np.frombuffer(sum([v, v, v]).serialize(), np.uint8))
        return None

    res = mpc.run(program, parties=2)
    assert np.abs(res.outputs[0] - 3 * x).max() < ADD_TOL
    assert res.cost.bytes_sent[0] > 300_000


def test_public_context_holds_only_the_requested_rotation_keys(lite):
    """rotations=("sum",), max_length=16 gives keys for steps 1, 2, 4, 8 only:
    TenSEAL itself (bypassing our check) cannot sum 32 slots with them, and the
    public context is far smaller than one with every power-of-two key."""
    x = lite.public().encrypt(vec(32, 16))
    with pytest.raises((ValueError, RuntimeError)):
        x._chunks[0].sum()
    assert abs(lite.decrypt(lite.encrypt(vec(16, 16)).sum())[0] - vec(16, 16).sum()) < 1e-4
    full = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 60])
    full.generate_galois_keys()
    everything = len(full.serialize(save_secret_key=False, save_galois_keys=True))
    assert len(lite.serialize_public()) < everything / 3


# --- rotations (EncryptedVector.rotate, Diagonals / linear_transform) ----------------------

ROT_STEPS = (1, -1, 3, 64, -1000, 2047)


@pytest.fixture(scope="module")
def rot_sc():
    return SecretContext.create("aggregate", steps=ROT_STEPS)  # N = 4096: 2048 slots, depth 0


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(ROT_STEPS + (0, 2048, -2048 * 3)), st.integers(0, 2**32 - 1))
def test_rotate_is_numpy_roll_on_the_slot_vector(rot_sc, k, seed):
    x = np.random.default_rng(seed).uniform(-8, 8, size=rot_sc.public().slots)
    v = rot_sc.encrypt(x)
    r = v.rotate(k)
    assert r.depth == v.depth and len(r) == len(x)
    assert np.max(np.abs(rot_sc.decrypt(r) - np.roll(x, k))) < ADD_TOL * 10
    assert np.max(np.abs(rot_sc.decrypt(v) - x)) < ADD_TOL  # the operand is unchanged


def test_rotate_keeps_depth_and_composes_with_products():
    sc = SecretContext.create("linear", steps=(5,))
    x = np.random.default_rng(1).uniform(-2, 2, size=sc.public().slots)
    v = sc.encrypt(x)
    r = (v.rotate(5) * 0.5).rotate(5)
    assert r.depth == v.depth - 1 == 0
    assert np.allclose(sc.decrypt(r), 0.5 * np.roll(x, 10), atol=MUL_TOL)
    # a vector shorter than the slots: its first values of the rolled slot vector (TenSEAL repeats it)
    short = sc.encrypt(np.arange(7.0))
    assert np.allclose(sc.decrypt(short.rotate(5)), np.roll(np.resize(np.arange(7.0), sc.public().slots), 5)[:7],
                       atol=1e-4)


def test_rotate_refuses_missing_keys_and_bad_operands(rot_sc):
    v = rot_sc.encrypt(np.ones(rot_sc.public().slots))
    with pytest.raises(ParameterError, match=r"no rotation \(Galois\) key for step 2 .*steps=\(2,\)"):
        v.rotate(2)
    with pytest.raises(ParameterError, match="integer"):
        v.rotate(1.0)
    with pytest.raises(ParameterError, match="one ciphertext"):
        rot_sc.encrypt(np.ones(rot_sc.public().slots + 1)).rotate(1)
    with pytest.raises(ParameterError, match="integers"):
        SecretContext.create("aggregate", steps=("1",))
    # power-of-two keys: SEAL composes a step from signed powers of two when all are present
    sums = SecretContext.create("aggregate", rotations=("sum",), max_length=16)
    x = np.arange(sums.public().slots, dtype=np.float64) / 100
    assert np.allclose(sums.decrypt(sums.encrypt(x).rotate(-4)), np.roll(x, -4), atol=1e-5)
    with pytest.raises(ParameterError, match="no rotation"):
        sums.encrypt(x).rotate(-3)  # left by 3 = 4 - 1 needs a key for -1


def test_rotation_steps_survive_serialization(rot_sc):
    pub = PublicContext.load(rot_sc.serialize_public())
    assert pub.steps == rot_sc.public().steps == tuple(sorted({k % 2048 for k in ROT_STEPS}))
    x = np.random.default_rng(2).uniform(-1, 1, size=pub.slots)
    r = pub.encrypt(x).rotate(-1000)
    back = SecretContext.load(rot_sc.serialize_with_secret_key())
    assert back.public().steps == pub.steps
    assert np.allclose(rot_sc.decrypt(pub.load_vector(r.serialize())), np.roll(x, -1000), atol=1e-5)
    with pytest.raises(ParameterError, match="no rotation"):
        pub.encrypt(x).rotate(7)


def test_linear_transform_baby_step_giant_step_matches_numpy():
    rng = np.random.default_rng(3)
    slots = 4096
    diag = {i: rng.uniform(-1, 1, slots) * (rng.random(slots) < 0.7) for i in range(11)}
    diag[4] = np.zeros(slots)  # dropped
    d = ckks.Diagonals(diag, slots, baby=3)
    assert d.rotations == 2 + 3 and d.apply(np.ones(slots)).shape == (slots,) and d.steps == sorted(k % slots for k in (-1, -2, -3, -6, -9))
    sc = SecretContext.create("quadratic", steps=d.steps)
    x = rng.uniform(-2, 2, slots)
    v = sc.encrypt(x)
    y = v.linear_transform(d)
    want = sum(diag[i] * np.roll(x, -i) for i in diag)
    assert y.depth == v.depth - 1
    assert np.max(np.abs(sc.decrypt(y) - want)) < MUL_TOL
    y2 = v.linear_transform(d)  # plaintexts cached per level: same result
    assert np.allclose(sc.decrypt(y2), want, atol=MUL_TOL)
    assert np.allclose(sc.decrypt(y.linear_transform(d)), sum(diag[i] * np.roll(want, -i) for i in diag),
                       atol=1e-3)  # at a lower level
    with pytest.raises(DepthError):
        y.linear_transform(d).linear_transform(d)
    missing = ckks.Diagonals({0: np.ones(slots), 5: np.ones(slots)}, slots, baby=5)
    with pytest.raises(ParameterError, match="no rotation"):
        v.linear_transform(missing)
    with pytest.raises(ParameterError, match="nonzero"):
        ckks.Diagonals({0: np.zeros(slots)}, slots)
    with pytest.raises(ParameterError, match="shift"):
        ckks.Diagonals({slots: np.ones(slots)}, slots)


def test_linear_transform_fold_adds_the_blocks():
    rng = np.random.default_rng(5)
    slots, width = 4096, 512  # 8 blocks: 3 fold rotations
    diag = {0: rng.uniform(-1, 1, slots), 64: rng.uniform(-1, 1, slots)}
    d = ckks.Diagonals(diag, slots, fold=width)
    x = rng.uniform(-1, 1, slots)
    partial = diag[0] * x + diag[64] * np.roll(x, -64)
    want = np.tile(partial.reshape(-1, width).sum(axis=0), slots // width)
    assert np.allclose(d.apply(x), want) and d.rotations == 1 + 3
    sc = SecretContext.create("linear", steps=d.steps)
    assert np.max(np.abs(sc.decrypt(sc.encrypt(x).linear_transform(d)) - want)) < MUL_TOL * 10
    with pytest.raises(ParameterError, match="fold"):
        ckks.Diagonals(diag, slots, fold=3 * 512)
    rows = ckks.Diagonals({0: diag[0]}, slots, window=8)  # each slot plus the 7 after it
    windowed = sum(np.roll(diag[0] * x, -t) for t in range(8))
    assert rows.rotations == 3 and np.allclose(rows.apply(x), windowed)
    sc = SecretContext.create("linear", steps=rows.steps)
    assert np.max(np.abs(sc.decrypt(sc.encrypt(x).linear_transform(rows)) - windowed)) < MUL_TOL * 10
    with pytest.raises(ParameterError, match="window"):
        ckks.Diagonals(diag, slots, window=6)


def test_public_context_holds_galois_keys_for_the_requested_steps_only(rot_sc):
    pub = PublicContext.load(rot_sc.serialize_public())
    assert pub._ts.is_public()
    keys = pub._ts.galois_keys().data
    n2 = 2 * pub.params.poly_modulus_degree
    slots = pub.slots
    wanted = {pow(3, (-k) % slots, n2) for k in ROT_STEPS}
    assert all(keys.has_key(e) for e in wanted)
    assert not keys.has_key(pow(3, 2, n2)) and not keys.has_key(pow(3, slots - 2, n2))
    assert keys.size() == len(wanted)


@pytest.mark.parametrize("steps", [["1"], [0], [2048], [-1], [True], "1"])
def test_malformed_rotation_steps_in_a_context_header_are_refused(rot_sc, steps):
    from mpc.he import serial

    header, body = serial.load(rot_sc.serialize_public(), serial.Kind.CKKS_PUBLIC_CONTEXT)
    bad = serial.dump(serial.Kind.CKKS_PUBLIC_CONTEXT, {**header, "steps": steps}, bytes(body))
    with pytest.raises(EncodingError, match="steps"):
        PublicContext.load(bad)


def test_secret_context_key_id_is_computed_not_trusted():
    # The header's key id is recomputed from the key: a forged one is refused (before,
    # the loaded context "decrypted" another key's ciphertexts to garbage).
    from mpc.he import serial

    sc, other = SecretContext.create("linear"), SecretContext.create("linear")
    header, body = serial.load(sc.serialize_with_secret_key(), serial.Kind.CKKS_SECRET_CONTEXT)
    forged = dict(header, key_id=other.public().key_id)
    with pytest.raises(EncodingError, match="does not match its key"):
        SecretContext.load(serial.dump(serial.Kind.CKKS_SECRET_CONTEXT, forged, bytes(body)))
    back = SecretContext.load(sc.serialize_with_secret_key())
    assert back.public().key_id == sc.public().key_id
