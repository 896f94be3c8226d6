"""DH-PSI, the pure part: X25519 blinding of points with libsodium over a thread pool (layer: protocols)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nacl.bindings  # noqa: F401  (runs sodium_init, which picks the fastest X25519 code)
import numpy as np
from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from mpc.errors import ParameterError, ProtocolError

from .hashing import DEFAULT_DST, POINT_BYTES, _as_array, _hash_to_points


def generate_key() -> bytes:
    """A fresh secret blinding scalar: 32 bytes from the OS CSPRNG (X25519 clamps it)."""
    return os.urandom(POINT_BYTES)


def _mult_into(points: Any, scalar: Any, out: Any, start: int) -> int:
    """``scalar·P`` for each 32-byte point of ``points`` into ``out`` from point ``start``.

    Calls libsodium's ``crypto_scalarmult`` on pointers into the two buffers
    (no per-point Python objects); cffi releases the GIL during each call.
    Returns nonzero if some result was the identity (libsodium returns -1:
    the point had small order).
    """
    src = _ffi.from_buffer("unsigned char[]", points)
    mult, bad, base = _lib.crypto_scalarmult, 0, start * POINT_BYTES
    for off in range(0, len(src), POINT_BYTES):
        bad |= mult(out + (base + off), scalar, src + off)
    return bad


_SMALL_ORDER = ("a point of small order was received: the peer is not following the protocol")


def _mult_many(raw: bytes, key: bytes, workers: int) -> bytes:
    """X25519 ``key·P`` for each 32-byte point of ``raw``, over ``workers`` threads."""
    n = len(raw) // POINT_BYTES
    out = bytearray(len(raw))
    if n == 0:
        return b""
    dst = _ffi.from_buffer("unsigned char[]", out, require_writable=True)
    scalar = _ffi.new("unsigned char[]", key)
    view = memoryview(raw)
    spans = _chunks(n, workers)
    if workers == 1 or len(spans) <= 1:
        bad = _mult_into(raw, scalar, dst, 0)
    else:
        with ThreadPoolExecutor(workers) as pool:
            jobs = [pool.submit(_mult_into, view[s * POINT_BYTES:e * POINT_BYTES], scalar, dst, s)
                    for s, e in spans]
            bad = any([job.result() for job in jobs])
    if bad:
        raise ProtocolError(_SMALL_ORDER)
    return bytes(out)


def _hash_mult_many(encodings: list[bytes], key: bytes, workers: int, dst: bytes) -> bytes:
    """``key·H(m)`` for each ``m``: this thread hashes chunk after chunk while
    ``workers`` threads multiply the chunks already hashed."""
    n = len(encodings)
    if workers == 1 or n < 2:
        return _mult_many(_hash_to_points(encodings, dst), key, workers)
    out = bytearray(n * POINT_BYTES)
    target = _ffi.from_buffer("unsigned char[]", out, require_writable=True)
    scalar = _ffi.new("unsigned char[]", key)
    with ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(_mult_into, _hash_to_points(encodings[s:e], dst), scalar, target, s)
                for s, e in _chunks(n, 2 * workers)]
        bad = any([job.result() for job in jobs])
    if bad:
        raise ProtocolError(_SMALL_ORDER)
    return bytes(out)


def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    parts = max(1, min(n, 4 * workers))   # a few chunks per worker balance the load
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [(int(s), int(e)) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]


def _check_workers(workers: int | None) -> int:
    if workers is None:
        return os.cpu_count() or 1
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ParameterError(f"workers must be a positive integer, got {workers!r}")
    return int(workers)


def blind(points: np.ndarray, key: bytes, workers: int | None = 1) -> np.ndarray:
    """X25519 ``key·P`` for every row of ``points`` (uint8 ``(n, 32)``).

    ``workers`` threads share the rows (libsodium releases the GIL);
    ``None`` uses every core.
    """
    if not isinstance(key, bytes) or len(key) != POINT_BYTES:
        raise ParameterError("the key must be 32 bytes")
    points = np.asarray(points)
    if points.dtype != np.uint8 or points.ndim != 2 or points.shape[1] != POINT_BYTES:
        raise ParameterError(f"points must be a uint8 array of shape (n, 32), got "
                             f"{points.dtype} {points.shape}")
    raw = np.ascontiguousarray(points).tobytes()
    return _as_array(_mult_many(raw, key, _check_workers(workers)))


def hash_and_blind(encodings: list[bytes], key: bytes, workers: int | None = 1,
                   dst: bytes = DEFAULT_DST) -> np.ndarray:
    """``key·H(m)`` for each encoded item ``m``; the multiplications use ``workers`` threads."""
    return _as_array(_hash_mult_many(encodings, key, _check_workers(workers), dst))
