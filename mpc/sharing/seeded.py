"""A receiver's checks of a seed-compressed share message (layer: mpc core).

An input owner shares ``x`` by sending each other party a 128-bit seed and
the shape (and, for arithmetic shares, the fixed-point encoding); the
receiver's share is the seed's PRG expansion. The shape is the peer's word:
before anything is expanded, :func:`read_seed_message` checks the dtype and
rank of every array, the signs and count of the sizes, the encoding, and
that the announced elements stay within the session's
``limits.max_share_elements``: a 33-byte message must not make a party
allocate and fill gigabytes. Used by :func:`mpc.sharing.tensor.share` and
:func:`mpc.sharing.binary.share_binary` alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import MalformedPeerData

if TYPE_CHECKING:
    from ..party import Party

SEED_BYTES = 16
#: Rank of an announced shape (numpy's own limit).
MAX_RANK = 32


def read_seed_message(party: Party, owner: int, tag: str, arrays: tuple[np.ndarray, ...], *,
                      frac_bits: bool) -> tuple[bytes, tuple[int, ...], int]:
    """``(seed, shape, frac_bits)`` of a share message from ``owner``, or :class:`~mpc.errors.MalformedPeerData`.

    The message is a ``uint8[16]`` seed, a ``uint64[ndim]`` shape and, with
    ``frac_bits``, a ``uint8[1]`` encoding that must be 0 (integers) or the
    session's fractional bits (``0`` is returned without it).
    """
    where = f"party {party.id}: share message from party {owner} under {tag!r}"

    def bad(message: str) -> MalformedPeerData:
        return MalformedPeerData(message, peer=owner, round=party.last_round, tag=tag)

    want = 3 if frac_bits else 2
    if len(arrays) != want:
        raise bad(f"{where} has {len(arrays)} arrays, expected {want}")
    seed, shape_arr = arrays[0], arrays[1]
    if seed.dtype != np.uint8 or seed.shape != (SEED_BYTES,):
        raise bad(f"{where}: the seed is {seed.dtype}{list(seed.shape)}, expected uint8[16]")
    if shape_arr.dtype != np.uint64 or shape_arr.ndim != 1 or shape_arr.size > MAX_RANK:
        raise bad(f"{where}: the shape is {shape_arr.dtype}{list(shape_arr.shape)}, "
                            f"expected uint64[ndim] with ndim <= {MAX_RANK}")
    shape = tuple(int(s) for s in shape_arr)
    limit = party.limits.max_share_elements
    elements = 1
    for s in shape:  # exact integers: a product of uint64 sizes cannot wrap here
        elements *= s
    if elements > limit:
        raise bad(f"{where} announces shape {shape}: {elements} elements, above the "
                            f"session's limit of {limit} per operation (limits.max_share_elements)")
    frac = 0
    if frac_bits:
        enc = arrays[2]
        if enc.dtype != np.uint8 or enc.shape != (1,):
            raise bad(f"{where}: the encoding is {enc.dtype}{list(enc.shape)}, expected uint8[1]")
        frac = int(enc[0])
        if frac not in (0, party.fixed.frac_bits):
            raise bad(f"{where} announces {frac} fractional bits; this session uses "
                                f"{party.fixed.frac_bits} (or 0 for integers)")
    return seed.tobytes(), shape, frac
