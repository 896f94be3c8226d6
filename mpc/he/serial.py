"""The byte format of homomorphic-encryption keys, contexts and ciphertexts (layer: mpc core).

Every object of :mod:`mpc.he` serializes to one *envelope*::

    offset   size  field
    0        4     magic b"CNHE"
    4        1     format version (2; version 1 is still read)
    5        1     kind (see :class:`Kind`)
    6        4     H, header length, unsigned big-endian
    10       H     header: a UTF-8 JSON object with sorted keys (no code, no pickle)
    10+H     8     B, body length, unsigned big-endian
    18+H     B     body: raw bytes, layout given by the kind
    18+H+B   16    digest of every byte before it: the first 16 bytes of
                   SHA-256(b"concilium-he" || bytes) (version 1: BLAKE2b-128 with
                   person b"concilium-he")

To send one through a :class:`~mpc.party.Party`, wrap the bytes as
``np.frombuffer(blob, np.uint8)``; every ``load`` accepts that array back.

Loading checks, in order: the length (:class:`~mpc.errors.EncodingError` if too
short), the digest (:class:`~mpc.errors.IntegrityError`, deliberately opaque: a
flipped or missing byte anywhere), then magic, version, kind and lengths
(:class:`~mpc.errors.EncodingError` naming what was expected and found).

The digest detects corruption, not forgery: anyone can recompute it. Authenticity
comes from the channel (the TLS transport) or a signature over the envelope.
Version 2 moved from BLAKE2b to SHA-256 only for speed (SHA-256 runs on the
CPU's SHA extensions, about 4x BLAKE2b here, which was a third of a CKKS
ciphertext's serialization time); the check is the same 128-bit digest.
:func:`dump` hashes the pieces as they are and joins them once, so a
ciphertext's bytes are copied once into the envelope.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct
from typing import Any

import numpy as np

from ..errors import EncodingError, IntegrityError

MAGIC = b"CNHE"
VERSION = 2
_VERSIONS = (1, 2)
DIGEST_BYTES = 16
MAX_HEADER = 1 << 16
_PERSON = b"concilium-he"
_FIXED = 4 + 1 + 1 + 4 + 8 + DIGEST_BYTES


class Kind(enum.IntEnum):
    """What an envelope holds."""

    CKKS_PUBLIC_CONTEXT = 1
    CKKS_SECRET_CONTEXT = 2
    CKKS_VECTOR = 3
    PAILLIER_PUBLIC_KEY = 16
    PAILLIER_SECRET_KEY = 17
    PAILLIER_CIPHERTEXTS = 18
    PAILLIER_PACKED = 19


def _hasher(version: int):
    """The digest of format ``version`` (any byte but 1 selects the current one)."""
    if version == 1:
        return hashlib.blake2b(digest_size=DIGEST_BYTES, person=_PERSON)
    return hashlib.sha256(_PERSON)


def _digest(data: bytes | memoryview, version: int = VERSION) -> bytes:
    h = _hasher(version)
    h.update(data)
    return h.digest()[:DIGEST_BYTES]


def fingerprint(*parts: bytes) -> str:
    """A short hex identifier of public material (a key, a context's parameters)."""
    h = hashlib.blake2b(digest_size=8, person=b"concilium-fp")
    for p in parts:
        h.update(struct.pack(">Q", len(p)))
        h.update(p)
    return h.hexdigest()


def dump(kind: Kind, header: dict[str, Any], body: bytes | list[bytes]) -> bytes:
    """Build an envelope. ``body`` is the body's bytes, or a list of parts that
    becomes the body of :func:`join_parts` without building it first."""
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER:
        raise EncodingError(f"header of {len(head)} bytes exceeds {MAX_HEADER}")
    if isinstance(body, list):
        pieces = _framed(body)
        size = sum(len(p) for p in pieces)
    else:
        pieces, size = [body], len(body)
    parts = [MAGIC + struct.pack(">BBI", VERSION, int(kind), len(head)) + head
             + struct.pack(">Q", size), *pieces]
    h = _hasher(VERSION)
    for part in parts:
        h.update(part)
    parts.append(h.digest()[:DIGEST_BYTES])
    return b"".join(parts)   # the one copy of the body


def load(data: bytes, kind: Kind, max_body: int | None = None) -> tuple[dict[str, Any], memoryview]:
    """Check an envelope of the expected ``kind``; return (header, body).

    Raises
    ------
    EncodingError
        Not an envelope, wrong kind or version, inconsistent lengths, body over
        ``max_body`` bytes.
    IntegrityError
        The digest does not match: the bytes were corrupted or truncated.
    """
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        # as received from a Party (messages are numpy arrays): read in place
        data = data if data.flags.c_contiguous else np.ascontiguousarray(data)
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError(f"expected bytes for a {kind.name}, got {type(data).__name__}")
    view = memoryview(data).cast("B")
    if len(view) < _FIXED:
        raise EncodingError(f"{len(view)} bytes is too short for a serialized {kind.name}")
    # the version byte picks the digest; a corrupted one fails the digest all the same
    if _digest(view[:-DIGEST_BYTES], view[4]) != bytes(view[-DIGEST_BYTES:]):
        raise IntegrityError(f"serialized {kind.name}: digest mismatch (corrupted or truncated)")
    if bytes(view[:4]) != MAGIC:
        raise EncodingError("not a Concilium HE object (bad magic)")
    version, found, hlen = struct.unpack(">BBI", view[4:10])
    if version not in _VERSIONS:
        raise EncodingError(f"format version {version} is not supported (expected {VERSION})")
    if found != kind:
        name = Kind(found).name if found in Kind._value2member_map_ else f"kind {found}"
        raise EncodingError(f"expected a serialized {kind.name}, found {name}")
    if hlen > MAX_HEADER or 10 + hlen + 8 > len(view) - DIGEST_BYTES:
        raise EncodingError(f"serialized {kind.name}: header length {hlen} out of range")
    try:
        header = json.loads(bytes(view[10:10 + hlen]).decode())
    except (ValueError, RecursionError) as exc:   # bad UTF-8/JSON, over-long ints, deep nesting
        raise EncodingError(f"serialized {kind.name}: unreadable header") from exc
    if not isinstance(header, dict):
        raise EncodingError(f"serialized {kind.name}: header is not an object")
    (blen,) = struct.unpack(">Q", view[10 + hlen:18 + hlen])
    if 18 + hlen + blen + DIGEST_BYTES != len(view):
        raise EncodingError(f"serialized {kind.name}: body length {blen} does not match the data")
    if max_body is not None and blen > max_body:
        raise EncodingError(f"serialized {kind.name}: body of {blen} bytes exceeds {max_body}")
    return header, view[18 + hlen:18 + hlen + blen]


def _framed(parts: list[bytes]) -> list[bytes]:
    """``parts`` interleaved with their u64 big-endian lengths (nothing copied)."""
    out: list[bytes] = []
    for p in parts:
        out += (struct.pack(">Q", len(p)), p)
    return out


def join_parts(parts: list[bytes]) -> bytes:
    """Concatenate byte strings, each prefixed by its u64 big-endian length."""
    return b"".join(_framed(parts))


def split_parts(body: memoryview, count: int, what: str) -> list[bytes]:
    """Inverse of :func:`join_parts`; exactly ``count`` parts filling the body."""
    out: list[bytes] = []
    pos = 0
    for _ in range(count):
        if pos + 8 > len(body):
            raise EncodingError(f"{what}: body ends inside part {len(out)}")
        (n,) = struct.unpack(">Q", body[pos:pos + 8])
        pos += 8
        if pos + n > len(body):
            raise EncodingError(f"{what}: part {len(out)} runs past the body")
        out.append(bytes(body[pos:pos + n]))
        pos += n
    if pos != len(body):
        raise EncodingError(f"{what}: {len(body) - pos} trailing bytes after {count} parts")
    return out


def header_field(header: dict[str, Any], name: str, typ: type, what: str) -> Any:
    """``header[name]`` checked to be of type ``typ`` (bool is not an int here)."""
    value = header.get(name)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise EncodingError(f"{what}: header field {name!r} missing or not {typ.__name__}")
    return value
