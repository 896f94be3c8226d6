"""Ring Z_2^64 and fixed-point encoding: known answers, properties, range errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mpc.arith import FixedPoint, from_signed, ring_matmul, to_ring, to_signed
from mpc.errors import EncodingError, ParameterError

u64 = hnp.arrays(np.uint64, st.tuples(st.integers(1, 6), st.integers(0, 7)),
                 elements=st.integers(0, 2**64 - 1))


def _ref_matmul(a, b):
    return (a.astype(object) @ b.astype(object)) % (1 << 64)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_ring_matmul_matches_exact_integers(data):
    m, k, n = data.draw(st.integers(1, 5)), data.draw(st.integers(0, 9)), data.draw(st.integers(1, 5))
    a = data.draw(hnp.arrays(np.uint64, (m, k), elements=st.integers(0, 2**64 - 1)))
    b = data.draw(hnp.arrays(np.uint64, (k, n), elements=st.integers(0, 2**64 - 1)))
    got = ring_matmul(a, b)
    want = _ref_matmul(a, b) if k else np.zeros((m, n), dtype=object)
    assert np.array_equal(got.astype(object), want)


def test_ring_matmul_extremes_and_long_inner_dimension():
    rng = np.random.default_rng(5)
    for k in (1024, 1025, 2500):
        a = rng.integers(0, 2**64, (3, k), dtype=np.uint64)
        b = rng.integers(0, 2**64, (k, 2), dtype=np.uint64)
        a[0] = np.uint64(2**64 - 1)  # all limbs at their maximum
        b[:, 0] = np.uint64(2**64 - 1)
        assert np.array_equal(ring_matmul(a, b).astype(object), _ref_matmul(a, b))


def test_ring_matmul_vectors_and_batches():
    rng = np.random.default_rng(6)
    a = rng.integers(0, 2**64, (2, 3, 4), dtype=np.uint64)
    v = rng.integers(0, 2**64, 4, dtype=np.uint64)
    want = np.einsum("ijk,k->ij", a.astype(object), v.astype(object)) % (1 << 64)
    assert np.array_equal(ring_matmul(a, v).astype(object), want)
    assert int(ring_matmul(v, v)) == int(sum(int(x) * int(x) for x in v) % (1 << 64))


def test_ring_matmul_shape_errors():
    with pytest.raises(ParameterError):
        ring_matmul(np.zeros((2, 3), np.uint64), np.zeros((4, 2), np.uint64))
    with pytest.raises(ParameterError):
        ring_matmul(np.uint64(3), np.zeros(2, np.uint64))


def test_signed_views_round_trip():
    x = np.array([-5, 0, 7, -(2**63), 2**63 - 1], dtype=np.int64)
    assert np.array_equal(to_signed(from_signed(x)), x)
    assert to_ring(np.array([-1], np.int32))[0] == np.uint64(2**64 - 1)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 40),
                  elements=st.floats(-(2.0**45), 2.0**45, allow_nan=False)))
def test_fixed_round_trip_within_half_ulp(x):
    fp = FixedPoint()
    assert np.all(np.abs(fp.decode(fp.encode(x)) - x) <= fp.resolution / 2 + 1e-12 * np.abs(x))


@pytest.mark.parametrize("frac_bits", [0, 8, 16, 20])
def test_fixed_known_answers(frac_bits):
    fp = FixedPoint(frac_bits)
    enc = fp.encode([1.0, -1.0, 0.0])
    assert enc.tolist() == [2**frac_bits, 2**64 - 2**frac_bits, 0]


def test_fixed_negative_odd_fractions():
    fp = FixedPoint(16)
    x = np.array([-0.5, -1.25, -3.0000152587890625, -100.75])
    assert np.array_equal(fp.decode(fp.encode(x)), x)


@pytest.mark.parametrize("bad", [2.0**46, -(2.0**46), np.inf, np.nan, 1e300])
def test_fixed_out_of_range_refused(bad):
    with pytest.raises(EncodingError, match="fixed-point|NaN"):
        FixedPoint(16).encode(np.array([1.0, bad]))


def test_fixed_bounds_documented():
    fp = FixedPoint(16)
    assert fp.max_abs == 2.0**46 and fp.max_product == 2.0**30 and fp.resolution == 2**-16
    with pytest.raises(ParameterError):
        FixedPoint(31)
