"""The SecAgg client: its state as a dataclass and one step function per round (layer: protocols).

A :class:`Client` is the whole state of one client between rounds; the step
functions below take it and the server's message (a tuple of arrays, already
checked against its schema) and return the reply. They are driven only through
the table of rounds (:mod:`.rounds`), which refuses a step out of order
(:class:`~mpc.errors.ProtocolError`) and checks the message first. A client
that finds the server's message malformed or unsafe raises
:class:`~mpc.errors.ProtocolAbort` and takes no further part (it is dropped).

Protocol (client u, Bonawitz et al. 2017, Fig. 4; neighbours N(u) for SecAgg+)
------------------------------------------------------------------------------
0. :func:`advertise_keys`: draw X25519 pairs (c_u^SK, c_u^PK), (s_u^SK, s_u^PK);
   send both public keys.
1. :func:`share_keys` (ids, keys): receive the public keys of the live
   neighbours (at least t - 1 of them); draw the self-mask seed b_u;
   Shamir-share b_u and s_u^SK t-of-h among the h = |N(u)| + 1 holders; encrypt
   each neighbour's share with ChaCha20-Poly1305 under a key derived from
   DH(c_u^SK, c_v^PK).
2. :func:`masked_input` (frm, ct): decrypt and keep the shares of the
   neighbours U2 that shared (:func:`store_shares`); send
   ``y_u = x_u + PRG(b_u) + sum_{v in U2} D_uv PRG(s_uv)`` mod 2^k with
   ``D_uv = +1`` if u < v else -1 and s_uv derived from DH(s_u^SK, s_v^PK)
   (:func:`compute_masked`).
3. :func:`unmask` (live, dropped): refuse if any client is named in both lists
   (the double-masking rule) or outside U2, or if fewer than t clients are
   listed alive (|U3| >= t, Bonawitz et al. Fig. 4 round 3; here U3 among this
   client's shareholders); else reveal the b-shares of ``live`` and the
   s^SK-shares of ``dropped``. Answers at most once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mpc.arith.field import VandermondeCache
from mpc.errors import IntegrityError, ParameterError, ProtocolAbort
from mpc.rand import PRG, random_seed

from . import messages as msg
from .config import SecAggConfig
from .crypto import (KeyPair, MaskExpander, agree, decrypt_share, encrypt_share,
                     encryption_key, mask_seed)
from .sharing import ELEMS, SEED_ELEMS, pack_secrets, share_secrets

Agreement = Callable[[str, int, int, bytes, bytes], bytes]
"""``agreement(kind, u, v, secret, peer_public)``: the X25519 value of client u's
``kind`` key (``"c"`` for encryption, ``"s"`` for masks) with client v's public key."""


def x25519(kind: str, u: int, v: int, secret: bytes, peer_public: bytes) -> bytes:
    """The :data:`Agreement` of a real client: X25519 of its own secret and the peer's key."""
    return agree(secret, peer_public)


@dataclass(eq=False)
class Client:
    """State of client ``id`` (0-based) of a SecAgg session holding ``value`` in Z_2^k.

    Parameters
    ----------
    id:
        This client's id in ``[0, config.n)``.
    config:
        The session's public parameters.
    value:
        Input vector of ``config.dim`` integers in ``[0, 2^k)``.
    vandermonde:
        Optional cache of public Vandermonde matrices (simulation of many clients).
    agreement:
        How pairwise X25519 values are obtained (:func:`x25519`; the simulator
        passes a cache shared by its clients, never a real deployment).

    Notes
    -----
    The other fields are filled by the rounds; ``stage`` counts the rounds
    answered, ``u2`` the neighbours that shared keys (U2 ∩ N(u)). Secrets are
    left out of the ``repr``.
    """

    id: int
    config: SecAggConfig = field(repr=False)
    value: np.ndarray = field(repr=False)
    vandermonde: VandermondeCache | None = field(default=None, repr=False)
    agreement: Agreement = field(default=x25519, repr=False)
    stage: int = field(default=0, init=False)
    c: KeyPair = field(default_factory=KeyPair, init=False, repr=False)
    s: KeyPair = field(default_factory=KeyPair, init=False, repr=False)
    neighbours: np.ndarray = field(default_factory=msg.no_ids, init=False, repr=False)
    c_pk: dict[int, bytes] = field(default_factory=dict, init=False, repr=False)
    s_pk: dict[int, bytes] = field(default_factory=dict, init=False, repr=False)
    enc: dict[int, bytes] = field(default_factory=dict, init=False, repr=False)
    seed: bytes = field(default=b"", init=False, repr=False)
    shares: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    u2: np.ndarray = field(default_factory=msg.no_ids, init=False, repr=False)

    def __post_init__(self) -> None:
        config, cid = self.config, self.id
        if not 0 <= cid < config.n:
            raise ParameterError(f"client id {cid} out of range [0, {config.n})")
        arr = np.asarray(self.value)
        if arr.shape != (config.dim,) or arr.dtype.kind not in "ui":
            raise ParameterError(f"client {cid}: the input must be {config.dim} integers, "
                                 f"got {arr.dtype} {arr.shape}")
        if arr.size and (arr.min() < 0 or int(arr.max()) > config.modulus_mask):
            raise ParameterError(f"client {cid}: inputs must lie in [0, 2^{config.bits})")
        self.value = arr.astype(config.dtype)

    def pairwise(self, kind: str, v: int, what: str) -> bytes:
        """The agreed value of this client's ``kind`` key with client v's (ProtocolAbort if invalid)."""
        secret, peer = (self.c.secret, self.c_pk) if kind == "c" else (self.s.secret, self.s_pk)
        try:
            return self.agreement(kind, self.id, v, secret, peer[v])
        except IntegrityError:
            raise ProtocolAbort(f"{what}: client {v}'s public key is invalid") from None


# -- round 0 ---------------------------------------------------------------------------
def advertise_keys(client: Client, message: tuple, what: str) -> tuple[np.ndarray]:
    """Round 0: this client's two public keys, uint8 (2, 32)."""
    return (np.frombuffer(client.c.public + client.s.public, np.uint8).reshape(2, 32).copy(),)


# -- round 1 ---------------------------------------------------------------------------
def _take_keys(client: Client, ids: np.ndarray, keys: np.ndarray, what: str) -> None:
    """Check the neighbours' ids and public keys and keep them."""
    config = client.config
    # compared pairwise, not by np.diff: a difference of int64 ids can wrap
    if ids.size and (np.any(ids[1:] <= ids[:-1]) or ids[0] < 0 or ids[-1] >= config.n
                     or np.any(ids == client.id)):
        raise ProtocolAbort(f"{what}: neighbour ids must be sorted, unique, other clients")
    t = config.threshold
    if len(ids) + 1 < t:
        raise ProtocolAbort(f"{what}: only {len(ids)} live neighbours, fewer than t - 1 = {t - 1}")
    if len(ids) > config.degree:
        raise ProtocolAbort(f"{what}: {len(ids)} neighbours exceed the degree {config.degree}")
    raw = [bytes(k) for k in keys.reshape(len(ids), 64)]
    seen = {client.c.public + client.s.public}
    for v, k in zip(ids.tolist(), raw):
        if k in seen or k[:32] == k[32:]:  # low-order keys fail at agreement (IntegrityError)
            raise ProtocolAbort(f"{what}: client {v}'s public keys are repeated")
        seen.add(k)
        client.c_pk[v], client.s_pk[v] = k[:32], k[32:]
    client.neighbours = ids.astype(np.int64)


def share_keys(client: Client, message: tuple, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Round 1: encrypted Shamir shares of (b_u, s_u^SK) for each listed neighbour."""
    ids, keys = message
    msg.same_length(what, (ids, keys))
    _take_keys(client, ids, keys, what)
    client.seed = random_seed()
    holders = np.sort(np.append(client.neighbours, client.id))
    shares = share_secrets(pack_secrets(client.seed, client.s.secret), holders,
                           client.config.threshold, PRG.fresh(), client.vandermonde)
    session = client.config.session
    cts = np.empty((len(ids), msg.CT_BYTES), dtype=np.uint8)
    row = 0
    for pos, h in enumerate(holders.tolist()):
        if h == client.id:
            client.shares[h] = shares[pos]
            continue
        key = encryption_key(client.pairwise("c", h, what), session, client.id, h)
        client.enc[h] = key
        plain = struct.pack("<II", client.id, h) + shares[pos].tobytes()
        cts[row] = np.frombuffer(encrypt_share(key, session, client.id, h, plain), np.uint8)
        row += 1
    return client.neighbours.copy(), cts


# -- round 2 ---------------------------------------------------------------------------
def store_shares(client: Client, message: tuple, what: str) -> None:
    """Round 2, first half: decrypt and keep the neighbours' shares; set ``u2``."""
    frm, ct = message
    msg.same_length(what, (frm, ct))
    if frm.size and (np.any(np.diff(frm) <= 0) or not np.all(np.isin(frm, client.neighbours))):
        raise ProtocolAbort(f"{what}: senders must be sorted, unique neighbours")
    if len(frm) + 1 < client.config.threshold:
        raise ProtocolAbort(f"{what}: only {len(frm)} neighbours shared keys, fewer than t - 1")
    session = client.config.session
    for v, c in zip(frm.tolist(), ct):
        try:
            plain = decrypt_share(client.enc[v], session, v, client.id, c.tobytes())
        except IntegrityError:
            raise ProtocolAbort(f"{what}: the share from client {v} failed authentication") from None
        if len(plain) != msg.PLAIN_BYTES or struct.unpack("<II", plain[:8]) != (v, client.id):
            raise ProtocolAbort(f"{what}: the share from client {v} is mislabelled")
        client.shares[v] = np.frombuffer(plain[8:], np.uint32).copy()
    client.u2 = frm.astype(np.int64)


def compute_masked(client: Client, peers: np.ndarray, pad: np.ndarray | None = None) -> np.ndarray:
    """``x_u + PRG(b_u) + sum_{v in peers} D_uv PRG(s_uv) (+ pad) mod 2^k``.

    A real client masks with ``peers = u2`` and no pad; the simulator's
    shortcut (:func:`protocols.secagg.simulate`) passes other peers and a pad.
    """
    config = client.config
    y = client.value.copy()
    expander = MaskExpander(config.dim, config.dtype)
    expander.add(y, client.seed)
    for v in np.asarray(peers).tolist():
        shared = client.pairwise("s", v, f"client {client.id}, round 'masked'")
        expander.add(y, mask_seed(shared, config.session, client.id, v), 1 if client.id < v else -1)
    if pad is not None:
        y += pad.astype(y.dtype)
    if config.bits < 8 * y.itemsize:
        y &= y.dtype.type(config.modulus_mask)
    return y


def masked_input(client: Client, message: tuple, what: str) -> tuple[np.ndarray]:
    """Round 2: store the received shares; return the masked input y_u."""
    store_shares(client, message, what)
    return (compute_masked(client, client.u2),)


# -- round 3 ---------------------------------------------------------------------------
def unmask(client: Client, message: tuple, what: str) -> tuple[np.ndarray, ...]:
    """Round 3: seed shares of ``live`` clients, key shares of ``dropped`` ones.

    Raises
    ------
    ProtocolAbort
        The request names a client in both lists (it would unmask that
        client's input), names this client as dropped, names clients
        whose shares this client does not hold, or lists fewer than t
        clients alive (an honest server then cannot rebuild this
        client's own seed, so only a lying one would ask).
    """
    live, dropped = message
    both = np.intersect1d(live, dropped)
    if both.size:
        raise ProtocolAbort(f"{what}: refused: the server asked for both the seed share and "
                            f"the key share of client(s) {both.tolist()[:5]}")
    for ids in (live, dropped):
        if ids.size and np.any(np.diff(ids) <= 0):
            raise ProtocolAbort(f"{what}: refused: request ids must be sorted and unique")
    holders = np.append(client.u2, client.id)
    if not (np.all(np.isin(live, holders)) and np.all(np.isin(dropped, client.u2))):
        raise ProtocolAbort(f"{what}: refused: the request names clients outside this "
                            f"client's share holdings")
    if client.id not in live.tolist():
        raise ProtocolAbort(f"{what}: refused: this client is alive but not listed as live")
    t = client.config.threshold
    if len(live) < t:
        raise ProtocolAbort(f"{what}: refused: {len(live)} clients listed alive, fewer than t = {t}")
    seed = np.array([client.shares[v][:SEED_ELEMS] for v in live.tolist()],
                    dtype=np.uint32).reshape(-1, SEED_ELEMS)
    key = np.array([client.shares[v][SEED_ELEMS:ELEMS] for v in dropped.tolist()],
                   dtype=np.uint32).reshape(-1, ELEMS - SEED_ELEMS)
    return live.copy(), seed, dropped.copy(), key
