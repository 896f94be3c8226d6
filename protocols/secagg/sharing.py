"""Shamir sharing of a client's two SecAgg secrets, batched (layer: protocols).

Each client shares, t-of-h among its h shareholders (its neighbours and
itself), the 16-byte self-mask seed ``b_u`` and the 32-byte mask secret key
``s_u^SK``, cut into field elements of GF(2^31 - 1) by
:func:`mpc.sharing.shamir.encode_bytes` (5 and 9 elements of 30 bits). Shares
are exactly those of :func:`mpc.sharing.shamir.split` at points ``x = id + 1``
(the tests reconstruct them with :func:`mpc.sharing.shamir.reconstruct`); this
module only adds what SecAgg's scale needs:

* the Vandermonde matrix of a holder set is public, so it can be cached and
  reused by every client with the same holders (SecAgg's complete graph);
* the evaluation is an exact modular matrix product (float64 GEMMs over
  16-bit limbs), and the server computes the Lagrange coefficients of all
  responder sets at once and combines all shares in one vectorised pass.
"""

from __future__ import annotations

import numpy as np

from mpc.errors import EncodingError, IntegrityError, ParameterError
from mpc.rand import PRG
from mpc.sharing import shamir

PRIME = shamir.MERSENNE31
SEED_ELEMS = 5  # 16 bytes in 30-bit elements
KEY_ELEMS = 9   # 32 bytes in 30-bit elements
ELEMS = SEED_ELEMS + KEY_ELEMS
_P = np.uint64(PRIME)
_TWO32 = np.uint64((1 << 32) % PRIME)


def _limbs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = a.astype(np.uint64)
    return (a >> np.uint64(16)).astype(np.float64), (a & np.uint64(0xFFFF)).astype(np.float64)


def modmatmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact ``a @ b mod p`` for entries in [0, 2^31) and inner size below 2^20."""
    if a.shape[-1] >= 1 << 20:
        raise ParameterError("inner dimension too large for exact float64 limbs")
    a1, a0 = _limbs(a)
    b1, b0 = _limbs(b)
    hi = (a1 @ b1).astype(np.uint64) % _P
    mid = ((a1 @ b0) + (a0 @ b1)).astype(np.uint64) % _P
    lo = (a0 @ b0).astype(np.uint64) % _P
    return (hi * _TWO32 % _P + (mid << np.uint64(16)) % _P + lo) % _P


def vandermonde(points: np.ndarray, t: int) -> np.ndarray:
    """``V[i, j] = x_i^j mod p`` for j < t (uint64)."""
    x = np.asarray(points, dtype=np.uint64)
    v = np.empty((x.size, t), dtype=np.uint64)
    v[:, 0] = 1
    for j in range(1, t):
        v[:, j] = v[:, j - 1] * x % _P
    return v


class VandermondeCache:
    """Public Vandermonde matrices by (holder set, threshold), shared by simulated clients."""

    def __init__(self) -> None:
        self._store: dict[tuple[bytes, int], np.ndarray] = {}

    def get(self, points: np.ndarray, t: int) -> np.ndarray:
        key = (np.asarray(points, dtype=np.int64).tobytes(), t)
        v = self._store.get(key)
        if v is None:
            v = self._store[key] = vandermonde(points, t)
        return v


def pack_secrets(seed: bytes, key: bytes) -> np.ndarray:
    """(16-byte seed, 32-byte key) -> 14 field elements."""
    if len(seed) != 16 or len(key) != 32:
        raise ParameterError("SecAgg shares a 16-byte seed and a 32-byte key")
    return np.concatenate([shamir.encode_bytes(seed, PRIME), shamir.encode_bytes(key, PRIME)])


def unpack_seed(elements: np.ndarray) -> bytes:
    return shamir.decode_bytes(np.asarray(elements), 16, PRIME).tobytes()


def unpack_key(elements: np.ndarray) -> bytes:
    return shamir.decode_bytes(np.asarray(elements), 32, PRIME).tobytes()


def share_secrets(secrets: np.ndarray, holders: np.ndarray, t: int, prg: PRG,
                  cache: VandermondeCache | None = None) -> np.ndarray:
    """Shares ``(len(holders), 14)`` uint32 of ``secrets`` at points ``holders + 1``."""
    h = len(holders)
    if not 2 <= t <= h:
        raise ParameterError(f"threshold must be in [2, {h}] for {h} shareholders, got {t}")
    points = np.asarray(holders, dtype=np.int64) + 1
    v = cache.get(points, t) if cache is not None else vandermonde(points, t)
    coeffs = np.empty((t, secrets.size), dtype=np.uint64)
    coeffs[0] = secrets
    coeffs[1:] = prg.integers_below(PRIME, (t - 1, secrets.size))
    return modmatmul(v, coeffs).astype(np.uint32)


def _inverse(a: np.ndarray) -> np.ndarray:
    """Elementwise a^(p-2) mod p (Fermat), vectorised square-and-multiply."""
    result = np.ones_like(a)
    base = a.copy()
    e = PRIME - 2
    while e:
        if e & 1:
            result = result * base % _P
        base = base * base % _P
        e >>= 1
    return result


def lagrange_at_zero(points: np.ndarray) -> np.ndarray:
    """Lagrange coefficients at 0 for each row of distinct points ``(g, t)``: ``(g, t)`` uint64.

    ``l_i = prod_{j != i} x_j / (x_j - x_i) mod p``: t vectorised steps over all rows.
    """
    x = np.asarray(points, dtype=np.uint64) % _P
    g, t = x.shape
    num = np.ones((g, t), dtype=np.uint64)
    den = np.ones((g, t), dtype=np.uint64)
    for j in range(t):
        xj = x[:, j:j + 1]
        diff = (xj + _P - x) % _P  # x_j - x_i
        diff[:, j] = 1
        fac = np.repeat(xj, t, axis=1)
        fac[:, j] = 1
        num = num * fac % _P
        den = den * diff % _P
    if np.any(den == 0):
        raise IntegrityError("Shamir points are not distinct")
    return num * _inverse(den) % _P


def reconstruct(points: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Secrets from exactly t shares per row: points ``(m, t)``, shares ``(m, t, c)`` -> ``(m, c)``.

    Rows with the same points share one Lagrange vector; the combination is
    one vectorised product-and-sum over all rows.

    Raises
    ------
    IntegrityError
        A share is not a field element, or points repeat.
    """
    points = np.asarray(points, dtype=np.int64)
    shares = np.asarray(shares)
    m, t = points.shape
    c = shares.shape[2]
    if m == 0:
        return np.empty((0, c), dtype=np.uint64)
    if shares.size and int(shares.max()) >= PRIME:
        raise IntegrityError("a Shamir share is not a field element")
    groups, inverse = np.unique(points, axis=0, return_inverse=True)
    lam = lagrange_at_zero(groups)[inverse.reshape(-1)]  # (m, t)
    out = np.zeros((m, c), dtype=np.uint64)
    for j in range(t):  # sum of t terms below 2^31 each: no overflow
        out += lam[:, j:j + 1] * shares[:, j, :].astype(np.uint64) % _P
    return out % _P


def decode_seeds(elements: np.ndarray) -> list[bytes]:
    """Reconstructed seed elements (m, 5) -> m seeds; :class:`IntegrityError` if malformed."""
    try:
        return [unpack_seed(row) for row in elements]
    except EncodingError:
        raise IntegrityError("reconstructed self-mask seed is malformed (inconsistent shares)") from None


def decode_keys(elements: np.ndarray) -> list[bytes]:
    """Reconstructed key elements (m, 9) -> m keys; :class:`IntegrityError` if malformed."""
    try:
        return [unpack_key(row) for row in elements]
    except EncodingError:
        raise IntegrityError("reconstructed mask key is malformed (inconsistent shares)") from None
