"""Shamir sharing of a client's two SecAgg secrets, batched (layer: protocols).

Each client shares, t-of-h among its h shareholders (its neighbours and
itself), the 16-byte self-mask seed ``b_u`` and the 32-byte mask secret key
``s_u^SK``, cut into field elements of GF(2^31 - 1) by
:func:`mpc.sharing.shamir.encode_bytes` (5 and 9 elements of 30 bits). Shares
are exactly those of :func:`mpc.sharing.shamir.split` at points ``x = id + 1``
(the tests reconstruct them with :func:`mpc.sharing.shamir.reconstruct`); this
module only adds what SecAgg's scale needs:

* the Vandermonde matrix of a holder set is public, so it can be cached and
  reused by every client with the same holders (SecAgg's complete graph,
  :class:`mpc.arith.field.VandermondeCache`);
* the server reconstructs all dropped or surviving clients' secrets in one
  call of :func:`mpc.sharing.shamir.reconstruct_many` (batched Lagrange).
"""

from __future__ import annotations

import numpy as np

from mpc.arith.field import VandermondeCache, matmul_mod, vandermonde
from mpc.errors import EncodingError, IntegrityError, ParameterError
from mpc.rand import PRG
from mpc.sharing import shamir

PRIME = shamir.MERSENNE31
SEED_ELEMS = 5  # 16 bytes in 30-bit elements
KEY_ELEMS = 9   # 32 bytes in 30-bit elements
ELEMS = SEED_ELEMS + KEY_ELEMS
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
    v = cache.get(points, t, PRIME) if cache is not None else vandermonde(points, t, PRIME)
    coeffs = np.empty((t, secrets.size), dtype=np.uint64)
    coeffs[0] = secrets
    coeffs[1:] = prg.integers_below(PRIME, (t - 1, secrets.size))
    return matmul_mod(v, coeffs, PRIME).astype(np.uint32)


def reconstruct(points: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Secrets from exactly t shares per row: points ``(m, t)``, shares ``(m, t, c)`` -> ``(m, c)``.

    :func:`mpc.sharing.shamir.reconstruct_many` over GF(2^31 - 1) (one Lagrange
    vector per distinct holder set, one vectorised combination); shares come
    from clients, so a malformed one is an integrity failure here.

    Raises
    ------
    IntegrityError
        A share is not a field element, or points repeat.
    """
    points = np.asarray(points, dtype=np.int64)
    shares = np.asarray(shares)
    if shares.size and int(shares.max()) >= PRIME:
        raise IntegrityError("a Shamir share is not a field element")
    try:
        return shamir.reconstruct_many(points, shares, points.shape[1], prime=PRIME)
    except ParameterError as exc:
        raise IntegrityError(f"Shamir shares cannot be combined: {exc}") from None


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
