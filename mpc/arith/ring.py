"""The ring Z_2^64 on ``numpy.uint64``: conversions and exact matrix products (layer: mpc core).

Arithmetic shares live in Z_2^64; numpy's uint64 wrap-around *is* the modulus,
so ``+``, ``-`` and ``*`` on uint64 arrays are already ring operations. What
numpy lacks is a fast exact integer matmul: :func:`ring_matmul` computes it
with float64 BLAS by splitting each operand into three limbs (21, 21 and 22
bits) so that every partial sum stays below 2^53 and is exact; the limb
pairs shifted by 63 bits contribute only their parity.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

RING_BITS = 64
_LIMB = 21
_LIMB_MASK = np.uint64((1 << _LIMB) - 1)
_MAX_INNER = 1 << 9  # (2^22 - 1)^2 * 2^9 < 2^53: exact in float64 (Karatsuba sums of limbs)


def to_ring(values: np.ndarray | int) -> np.ndarray:
    """Map integers (any signed or unsigned dtype, or Python ints) into Z_2^64."""
    arr = np.asarray(values)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64, copy=False).view(np.uint64) if arr.dtype != np.uint64 else arr
    if arr.dtype == object:
        return np.array([int(v) % (1 << 64) for v in arr.reshape(-1)], dtype=np.uint64).reshape(arr.shape)
    raise ParameterError(f"cannot map dtype {arr.dtype} into the ring; encode reals with FixedPoint")


def to_signed(values: np.ndarray) -> np.ndarray:
    """Read ring elements as two's-complement signed integers (int64 view)."""
    return np.asarray(values, dtype=np.uint64).view(np.int64)


def from_signed(values: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_signed`: int64 to ring elements (uint64 view)."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def _limbs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = (x & _LIMB_MASK).astype(np.float64)
    mid = ((x >> np.uint64(_LIMB)) & _LIMB_MASK).astype(np.float64)
    hi = (x >> np.uint64(2 * _LIMB)).astype(np.float64)
    return lo, mid, hi


def _exact(m: np.ndarray) -> np.ndarray:
    return m.astype(np.uint64)


def ring_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact ``a @ b`` over Z_2^64 for uint64 arrays (numpy matmul broadcasting).

    Cost per block of 512 along the inner dimension: five float64 GEMMs (limb
    pairs shifted by less than 63 bits, the two middle pairs by Karatsuba) and
    one float32 GEMM of the low bits of the pairs shifted by exactly 63 bits.
    """
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    if a.ndim == 0 or b.ndim == 0:
        raise ParameterError("matmul needs arrays of at least one dimension")
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = a[None, :]
    if squeeze_b:
        b = b[:, None]
    k = a.shape[-1]
    if b.shape[-2] != k:
        raise ParameterError(f"matmul shape mismatch: {a.shape} @ {b.shape}")
    out = None
    for start in range(0, max(k, 1), _MAX_INNER):
        stop = min(start + _MAX_INNER, k)
        part = _ring_matmul_block(a[..., start:stop], b[..., start:stop, :])
        out = part if out is None else out + part
    if out is None:  # k == 0
        out = np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1]), np.uint64)
    if squeeze_a:
        out = out[..., 0, :]
    if squeeze_b:
        out = out[..., 0]
    return out


def _low_bits(x: np.ndarray, shift: int) -> np.ndarray:
    """Bit ``shift`` of each element, as float32 0/1."""
    return ((x >> np.uint64(shift)) & np.uint64(1)).astype(np.float32)


def _ring_matmul_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a0, a1, a2 = _limbs(a)
    b0, b1, b2 = _limbs(b)
    p0 = _exact(a0 @ b0)
    q11 = _exact(a1 @ b1)
    # Karatsuba: a0 b1 + a1 b0 = (a0 + a1)(b0 + b1) - a0 b0 - a1 b1, one GEMM instead of two
    # (limb sums < 2^22, so k <= 2^9 keeps every partial sum exact).
    p1 = _exact((a0 + a1) @ (b0 + b1)) - p0 - q11
    p2 = _exact(a0 @ b2) + q11 + _exact(a2 @ b0)
    # Limb pairs (1, 2) and (2, 1) are shifted by 63 bits: only the parity of
    # their sum survives mod 2^64. Products of low bits are 0/1, so one
    # float32 GEMM over the concatenated inner dimension is exact (k <= 2^23).
    odd_a = np.concatenate([_low_bits(a, _LIMB), _low_bits(a, 2 * _LIMB)], axis=-1)
    odd_b = np.concatenate([_low_bits(b, 2 * _LIMB), _low_bits(b, _LIMB)], axis=-2)
    p3 = (odd_a @ odd_b).astype(np.uint64)
    p1 <<= np.uint64(_LIMB)
    p2 <<= np.uint64(2 * _LIMB)
    p3 <<= np.uint64(3 * _LIMB)
    p0 += p1
    p0 += p2
    p0 += p3
    return p0
