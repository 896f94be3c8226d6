"""Tests of Shamir sharing over prime fields (mpc.sharing.shamir)."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.arith import field
from mpc.errors import EncodingError, IntegrityError, ParameterError
from mpc.rand import PRG
from mpc.sharing import shamir

PRIMES = [shamir.MERSENNE31, 65521, shamir.MERSENNE61, shamir.MERSENNE127]


@pytest.mark.parametrize("prime", PRIMES)
@pytest.mark.parametrize("n,t", [(1, 1), (3, 2), (4, 4), (5, 3), (6, 2)])
def test_every_threshold_subset_reconstructs(prime, n, t):
    secret = np.array([0, 1, 12345, prime - 1], dtype=object)
    shares = shamir.split(secret, t, n, prime=prime)
    assert shares.shape == (n, 4)
    for subset in itertools.combinations(range(n), t):
        xs = np.array(subset) + 1
        got = shamir.reconstruct(xs, shares[list(subset)], t, prime=prime)
        assert [int(v) for v in got] == [int(v) for v in secret]


def test_known_answer_textbook_polynomial():
    # f(x) = 1234 + 166 x + 94 x^2 over GF(1613) (Wikipedia, "Shamir's secret sharing"):
    # shares (1, 1494), (2, 329), (3, 965) reconstruct 1234.
    got = shamir.reconstruct([1, 2, 3], np.array([1494, 329, 965]), 3, prime=1613)
    assert int(got) == 1234
    got = shamir.reconstruct([4, 5, 6], np.array([176, 1188, 775]), 3, prime=1613)
    assert int(got) == 1234


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.data())
def test_split_reconstruct_property(n, data):
    t = data.draw(st.integers(1, n))
    secret = data.draw(st.lists(st.integers(0, shamir.MERSENNE31 - 1), min_size=1, max_size=20))
    shares = shamir.split(np.array(secret), t, n)
    order = data.draw(st.permutations(range(n)))[:t]
    got = shamir.reconstruct(np.array(order) + 1, shares[order], t)
    assert got.tolist() == secret


def test_linearity():
    a, b = np.array([5, 9]), np.array([100, 2**30])
    sa, sb = shamir.split(a, 3, 5), shamir.split(b, 3, 5)
    s = (sa + sb) % np.uint64(shamir.MERSENNE31)
    assert shamir.reconstruct([1, 2, 3], s[:3], 3).tolist() == ((a + b) % shamir.MERSENNE31).tolist()


def test_below_threshold_is_a_clear_error():
    shares = shamir.split(np.array([7]), 3, 5)
    with pytest.raises(ParameterError, match="2 shares given, the threshold is 3"):
        shamir.reconstruct([1, 2], shares[:2], 3)


def test_too_few_shares_reveal_nothing():
    # t - 1 = 1 share of a degree-1 polynomial over GF(7): uniform whatever the secret.
    prg = PRG(bytes(16))
    for secret in (0, 6):
        counts = np.bincount(np.array([int(shamir.split(np.array([secret]), 2, 2, prime=7, prg=prg)[0, 0])
                                       for _ in range(1400)]), minlength=7)
        expected = 200
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < 22.46  # chi-square, 6 dof, p = 0.001


@pytest.mark.parametrize("prime", [shamir.MERSENNE31, shamir.MERSENNE127])
def test_reconstruct_many_groups_and_mixed_points(prime):
    secrets = np.arange(40, dtype=np.uint64).reshape(10, 4) * np.uint64(997)
    shares = np.stack([shamir.split(s, 3, 6, prime=prime) for s in secrets])  # (10, 6, 4)
    picks = [[0, 1, 2], [3, 4, 5], [5, 0, 2]] * 3 + [[1, 3, 5]]
    xs = np.array(picks) + 1
    sel = np.stack([shares[i, p] for i, p in enumerate(picks)])
    got = shamir.reconstruct_many(xs, sel, 3, prime=prime)
    assert [[int(v) for v in row] for row in got] == secrets.tolist()


def test_check_detects_inconsistent_shares():
    shares = shamir.split(np.array([42, 43]), 2, 4)
    assert shamir.reconstruct([1, 2, 3, 4], shares, 2, check=True).tolist() == [42, 43]
    bad = shares.copy()
    bad[3, 1] = (bad[3, 1] + 1) % shamir.MERSENNE31
    with pytest.raises(IntegrityError):
        shamir.reconstruct([1, 2, 3, 4], bad, 2, check=True)


def test_large_threshold_matches_pure_python():
    prime = shamir.MERSENNE31
    secret = np.array([123456789, 1])
    shares = shamir.split(secret, 300, 400)
    assert shamir.reconstruct(np.arange(101, 401), shares[100:], 300).tolist() == secret.tolist()
    # one share checked against Horner in Python ints
    prime_shares = shamir.split(np.array([5]), 200, 250, prg=PRG(bytes(16)))
    coeffs = [5] + [int(v) for v in PRG(bytes(16)).integers_below(prime, (199, 1))[:, 0]]
    x = 3
    want = 0
    for c in reversed(coeffs):
        want = (want * x + c) % prime
    assert int(prime_shares[2, 0]) == want


def test_lagrange_coefficients_interpolate():
    prime = 101
    lam = shamir.lagrange_coefficients([1, 2, 3], at=5, prime=prime)
    f = lambda x: (3 + 4 * x + 7 * x * x) % prime  # noqa: E731
    assert sum(int(l) * f(x) for l, x in zip(lam, [1, 2, 3])) % prime == f(5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(secret=[1], threshold=0, n=3), "threshold"),
    (dict(secret=[1], threshold=4, n=3), "threshold"),
    (dict(secret=[shamir.MERSENNE31], threshold=2, n=3), r"\[0, "),
    (dict(secret=[-1], threshold=2, n=3), r"\[0, "),
    (dict(secret=[1.5], threshold=2, n=3), "integers"),
    (dict(secret=[1], threshold=2, xs=[1, 1, 2]), "distinct"),
    (dict(secret=[1], threshold=2, xs=[0, 1, 2]), r"\[1, "),
    (dict(secret=[1], threshold=2, n=3, prime=15), "prime"),
    (dict(secret=[1], threshold=2), "n or the points"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        shamir.split(**kwargs)


def test_reconstruct_rejects_bad_shapes_and_points():
    with pytest.raises(ParameterError, match="shape"):
        shamir.reconstruct_many(np.array([1, 2]), np.array([1, 2]), 2)
    with pytest.raises(ParameterError, match="distinct"):
        shamir.reconstruct([1, 1], np.array([3, 4]), 2)


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_bytes_round_trip(data):
    elems = shamir.encode_bytes(data)
    assert elems.max(initial=0) < shamir.MERSENNE31
    assert bytes(shamir.decode_bytes(elems, len(data))) == data


def test_bytes_batch_and_errors():
    data = np.arange(64, dtype=np.uint8).reshape(2, 32)
    elems = shamir.encode_bytes(data)
    assert elems.shape == (2, 9)  # 256 bits in 30-bit elements
    assert np.array_equal(shamir.decode_bytes(elems, 32), data)
    with pytest.raises(EncodingError):
        shamir.decode_bytes(elems[:, :8], 32)
    bad = elems.copy()
    bad[0, 8] = 1 << 29  # a bit past byte 32
    with pytest.raises(EncodingError):
        shamir.decode_bytes(bad, 32)
    with pytest.raises(ParameterError):
        shamir.encode_bytes(data, prime=shamir.MERSENNE61)


# The field layer under Shamir and SecAgg (mpc.arith.field).

@settings(max_examples=25, deadline=None)
@given(st.integers(1, 60), st.integers(1, 40), st.integers(1, 8), st.data())
def test_modmatmul_is_exact(r, t, c, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    a = rng.integers(0, shamir.MERSENNE31, (r, t), dtype=np.uint64)
    b = rng.integers(0, shamir.MERSENNE31, (t, c), dtype=np.uint64)
    want = [[sum(int(a[i, k]) * int(b[k, j]) for k in range(t)) % shamir.MERSENNE31 for j in range(c)]
            for i in range(r)]
    assert field.matmul_mod(a, b, shamir.MERSENNE31).tolist() == want


def test_batched_lagrange_matches_python_integers():
    p = shamir.MERSENNE31
    rng = np.random.default_rng(4)
    pts = np.stack([np.sort(rng.choice(np.arange(1, 2000), 7, replace=False)) for _ in range(5)])
    got = field.lagrange(pts, 0, p)
    for row, lam in zip(pts, got):
        xs = [int(v) for v in row]
        want = [math.prod(xj * pow(xj - xi, -1, p) for xj in xs if xj != xi) % p for xi in xs]
        assert lam.tolist() == want
    with pytest.raises(IntegrityError):
        field.lagrange(np.array([[1, 2, 2]]), 0, shamir.MERSENNE31)
