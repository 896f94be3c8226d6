"""Fixed-point encoding of reals in Z_2^64 (layer: mpc core).

A real ``x`` is stored as the ring element ``round(x * 2^f)`` (two's
complement), ``f`` fractional bits (16 by default, as in CrypTen and MP-SPDZ).

Ranges, for ``f`` fractional bits:

* encodable: ``|x| < 2^(62 - f)`` (2^46 for f = 16); anything larger, NaN or
  infinite is refused with :class:`~mpc.errors.EncodingError`, never wrapped;
* a product of two encoded values is exact up to truncation when
  ``|x * y| < 2^(62 - 2f)`` (2^30 for f = 16): see
  :mod:`mpc.sharing.truncation`;
* resolution: ``2^-f`` (about 1.5e-5 for f = 16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EncodingError, ParameterError

_HEADROOM_BITS = 62  # truncation needs |value| < 2^62 in the ring


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point codec with ``frac_bits`` fractional bits."""

    frac_bits: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.frac_bits <= 30:
            raise ParameterError(f"frac_bits must be in [0, 30], got {self.frac_bits}")

    @property
    def scale(self) -> int:
        """2^f as a Python int."""
        return 1 << self.frac_bits

    @property
    def max_abs(self) -> float:
        """Largest magnitude accepted by :meth:`encode` (exclusive)."""
        return float(2 ** (_HEADROOM_BITS - self.frac_bits))

    @property
    def max_product(self) -> float:
        """Largest magnitude of a product that multiplication keeps exact (exclusive)."""
        return float(2 ** (_HEADROOM_BITS - 2 * self.frac_bits))

    @property
    def resolution(self) -> float:
        """The value of one unit in the last place, 2^-f."""
        return 2.0 ** -self.frac_bits

    def encode(self, x: np.ndarray | float) -> np.ndarray:
        """Encode reals as ring elements; refuse out-of-range or non-finite values."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.size:
            if not np.all(np.isfinite(arr)):
                raise EncodingError("cannot encode NaN or infinity as fixed point")
            peak = float(np.max(np.abs(arr)))
            if peak >= self.max_abs:
                raise EncodingError(   # the value itself may be secret: not quoted
                    f"a value is outside the fixed-point range "
                    f"|x| < 2^{_HEADROOM_BITS - self.frac_bits} (frac_bits={self.frac_bits})"
                )
        scaled = np.rint(arr * self.scale)
        return scaled.astype(np.int64).view(np.uint64)

    def decode(self, u: np.ndarray) -> np.ndarray:
        """Decode ring elements (two's complement) back to float64."""
        signed = np.asarray(u, dtype=np.uint64).view(np.int64)
        return signed.astype(np.float64) / self.scale
