"""Floats into the SecAgg ring Z_2^k and back, with the error bound (layer: protocols).

A client's float vector x is clipped to [-C, C] and rounded to the nearest
multiple of 2^-f: ``q = round(clip(x, -C, C) * 2^f)``, an integer with
``|q| <= C 2^f``; it enters the ring Z_2^k as ``q mod 2^k``. The server
decodes the ring sum by centred lift (values at or above 2^(k-1) are negative)
and divides by 2^f.

Bounds
------
* No overflow: the sum of n clients has ``|sum q| <= n ceil(C 2^f)``, so
  ``k = bits_needed(n)`` = bit length of ``n ceil(C 2^f)`` plus one sign bit
  makes the centred lift exact. A smaller k is refused (:class:`ParameterError`).
* Quantisation error of the decoded sum, per coordinate, for values inside the
  clipping range: at most ``n * 2^-(f+1)`` (each rounding errs by at most half
  a step). Values outside the range are clipped, never silently: ``encode``
  returns how many were clipped, and the client reports that count to its owner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mpc.errors import EncodingError, ParameterError

MAX_BITS = 64


def ring_dtype(bits: int) -> np.dtype:
    """uint32 for k <= 32, else uint64: arithmetic wraps mod 2^32 or 2^64, a multiple of 2^k."""
    if not 1 <= bits <= MAX_BITS:
        raise ParameterError(f"ring bits must be in [1, {MAX_BITS}], got {bits}")
    return np.dtype(np.uint32) if bits <= 32 else np.dtype(np.uint64)


def ring_mask(bits: int) -> int:
    return (1 << bits) - 1


@dataclass(frozen=True)
class Quantizer:
    """Fixed-point codec: clipping range ``[-clip, clip]`` and ``frac_bits`` fractional bits."""

    clip: float = 8.0
    frac_bits: int = 16

    def __post_init__(self) -> None:
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ParameterError(f"the clipping range must be a positive finite number, got {self.clip}")
        if not 0 <= self.frac_bits <= 40:
            raise ParameterError(f"frac_bits must be in [0, 40], got {self.frac_bits}")

    @property
    def scale(self) -> float:
        return float(1 << self.frac_bits)

    @property
    def max_level(self) -> int:
        """Largest |q| of one client's coordinate."""
        return int(math.ceil(self.clip * self.scale))

    def bits_needed(self, n: int) -> int:
        """Smallest ring size k for which the sum of n clients cannot overflow."""
        return (n * self.max_level).bit_length() + 1

    def error_bound(self, n: int) -> float:
        """Worst-case absolute error per coordinate of the decoded sum of n in-range values."""
        return n / (2.0 * self.scale)

    def check_bits(self, n: int, bits: int) -> None:
        need = self.bits_needed(n)
        if bits < need:
            raise ParameterError(
                f"a ring of 2^{bits} can overflow: the sum of {n} clients clipped to "
                f"+-{self.clip} with {self.frac_bits} fractional bits needs at least {need} bits")
        if need > MAX_BITS:
            raise ParameterError(f"{n} clients with clip {self.clip} and {self.frac_bits} fractional "
                                 f"bits need a {need}-bit ring (at most {MAX_BITS}); lower them")

    def encode(self, x: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
        """(ring vector, number of clipped values) for a float vector."""
        arr = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise EncodingError("the update contains NaN or infinite values")
        clipped = int(np.count_nonzero(np.abs(arr) > self.clip))
        q = np.rint(np.clip(arr, -self.clip, self.clip) * self.scale).astype(np.int64)
        dtype = ring_dtype(bits)
        ring = q.astype(np.uint64) & np.uint64(ring_mask(bits))
        return ring.astype(dtype), clipped

    def decode(self, total: np.ndarray, bits: int) -> np.ndarray:
        """Floats from a ring sum (centred lift, then divide by 2^f)."""
        v = np.asarray(total).astype(np.uint64)
        if bits == 64:
            signed = v.view(np.int64)
        else:
            signed = v.astype(np.int64)
            signed = np.where(signed >= (1 << (bits - 1)), signed - (1 << bits), signed)
        return signed.astype(np.float64) / self.scale
