"""The wire format: an explicit header plus raw numpy buffers (layer: mpc core).

A frame is::

    magic "CC" | version u8 | flags u8 | session 8 bytes | round u32 |
    tag_len u16 | n_arrays u16 | tag (UTF-8) |
    per array: dtype code u8 | ndim u8 | shape (ndim x u64) |
    payload: the arrays' raw little-endian bytes, concatenated

Everything is validated before anything is allocated: the magic and version,
the session, the tag's encoding, every dtype code and shape, and that the
payload length is exactly what the header announces. Nothing is unpickled or
evaluated. Limits (:class:`WireLimits`) bound the frame size, the number of
arrays, their rank and the tag length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import EncodingError

MAGIC = b"CC"
VERSION = 1
SESSION_BYTES = 8
_HEAD = struct.Struct("<2sBB8sIHH")
#: Rounds live in [0, MAX_ROUND), for sending and receiving alike. A received round r moves
#: the receiver's clock to r + 1, the round of its next frame: so a frame may announce at most
#: MAX_ROUND - 2, and a peer cannot make an honest receiver's next frame unsendable.
MAX_ROUND = 2**31
#: Largest extent of one array dimension, and of the product of the non-zero ones (a
#: zero-sized array could otherwise announce any shape, and numpy cannot reshape to it).
MAX_DIM = 2**40
_ARRAY_HEAD = struct.Struct("<BB")

DTYPES: tuple[np.dtype, ...] = tuple(
    np.dtype(t).newbyteorder("<")
    for t in ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32",
              "uint64", "int64", "float32", "float64")
)
_CODE = {dt: i for i, dt in enumerate(DTYPES)}


@dataclass(frozen=True)
class WireLimits:
    """Bounds enforced on every decoded frame, and on what a peer's message may make us do.

    ``max_share_elements`` caps the elements a peer may announce in one share
    message (expanded locally from a 16-byte seed, :mod:`mpc.sharing.seeded`);
    ``max_queued_bytes`` caps the bytes of frames that arrived from one peer
    and wait to be received (over TCP the peer is then not read until the
    program catches up: backpressure, not an error).
    """

    max_frame_bytes: int = 1 << 31
    max_arrays: int = 64
    max_ndim: int = 8
    max_tag_bytes: int = 256
    max_share_elements: int = 1 << 24
    max_queued_bytes: int = 1 << 28


DEFAULT_LIMITS = WireLimits()


@dataclass(frozen=True)
class Frame:
    """A decoded message: tag, logical round, session id and arrays."""

    tag: str
    round: int
    session: bytes
    arrays: tuple[np.ndarray, ...]

    @property
    def payload_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


def encode_frame(tag: str, arrays: tuple[np.ndarray, ...] | list[np.ndarray], *,
                 session: bytes = bytes(SESSION_BYTES), round: int = 0,
                 limits: WireLimits = DEFAULT_LIMITS) -> bytes:
    """Encode ``arrays`` under ``tag`` into one frame (one copy of the payload)."""
    return b"".join(encode_frame_parts(tag, arrays, session=session, round=round, limits=limits))


def encode_frame_parts(tag: str, arrays: tuple[np.ndarray, ...] | list[np.ndarray], *,
                       session: bytes = bytes(SESSION_BYTES), round: int = 0,
                       limits: WireLimits = DEFAULT_LIMITS) -> list[bytes | memoryview]:
    """The frame of :func:`encode_frame` as a scatter list, without copying the payload.

    The first part is the header; each later part is a read-only byte view of
    one (contiguous, little-endian) array, so the list is valid only while the
    arrays are not modified: a transport that encrypts at once (TCP) writes
    the views straight into TLS; one that keeps the frame must join them.
    """
    tag_bytes = tag.encode("utf-8")
    if len(tag_bytes) > limits.max_tag_bytes:
        raise EncodingError(f"tag {tag[:40]!r}... longer than {limits.max_tag_bytes} bytes")
    if len(arrays) > limits.max_arrays:
        raise EncodingError(f"{len(arrays)} arrays in one frame (limit {limits.max_arrays})")
    if len(session) != SESSION_BYTES:
        raise EncodingError("session id must be 8 bytes")
    if not 0 <= round < MAX_ROUND:
        raise EncodingError(f"round {round} is beyond the round limit (2^31)")
    parts: list[bytes | memoryview] = [b""]
    meta = [tag_bytes]
    for a in arrays:
        arr = np.asarray(a)
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder not in "<|=" else arr.dtype
        code = _CODE.get(np.dtype(dt).newbyteorder("<"))
        if code is None:
            raise EncodingError(f"dtype {arr.dtype} cannot be sent; use a numeric dtype")
        if arr.ndim > limits.max_ndim:
            raise EncodingError(f"array of rank {arr.ndim} exceeds the limit {limits.max_ndim}")
        meta.append(_ARRAY_HEAD.pack(code, arr.ndim) + struct.pack(f"<{arr.ndim}Q", *arr.shape))
        arr = np.ascontiguousarray(arr, dtype=DTYPES[code])
        if arr.size:
            parts.append(memoryview(arr).cast("B").toreadonly())  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
    parts[0] = _HEAD.pack(MAGIC, VERSION, 0, session, round, len(tag_bytes), len(arrays)) + b"".join(meta)
    size = sum(len(p) for p in parts)
    if size > limits.max_frame_bytes:
        raise EncodingError(f"frame of {size} bytes exceeds the limit {limits.max_frame_bytes}")
    return parts


def decode_frame(data: bytes | memoryview, *, session: bytes | None = None,
                 limits: WireLimits = DEFAULT_LIMITS) -> Frame:
    """Decode and validate a frame; arrays are read-only views of ``data``."""
    n = len(data)
    if n > limits.max_frame_bytes:
        raise EncodingError(f"frame of {n} bytes exceeds the limit {limits.max_frame_bytes}")
    if n < _HEAD.size:
        raise EncodingError(f"truncated frame: {n} bytes, header needs {_HEAD.size}")
    magic, version, _flags, sess, rnd, tag_len, n_arrays = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise EncodingError("not a Concilium frame (bad magic)")
    if version != VERSION:
        raise EncodingError(f"unsupported frame version {version} (this build speaks {VERSION})")
    if session is not None and sess != session:
        raise EncodingError("frame belongs to another session")
    if tag_len > limits.max_tag_bytes or n_arrays > limits.max_arrays:
        raise EncodingError("frame header exceeds the tag or array-count limit")
    if rnd + 1 >= MAX_ROUND:
        raise EncodingError(f"frame announces round {rnd}: the receiver's next round would pass "
                            "the round limit (2^31)")
    pos = _HEAD.size
    if pos + tag_len > n:
        raise EncodingError("truncated frame: tag cut short")
    try:
        tag = bytes(data[pos:pos + tag_len]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError("frame tag is not valid UTF-8") from exc
    pos += tag_len
    specs = []
    for _ in range(n_arrays):
        if pos + _ARRAY_HEAD.size > n:
            raise EncodingError(f"truncated frame {tag!r}: array header cut short")
        code, ndim = _ARRAY_HEAD.unpack_from(data, pos)
        pos += _ARRAY_HEAD.size
        if code >= len(DTYPES):
            raise EncodingError(f"frame {tag!r}: unknown dtype code {code}")
        if ndim > limits.max_ndim:
            raise EncodingError(f"frame {tag!r}: rank {ndim} exceeds the limit {limits.max_ndim}")
        if pos + 8 * ndim > n:
            raise EncodingError(f"truncated frame {tag!r}: shape cut short")
        shape = struct.unpack_from(f"<{ndim}Q", data, pos)
        pos += 8 * ndim
        if any(s > MAX_DIM for s in shape):
            raise EncodingError(f"frame {tag!r}: shape {shape} has a dimension above 2^40")
        count = extent = 1
        for s in shape:
            count *= s
            extent *= max(s, 1)
        nbytes = count * DTYPES[code].itemsize
        if nbytes > limits.max_frame_bytes:
            raise EncodingError(f"frame {tag!r}: array of shape {shape} exceeds the size limit")
        if extent > MAX_DIM:  # (0, 2^40, 2^40) holds nothing, but numpy cannot even shape it
            raise EncodingError(f"frame {tag!r}: shape {shape} spans more than 2^40 elements")
        specs.append((DTYPES[code], shape, nbytes))
    need = pos + sum(s[2] for s in specs)
    if need != n:
        kind = "truncated" if need > n else "oversized"
        raise EncodingError(f"{kind} frame {tag!r}: header announces {need} bytes, got {n}")
    arrays = []
    for dt, shape, nbytes in specs:
        arr = np.frombuffer(data, dtype=dt, count=nbytes // dt.itemsize, offset=pos).reshape(shape)
        pos += nbytes
        arrays.append(arr)
    return Frame(tag=tag, round=rnd, session=bytes(sess), arrays=tuple(arrays))
