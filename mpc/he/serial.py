"""The byte format of homomorphic-encryption keys, contexts and ciphertexts (layer: mpc core).

Every object of :mod:`mpc.he` serializes to one *envelope*::

    offset   size  field
    0        4     magic b"CNHE"
    4        1     format version (1)
    5        1     kind (see :class:`Kind`)
    6        4     H, header length, unsigned big-endian
    10       H     header: a UTF-8 JSON object with sorted keys (no code, no pickle)
    10+H     8     B, body length, unsigned big-endian
    18+H     B     body: raw bytes, layout given by the kind
    18+H+B   16    BLAKE2b-128 digest of every byte before it (person b"concilium-he")

To send one through a :class:`~mpc.party.Party`, wrap the bytes as
``np.frombuffer(blob, np.uint8)``; every ``load`` accepts that array back.

Loading checks, in order: the length (:class:`~mpc.errors.EncodingError` if too
short), the digest (:class:`~mpc.errors.IntegrityError`, deliberately opaque: a
flipped or missing byte anywhere), then magic, version, kind and lengths
(:class:`~mpc.errors.EncodingError` naming what was expected and found).

The digest detects corruption, not forgery: anyone can recompute it. Authenticity
comes from the channel (the TLS transport) or a signature over the envelope.
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
VERSION = 1
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


def _digest(data: bytes | memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES, person=_PERSON).digest()


def fingerprint(*parts: bytes) -> str:
    """A short hex identifier of public material (a key, a context's parameters)."""
    h = hashlib.blake2b(digest_size=8, person=b"concilium-fp")
    for p in parts:
        h.update(struct.pack(">Q", len(p)))
        h.update(p)
    return h.hexdigest()


def dump(kind: Kind, header: dict[str, Any], body: bytes) -> bytes:
    """Build an envelope."""
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER:
        raise EncodingError(f"header of {len(head)} bytes exceeds {MAX_HEADER}")
    parts = [MAGIC, struct.pack(">BBI", VERSION, int(kind), len(head)), head,
             struct.pack(">Q", len(body)), body]
    h = hashlib.blake2b(digest_size=DIGEST_BYTES, person=_PERSON)
    for part in parts:
        h.update(part)
    parts.append(h.digest())
    return b"".join(parts)


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
        data = data.tobytes()  # as received from a Party (messages are numpy arrays)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError(f"expected bytes for a {kind.name}, got {type(data).__name__}")
    view = memoryview(data)
    if len(view) < _FIXED:
        raise EncodingError(f"{len(view)} bytes is too short for a serialized {kind.name}")
    if _digest(view[:-DIGEST_BYTES]) != bytes(view[-DIGEST_BYTES:]):
        raise IntegrityError(f"serialized {kind.name}: digest mismatch (corrupted or truncated)")
    if bytes(view[:4]) != MAGIC:
        raise EncodingError("not a Concilium HE object (bad magic)")
    version, found, hlen = struct.unpack(">BBI", view[4:10])
    if version != VERSION:
        raise EncodingError(f"format version {version} is not supported (expected {VERSION})")
    if found != kind:
        name = Kind(found).name if found in Kind._value2member_map_ else f"kind {found}"
        raise EncodingError(f"expected a serialized {kind.name}, found {name}")
    if hlen > MAX_HEADER or 10 + hlen + 8 > len(view) - DIGEST_BYTES:
        raise EncodingError(f"serialized {kind.name}: header length {hlen} out of range")
    try:
        header = json.loads(bytes(view[10:10 + hlen]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncodingError(f"serialized {kind.name}: unreadable header") from exc
    if not isinstance(header, dict):
        raise EncodingError(f"serialized {kind.name}: header is not an object")
    (blen,) = struct.unpack(">Q", view[10 + hlen:18 + hlen])
    if 18 + hlen + blen + DIGEST_BYTES != len(view):
        raise EncodingError(f"serialized {kind.name}: body length {blen} does not match the data")
    if max_body is not None and blen > max_body:
        raise EncodingError(f"serialized {kind.name}: body of {blen} bytes exceeds {max_body}")
    return header, view[18 + hlen:18 + hlen + blen]


def join_parts(parts: list[bytes]) -> bytes:
    """Concatenate byte strings, each prefixed by its u64 big-endian length."""
    return b"".join(struct.pack(">Q", len(p)) + p for p in parts)


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
