"""Public magnitude bounds of shared tensors and the range checks made from them (layer: mpc core, pure).

Every :class:`~mpc.sharing.tensor.SharedTensor` carries ``bound``, a public
float with ``|x| <= bound`` for every element ``x`` (in real units: the
decoded value, or the integer itself). Bounds come from the input owner's
declaration and are propagated by each operation from public information
only, so they are identical at every party and the parties never disagree
on whether to refuse.

Ranges (ring Z_2^64, two's complement; ``f`` fractional bits):

* a fixed-point tensor (``f > 0``) needs ``bound * 2^f < 2^62`` (the
  encodable range of :mod:`mpc.arith.fixed`, where truncation and
  comparisons are exact);
* an integer tensor (``f = 0``) needs ``bound < 2^63`` (it wraps beyond);
* a product truncated from ``F`` fractional bits needs
  ``bound * 2^F < 2^62`` before truncation (:mod:`mpc.sharing.truncation`);
* a comparison needs its difference below ``2^63`` in the ring.

An operation whose bound breaks its range raises :class:`~mpc.errors.RangeError`
before anything is computed or sent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ParameterError, RangeError

TRUNC_BITS = 62   # truncation and the fixed-point range: |ring value| < 2^62
WRAP_BITS = 63    # integers and comparison differences: |ring value| < 2^63
MODULAR = 1000     # as ring_bits: no range, for sums exact mod 2^64 whose result is checked (multiplexers)
ADVICE = ("scale the inputs down, use fewer fractional bits (frac_bits=), clip, or declare a "
          "tighter bound (share(..., bound=...), x.assume_bound(...))")


def limit(frac_bits: int) -> float:
    """The largest magnitude (exclusive, real units) a tensor with ``frac_bits`` may hold."""
    return 2.0 ** (WRAP_BITS if frac_bits == 0 else TRUNC_BITS - frac_bits)


def largest(frac_bits: int) -> float:
    """The largest float bound below :func:`limit`: the bound of a tensor nothing is known about."""
    return math.nextafter(limit(frac_bits), 0.0)


def up(value: float) -> float:
    """``value`` rounded up by one float ulp, so that float rounding never makes a bound too small."""
    return math.nextafter(float(value), math.inf)


def default_input_bound(frac_bits: int) -> float:
    """The session's default input bound: the largest encodable value below ``2^(31 - f)``.

    The product of two such inputs stays below ``2^(62 - 2f)``, the limit of
    one truncated product (``2^15 - 2^-16`` for f = 16, ``2^31 - 1`` for integers).
    """
    return 2.0 ** (31 - frac_bits) - 2.0 ** -frac_bits


def check(op: str, bound: float, frac_bits: int, ring_bits: int | None = None,
          kind: str | None = None) -> float:
    """``bound`` if a result of magnitude ``bound`` at ``frac_bits`` fits its range, else RangeError.

    ``ring_bits`` overrides the range: ``bound * 2^frac_bits < 2^ring_bits``.
    """
    bits = ring_bits if ring_bits is not None else (WRAP_BITS if frac_bits == 0 else TRUNC_BITS)
    if not bound * 2.0 ** frac_bits < 2.0 ** bits:   # also refuses NaN and infinity
        kind = kind or (f"fixed point with {frac_bits} fractional bits" if frac_bits else "integers")
        raise RangeError(f"{op}: the result's public bound {bound:.6g} is too large for {kind} "
                         f"(needs |value| * 2^{frac_bits} < 2^{bits}); {ADVICE}")
    return bound


def check_product(op: str, bound: float, raw_bits: int, frac_bits: int) -> float:
    """Check a product held at ``raw_bits`` fractional bits and returned at ``frac_bits``."""
    if raw_bits > frac_bits:   # truncation follows: exact only below 2^62 in the ring
        check(op, bound, raw_bits, TRUNC_BITS, f"a product before its truncation ({raw_bits} fractional bits)")
    return check(op, bound + (2.0 ** -frac_bits if raw_bits > frac_bits else 0.0), frac_bits)


def rounded(bound: float, frac_bits: int, truncated: bool) -> float:
    """A product's bound after truncation: one unit in the last place of stochastic rounding."""
    return bound + 2.0 ** -frac_bits if truncated else bound


def public_peak(value: Any, frac_bits: int | None = None) -> float:
    """``max |value|`` of a public operand (0 for an empty one).

    With ``frac_bits``, a float operand counts as it is encoded: ``0.3`` becomes
    ``round(0.3 * 2^f) / 2^f``, which may lie half a unit above it.
    """
    arr = np.asarray(value)
    if arr.dtype == np.uint64:
        arr = arr.view(np.int64)
    arr = np.abs(arr.astype(np.float64))
    if frac_bits is not None and np.asarray(value).dtype.kind == "f":
        arr = np.round(arr * 2.0**frac_bits) / 2.0**frac_bits
    return float(np.max(arr, initial=0.0))


def validate(bound: Any, frac_bits: int, what: str = "bound") -> float:
    """A declared bound as a float: positive, finite and within the range of ``frac_bits``."""
    if isinstance(bound, (bool, np.bool_)) or not isinstance(bound, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{what} must be a positive number, 'auto' or None, not {type(bound).__name__}")
    value = float(bound)
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{what} must be positive and finite")
    value = math.ceil(value * 2.0 ** frac_bits) / 2.0 ** frac_bits   # on the grid: |x| <= bound
    check(f"{what} {value:.6g}", value, frac_bits)                   # still holds once x is encoded
    return value


def power_of_two(value: float, frac_bits: int) -> float:
    """The smallest power of two ``>= value`` (at least ``2^-frac_bits``): an order of magnitude."""
    return 2.0 ** math.ceil(math.log2(value)) if value > 2.0 ** -frac_bits else 2.0 ** -frac_bits


def coarse(value: float, frac_bits: int, bits: int = 3) -> float:
    """``value`` rounded up to ``bits`` significant bits (at least ``2^-frac_bits``): within 2^(1-bits)."""
    if value <= 2.0 ** -frac_bits:
        return 2.0 ** -frac_bits
    step = 2.0 ** (math.floor(math.log2(value)) - (bits - 1))
    return math.ceil(value / step) * step


def is_coarse(value: float, bits: int = 3) -> bool:
    """Whether a positive finite ``value`` has at most ``bits`` significant bits."""
    if not (math.isfinite(value) and value > 0):
        return False
    mantissa, _ = math.frexp(value)
    return (mantissa * 2 ** bits) == int(mantissa * 2 ** bits)


def auto_bound(encoded: np.ndarray, frac_bits: int) -> float:
    """The owner's largest ``|value|`` rounded up to a power of two (reveals its order of magnitude)."""
    peak = float(np.max(np.abs(encoded.view(np.int64).astype(np.float64)), initial=0.0)) / 2.0 ** frac_bits
    return power_of_two(peak, frac_bits)


def owner_check(party_id: int, encoded: np.ndarray, frac_bits: int, bound: float,
                where: str = "") -> None:
    """The owner refuses its own input beyond the declared bound (checked locally; no value quoted).

    ``where`` names the input (call, argument, shape, tag) in the error.
    """
    if encoded.size == 0:
        return
    peak = float(np.max(np.abs(encoded.view(np.int64).astype(np.float64))))
    if peak > bound * 2.0 ** frac_bits:
        raise RangeError(f"party {party_id}'s input{where} exceeds the declared bound {bound:.6g}; "
                         "declare a larger bound (share(..., bound=...), run(..., input_bound=...)) "
                         "or scale the input down")
