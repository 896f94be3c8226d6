"""Fixed-key AES hashing of 128-bit blocks, batched (layer: mpc core, OT and GC primitive).

Both OT extension and half-gates garbling need a hash ``H(x, i)`` of a 128-bit
block ``x`` under a 128-bit tweak ``i`` that stays secure when its inputs are
correlated by a secret offset (``x`` and ``x xor Delta``). We use the
tweakable circular-correlation-robust construction of Guo, Katz, Wang and Yu
(IEEE S&P 2020, section 7.3)::

    H(x, i) = pi(sigma(x) xor i) xor sigma(x) xor i

where ``pi`` is AES-128 under a fixed, public key and ``sigma`` the linear
orthomorphism ``sigma(x_L || x_R) = (x_L xor x_R) || x_L``. With blocks held as
two little-endian ``uint64`` words ``(w0, w1)`` (``w1`` the high half ``x_L``):
``sigma(w0, w1) = (w1, w0 xor w1)``. ``sigma`` and ``sigma(x) xor x`` are both
invertible, which is what the proof needs.

Everything is batched: a whole array of blocks goes through one AES-ECB call
(``update_into``, about 8 GB/s with AES-NI here), never a Python loop per block.
Tweaks must never repeat under one secret offset; callers put the gate or OT
index in the low word and an instance or domain number in the high word.
"""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import ParameterError

FIXED_KEY = hashlib.sha256(b"Concilium fixed-key AES for TCCR hashing, v1").digest()[:16]
"""The public AES key of ``pi``: SHA-256 of a label, truncated (nothing up our sleeve)."""

DOMAIN_OT = np.uint64(1 << 63)
"""High-word bit reserved for OT-extension tweaks (garbling uses instance numbers < 2^63)."""


class FixedKeyHash:
    """``H(x, i)`` over arrays of blocks; one object per thread (it owns an AES context).

    Blocks are ``uint64`` arrays whose last axis has length 2 (low word, high word).
    """

    __slots__ = ("_enc",)

    def __init__(self, key: bytes = FIXED_KEY) -> None:
        if len(key) != 16:
            raise ParameterError("the fixed AES key must be 16 bytes")
        self._enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()

    def permute(self, blocks: np.ndarray) -> np.ndarray:
        """``pi(blocks)``: AES-128 of each block under the fixed key, as a new array."""
        src = np.ascontiguousarray(blocks, dtype=np.uint64)
        n = src.size * 8
        buf = np.empty(n + 16, dtype=np.uint8)  # update_into wants 15 spare bytes
        if n:
            self._enc.update_into(memoryview(src.reshape(-1).view(np.uint8)), memoryview(buf[: n + 15]))  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
        return buf[:n].view(np.uint64).reshape(src.shape)

    def __call__(self, x: np.ndarray, tweak_lo: np.ndarray | int,
                 tweak_hi: np.ndarray | int = 0, work: np.ndarray | None = None) -> np.ndarray:
        """``H(x, i)`` with ``i = tweak_hi * 2^64 + tweak_lo`` (both broadcast against ``x[..., 0]``).

        ``work``, optional: a flat ``uint64`` scratch array of at least ``2 * x.size + 2``
        words, reused across calls (a loop over circuit layers then allocates nothing);
        the result is then a view into it.
        """
        if x.dtype != np.uint64 or x.shape[-1:] != (2,):
            raise ParameterError("blocks must be uint64 arrays with a last axis of 2 words")
        n = x.size
        if work is None:
            work = np.empty(2 * n + 2, np.uint64)
        elif work.dtype != np.uint64 or work.ndim != 1 or work.size < 2 * n + 2:
            raise ParameterError(f"hash scratch must be uint64[>= {2 * n + 2}]")
        y = work[:n].reshape(x.shape)
        np.bitwise_xor(x[..., 1], np.uint64(tweak_lo) if isinstance(tweak_lo, (int, np.integer)) else tweak_lo,
                       out=y[..., 0])                       # sigma low word = x1, then xor i
        np.bitwise_xor(x[..., 0], x[..., 1], out=y[..., 1])  # sigma high word = x0 xor x1
        if not (isinstance(tweak_hi, (int, np.integer)) and int(tweak_hi) == 0):
            y[..., 1] ^= np.uint64(tweak_hi) if isinstance(tweak_hi, (int, np.integer)) else tweak_hi
        buf = work[n:]   # n words for pi(y), then >= 15 spare bytes that update_into wants
        if n:
            self._enc.update_into(memoryview(y.reshape(-1).view(np.uint8)),  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
                                  memoryview(buf.view(np.uint8)[: 8 * n + 15]))  # type: ignore[arg-type]
        out = buf[:n].reshape(x.shape)
        out ^= y
        return out


def blocks_from_bytes(data: np.ndarray) -> np.ndarray:
    """View ``uint8[..., 16]`` labels as ``uint64[..., 2]`` blocks (copying if needed)."""
    arr = np.ascontiguousarray(data, dtype=np.uint8)
    if arr.shape[-1:] != (16,):
        raise ParameterError("labels must have a last axis of 16 bytes")
    return arr.view(np.uint64)


def blocks_to_bytes(blocks: np.ndarray) -> np.ndarray:
    """View ``uint64[..., 2]`` blocks as ``uint8[..., 16]`` labels."""
    return np.ascontiguousarray(blocks, dtype=np.uint64).view(np.uint8)
