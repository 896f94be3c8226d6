"""SecAgg message schemas: what each round's message holds, checked before use (layer: protocols).

Every message is a tuple of numpy arrays (sent as raw buffers by
:mod:`mpc.transport.wire`, never pickled). Each round (:mod:`.rounds`)
checks arity, dtype and shape against its schema with
:func:`mpc.schema.check_arrays`, which raises :class:`MalformedMessage` (the
core's :class:`~mpc.errors.MalformedPeerData`) naming the round and the
sender; the server then treats that client as dropped.

==========  ============  ==================================================
round       direction     arrays
==========  ============  ==================================================
advertise   client->srv   keys uint8 (2, 32): c_PK, s_PK
advertise   srv->client   ids int64 (m,), keys uint8 (m, 2, 32): neighbours
share       client->srv   to int64 (m,), ct uint8 (m, 80): one per neighbour
share       srv->client   frm int64 (m,), ct uint8 (m, 80)
masked      client->srv   y uint32|uint64 (d,): masked input mod 2^k
masked      srv->client   live int64 (a,), dropped int64 (b,): unmask request
unmask      client->srv   live int64 (a,), seed uint32 (a, 5),
                          dropped int64 (b,), key uint32 (b, 9)
==========  ============  ==================================================

An empty message (no arrays) is how a simulated client announces that it
drops out, and how the server tells a client it was dropped. Which schema
applies in which round is said once, by the table :data:`.rounds.ROUNDS`.
"""

from __future__ import annotations


import numpy as np

from mpc.errors import MalformedPeerData
from mpc.schema import Schema

from .crypto import KEY_BYTES, TAG_BYTES
from .sharing import ELEMS, KEY_ELEMS, SEED_ELEMS

PLAIN_BYTES = 8 + 4 * ELEMS
CT_BYTES = PLAIN_BYTES + TAG_BYTES

Spec = Schema  # (dtype, shape) pairs; a ``None`` axis is free

ADVERTISE_UP: Spec = [(np.uint8, (2, KEY_BYTES))]
ADVERTISE_DOWN: Spec = [(np.int64, (None,)), (np.uint8, (None, 2, KEY_BYTES))]
SHARE_UP: Spec = [(np.int64, (None,)), (np.uint8, (None, CT_BYTES))]
SHARE_DOWN: Spec = SHARE_UP
REQUEST_DOWN: Spec = [(np.int64, (None,)), (np.int64, (None,))]
UNMASK_UP: Spec = [(np.int64, (None,)), (np.uint32, (None, SEED_ELEMS)),
                   (np.int64, (None,)), (np.uint32, (None, KEY_ELEMS))]


#: A message does not match its round's schema (the sender is treated as dropped): the
#: core's one error for malformed peer data, under its SecAgg name.
MalformedMessage = MalformedPeerData


def no_ids() -> np.ndarray:
    """An empty id array (int64), the initial value of every id list."""
    return np.empty(0, dtype=np.int64)


def masked_spec(dtype: np.dtype, dim: int) -> Spec:
    return [(dtype, (dim,))]


def same_length(what: str, *pairs: tuple[np.ndarray, np.ndarray]) -> None:
    for ids, data in pairs:
        if len(ids) != len(data):
            raise MalformedMessage(f"{what}: {len(ids)} ids for {len(data)} entries")


def check_ids(ids: np.ndarray, allowed: np.ndarray, what: str) -> None:
    """``ids`` strictly increasing and all in the sorted array ``allowed``."""
    if ids.size and (np.any(np.diff(ids) <= 0) or not np.all(np.isin(ids, allowed))):
        raise MalformedMessage(f"{what}: ids are not sorted, unique and among those allowed")
