"""Shamir secret sharing over a prime field: pure functions, no I/O (layer: mpc core).

A secret ``s`` in GF(p) is hidden as the constant term of a random polynomial
``f`` of degree ``t - 1``; party ``i`` holds ``f(x_i)`` for a distinct non-zero
point ``x_i``. Any ``t`` shares determine ``f(0) = s`` by Lagrange interpolation;
any ``t - 1`` shares are uniformly random and independent of ``s`` (perfect
privacy) [Sha79].

Two backends, chosen by the size of the prime (the field arithmetic is
:mod:`mpc.arith.field`):

* ``p < 2^31`` (default :data:`MERSENNE31` = 2^31 - 1): numpy ``uint64`` arrays.
  Products of two field elements stay below 2^62, and matrix products (sharing is
  one Vandermonde product, reconstruction one Lagrange product) run as four exact
  float64 GEMMs over 16-bit limbs, so thousands of shares cost milliseconds.
* larger primes (e.g. :data:`MERSENNE127`): numpy ``object`` arrays of ``gmpy2.mpz``;
  the same algorithms, at Python speed.

Byte strings (keys, seeds) are shared by cutting them into field elements of
``bit_length(p) - 1`` bits with :func:`encode_bytes` / :func:`decode_bytes`.

References
----------
[Sha79] A. Shamir, "How to share a secret", CACM 22(11), 1979.
"""

from __future__ import annotations

import gmpy2
import numpy as np

from ..arith.field import is_small, lagrange, matmul_mod, mulmod, vandermonde
from ..errors import EncodingError, IntegrityError, ParameterError
from ..rand import PRG

MERSENNE31 = (1 << 31) - 1
"""2^31 - 1, the default prime (numpy backend)."""
MERSENNE61 = (1 << 61) - 1
"""2^61 - 1 (gmpy2 backend)."""
MERSENNE127 = (1 << 127) - 1
"""2^127 - 1 (gmpy2 backend)."""



def _check_prime(prime: int) -> int:
    prime = int(prime)
    if prime < 3 or not gmpy2.is_prime(prime, 50):
        raise ParameterError(f"Shamir sharing needs an odd prime modulus, got {prime}")
    return prime


def _as_field(values: np.ndarray | int | list, prime: int, what: str) -> np.ndarray:
    """Validate ``values`` as elements of [0, p) in the backend's representation."""
    arr = np.asarray(values)
    if is_small(prime):
        if arr.dtype == object:
            flat = [int(v) for v in arr.reshape(-1)]
            if any(not 0 <= v < prime for v in flat):
                raise ParameterError(f"{what} must be integers in [0, {prime})")
            return np.array(flat, dtype=np.uint64).reshape(arr.shape)
        if arr.dtype.kind not in "iu":
            raise ParameterError(f"{what} must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= prime):
            raise ParameterError(f"{what} must be integers in [0, {prime})")
        return arr.astype(np.uint64)
    if arr.dtype != object and arr.dtype.kind not in "iu":
        raise ParameterError(f"{what} must be integers, got dtype {arr.dtype}")
    flat = [gmpy2.mpz(int(v)) for v in arr.reshape(-1)]
    if any(not 0 <= v < prime for v in flat):
        raise ParameterError(f"{what} must be integers in [0, {prime})")
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(arr.shape)


def _points(xs: np.ndarray | list[int], prime: int) -> np.ndarray:
    """Validate evaluation points: distinct and non-zero modulo p."""
    arr = np.asarray(xs)
    if arr.ndim != 1 or arr.size == 0:
        raise ParameterError("evaluation points must be a non-empty 1-D sequence")
    if arr.dtype != object and arr.dtype.kind not in "iu":
        raise ParameterError(f"evaluation points must be integers, got dtype {arr.dtype}")
    ints = [int(v) for v in arr]
    if any(not 0 < v < prime for v in ints):
        raise ParameterError(f"evaluation points must lie in [1, {prime})")
    if len(set(ints)) != len(ints):
        raise ParameterError("evaluation points must be distinct")
    return _as_field(np.array(ints, dtype=object), prime, "evaluation points")


def _points_batch(xs: np.ndarray, prime: int) -> np.ndarray:
    """Validate rows of evaluation points (m, k): each row distinct and non-zero mod p."""
    if not is_small(prime) or xs.dtype == object:
        rows = [_points(row, prime) for row in xs]
        return np.stack(rows) if rows else np.empty(xs.shape, dtype=object)
    if xs.dtype.kind not in "iu":
        raise ParameterError(f"evaluation points must be integers, got dtype {xs.dtype}")
    if xs.size and (xs.min() < 1 or xs.max() >= prime):
        raise ParameterError(f"evaluation points must lie in [1, {prime})")
    ordered = np.sort(xs, axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise ParameterError("evaluation points must be distinct")
    return xs.astype(np.uint64)


def split(secret: np.ndarray | int, threshold: int, n: int | None = None, *,
          xs: np.ndarray | list[int] | None = None, prime: int = MERSENNE31,
          prg: PRG | None = None) -> np.ndarray:
    """Split field elements into Shamir shares, any ``threshold`` of which reconstruct.

    Parameters
    ----------
    secret:
        Integers in [0, p) of any shape S (each element is shared independently).
    threshold:
        t, the number of shares needed; the polynomial has degree t - 1.
    n:
        Number of shares, at points 1..n (give ``n`` or ``xs``).
    xs:
        Explicit distinct non-zero evaluation points (one per share holder).
    prime:
        The field modulus p.
    prg:
        Source of the random coefficients (default: a fresh OS-seeded PRG).

    Returns
    -------
    numpy.ndarray
        Shares of shape ``(len(xs), *S)``: ``uint64`` for p < 2^31, else ``object``.
    """
    prime = _check_prime(prime)
    if xs is None:
        if n is None:
            raise ParameterError("give the number of shares n or the points xs")
        xs = np.arange(1, int(n) + 1)
    points = _points(xs, prime)
    if n is not None and int(n) != len(points):
        raise ParameterError(f"n = {n} but {len(points)} evaluation points given")
    t = int(threshold)
    if not 1 <= t <= len(points):
        raise ParameterError(f"threshold must be in [1, {len(points)}], got {threshold}")
    values = _as_field(secret, prime, "secrets")
    shape = values.shape
    flat = values.reshape(1, -1)
    prg = prg or PRG.fresh()
    coeffs = _random_elements(prg, prime, (t - 1, flat.shape[1]))
    poly = np.concatenate([flat, coeffs], axis=0)  # row j: coefficient of x^j
    shares = matmul_mod(vandermonde(points, t, prime), poly, prime)
    return shares.reshape((len(points), *shape))


def _random_elements(prg: PRG, prime: int, shape: tuple[int, ...]) -> np.ndarray:
    if is_small(prime):
        return prg.integers_below(prime, shape)
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = (prime.bit_length() + 7) // 8 + 16  # 128 extra bits: bias below 2^-128
    out = np.empty(count, dtype=object)
    raw = prg.bytes(nbytes * count)
    out[:] = [gmpy2.mpz(int.from_bytes(raw[i * nbytes:(i + 1) * nbytes], "little")) % prime
              for i in range(count)]
    return out.reshape(shape)


def lagrange_coefficients(xs: np.ndarray | list[int], at: int = 0, *,
                          prime: int = MERSENNE31) -> np.ndarray:
    """Coefficients ``l_i`` with ``f(at) = sum_i l_i f(x_i)`` for every f of degree < len(xs).

    ``l_i = prod_{j != i} (at - x_j) / (x_i - x_j) mod p``.
    """
    prime = _check_prime(prime)
    points = _points(xs, prime)
    return lagrange(points.reshape(1, -1), int(at) % prime, prime)[0]


def reconstruct(xs: np.ndarray | list[int], shares: np.ndarray, threshold: int, *,
                prime: int = MERSENNE31, check: bool = False) -> np.ndarray:
    """Recover the secret from shares at points ``xs`` (at least ``threshold`` of them).

    Uses the first ``threshold`` shares (any t determine the polynomial). With
    ``check=True`` every further share must lie on the same polynomial, else
    :class:`~mpc.errors.IntegrityError`.

    Raises
    ------
    ParameterError
        Fewer than ``threshold`` shares, or malformed points or shares.
    """
    shares_arr = np.asarray(shares)
    out = reconstruct_many(np.asarray(xs).reshape(1, -1), shares_arr.reshape(1, *shares_arr.shape),
                           threshold, prime=prime, check=check)
    return out[0]


def reconstruct_many(xs: np.ndarray, shares: np.ndarray, threshold: int, *,
                     prime: int = MERSENNE31, check: bool = False) -> np.ndarray:
    """Recover m secrets at once: ``xs`` (m, k) points, ``shares`` (m, k, *S) -> (m, *S).

    The Lagrange coefficients of all distinct point rows are computed in one
    vectorised pass (:func:`mpc.arith.field.lagrange`), then every row is
    combined as ``sum_j l_j * share_j mod p``: t vectorised steps over all m
    rows, however many holder sets they use (SecAgg's server reconstructs
    thousands of clients' seeds this way).

    Raises
    ------
    ParameterError
        Malformed points or shares (out of the field, repeated points), or
        fewer than ``threshold`` shares per row.
    IntegrityError
        With ``check=True``, a share beyond the first t off their polynomial.
    """
    prime = _check_prime(prime)
    xs = np.asarray(xs)
    shares = np.asarray(shares)
    t = int(threshold)
    if xs.ndim != 2 or shares.ndim < 2 or shares.shape[:2] != xs.shape:
        raise ParameterError(f"points of shape (m, k) and shares of shape (m, k, ...) expected, "
                             f"got {xs.shape} and {shares.shape}")
    m, k = xs.shape
    if t < 1:
        raise ParameterError(f"threshold must be at least 1, got {threshold}")
    if k < t:
        raise ParameterError(f"cannot reconstruct: {k} shares given, the threshold is {t}")
    pts = _points_batch(xs, prime)
    vals = _as_field(shares, prime, "shares").reshape(m, k, -1)
    out_shape = (m, *shares.shape[2:])
    if m == 0:
        return np.empty((0, vals.shape[2]), dtype=vals.dtype).reshape(out_shape)
    lam = _lagrange_rows(pts[:, :t], prime)  # (m, t)
    result = mulmod(lam[:, :1], vals[:, 0, :], prime)
    for j in range(1, t):  # two reduced terms: below 2^32 (small p), exact for mpz
        result = (result + mulmod(lam[:, j:j + 1], vals[:, j, :], prime)) % _modulus(prime)
    if check and k > t:
        _check_consistent(pts, vals, t, prime)
    return result.reshape(out_shape)


def _modulus(prime: int) -> np.uint64 | int:
    return np.uint64(prime) if is_small(prime) else prime


def _lagrange_rows(pts: np.ndarray, prime: int) -> np.ndarray:
    """Lagrange coefficients at 0 for each row of ``pts`` (m, t); each distinct row once."""
    if is_small(prime):
        bases, inverse = np.unique(pts, axis=0, return_inverse=True)
        return lagrange(bases, 0, prime)[inverse.reshape(-1)]
    keyed: dict[tuple[int, ...], int] = {}
    inverse = np.array([keyed.setdefault(tuple(int(v) for v in row), len(keyed)) for row in pts])
    bases = np.empty((len(keyed), pts.shape[1]), dtype=object)
    for key, g in keyed.items():
        bases[g] = [gmpy2.mpz(v) for v in key]
    return lagrange(bases, 0, prime)[inverse]


def _check_consistent(pts: np.ndarray, vals: np.ndarray, t: int, prime: int) -> None:
    for i in range(pts.shape[0]):
        base = pts[i, :t].reshape(1, -1)
        for j in range(t, pts.shape[1]):
            lam = lagrange(base, int(pts[i, j]), prime)
            pred = matmul_mod(lam, vals[i, :t, :], prime)[0]
            if not np.array_equal(pred, vals[i, j]):
                raise IntegrityError("Shamir shares are inconsistent (not on one polynomial)")


def element_bits(prime: int) -> int:
    """Bits of payload carried by one field element in :func:`encode_bytes`."""
    return int(prime).bit_length() - 1


def encode_bytes(data: np.ndarray | bytes, prime: int = MERSENNE31) -> np.ndarray:
    """Cut byte strings ``(..., L)`` into field elements ``(..., ceil(8L / w))``, w = bits(p) - 1."""
    prime = _check_prime(prime)
    if not is_small(prime):
        raise ParameterError("encode_bytes needs a prime below 2^31; share an integer directly")
    arr = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data)
    if arr.dtype != np.uint8:
        raise ParameterError(f"encode_bytes expects uint8 data, got {arr.dtype}")
    w = element_bits(prime)
    bits = np.unpackbits(arr, axis=-1, bitorder="little")
    m = -(-bits.shape[-1] // w)
    pad = [(0, 0)] * (bits.ndim - 1) + [(0, m * w - bits.shape[-1])]
    bits = np.pad(bits, pad).reshape(*arr.shape[:-1], m, w).astype(np.uint64)
    return (bits << np.arange(w, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)


def decode_bytes(elements: np.ndarray, nbytes: int, prime: int = MERSENNE31) -> np.ndarray:
    """Inverse of :func:`encode_bytes`: field elements ``(..., m)`` to bytes ``(..., nbytes)``."""
    prime = _check_prime(prime)
    if not is_small(prime):
        raise ParameterError("decode_bytes needs a prime below 2^31")
    w = element_bits(prime)
    arr = np.asarray(elements, dtype=np.uint64)
    if arr.shape[-1] != -(-8 * nbytes // w):
        raise EncodingError(f"{arr.shape[-1]} field elements cannot hold exactly {nbytes} bytes")
    if arr.size and int(arr.max()) >> w:
        raise EncodingError("field element out of range for byte decoding")
    bits = ((arr[..., None] >> np.arange(w, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    bits = bits.reshape(*arr.shape[:-1], -1)
    if bits[..., 8 * nbytes:].any():
        raise EncodingError("field elements carry bits beyond the byte length")
    return np.packbits(bits[..., :8 * nbytes], axis=-1, bitorder="little")
