"""Products of a shared tensor with public factors: the factor's encoding precision, the bound, the truncation (layer: mpc core).

A public factor costs no Beaver triple, but a real one must be encoded in
fixed point first, and its precision decides the error: ``x * 0.001`` encoded
with ``f`` fractional bits would lose most of its digits. Here

* integer-valued factors are exact (no truncation, no round);
* an elementwise real factor is encoded element by element with as many
  extra bits as the bound of ``x`` leaves room for (:func:`scaled`), then
  truncated back in one round (:func:`~mpc.sharing.truncation.truncate_each`);
* a real matrix factor of ``@`` gets one precision for the whole matrix
  (:func:`public_precision`), since ``@`` sums across its elements.

Every result's public bound grows by the factor's gain
(:func:`~mpc.sharing.public._public_gain`) and is checked before computing.
Called by :class:`~mpc.sharing.tensor.SharedTensor`'s ``*`` and ``@``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..arith.ring import ring_matmul
from ..errors import ParameterError
from ..preprocessing.base import matmul_shape
from . import bounds
from .public import _is_integer_like, _public_gain
from .truncation import truncate_each

if TYPE_CHECKING:
    from .tensor import SharedTensor


def times_public(x: SharedTensor, other: Any, op: str) -> SharedTensor:
    """``x * other`` (``op == "mul"``) or ``x @ other`` (``"matmul"``) for a public ``other``."""
    name = "*" if op == "mul" else "@"
    fn = np.multiply if op == "mul" else ring_matmul
    arr = np.asarray(other)
    if _is_integer_like(other) or (
            arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
            and np.all(np.abs(arr) < 2.0**63)):     # integer-valued reals: exact, no truncation
        enc = x._encode_public(arr.astype(np.int64) if arr.dtype.kind == "f" else other, 0)
        bound = bounds.up(x.bound * _public_gain(enc.view(np.int64) if enc.dtype == np.uint64
                                                 else enc, op, left=False))
        bounds.check(name, bound, x.frac_bits)
        return x._new(fn(x.share, enc), bound=bound)
    if op == "matmul":
        g = public_precision(x.party.fixed.frac_bits, other)
        enc = x._encode_public(other, g)
        raw = x.frac_bits + g
        bound = bounds.up(x.bound * _public_gain(enc.view(np.int64) / 2.0**g, op, left=False))
        bounds.check_product(name, bound, raw, min(raw, x.party.fixed.frac_bits))
        return x._rescale(fn(x.share, enc), raw, bound)
    return scaled(x, np.asarray(other, dtype=np.float64), name)


def public_times(other: np.ndarray, x: SharedTensor) -> SharedTensor:
    """``other @ x`` for a public matrix ``other`` (one precision, ``f`` bits, for reals)."""
    matmul_shape(other.shape, x.shape)
    if _is_integer_like(other) or (x.frac_bits == 0 and np.all(other == np.round(other))):
        enc = x._encode_public(other, 0)
        bound = bounds.up(x.bound * _public_gain(enc.view(np.int64), "matmul", left=True))
        bounds.check("@", bound, x.frac_bits)
        return x._new(ring_matmul(enc, x.share), bound=bound)
    f = x.party.fixed.frac_bits
    enc = x._encode_public(other, f)
    raw = x.frac_bits + f
    bound = bounds.up(x.bound * _public_gain(enc.view(np.int64) / 2.0**f, "matmul", left=True))
    bounds.check_product("@", bound, raw, min(raw, f))
    return x._rescale(ring_matmul(enc, x.share), raw, bound)


def scaled(x: SharedTensor, c: np.ndarray, name: str) -> SharedTensor:
    """``x * c`` for a public real array, each element encoded with its own precision.

    Each element ``c_i`` is encoded with ``f + e_i`` fractional bits, ``e_i``
    as large as the bound of ``x`` leaves room for before truncation
    (``bound * |c_i| * 2^(f_x + f + e_i) < 2^61``; at most ``60 - f_x``).
    An element with ``|c_i| > 2^-(e+1)`` then keeps relative error below
    ``2^-f`` (``1/400`` or ``1e-4`` as well as ``0.75``); the products are
    truncated back to ``f`` bits by ``f_x + e_i``, element by element, in
    one round (:func:`~mpc.sharing.truncation.truncate_each`).
    """
    f = x.party.fixed.frac_bits
    if not np.all(np.isfinite(c)):
        raise ParameterError("cannot multiply by NaN or infinity")
    # a nonzero x is at least one unit 2^-f_x: that floor keeps c_i * 2^(f + e_i) within the ring
    reach = max(x.bound, 2.0 ** -x.frac_bits) * np.abs(c)
    room = np.floor(bounds.TRUNC_BITS - 1 - x.frac_bits - f - np.log2(np.where(reach > 0, reach, 1.0)))
    extra = np.where(reach > 0, np.clip(room, 0, max(0, 60 - x.frac_bits)), 0).astype(np.int64)
    g = f + extra
    enc_f = np.rint(c * np.exp2(g))
    if np.any(np.abs(enc_f) >= 2.0**63):
        raise bounds.RangeError(f"{name}: a public factor does not fit the ring at {f} fractional bits; "
                                f"{bounds.ADVICE}")
    enc = enc_f.astype(np.int64)
    target = f       # g >= f: the product has at least f fractional bits
    peak = bounds.public_peak(enc_f / np.exp2(g))
    for gi in np.unique(g):                    # each precision group must fit before truncation
        sel = g == gi
        group = bounds.up(x.bound * bounds.public_peak(enc_f[sel] / 2.0**gi))
        bounds.check_product(name, group, x.frac_bits + int(gi), target)
    bound = bounds.up(x.bound * peak)
    z = x.share * enc.view(np.uint64)
    shifts = x.frac_bits + g - target
    out = truncate_each(x.party, z, shifts) if np.any(shifts) else z
    return x._new(out, target, bounds.rounded(bound, target, bool(np.any(shifts))))


def public_precision(frac_bits: int, value: Any) -> int:
    """Fractional bits for a public real matrix factor: f, plus e for factors below 1.

    A factor with ``max|c|`` in ``[2^-(e+1), 2^-e)`` is encoded with ``f + e``
    bits (one precision for the whole matrix, since ``@`` sums across
    elements); elementwise products choose it per element (:func:`scaled`).
    """
    peak = float(np.max(np.abs(np.asarray(value, dtype=np.float64)), initial=0.0))
    if not 0.0 < peak < 1.0 or not np.isfinite(peak):
        return frac_bits
    e = int(np.floor(-np.log2(peak)))
    return frac_bits + max(0, min(e, 62 - 3 * frac_bits))
