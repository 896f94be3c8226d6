"""Randomness for secrets: OS CSPRNG seeds and a fast AES-CTR PRG (layer: mpc core).

Every secret random value in Concilium (shares, masks, keys, labels) comes from
here: either directly from the operating system's CSPRNG (:func:`random_seed`)
or from :class:`PRG`, AES-128 in counter mode keyed by a 128-bit seed drawn from
it. ``random`` and ``numpy.random`` are banned in the packages (ruff S311,
NPY002, TID251); they are for simulated data in tests and examples only.

The PRG's output for a (seed, nonce) pair is fixed forever: parties that share a
seed derive identical arrays, which is how the dealer and the share owner send
16 bytes instead of whole arrays. ``tests/mpc/test_rand.py`` pins known outputs.
"""

from __future__ import annotations

import hashlib
import os
import struct

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import ParameterError

SEED_BYTES = 16
"""Length of a PRG seed: 128 bits, the AES-128 key."""

_BLOCK = 1 << 22  # bytes encrypted per call when filling large arrays
_ZEROS = bytes(_BLOCK + 16)


def _zeros(n: int) -> memoryview:
    return memoryview(_ZEROS)[:n]


def random_seed(nbytes: int = SEED_BYTES) -> bytes:
    """Return ``nbytes`` fresh bytes from the OS CSPRNG."""
    if nbytes < SEED_BYTES:
        raise ParameterError(f"a seed needs at least {SEED_BYTES} bytes, got {nbytes}")
    return os.urandom(nbytes)


def derive_seed(seed: bytes, label: str | bytes, index: int = 0) -> bytes:
    """Derive an independent 128-bit seed from ``seed`` for ``(label, index)``.

    SHAKE-128 of the seed, label and index, used as a PRF: distinct labels and
    indices give computationally independent seeds.
    """
    if isinstance(label, str):
        label = label.encode()
    h = hashlib.shake_128()
    h.update(struct.pack("<I", len(seed)) + seed)
    h.update(struct.pack("<I", len(label)) + label)
    h.update(struct.pack("<Q", index))
    return h.digest(SEED_BYTES)


class PRG:
    """AES-128-CTR pseudorandom generator over a 128-bit seed.

    ``PRG(seed, nonce)`` is a deterministic stream; successive calls continue
    it. Throughput on the reference 2-core machine is about 1 GB/s.

    Parameters
    ----------
    seed:
        16 bytes (at least 128 bits of entropy, e.g. from :func:`random_seed`).
    nonce:
        Selects one of 2^64 independent streams under the same seed.
    """

    __slots__ = ("_enc",)

    def __init__(self, seed: bytes, nonce: int = 0) -> None:
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_BYTES:
            raise ParameterError(f"PRG seed must be {SEED_BYTES} bytes")
        if not 0 <= nonce < 1 << 64:
            raise ParameterError("PRG nonce must be in [0, 2^64)")
        iv = struct.pack(">QQ", nonce, 0)
        self._enc = Cipher(algorithms.AES(bytes(seed)), modes.CTR(iv)).encryptor()

    @classmethod
    def fresh(cls) -> "PRG":
        """A PRG keyed by a fresh OS-random seed."""
        return cls(random_seed())

    def bytes(self, n: int) -> bytes:
        """The next ``n`` bytes of the stream."""
        if n < 0:
            raise ParameterError("byte count must be non-negative")
        return self._enc.update(bytes(n))

    def fill(self, out: np.ndarray) -> np.ndarray:
        """Overwrite the C-contiguous array ``out`` with stream bytes; return it."""
        if not out.flags.c_contiguous:
            raise ParameterError("PRG.fill needs a C-contiguous array")
        buf = out.reshape(-1).view(np.uint8)
        n = buf.size
        dst = memoryview(buf)  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
        # update_into needs 15 spare bytes after each chunk it writes.
        pos = 0
        while n - pos >= _BLOCK + 15:
            self._enc.update_into(_zeros(_BLOCK), dst[pos:pos + _BLOCK + 15])
            pos += _BLOCK
        if pos < n:
            tail = self._enc.update(_zeros(n - pos))
            buf[pos:] = np.frombuffer(tail, np.uint8)
        return out

    def uint64(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Uniform array over Z_2^64 of the given shape."""
        n = int(np.prod(shape, dtype=np.int64))
        raw = np.empty(n * 8 + 16, dtype=np.uint8)
        dst = memoryview(raw)  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
        pos = 0
        while pos < n * 8:
            step = min(_BLOCK, n * 8 - pos)
            self._enc.update_into(_zeros(step), dst[pos:pos + step + 15])
            pos += step
        return raw[: n * 8].view(np.uint64).reshape(shape)

    def bits(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Uniform array of 0/1 as ``uint8``."""
        n = int(np.prod(shape, dtype=np.int64))
        raw = np.frombuffer(self.bytes((n + 7) // 8), dtype=np.uint8)
        return np.unpackbits(raw, count=n, bitorder="little").reshape(shape)

    def integers_below(self, bound: int, shape: int | tuple[int, ...]) -> np.ndarray:
        """Uniform integers in ``[0, bound)`` as uint64, by rejection sampling."""
        if not 0 < bound <= 1 << 64:
            raise ParameterError("bound must be in (0, 2^64]")
        n = int(np.prod(shape, dtype=np.int64))
        if bound == 1 << 64:
            return self.uint64(shape)
        bits = (bound - 1).bit_length()
        mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
        out = np.empty(0, dtype=np.uint64)
        while out.size < n:
            need = max(2 * (n - out.size), 64)
            cand = self.uint64(need) & mask
            out = np.concatenate([out, cand[cand < np.uint64(bound)]])
        return out[:n].reshape(shape)
