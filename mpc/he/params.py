"""CKKS parameters: the 128-bit security table, named presets and their checks (layer: mpc core).

A CKKS context is fixed by the ring degree ``N`` (``poly_modulus_degree``), the
bit sizes of the primes of the coefficient modulus and the scale. Security
depends on ``N`` and the *total* number of coefficient-modulus bits: the
HomomorphicEncryption.org standard (Albrecht et al., "Homomorphic Encryption
Security Standard", 2018, Table 1, classical 128-bit, ternary secret) bounds it
as in :data:`MAX_COEFF_MODULUS_BITS`; these are the bounds SEAL enforces.

Layout of the primes (what TenSEAL expects)::

    [first, middle_1, ..., middle_L, special]

* ``first`` holds the result after the last rescale: it must exceed the scale
  by the number of integer bits the results need (|value| < 2^(first - scale - 1)).
* every ``middle`` prime is consumed by one multiplication (rescale), so the
  multiplicative depth is ``L = len(bits) - 2``; TenSEAL resets the scale to the
  initial one after each rescale, so every middle prime must have exactly
  ``scale_bits`` bits or results drift by a factor 2^(middle - scale).
* ``special`` is the key-switching prime (relinearisation, rotations); it is
  never part of a ciphertext.

Errors name the bound that is broken and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParameterError

MAX_COEFF_MODULUS_BITS: dict[int, int] = {
    1024: 27,
    2048: 54,
    4096: 109,
    8192: 218,
    16384: 438,
    32768: 881,
}
"""Maximum total coefficient-modulus bits for 128-bit classical security, by N."""

MAX_PRIME_BITS = 60
"""SEAL's largest coefficient-modulus prime."""


@dataclass(frozen=True)
class CKKSParams:
    """Encryption parameters of a CKKS context.

    Parameters
    ----------
    poly_modulus_degree:
        Ring degree N, a power of two in :data:`MAX_COEFF_MODULUS_BITS`.
        A ciphertext holds ``N // 2`` slots.
    coeff_mod_bit_sizes:
        Bit sizes of the primes ``[first, middle..., special]``.
    scale_bits:
        log2 of the encoding scale; precision is about ``scale_bits - 20`` bits
        after a few operations.
    name:
        The preset's name, or ``None`` for custom parameters.
    """

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int
    name: str | None = None

    @property
    def slots(self) -> int:
        """Values per ciphertext (N / 2)."""
        return self.poly_modulus_degree // 2

    @property
    def depth(self) -> int:
        """Multiplications (encrypted or by a plain value) a fresh ciphertext allows."""
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def total_bits(self) -> int:
        """Total coefficient-modulus bits, the quantity the security table bounds."""
        return sum(self.coeff_mod_bit_sizes)

    @property
    def max_abs_value(self) -> float:
        """Bound on |value| for every result that is decrypted: 2^(first - scale - 1).

        Beyond it the value wraps around the last modulus and decrypts to garbage.
        """
        return float(2 ** (self.coeff_mod_bit_sizes[0] - self.scale_bits - 1))

    def check(self) -> None:
        """Raise :class:`~mpc.errors.ParameterError` unless these parameters are
        128-bit secure (HomomorphicEncryption.org table) and usable by TenSEAL."""
        check_security(self.poly_modulus_degree, self.coeff_mod_bit_sizes)
        bits = self.coeff_mod_bit_sizes
        if len(bits) < 2:
            raise ParameterError(
                f"coeff_mod_bit_sizes {list(bits)} needs at least two primes: "
                "[first, special] (depth 0) or [first, middle..., special]")
        if not 0 < self.scale_bits < bits[0]:
            raise ParameterError(
                f"scale of 2^{self.scale_bits} must be below the first prime "
                f"(2^{bits[0]}); results need first - scale > 1 integer bits")
        for i, b in enumerate(bits[1:-1], start=1):
            if b != self.scale_bits:
                raise ParameterError(
                    f"middle prime {i} has {b} bits but the scale has {self.scale_bits}: "
                    "TenSEAL resets the scale after each rescale, so every middle prime "
                    "must have exactly scale_bits bits")
        if bits[-1] < max(bits[:-1]):
            raise ParameterError(
                f"the special (last) prime has {bits[-1]} bits, fewer than the largest "
                f"data prime ({max(bits[:-1])}): key switching would add too much noise")


def check_security(poly_modulus_degree: int, coeff_mod_bit_sizes: tuple[int, ...] | list[int]) -> None:
    """Refuse ``(N, primes)`` outside the HomomorphicEncryption.org 128-bit table.

    Raises
    ------
    ParameterError
        Naming the bound that is broken: the allowed ring degrees, the per-prime
        maximum of 60 bits, or the total-bits maximum for this N.
    """
    n = poly_modulus_degree
    if n not in MAX_COEFF_MODULUS_BITS:
        raise ParameterError(
            f"poly_modulus_degree N={n} is not in the HomomorphicEncryption.org 128-bit "
            f"table; use one of {sorted(MAX_COEFF_MODULUS_BITS)}")
    bits = list(coeff_mod_bit_sizes)
    for b in bits:
        if not isinstance(b, int) or not 1 <= b <= MAX_PRIME_BITS:
            raise ParameterError(
                f"coefficient-modulus prime of {b} bits: each prime must have 1..{MAX_PRIME_BITS} bits")
    total = sum(bits)
    bound = MAX_COEFF_MODULUS_BITS[n]
    if total > bound:
        bigger = [k for k, v in sorted(MAX_COEFF_MODULUS_BITS.items()) if v >= total]
        hint = f"use N={bigger[0]}" if bigger else "no ring degree allows that many bits"
        raise ParameterError(
            f"coefficient modulus of {total} bits ({bits}) exceeds the 128-bit security "
            f"bound of {bound} bits for N={n} (HomomorphicEncryption.org standard, as "
            f"enforced by SEAL); {hint} or use fewer or smaller primes")


def _preset(name: str, n: int, depth: int, scale_bits: int = 40, first: int = 60,
            special: int = 60) -> CKKSParams:
    bits = (first,) + (scale_bits,) * depth + (special,)
    return CKKSParams(n, bits, scale_bits, name)


PRESETS: dict[str, CKKSParams] = {
    # additions and plain additions only (secure aggregation of encrypted updates)
    "aggregate": CKKSParams(4096, (54, 54), 40, "aggregate"),
    # one multiplication: weighted sums, dot or matrix-vector product with plain weights
    "linear": _preset("linear", 8192, 1),
    # two multiplications: x*y*w, squares, degree-2/3 polynomials
    "quadratic": _preset("quadratic", 8192, 2),
    # four multiplications: polynomials up to degree 15 (sigmoid/ReLU approximations)
    "polynomial": _preset("polynomial", 16384, 4),
    # seven multiplications: deeper circuits, small networks
    "deep": _preset("deep", 16384, 7),
}
"""Named parameter sets, by purpose; each passes :meth:`CKKSParams.check`.

======== ====== ======================= ===== ===== =========
name     N      primes                  bits  depth slots
======== ====== ======================= ===== ===== =========
aggregate  4096 [54, 54]                  108     0  2048
linear     8192 [60, 40, 60]              160     1  4096
quadratic  8192 [60, 40, 40, 60]          200     2  4096
polynomial 16384 [60, 40 x4, 60]          280     4  8192
deep      16384 [60, 40 x7, 60]           400     7  8192
======== ====== ======================= ===== ===== =========

All use a scale of 2^40, so results must stay below 2^19 in magnitude
(2^13 for ``aggregate``): see :attr:`CKKSParams.max_abs_value`.
"""


def resolve(params: str | CKKSParams) -> CKKSParams:
    """Return checked parameters for a preset name or a :class:`CKKSParams`."""
    if isinstance(params, str):
        if params not in PRESETS:
            raise ParameterError(
                f"unknown CKKS preset {params!r}; presets: {', '.join(PRESETS)}")
        params = PRESETS[params]
    if not isinstance(params, CKKSParams):
        raise ParameterError("CKKS parameters must be a preset name or a CKKSParams")
    params.check()
    return params

