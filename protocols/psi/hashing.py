"""DH-PSI, the pure part: items to canonical encodings, hashing to Curve25519 (RFC 9380, Elligator 2) (layer: protocols)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from typing import Any

import gmpy2
import numpy as np

from mpc.errors import ParameterError

FIELD_PRIME = 2**255 - 19
MONTGOMERY_A = 486662
ELLIGATOR_Z = 2
POINT_BYTES = 32
TAG_BYTES = 16
"""Bytes of each doubly blinded value R receives: false matches have
probability at most n_R·n_S·2^-128."""
DEFAULT_DST = b"CONCILIUM-V01-PSI-with-curve25519_XMD:SHA-512_ELL2_NU_"

_P = gmpy2.mpz(FIELD_PRIME)
_A = gmpy2.mpz(MONTGOMERY_A)
_XMD_LEN = 48  # L = ceil((ceil(log2 p) + k) / 8) with k = 128 (RFC 9380 §5)
_KIND_EMPTY, _KIND_INT, _KIND_STR, _KIND_BYTES = 0, 1, 2, 3
_KIND_NAMES = {_KIND_INT: "integers", _KIND_STR: "strings", _KIND_BYTES: "bytes"}


# -- items ------------------------------------------------------------------------
def canonical_items(items: Any) -> tuple[int, Any, list[bytes]]:
    """Deduplicate and sort ``items``; return (kind, values, encodings).

    ``items`` is a 1-D integer array or a sequence of ints (int64 range), of
    str, or of bytes. ``values`` is a sorted int64 array (integers) or a
    sorted list; ``encodings`` are the byte strings that are hashed, prefixed
    by the kind so that ``5``, ``"5"`` and ``b"5"`` never collide. Strings
    match code point for code point (UTF-8): normalise them first (e.g.
    ``unicodedata.normalize("NFC", s)``) if the parties may spell them
    differently.
    """
    if isinstance(items, (str, bytes)):
        raise ParameterError("items must be a collection of items, not one str or bytes")
    if isinstance(items, np.ndarray):
        if items.ndim != 1:
            raise ParameterError(f"items must be a 1-D array, got shape {items.shape}")
        if items.size == 0:
            return _KIND_EMPTY, np.empty(0, dtype=np.int64), []
        if not np.issubdtype(items.dtype, np.integer):
            raise ParameterError(f"item arrays must hold integers, not {items.dtype}")
        if items.dtype == np.uint64 and int(items.max()) > np.iinfo(np.int64).max:
            raise ParameterError("integer items must fit in int64")
        values = np.unique(items.astype(np.int64))
        return _KIND_INT, values, _encode_ints(values)
    try:
        seq = list(items)
    except TypeError:
        raise ParameterError(f"items must be an array or a sequence, not {type(items).__name__}") from None
    if not seq:
        return _KIND_EMPTY, np.empty(0, dtype=np.int64), []
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in seq):
        if any(not -(2**63) <= int(v) < 2**63 for v in seq):
            raise ParameterError("integer items must fit in int64")
        values = np.unique(np.array([int(v) for v in seq], dtype=np.int64))
        return _KIND_INT, values, _encode_ints(values)
    if all(isinstance(v, str) for v in seq):
        texts = sorted(set(seq))
        try:
            return _KIND_STR, texts, [b"\x02" + v.encode("utf-8") for v in texts]
        except UnicodeEncodeError as exc:   # a lone surrogate
            raise ParameterError(f"a str item is not valid Unicode text: {exc.reason}") from None
    if all(isinstance(v, (bytes, bytearray, memoryview)) for v in seq):
        blobs = sorted({bytes(v) for v in seq})
        return _KIND_BYTES, blobs, [b"\x03" + v for v in blobs]
    raise ParameterError("items must all be integers, all str or all bytes")


def _encode_ints(values: np.ndarray) -> list[bytes]:
    raw = values.astype("<i8").tobytes()
    return [b"\x01" + raw[k:k + 8] for k in range(0, len(raw), 8)]


# -- hashing to the curve (pure) -----------------------------------------------------
def hash_to_field(messages: Sequence[bytes], dst: bytes = DEFAULT_DST) -> list[int]:
    """RFC 9380 ``hash_to_field`` with ``expand_message_xmd``/SHA-512, one element each."""
    if not 0 < len(dst) <= 255:
        raise ParameterError("the domain separation tag must have 1 to 255 bytes")
    dst_prime = dst + bytes([len(dst)])
    head = hashlib.sha512(bytes(128))                # Z_pad
    tail = _XMD_LEN.to_bytes(2, "big") + b"\x00" + dst_prime
    one = b"\x01" + dst_prime
    out = []
    for msg in messages:
        h = head.copy()
        h.update(msg)
        h.update(tail)
        b1 = hashlib.sha512(h.digest() + one).digest()   # b_1; 64 >= L bytes
        out.append(gmpy2.mpz.from_bytes(b1[:_XMD_LEN], "big") % _P)
    return out


def map_to_curve(us: Sequence[int]) -> list[int]:
    """Elligator 2 onto Curve25519 (RFC 9380 §6.7.1, Z = 2), u-coordinates only.

    One field inversion for the whole batch (Montgomery's trick) and one
    Legendre symbol per element.
    """
    tv = [(ELLIGATOR_Z * u * u) % _P for u in us]
    den = [gmpy2.mpz(1) if t == _P - 1 else t + 1 for t in tv]  # 1 + Z·u², or 1 when it is 0
    prefix = []
    acc = gmpy2.mpz(1)
    for d in den:
        prefix.append(acc)
        acc = acc * d % _P
    inv = gmpy2.invert(acc, _P) if den else acc
    xs = [gmpy2.mpz(0)] * len(den)
    for k in range(len(den) - 1, -1, -1):
        x1 = (-_A * inv * prefix[k]) % _P        # -A / (1 + Z·u²)
        inv = inv * den[k] % _P
        gx1 = (x1 * (x1 * (x1 + _A) + 1)) % _P
        xs[k] = x1 if gmpy2.legendre(gx1, _P) >= 0 else (-x1 - _A) % _P
    return [int(x) for x in xs]


def _points(xs: Sequence[int]) -> bytes:
    return b"".join(x.to_bytes(POINT_BYTES, "little") for x in xs)


def _hash_to_points(messages: Sequence[bytes], dst: bytes) -> bytes:
    """``map_to_curve(hash_to_field(messages))`` as 32-byte u-coordinates, joined.

    The same map as the two public functions, fused into one pass: the
    square test needs no inversion, since ``g(x1)`` with ``x1 = -A/d`` is
    ``-A·(d² - A²·(d - 1))/d³``, whose Legendre symbol is that of
    ``-A·d·(d² - A²·(d - 1))`` (times the square ``d⁴``), i.e. the fixed
    symbol of ``-A`` times that of ``d·(d² - A²·(d - 1))``; one inversion by
    Montgomery's trick then gives every ``1/d``.
    """
    if not 0 < len(dst) <= 255:
        raise ParameterError("the domain separation tag must have 1 to 255 bytes")
    if not messages:
        return b""
    dst_prime = dst + bytes([len(dst)])
    head = hashlib.sha512(bytes(128))                # Z_pad
    tail = _XMD_LEN.to_bytes(2, "big") + b"\x00" + dst_prime
    one = b"\x01" + dst_prime
    sha512, from_bytes, jacobi = hashlib.sha512, gmpy2.mpz.from_bytes, gmpy2.jacobi
    p, a, unit, copy = _P, _A, gmpy2.mpz(1), head.copy
    a2 = a * a
    nonsquare = -jacobi(-a % p, p)          # (-A·y | p) = (-A | p)·(y | p)
    dens, flips = [], []
    for msg in messages:
        h = copy()
        h.update(msg + tail)
        u = from_bytes(sha512(h.digest() + one).digest()[:_XMD_LEN], "big") % p
        t = 2 * u * u % p                             # Z·u²
        d = t + 1                                     # 1 + Z·u², or 1 when it is 0
        if d == p:
            d, t = unit, 0
        dens.append(d)
        # g(x1)·d⁴ = -A·d·(d² - A²·(d - 1)) with d - 1 = t: is it a square?
        flips.append(jacobi(d * (d * d - a2 * t) % p, p) == nonsquare)
    prefix = list(itertools.accumulate(dens, lambda x, y: x * y % p, initial=unit))
    inv = gmpy2.invert(prefix.pop(), p)
    out = []
    for d, pre, flip in zip(reversed(dens), reversed(prefix), reversed(flips)):
        i = inv * pre % p                             # 1/d
        inv = inv * d % p
        x = (a * i - a) % p if flip else (-a * i) % p   # x2 = -x1 - A, else x1 = -A/d
        out.append(x.to_bytes(POINT_BYTES, "little"))
    out.reverse()
    return b"".join(out)


def hash_to_group(items: Any, dst: bytes = DEFAULT_DST) -> np.ndarray:
    """Points ``H(item)`` (uint8 array ``(n, 32)``) of the distinct items, sorted.

    Same order as ``canonical_items(items)[1]``.
    """
    _, _, enc = canonical_items(items)
    return _as_array(_hash_to_points(enc, dst))


def _as_array(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, POINT_BYTES).copy()
