"""Bit-matrix transpose for OT extension, vectorised over 64x64 bit blocks (layer: mpc core).

IKNP works on a 128 x m bit matrix by columns (one PRG stream per base OT)
and uses it by rows (one 128-bit block per OT). :func:`transpose_bits` turns
``uint8[rows, ceil(m/8)]`` (bit k of byte b of row j = column 8b+k, little-endian
as ``np.packbits(..., bitorder="little")``) into ``uint8[m, rows/8]`` (bit l of
byte g of row i = column 8g+l of the input, i.e. row i of the transposed matrix).

The rows are viewed as ``uint64`` words; each 64x64 block of words is
transposed in place by six delta swaps (Hacker's Delight, 7-3) applied to all
blocks at once, in column chunks that stay in cache. A million OTs cost about
40 ms here.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

_SWAPS = tuple((np.uint64(j), j, np.uint64(m)) for j, m in (
    (32, 0x00000000FFFFFFFF), (16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF),
    (4, 0x0F0F0F0F0F0F0F0F), (2, 0x3333333333333333), (1, 0x5555555555555555)))
_CHUNK = 2048  # 64-bit column words per batch: 2 x 64 x 2048 x 8 bytes = 2 MiB


def transpose64(x: np.ndarray) -> np.ndarray:
    """Transpose, in place, the 64x64 bit blocks ``x[g, :, w]`` of a ``uint64[G, 64, W]`` array.

    Word ``r`` bit ``k`` of a block becomes word ``k`` bit ``r``.
    """
    if x.dtype != np.uint64 or x.ndim != 3 or x.shape[1] != 64 or not x.flags.c_contiguous:
        raise ParameterError("transpose64 needs a C-contiguous uint64[G, 64, W] array")
    g, _, w = x.shape
    tmp = np.empty((g, 32, w), np.uint64)
    for shift, j, mask in _SWAPS:
        pairs = x.reshape(g, 32 // j, 2, j, w)
        lo, hi = pairs[:, :, 0], pairs[:, :, 1]
        t = tmp.reshape(g, 32 // j, j, w)
        np.right_shift(lo, shift, out=t)
        t ^= hi
        t &= mask
        hi ^= t
        t <<= shift
        lo ^= t
    return x


def transpose_bits(mat: np.ndarray, m: int) -> np.ndarray:
    """Transpose a ``uint8[rows, ceil(m/8)]`` bit matrix (rows a multiple of 64) to ``uint8[m, rows/8]``."""
    mat = np.asarray(mat)
    if mat.ndim != 2 or mat.dtype != np.uint8:
        raise ParameterError("transpose_bits needs a 2-D uint8 bit matrix")
    rows, nbytes = mat.shape
    if rows % 64 or rows == 0 or nbytes != (m + 7) // 8:
        raise ParameterError(f"transpose_bits needs uint8[64k, ceil(m/8)], got {mat.shape} for m={m}")
    nw = (nbytes + 7) // 8
    if nbytes % 8:
        padded = np.zeros((rows, nw * 8), np.uint8)
        padded[:, :nbytes] = mat
        mat = padded
    words = np.ascontiguousarray(mat).view(np.uint64).reshape(rows // 64, 64, nw)
    out = np.empty((nw, 64, rows // 64), np.uint64)
    for s in range(0, nw, _CHUNK):
        block = words[:, :, s:s + _CHUNK].copy()  # never transpose the caller's array in place
        transpose64(block)
        out[s:s + _CHUNK] = block.transpose(2, 1, 0)  # out[w, k, g] = row 64w+k, word g
    return out.reshape(nw * 64, rows // 64)[:m].view(np.uint8)
