"""Garbled circuits: Bristol reader, builder circuits, half-gates garbling and Yao's protocol."""

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import EncodingError, ParameterError, ProtocolError
from mpc.gc import bristol, builder
from mpc.gc import garble as gb
from mpc.gc.bristol import BristolFormatError
from mpc.gc.circuit import AND, EQ, EQW, INV, XOR, Circuit
from mpc.gc.yao import Role, bits_to_int, int_to_bits, run_yao
from mpc.rand import PRG

# FIPS-197 appendix C.1 (AES-128) and SP 800-38A F.1.1 block 1
FIPS197 = ("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
           "69c4e0d86a7b0430d8cdb78070b4c55a")
SP800_38A = ("2b7e151628aed2a6abf7158809cf4f3c", "6bc1bee22e409f96e93d7e117393172a",
             "3ad77bb40d7a3660a89ecaf32466ef97")
M64 = (1 << 64) - 1


@pytest.fixture(scope="module")
def aes():
    return bristol.load("aes_128")


def aes_ref(key: bytes, block: bytes) -> bytes:
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(block)


def as_bits(data: list[bytes]) -> np.ndarray:
    """Blocks written big-endian (the usual hex) -> wire bits, least significant first."""
    return int_to_bits([int.from_bytes(d, "big") for d in data], 8 * len(data[0]))


def yao2(circuit, g_bits, e_bits, output="both", **kw):
    def prog(party):
        if party.id == 0:
            return run_yao(party, 1, circuit, Role.GARBLER, g_bits, output=output, **kw)
        return run_yao(party, 0, circuit, Role.EVALUATOR, e_bits, output=output, **kw)
    return mpc.run(prog, 2, preprocessing=None)


# --- Bristol files --------------------------------------------------------------------------
def test_shipped_circuits_and_gate_counts(aes):
    assert aes.inputs == (128, 128) and aes.outputs == (128,)
    assert aes.counts() == {"XOR": 28176, "AND": 6400, "INV": 2087, "EQ": 0, "EQW": 0}
    for name in ("adder64", "sub64", "neg64", "mult64", "zero_equal"):
        assert bristol.load(name).n_gates > 0
    with pytest.raises(EncodingError, match="available: adder64"):
        bristol.load("nope")
    with pytest.raises(EncodingError):
        bristol.load("../etc")


def test_shipped_files_match_their_recorded_sha256_and_travel_with_the_license():
    import hashlib
    import re
    from importlib import resources

    folder = resources.files("mpc.gc").joinpath("circuits")
    readme = folder.joinpath("README.md").read_text()
    recorded = dict((name, digest) for digest, name in re.findall(r"([0-9a-f]{64})  (\S+\.txt)", readme))
    shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith(".txt") and p.name != "License.txt")
    assert sorted(recorded) == shipped
    for name, digest in recorded.items():
        assert hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest() == digest
    assert "SCALE-MAMBA" in readme and folder.joinpath("License.txt").is_file()


def test_plain_aes_matches_cryptography(aes):
    rng = np.random.default_rng(1)
    keys = [bytes.fromhex(FIPS197[0]), bytes.fromhex(SP800_38A[0]), bytes(16)] + \
        [rng.bytes(16) for _ in range(5)]
    blocks = [bytes.fromhex(FIPS197[1]), bytes.fromhex(SP800_38A[1]), bytes(16)] + \
        [rng.bytes(16) for _ in range(5)]
    out = aes.evaluate_plain(np.concatenate([as_bits(keys), as_bits(blocks)], axis=1))
    got = [v.to_bytes(16, "big") for v in bits_to_int(out)]
    assert got[0].hex() == FIPS197[2] and got[1].hex() == SP800_38A[2]
    assert got[2].hex() == "66e94bd4ef8a2c3b884cfa59ca342b2e"
    assert got == [aes_ref(k, b) for k, b in zip(keys, blocks)]


def test_plain_arithmetic_circuits_match_integers():
    rng = np.random.default_rng(2)
    a = [0, M64, 1, 1 << 63] + [int(v) for v in rng.integers(0, 2**63, 20, dtype=np.uint64) * 2 + 1]
    b = [0, 1, M64, 1 << 63] + [int(v) for v in rng.integers(0, 2**63, 20, dtype=np.uint64)]
    x = np.concatenate([int_to_bits(a, 64), int_to_bits(b, 64)], axis=1)
    for name, fn in (("adder64", lambda p, q: (p + q) & M64), ("sub64", lambda p, q: (p - q) & M64),
                     ("mult64", lambda p, q: (p * q) & M64)):
        assert bits_to_int(bristol.load(name).evaluate_plain(x)) == [fn(p, q) for p, q in zip(a, b)]
    assert bits_to_int(bristol.load("neg64").evaluate_plain(x[:, :64])) == [(-p) & M64 for p in a]
    assert bits_to_int(bristol.load("zero_equal").evaluate_plain(x[:, :64])) == [int(p == 0) for p in a]


GOOD = "3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 3 INV\n2 1 3 0 4 XOR\n"


@pytest.mark.parametrize("text, line, message", [
    ("3 x\n2 1 1\n1 1\n\n", 1, "expected integers"),
    ("3\n2 1 1\n1 1\n\n", 1, "header must be"),
    ("3 5\n3 1 1\n1 1\n\n", 2, "first number must count"),
    ("3 5\n2 1 1\n1 0\n\n", 3, "positive width"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 3 NOT\n2 1 3 0 4 XOR\n", 6, "unknown gate 'NOT'"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 3 3 INV\n2 1 3 0 4 XOR\n", 6, "wire 3 is read before"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 9 INV\n2 1 3 0 4 XOR\n", 6, "out of range"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 2 INV\n2 1 3 0 4 XOR\n", 6, "written twice"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n2 1 2 3 INV\n2 1 3 0 4 XOR\n", 6, "INV takes 1 input"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 3 4 INV\n2 1 3 0 4 XOR\n", 6, "expected 1 input and 1 output"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 -3 INV\n2 1 3 0 4 XOR\n", 6, "negative"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 3 INV\n", 7, "2 gate lines, header declares 3"),
    (GOOD + "2 1 0 1 4 AND\n", 8, "more gates than the 3 declared"),
    ("2 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 3 INV\n", 7, "output wire 4 is never written"),
    ("1 3\n2 1 1\n1 1\n\n1 1 2 2 EQ\n", 5, "EQ constant must be 0 or 1"),
    ("1 2\n", 2, "ends before the three header lines"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 1_0 INV\n2 1 3 0 4 XOR\n", 6, "expected integers"),
    ("3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 \u0663 INV\n2 1 3 0 4 XOR\n", 6, "expected integers"),
])
def test_malformed_bristol_names_the_line(text, line, message):
    with pytest.raises(BristolFormatError, match=message) as info:
        bristol.parse(text, source="bad.txt")
    assert info.value.line == line
    assert str(info.value).startswith(f"bad.txt, line {line}: ")
    assert isinstance(info.value, ValueError)


def test_bristol_file_that_is_not_ascii_names_the_line(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n\xc3\xa9\n")
    with pytest.raises(BristolFormatError, match="line 6: not ASCII"):
        bristol.read(path)


def test_bristol_mand_eq_eqw_and_roundtrip(tmp_path):
    text = "3 8\n2 2 2\n1 3\n\n4 2 0 1 2 3 4 5 MAND\n1 1 1 6 EQ\n1 1 4 7 EQW\n"
    c = bristol.parse(text)
    assert c.counts()["AND"] == 2 and c.outputs == (3,)
    x = np.array([[1, 1, 1, 0], [1, 0, 1, 1]], np.uint8)  # a = (1,1)/(1,0) b = (1,0)/(1,1)
    # outputs: wires 5, 6, 7 = a1&b1, 1, a0&b0
    assert c.evaluate_plain(x).tolist() == [[0, 1, 1], [0, 1, 1]]
    path = tmp_path / "c.txt"
    path.write_text(bristol.dumps(c))
    again = bristol.read(path)
    assert np.array_equal(again.evaluate_plain(x), c.evaluate_plain(x))


# --- builder circuits ---------------------------------------------------------------------
def _values(n, rng, k, signed=False):
    lo, hi = (-(1 << (n - 1)), 1 << (n - 1)) if signed else (0, 1 << n)
    edge = [lo, hi - 1, 0, lo + 1, hi - 2] if n > 1 else [lo, hi - 1]
    return edge + [int(v) for v in rng.integers(lo, hi, k)]


@pytest.mark.parametrize("n", [1, 2, 7, 32])
@pytest.mark.parametrize("signed", [False, True])
def test_builder_circuits_plaintext(n, signed):
    rng = np.random.default_rng(n)
    a = _values(n, rng, 60, signed)
    b = _values(n, rng, 60, signed)[::-1]
    a += a[:10]  # equal pairs
    b += a[:10]
    x = np.concatenate([int_to_bits(a, n, signed), int_to_bits(b, n, signed)], axis=1)
    ev = lambda c: c.evaluate_plain(x)  # noqa: E731
    assert ev(builder.less_than(n, signed))[:, 0].tolist() == [int(p < q) for p, q in zip(a, b)]
    assert ev(builder.greater_than(n, signed))[:, 0].tolist() == [int(p > q) for p, q in zip(a, b)]
    assert ev(builder.compare(n, signed)).tolist() == [[int(p > q), int(p < q)] for p, q in zip(a, b)]
    assert bits_to_int(ev(builder.maximum(n, signed)), signed) == [max(p, q) for p, q in zip(a, b)]
    assert ev(builder.equal(n))[:, 0].tolist() == [int(p == q) for p, q in zip(a, b)]
    mask = (1 << n) - 1
    assert bits_to_int(ev(builder.adder(n))) == [(p + q) & mask for p, q in zip(a, b)]
    s = rng.integers(0, 2, len(a))
    xm = np.concatenate([s[:, None].astype(np.uint8), x], axis=1)
    assert bits_to_int(builder.mux(n).evaluate_plain(xm), signed) == \
        [q if t else p for p, q, t in zip(a, b, s)]


def test_builder_gate_counts_are_optimal():
    assert builder.less_than(64).n_and == 64
    assert builder.greater_than(64, signed=True).n_and == 64
    assert builder.equal(64).n_and == 63
    assert builder.adder(64).n_and == 63
    assert builder.mux(64).n_and == 64
    assert builder.maximum(64).n_and == 128
    eq = builder.equal(64)
    assert sum(1 for step in eq.plan.steps if step.is_and) == 6  # log depth
    # the garbling plan keeps only AND and XOR gates: INV/EQW/EQ cost nothing
    lt = builder.less_than(64)
    counts = lt.counts()
    assert counts["INV"] > 0
    assert sum(st.a.size for st in lt.plan.steps) == counts["AND"] + counts["XOR"]
    assert sum(1 for st in eq.plan.steps if st.is_and) == 6
    with pytest.raises(ParameterError):
        builder.less_than(0)
    with pytest.raises(ParameterError):
        builder.Builder(()).build([[0]])


# --- pure garbling ------------------------------------------------------------------------
CIRCUITS = {"lt": lambda n: builder.less_than(n), "eq": builder.equal, "add": builder.adder,
            "max": lambda n: builder.maximum(n, True)}


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(sorted(CIRCUITS)), n=st.integers(1, 24), batch=st.integers(1, 20),
       seed=st.integers(0, 2**32 - 1))
def test_garble_evaluate_equals_plaintext(kind, n, batch, seed):
    c = CIRCUITS[kind](n)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (batch, c.n_inputs)).astype(np.uint8)
    prg = PRG(rng.bytes(16))
    delta = gb.new_delta(prg.bytes(16))
    zero = prg.uint64((c.n_inputs, batch, 2))
    tables, out0 = gb.garble(c, delta, zero, first_instance=seed % 1000)
    active = gb.evaluate(c, tables, gb.active_labels(zero, bits.T, delta), first_instance=seed % 1000)
    assert np.array_equal(gb.decode(active, gb.decode_bits(out0)), c.evaluate_plain(bits))
    # the active output labels are exactly W0 or W0 ^ Delta
    want = gb.active_labels(out0, c.evaluate_plain(bits).T, delta)
    assert np.array_equal(active, want)


@st.composite
def random_circuits(draw):
    """Random circuits over every gate kind (INV/EQW chains, EQ constants, outputs of any kind)."""
    n_in = draw(st.integers(1, 6))
    n_gates = draw(st.integers(1, 40))
    ops, aa, bb = [], [], []
    for g in range(n_gates):
        w = n_in + g  # wires available: 0 .. w - 1
        op = draw(st.sampled_from([XOR, AND, INV, EQ, EQW, AND, XOR]))
        a = draw(st.integers(0, 1)) if op == EQ else draw(st.integers(0, w - 1))
        b = draw(st.integers(0, w - 1)) if op in (XOR, AND) else -1
        ops.append(op)
        aa.append(a)
        bb.append(b)
    n_out = draw(st.integers(1, n_gates))
    out = np.arange(n_in, n_in + n_gates)
    return Circuit(n_in + n_gates, (n_in,), (n_out,), np.array(ops), np.array(aa), np.array(bb), out)


@settings(max_examples=60, deadline=None)
@given(c=random_circuits(), batch=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_garbling_random_circuits(c, batch, seed):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (batch, c.n_inputs)).astype(np.uint8)
    prg = PRG(rng.bytes(16))
    delta = gb.new_delta(prg.bytes(16))
    zero = prg.uint64((c.n_inputs, batch, 2))
    tables, out0 = gb.garble(c, delta, zero)
    assert tables.shape[0] == c.n_and
    active = gb.evaluate(c, tables, gb.active_labels(zero, bits.T, delta))
    plain = c.evaluate_plain(bits)
    assert np.array_equal(gb.decode(active, gb.decode_bits(out0)), plain)
    assert np.array_equal(active, gb.active_labels(out0, plain.T, delta))
    assert np.array_equal(bristol.parse(bristol.dumps(c)).evaluate_plain(bits), plain)  # round trip


def test_garble_with_eq_constants_and_wrong_tweak():
    c = bristol.parse("2 4\n1 1\n1 2\n\n1 1 1 2 EQ\n2 1 0 2 3 AND\n")  # out = (1, a and 1)
    prg = PRG(bytes(16))
    delta = gb.new_delta(prg.bytes(16))
    zero = prg.uint64((1, 2, 2))
    tables, out0 = gb.garble(c, delta, zero)
    bits = np.array([[0], [1]], np.uint8)
    act = gb.evaluate(c, tables, gb.active_labels(zero, bits.T, delta))
    assert gb.decode(act, gb.decode_bits(out0)).tolist() == [[1, 0], [1, 1]]
    # evaluating with other instance numbers (tweaks) gives garbage labels, not the right ones
    bad = gb.evaluate(c, tables, gb.active_labels(zero, bits.T, delta), first_instance=5)
    assert not np.array_equal(bad[1], act[1])


def test_garble_rejects_bad_arguments():
    c = builder.less_than(4)
    zero = np.zeros((8, 3, 2), np.uint64)
    with pytest.raises(ParameterError, match="lowest bit"):
        gb.garble(c, np.zeros(2, np.uint64), zero)
    with pytest.raises(ParameterError):
        gb.garble(c, gb.new_delta(bytes(16)), np.zeros((7, 3, 2), np.uint64))
    with pytest.raises(EncodingError):
        gb.evaluate(c, np.zeros((4, 3, 2, 2), np.uint64), zero)  # (n_and, 2, B, 2) expected
    with pytest.raises(ParameterError):
        gb.garble(c, gb.new_delta(bytes(16)), zero, first_instance=-1)


def test_permute_bits_are_balanced():
    # The evaluator sees lsb(label) of each active input label: uniform whatever the bit.
    c = builder.less_than(8)
    prg = PRG.fresh()
    zero = prg.uint64((16, 4000, 2))
    delta = gb.new_delta(prg.bytes(16))
    for bit in (0, 1):
        act = gb.active_labels(zero, np.full((16, 4000), bit, np.uint8), delta)
        freq = (act[..., 0] & np.uint64(1)).mean()
        assert abs(freq - 0.5) < 5 * 0.5 / np.sqrt(16 * 4000)
    tables, _ = gb.garble(c, delta, zero)
    assert abs((tables[..., 0] & np.uint64(1)).mean() - 0.5) < 0.01


# --- Yao's protocol -----------------------------------------------------------------------
def test_yao_aes_matches_cryptography(aes):
    rng = np.random.default_rng(7)
    keys = [bytes.fromhex(FIPS197[0]), bytes.fromhex(SP800_38A[0])] + [rng.bytes(16) for _ in range(4)]
    blocks = [bytes.fromhex(FIPS197[1]), bytes.fromhex(SP800_38A[1])] + [rng.bytes(16) for _ in range(4)]
    res = yao2(aes, as_bits(keys), as_bits(blocks))  # key: garbler; plaintext: evaluator
    for out in res.outputs:
        got = [v.to_bytes(16, "big") for v in bits_to_int(out)]
        assert got[0].hex() == FIPS197[2] and got[1].hex() == SP800_38A[2]
        assert got == [aes_ref(k, b) for k, b in zip(keys, blocks)]
    # 32 bytes per AND gate per instance dominate the garbler's traffic
    assert res.cost.bytes_sent[0] >= 32 * 6400 * 6


def test_yao_adder_and_comparator_match_integers():
    rng = np.random.default_rng(8)
    a = [0, M64, M64, 5] + [int(v) for v in rng.integers(0, 2**63, 30, dtype=np.uint64)]
    b = [0, M64, 0, 6] + [int(v) for v in rng.integers(0, 2**63, 30, dtype=np.uint64)]
    res = yao2(bristol.load("adder64"), int_to_bits(a, 64), int_to_bits(b, 64))
    assert bits_to_int(res.outputs[0]) == [(p + q) & M64 for p, q in zip(a, b)]
    res = yao2(builder.compare(64), int_to_bits(a, 64), int_to_bits(b, 64))
    assert res.outputs[1].tolist() == [[int(p > q), int(p < q)] for p, q in zip(a, b)]


def test_yao_output_to_one_party_and_rounds():
    a, b = [3, 9, 4], [5, 2, 4]
    c = builder.greater_than(8)
    res = yao2(c, int_to_bits(a, 8), int_to_bits(b, 8), output="garbler")
    assert res.outputs[1] is None and res.outputs[0][:, 0].tolist() == [0, 1, 0]
    res = yao2(c, int_to_bits(a, 8), int_to_bits(b, 8), output="evaluator")
    assert res.outputs[0] is None and res.outputs[1][:, 0].tolist() == [0, 1, 0]
    assert res.cost.rounds == 4  # batch + base OT A, base OT B, IKNP matrix, COT + garbled tables
    res = yao2(c, int_to_bits(a, 8), int_to_bits(b, 8), output="both")
    assert res.cost.rounds == 5  # and the result back to the garbler


def test_yao_bytes_match_the_docstring():
    c = builder.greater_than(8)  # n_G = n_E = 8, A = 8 AND gates, n_out = 1
    B, n_g, n_e, A, n_out = 5, 8, 8, c.n_and, 1
    assert A == 8
    g, e = int_to_bits(range(5), 8), int_to_bits([3] * 5, 8)
    res = yao2(c, g, e)
    matrix = 128 * -(-(B * n_e) // 8)  # IKNP: 16 B n_E when 8 divides B n_E
    assert res.cost.bytes_sent[1] == 32 + matrix + 8 + 32 + B * n_out   # + batch size, fingerprint
    assert res.cost.bytes_sent[0] == 4096 + 16 * B * n_e + 16 * B * n_g + 32 * B * A + B * n_out


def test_yao_large_batch_is_chunked(monkeypatch):
    import mpc.gc.yao as yao
    monkeypatch.setattr(yao, "CHUNK_WIRE_INSTANCES", 2000)
    rng = np.random.default_rng(3)
    a = rng.integers(-2**15, 2**15, 500)
    b = rng.integers(-2**15, 2**15, 500)
    c = builder.maximum(16, signed=True)
    res = yao2(c, int_to_bits(a, 16, True), int_to_bits(b, 16, True))
    assert bits_to_int(res.outputs[0], signed=True) == np.maximum(a, b).tolist()
    assert sum(1 for m in res.cost.messages if "garbled" in m.tag) > 1


def test_yao_garbler_only_inputs_and_no_evaluator_input():
    c = bristol.load("neg64")
    res = yao2(c, int_to_bits([5, 0], 64), None, batch=2)
    assert bits_to_int(res.outputs[1]) == [(-5) & M64, 0]


def test_yao_refuses_wide_or_malformed_inputs():
    c = builder.less_than(8)
    with pytest.raises(ParameterError, match="does not fit in 8 unsigned bits"):
        int_to_bits([256], 8)
    with pytest.raises(ParameterError, match="does not fit in 8 signed bits"):
        int_to_bits([-129], 8, signed=True)
    with pytest.raises(ParameterError, match="integers"):
        int_to_bits([1.5], 8)
    with pytest.raises(ParameterError, match="wider inputs"):
        yao2(c, np.zeros((2, 9), np.uint8), np.zeros((2, 8), np.uint8))
    with pytest.raises(ParameterError, match="0 or 1"):
        yao2(c, np.full((2, 8), 2, np.uint8), np.zeros((2, 8), np.uint8))
    with pytest.raises(ProtocolError, match="instances"):
        yao2(c, np.zeros((2, 8), np.uint8), np.zeros((3, 8), np.uint8))
    with pytest.raises(ParameterError, match="output"):
        yao2(c, np.zeros((2, 8), np.uint8), np.zeros((2, 8), np.uint8), output="nobody")
    assert int_to_bits([2**127 + 1], 128)[0, [0, 1, 127]].tolist() == [1, 0, 1]
    assert bits_to_int(int_to_bits([-1, -128, 127], 8, True), True) == [-1, -128, 127]


def test_yao_evaluator_only_inputs():
    c = bristol.load("zero_equal")
    res = yao2(c, None, int_to_bits([0, 7, 1 << 63], 64), garbler_groups=(), batch=3)
    assert res.outputs[0][:, 0].tolist() == [1, 0, 0]
    with pytest.raises(ParameterError, match="batch"):
        yao2(c, None, int_to_bits([0], 64), garbler_groups=())


def test_yao_batches_beyond_one_ot_call(monkeypatch):
    # The evaluator's OTs run in blocks: a batch larger than one IKNP call allows (scaled
    # down here from 2^26 to 1000 OTs) still works, 2 rounds per extra block.
    import mpc.gc.yao as yao
    import mpc.ot.iknp as iknp

    monkeypatch.setattr(iknp, "MAX_EXTEND", 1000)
    monkeypatch.setattr(yao, "OT_BLOCK", 640)
    monkeypatch.setattr(yao, "CHUNK_WIRE_INSTANCES", 2000)
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 2**16, 100), rng.integers(0, 2**16, 100)
    c = builder.greater_than(16)
    res = yao2(c, int_to_bits(a, 16), int_to_bits(b, 16))
    assert res.outputs[0][:, 0].tolist() == (a > b).astype(int).tolist()
    blocks = yao._blocks(c, 100)
    assert len(blocks) > 2 and res.cost.rounds == 5 + 2 * (len(blocks) - 1)


def test_yao_rejects_malformed_garbled_data():
    c = builder.less_than(4)

    def fake_garbler(party):
        with party.scope("yao#0"):
            party.recv(1, "batch")
            # no OT for this test: the evaluator has no input (garbler_groups covers both)
            party.send(1, "garbled#0", np.zeros((8, 2, 2), np.uint64), np.zeros((3, 2, 2, 2), np.uint64),
                       np.zeros((1, 2), np.uint8))

    def evaluator(party):
        return run_yao(party, 0, c, Role.EVALUATOR, None, garbler_groups=(0, 1), batch=2)

    with pytest.raises(EncodingError, match="garbled tables"):
        mpc.run(lambda p: fake_garbler(p) if p.id == 0 else evaluator(p), 2, preprocessing=None)

    # decoding "bits" that are not bits would make non-bit outputs
    def bad_decoding(party):
        with party.scope("yao#0"):
            party.recv(1, "batch")
            party.send(1, "garbled#0", np.zeros((8, 2, 2), np.uint64), np.zeros((c.n_and, 2, 2, 2), np.uint64),
                       np.full((1, 2), 2, np.uint8))

    with pytest.raises(EncodingError, match="decoding bits"):
        mpc.run(lambda p: bad_decoding(p) if p.id == 0 else evaluator(p), 2, preprocessing=None)

    # a result that is not bits is refused by the garbler
    def bad_result(party):
        with party.scope("yao#0"):
            party.send(0, "batch", np.array([2], np.int64), np.frombuffer(c.fingerprint(), np.uint8))
            party.recv(0, "garbled#0")
            party.send(0, "result", np.full((2, 1), 7, np.uint8))

    def garbler(party):
        return run_yao(party, 1, c, Role.GARBLER, np.zeros((2, 8), np.uint8), garbler_groups=(0, 1))

    with pytest.raises(EncodingError, match="uint8 bits"):
        mpc.run(lambda p: garbler(p) if p.id == 0 else bad_result(p), 2, preprocessing=None)

    # an evaluator running another circuit (here: signed instead of unsigned) is refused
    def other_circuit(party):
        return run_yao(party, 0, builder.less_than(4, signed=True), Role.EVALUATOR, None,
                       garbler_groups=(0, 1), batch=2)

    with pytest.raises(ProtocolError, match="another circuit"):
        mpc.run(lambda p: garbler(p) if p.id == 0 else other_circuit(p), 2, preprocessing=None)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), width=st.integers(1, 200), signed=st.booleans())
def test_int_bits_round_trip(data, width, signed):
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    values = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=8))
    bits = int_to_bits(values, width, signed)
    assert bits.shape == (len(values), width) and bits.dtype == np.uint8
    back = bits_to_int(bits, signed)
    assert back == values and all(type(v) is int for v in back)  # Python ints (JSON-ready)
    if width <= 63:  # numpy arrays take the vectorised path and agree
        arr = np.array(values, np.int64)
        assert np.array_equal(int_to_bits(arr, width, signed), bits)
    elif width == 64 and not signed:
        assert np.array_equal(int_to_bits(np.array(values, np.uint64), 64), bits)
    with pytest.raises(ParameterError):
        int_to_bits(values + [hi + 1], width, signed)


def test_geq_chain_refuses_words_of_no_bits():
    b = builder.Builder((2, 2))
    with pytest.raises(ParameterError, match="at least one bit"):
        b.geq_chain([], [])
    assert isinstance(b.geq_chain([0, 1], [2, 3]), int)
