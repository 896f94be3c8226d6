"""Paillier preprocessing: triples correct for every shape, masks hide party 1's shares, misuse refused.

Keys are 1024-bit with ``insecure_for_testing`` (speed); one test checks the
2048-bit default through ``preprocessing="he"``.
"""

import numpy as np
import pytest

import mpc
from mpc.arith.ring import ring_matmul
from mpc.errors import EncodingError, ParameterError, PreprocessingExhausted
from mpc.preprocessing.he import PaillierSource, he_factory
from mpc.preprocessing.plan import online_only, planned, record_plan


def small_keys(n):
    return he_factory(n, key_bits=1024, insecure_for_testing=True)


SHAPES = [("mul", (5, 3), (3,)), ("mul", (), (4,)), ("mul", (0, 2), (0, 2)),
          ("matmul", (4, 3), (3, 2)), ("matmul", (3,), (2, 3, 5)), ("matmul", (2, 1, 3), (3, 4))]


def _add(a, b):
    with np.errstate(over="ignore"):
        return [x + y for x, y in zip(a, b)]


def test_triples_are_correct_for_every_shape():
    def prog(party):
        p = party.preprocessing
        p.prefetch("mul", (7,), (7,), count=3)
        return [p.triple(*s) for s in SHAPES] + [p.triple("mul", (7,), (7,)) for _ in range(3)]

    res = mpc.run(prog, 2, preprocessing=small_keys)
    for spec, t0, t1 in zip(SHAPES + [("mul", (7,), (7,), )] * 3, *res.outputs):
        a, b, c = _add(t0, t1)
        want = a * b if spec[0] == "mul" else ring_matmul(a, b)
        assert np.array_equal(c, want)
        assert c.dtype == np.uint64


def test_random_bit_items_come_from_ot_and_are_correct():
    def prog(party):
        p = party.preprocessing
        return p.trunc_pair((6,), 16), p.binary_triple((2,)), p.dabit((5,))

    o0, o1 = mpc.run(prog, 2, preprocessing=small_keys).outputs
    r, hi, msb = _add(o0[0], o1[0])
    assert np.array_equal(hi, r >> np.uint64(16)) and np.array_equal(msb, r >> np.uint64(63))
    a, b, c = [x ^ y for x, y in zip(o0[1], o1[1])]
    assert np.array_equal(a & b, c)


def test_bytes_match_the_formula():
    def prog(party):
        party.preprocessing.prefetch("mul", (24,), (24,), count=1)

    cost = mpc.run(prog, 2, preprocessing=small_keys).cost
    ct = 2 * 1024 // 8                       # one ciphertext: 256 bytes
    key = [m for m in cost.messages if "he-key" in m.tag][0].payload_bytes
    # party 0: 48 ciphertexts (a0, b0) + the key; party 1: ceil(24 / slots) packed replies
    slots = 1023 // 170
    assert cost.bytes_sent[0] == 48 * ct + key
    assert cost.bytes_sent[1] == -(-24 // slots) * ct


def test_arithmetic_and_comparison_with_he_preprocessing():
    x = np.linspace(-5, 5, 40)
    y = np.linspace(3, -3, 40)

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=5.0)
        sy = mpc.share(party, y if party.id == 1 else None, 1, bound=5.0)
        return (sx * sy).reveal(), (sx.reshape(5, 8) @ sy.reshape(8, 5)).reveal(), (sx < sy).reveal()

    plan = record_plan(prog, 2)
    res = mpc.run(prog, 2, preprocessing=planned(small_keys, plan))
    prod, mm, lt = res.outputs[0]
    assert np.max(np.abs(prod - x * y)) < 2**-14
    assert np.allclose(mm, x.reshape(5, 8) @ y.reshape(8, 5), atol=1e-3)
    assert np.array_equal(lt, (x < y).astype(np.int64))
    assert online_only(res.cost).rounds == mpc.run(prog, 2).cost.rounds


class _Spy(PaillierSource):
    """Party 1 may draw all-zero shares; party 0 records what it decrypted: v = c0 - a0 b0 mod 2^64."""

    zero = False
    seen: dict = {}

    def _random(self, shape):
        if self.party.id == 1 and self.zero:
            return np.zeros(shape, np.uint64)
        return super()._random(shape)

    def _triples(self, op, sa, sb, count):
        out = super()._triples(op, sa, sb, count)
        if self.party.id == 0:
            self.seen[self.zero] = np.concatenate([(c - a * b).reshape(-1) for a, b, c in out])
        return out


def _chi2(words):
    counts = np.bincount(np.ascontiguousarray(words).view(np.uint8), minlength=256)
    return ((counts - counts.mean()) ** 2 / counts.mean()).sum()


def test_party0_sees_masked_values_independent_of_party1_shares():
    """What party 0 decrypts is uniform mod 2^64 whether party 1's shares are random or zero."""
    for zero in (True, False):
        spy = type("S", (_Spy,), {"zero": zero})
        mpc.run(lambda party: party.preprocessing.prefetch("mul", (700,), (1,), count=1), 2,
                preprocessing=lambda n: (lambda party: spy(party, key_bits=1024, insecure_for_testing=True)))
    limit = 255 + 6 * np.sqrt(510)
    for zero in (True, False):
        assert _chi2(_Spy.seen[zero]) < limit
    # the statistic detects structure: party 0's own product a0 * b0 is not uniform
    a = np.random.default_rng(1).integers(0, 2**63, 700, dtype=np.uint64) * np.uint64(2)
    assert _chi2(a * a) > limit


def test_default_key_is_2048_bits_and_small_keys_are_refused():
    res = mpc.run(lambda party: party.preprocessing.triple("mul", (2,), (2,)) and
                  party.preprocessing._public.bits, 2, preprocessing="he")
    assert res.outputs == [2048, 2048]
    with pytest.raises(ParameterError, match="insecure"):
        mpc.run(lambda party: None, 2, preprocessing=lambda n: he_factory(n, key_bits=1024))
    with pytest.raises(ParameterError, match="exactly 2 parties"):
        mpc.run(lambda party: None, 3, preprocessing="he")


def test_malformed_ciphertexts_are_refused():
    class Bad(PaillierSource):
        def _key(self):
            pub = super()._key()
            if self.party.id == 0:
                self.party.send = lambda to, tag, *arrays, **kw: type(self.party).send(
                    self.party, to, tag, np.zeros_like(arrays[0]), **kw)
            return pub

    with pytest.raises(EncodingError, match="outside"):
        mpc.run(lambda party: party.preprocessing.triple("mul", (2,), (2,)), 2, timeout=10,
                preprocessing=lambda n: (lambda party: Bad(party, key_bits=1024, insecure_for_testing=True)))


@pytest.mark.parametrize("bad", ["n", "p", "3p"])
def test_non_unit_ciphertexts_are_refused_by_the_key_holder(monkeypatch, bad):
    # Party 1 answers with c = n or a multiple of p: 0 < c < n^2, but not a unit. Decrypting
    # it would hand party 0's output a value tied to the factors of n; party 0 must refuse.
    from mpc.he import paillier

    pair = paillier.keygen(1024, insecure_for_testing=True)
    monkeypatch.setattr(paillier, "keygen", lambda *a, **kw: pair)
    p = pair.secret._p
    c = {"n": pair.public.n, "p": p, "3p": 3 * p}[bad]

    class Bad(PaillierSource):
        def _key(self):
            pub = super()._key()
            if self.party.id == 1:
                width = 2 * ((pub.bits + 7) // 8)

                def send(to, tag, *arrays, **kw):
                    forged = np.frombuffer(int(c).to_bytes(width, "little"), np.uint8)
                    rest = arrays[0][width:]
                    return type(self.party).send(self.party, to, tag,
                                                 np.concatenate([forged, rest]), **kw)
                self.party.send = send
            return pub

    with pytest.raises(EncodingError, match="not a unit"):
        mpc.run(lambda party: party.preprocessing.triple("mul", (2,), (2,)), 2, timeout=10,
                preprocessing=lambda n: (lambda party: Bad(party, key_bits=1024,
                                                           insecure_for_testing=True)))


def test_sealed_he_source_runs_out_clearly():
    def prog(party):
        p = party.preprocessing
        p.prefetch("mul", (3,), (3,), count=1)
        p.seal()
        p.triple("mul", (3,), (3,))
        p.triple("mul", (3,), (3,))

    with pytest.raises(PreprocessingExhausted, match="at least 2 mul triples"):
        mpc.run(prog, 2, preprocessing=small_keys)
