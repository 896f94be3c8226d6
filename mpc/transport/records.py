"""The record layer of the TCP transport: what one TLS connection carries (layer: mpc core).

Every message is a record ``kind u8 | length u32 | body``: ``DATA`` (body: one
:mod:`~mpc.transport.wire` frame), ``BYE`` (empty: the sender finished) or
``ABORT`` (a short UTF-8 reason, after ``NUL | origin u32`` when the sender
relays a failure that began at another node). :func:`pieces` cuts a frame's
scatter list into the plaintext pieces handed to TLS without copying large
arrays. :mod:`mpc.transport.tcp` reads and writes them.
"""

from __future__ import annotations

import struct
from typing import Iterator

from ..errors import EncodingError
from .wire import decode_frame

RECORD = struct.Struct("<BI")
ORIGIN = struct.Struct("<BI")   # NUL, origin node: the optional head of an ABORT body
DATA, BYE, ABORT = 0, 1, 2
MAX_REASON = 2048
COALESCE = 1 << 16
PIECE = 1 << 17


def abort_body(reason: str, origin: int | None) -> bytes:
    """An ABORT record's body: ``reason`` (cut to fit), after the origin node when one is given."""
    text = reason.encode("utf-8", "replace")[:MAX_REASON - ORIGIN.size]
    if origin is not None and origin >= 0:
        text = ORIGIN.pack(0, origin) + text
    return text


def parse_abort(raw: bytes, sender: int, nodes: set[int]) -> tuple[str, int]:
    """(printable reason, origin node) of an ABORT body; an origin outside ``nodes`` is the sender."""
    origin = sender
    if len(raw) >= ORIGIN.size and raw[0] == 0:
        _, claimed = ORIGIN.unpack_from(raw)
        raw = raw[ORIGIN.size:]
        if claimed in nodes:   # a node of this session; anything else: the sender
            origin = claimed
    reason = raw.decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else "?" for ch in reason)[:500], origin


def pieces(head: bytes, parts: list[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """Cut ``head`` + ``parts`` into the plaintext pieces handed to TLS one at a time.

    Runs of small parts (headers, small arrays) are joined up to ``COALESCE`` bytes, so a
    small message is one TLS record; a large part is sent as views of ``PIECE`` bytes
    (whole TLS records each: ceil(len / 16 KiB) records), never copied."""
    small: list[bytes | memoryview] = [head]
    size = len(head)
    for part in parts:
        n = len(part)
        if size + n <= COALESCE:
            small.append(part)
            size += n
            continue
        view = memoryview(part).cast("B") if n else memoryview(b"")
        start = 0
        if size < PIECE:  # top the pending small bytes up to one piece
            start = min(n, PIECE - size)
            small.append(view[:start])
        yield b"".join(small)
        small, size = [], 0
        for i in range(start, n, PIECE):
            if n - i < PIECE:  # the tail joins whatever follows
                small, size = [view[i:]], n - i
                break
            yield view[i:i + PIECE]
    if size:
        yield b"".join(small)


def describe(parts: list[bytes | memoryview]) -> str:
    """``"'tag' (round r) "`` of a frame, for error messages (empty if unreadable)."""
    try:
        head = decode_frame(b"".join(parts))
    except EncodingError:
        return ""
    return f"{head.tag!r} (round {head.round}) "
