"""Prime-field arithmetic on numpy arrays: products, powers, Vandermonde, Lagrange (layer: mpc core).

Two backends, chosen by the size of the prime:

* ``p < 2^31`` (e.g. 2^31 - 1): ``uint64`` arrays. A product of two elements
  stays below 2^62, and a matrix product runs as four exact float64 GEMMs
  over 16-bit limbs (:func:`matmul_mod`), so thousands of shares cost
  milliseconds.
* larger primes: ``object`` arrays of ``gmpy2.mpz``; the same algorithms, at
  Python speed.

Operands are reduced field elements; validating them is the caller's job
(:mod:`mpc.sharing.shamir` checks its inputs). Used by Shamir sharing and by
SecAgg's batched sharing of client secrets.
"""

from __future__ import annotations

import gmpy2
import numpy as np

from ..errors import IntegrityError

NUMPY_PRIME_LIMIT = 1 << 31
"""Primes below it use the ``uint64`` backend: a product of two elements fits."""
_LIMB = 16
_LIMB_MASK = np.uint64((1 << _LIMB) - 1)
_MAX_INNER = 1 << 20  # (2^16)^2 * 2^20 < 2^53: float64 partial sums stay exact


def is_small(prime: int) -> bool:
    """Whether ``prime`` uses the ``uint64`` backend."""
    return prime < NUMPY_PRIME_LIMIT


def mulmod(a: np.ndarray, b: np.ndarray | int, prime: int) -> np.ndarray:
    """Elementwise ``a * b mod p`` (broadcasting)."""
    if is_small(prime):
        return (a * np.uint64(b) if isinstance(b, int) else a * b) % np.uint64(prime)
    return (a * b) % prime


def matmul_mod(a: np.ndarray, b: np.ndarray, prime: int) -> np.ndarray:
    """Exact ``a @ b mod p`` (numpy matmul broadcasting) for reduced operands."""
    if not is_small(prime):
        return np.matmul(a, b) % prime
    p = np.uint64(prime)
    k = a.shape[-1]
    if k > _MAX_INNER:
        out = matmul_mod(a[..., :_MAX_INNER], b[..., :_MAX_INNER, :], prime)
        rest = matmul_mod(a[..., _MAX_INNER:], b[..., _MAX_INNER:, :], prime)
        return (out + rest) % p
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    a_lo = (a & _LIMB_MASK).astype(np.float64)
    a_hi = (a >> np.uint64(_LIMB)).astype(np.float64)
    b_lo = (b & _LIMB_MASK).astype(np.float64)
    b_hi = (b >> np.uint64(_LIMB)).astype(np.float64)
    hh = np.matmul(a_hi, b_hi).astype(np.uint64) % p
    mid = (np.matmul(a_hi, b_lo).astype(np.uint64) + np.matmul(a_lo, b_hi).astype(np.uint64)) % p
    ll = np.matmul(a_lo, b_lo).astype(np.uint64) % p
    # hh * (2^32 mod p) < 2^62, mid * 2^16 < 2^47: the sum stays below 2^63.
    return (hh * np.uint64((1 << 32) % prime) + mid * np.uint64(1 << _LIMB) + ll) % p


def powmod(a: np.ndarray, e: int, prime: int) -> np.ndarray:
    """Elementwise ``a^e mod p`` by square-and-multiply (vectorised)."""
    if not is_small(prime):
        return np.vectorize(lambda v: gmpy2.powmod(v, e, prime), otypes=[object])(a)
    result = np.ones_like(a)
    base = a.copy()
    while e:
        if e & 1:
            result = mulmod(result, base, prime)
        base = mulmod(base, base, prime)
        e >>= 1
    return result


def inverse(a: np.ndarray, prime: int) -> np.ndarray:
    """Elementwise ``a^-1 mod p`` (0 maps to 0)."""
    if not is_small(prime):
        return np.vectorize(lambda v: gmpy2.invert(v, prime) if v % prime else gmpy2.mpz(0),
                            otypes=[object])(a)
    return powmod(a, prime - 2, prime)  # Fermat: a^(p-2) = a^-1


def vandermonde(xs: np.ndarray, t: int, prime: int) -> np.ndarray:
    """``V[i, j] = x_i^j mod p`` for j < t, by doubling (log t vector products)."""
    if not is_small(prime):
        return np.array([[gmpy2.powmod(x, j, prime) for j in range(t)] for x in xs],
                        dtype=object).reshape(len(xs), t)
    v = np.ones((len(xs), 1), dtype=np.uint64)
    power = np.asarray(xs, dtype=np.uint64).reshape(-1, 1) % np.uint64(prime)  # x^width
    while v.shape[1] < t:
        v = np.concatenate([v, mulmod(v, power, prime)], axis=1)
        power = mulmod(power, power, prime)
    return v[:, :t]


class VandermondeCache:
    """Vandermonde matrices by (points, t, prime): public, reused by every sharer with
    the same holders (SecAgg's simulated clients on a complete graph)."""

    def __init__(self) -> None:
        self._store: dict[tuple[bytes, int, int], np.ndarray] = {}

    def get(self, xs: np.ndarray, t: int, prime: int) -> np.ndarray:
        key = (np.asarray(xs, dtype=np.int64).tobytes(), t, prime)
        v = self._store.get(key)
        if v is None:
            v = self._store[key] = vandermonde(xs, t, prime)
        return v


def lagrange(points: np.ndarray, at: int, prime: int) -> np.ndarray:
    """Lagrange coefficients at ``at`` for each row of points ``(m, k)``: ``(m, k)``.

    ``l_i = prod_{j != i} (at - x_j) / (x_i - x_j) mod p``, k vectorised steps
    over all rows; :class:`~mpc.errors.IntegrityError` if a row repeats a point.
    """
    small = is_small(prime)
    points = np.asarray(points, dtype=np.uint64) % np.uint64(prime) if small else points
    m, k = points.shape
    p = np.uint64(prime) if small else prime
    one = np.ones((m, k), dtype=np.uint64) if small else np.full((m, k), gmpy2.mpz(1), dtype=object)
    num, den = one.copy(), one.copy()
    at_minus = (np.uint64(at % prime) + p - points) % p if small else (at + p - points) % p
    for j in range(k):
        xj = points[:, j:j + 1]
        diff = (points + p - xj) % p  # x_i - x_j (zero on the diagonal)
        diff[:, j] = 1
        fac = np.repeat(at_minus[:, j:j + 1], k, axis=1)
        fac[:, j] = 1
        num = mulmod(num, fac, prime)
        den = mulmod(den, diff, prime)
    if np.any(den == 0):
        raise IntegrityError("Lagrange interpolation points are not distinct")
    return mulmod(num, inverse(den, prime), prime)
