"""Base 1-out-of-2 oblivious transfer: Chou-Orlandi "simplest OT" on Ed25519 (layer: mpc core).

The sender holds pairs of messages, the receiver one choice bit per pair; the
receiver learns the chosen message of each pair and nothing about the other;
the sender learns nothing about the choices. Base OTs cost elliptic-curve
scalar multiplications (about 0.1 ms each here), so they are used sparingly:
128 of them seed the IKNP extension (:mod:`mpc.ot.iknp`), which then produces
millions of OTs with symmetric crypto only.

Functions are party code for exactly two parties (``peer`` is the other one).
Random OT (:func:`random_send` / :func:`random_receive`) is the protocol
itself; chosen-message OT (:func:`send` / :func:`receive`) adds one message
that encrypts each pair under the random-OT keys.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
from nacl import bindings as nb
from nacl.exceptions import CryptoError

from ..errors import EncodingError, ParameterError, ProtocolError
from ..schema import ArraySpec
from ..party import Party

KEY_BYTES = 16
POINT_BYTES = 32
MAX_BASE_OTS = 1 << 16


def _scalars(party: Party, n: int) -> list[bytes]:
    """``n`` uniform non-zero scalars mod the group order ell (64 random bytes reduced)."""
    raw = party.prg.bytes(64 * n)
    out = []
    for i in range(n):
        s = nb.crypto_core_ed25519_scalar_reduce(raw[64 * i: 64 * i + 64])
        if s == bytes(32):  # probability 2^-252; keep the scalar usable anyway
            s = b"\x01" + bytes(31)
        out.append(s)
    return out


def _check_point(p: bytes, who: str) -> bytes:
    """Refuse anything that is not a canonical point of the prime-order subgroup."""
    if len(p) != POINT_BYTES or not nb.crypto_core_ed25519_is_valid_point(p):
        raise ProtocolError(f"{who} sent an invalid Ed25519 point (off the curve, small order "
                            "or non-canonical): OT aborted")
    return p


def _points(arr: np.ndarray, n: int, who: str) -> list[bytes]:
    a = np.asarray(arr)
    if a.dtype != np.uint8 or a.shape != (n, POINT_BYTES):
        raise EncodingError(f"{who} sent points of shape {a.shape} / {a.dtype}, expected ({n}, 32) uint8")
    raw = a.tobytes()
    return [_check_point(raw[32 * i: 32 * i + 32], who) for i in range(n)]


def _kdf(session: bytes, tag: str, i: int, a_pt: bytes, b_pt: bytes, shared: bytes) -> bytes:
    h = hashlib.sha256()
    h.update(b"concilium/simplest-ot/v1" + session + struct.pack("<HQ", len(tag), i) + tag.encode())
    h.update(a_pt + b_pt + shared)
    return h.digest()[:KEY_BYTES]


def recv_arrays(party: Party, peer: int, name: str, count: int) -> tuple[np.ndarray, ...]:
    """Receive the message ``name`` from ``peer``; it must hold exactly ``count`` arrays."""
    return party.recv_checked(peer, name, [ArraySpec()] * count)


def _check_n(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or not 0 < n <= MAX_BASE_OTS:
        raise ParameterError(f"number of base OTs must be in [1, {MAX_BASE_OTS}], got {n!r}")
    return int(n)


def random_send(party: Party, peer: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sender side of ``n`` random OTs: returns keys ``(k0, k1)``, each ``uint8[n, 16]``.

    Protocol (Chou-Orlandi 2015, batched under one sender scalar)
    --------
    1. Sender draws a scalar ``a``, sends ``A = aG``.
    2. Receiver with choice ``c_i`` draws ``b_i``, sends ``B_i = b_i G + c_i A``.
    3. Sender checks every ``B_i`` and sets ``k0_i = H(i, A, B_i, a B_i)``,
       ``k1_i = H(i, A, B_i, a (B_i - A))``; receiver sets ``k_i = H(i, A, B_i, b_i A)``.

    Security
    --------
    Semi-honest (and static) adversaries; the receiver's choices are perfectly
    hidden (``B_i`` is uniform in the group either way); the other key is hidden
    under CDH in the random-oracle model. Every received point is validated
    (canonical, on the curve, in the prime-order subgroup). Chou-Orlandi does
    not give UC security against adaptive/malicious receivers (see Byali et
    al. 2017, Hauck-Loss 2017); use it with the semi-honest protocols here.

    Cost
    ----
    2 messages (1 round each way): ``32`` bytes sender to receiver,
    ``32 n`` bytes receiver to sender; sender ``n + 2`` scalar multiplications (``aG``, ``aA``, ``a B_i``),
    receiver ``2 n``.

    References
    ----------
    T. Chou, C. Orlandi, "The Simplest Protocol for Oblivious Transfer",
    LATINCRYPT 2015.
    """
    n = _check_n(n)
    with party.scope(party.fresh("base-ot")):
        tag = party.tag("")
        (a,) = _scalars(party, 1)
        a_pt = nb.crypto_scalarmult_ed25519_base_noclamp(a)
        party.send(peer, "A", np.frombuffer(a_pt, np.uint8))
        (b_arr,) = recv_arrays(party, peer, "B", 1)
        bs = _points(b_arr, n, f"party {peer} (OT receiver)")
        a_a = nb.crypto_scalarmult_ed25519_noclamp(a, a_pt)
    k0 = np.empty((n, KEY_BYTES), np.uint8)
    k1 = np.empty((n, KEY_BYTES), np.uint8)
    for i, b_pt in enumerate(bs):
        ab = nb.crypto_scalarmult_ed25519_noclamp(a, b_pt)
        k0[i] = np.frombuffer(_kdf(party.session, tag, i, a_pt, b_pt, ab), np.uint8)
        try:
            ab_minus = nb.crypto_core_ed25519_sub(ab, a_a)
        except CryptoError:  # pragma: no cover - B_i = A (identity difference): keep a key anyway
            ab_minus = bytes(32)
        k1[i] = np.frombuffer(_kdf(party.session, tag, i, a_pt, b_pt, ab_minus), np.uint8)
    return k0, k1


def random_receive(party: Party, peer: int, choices: np.ndarray) -> np.ndarray:
    """Receiver side of random OT: returns ``k_{c_i}`` as ``uint8[n, 16]``. See :func:`random_send`."""
    c = choice_bits(choices)
    n = _check_n(c.size)
    with party.scope(party.fresh("base-ot")):
        tag = party.tag("")
        (a_arr,) = recv_arrays(party, peer, "A", 1)
        (a_pt,) = _points(np.asarray(a_arr).reshape(1, -1), 1, f"party {peer} (OT sender)")
        bs = _scalars(party, n)
        b_pts = []
        keys = np.empty((n, KEY_BYTES), np.uint8)
        for i, b in enumerate(bs):
            b_pt = nb.crypto_scalarmult_ed25519_base_noclamp(b)
            if c[i]:
                b_pt = nb.crypto_core_ed25519_add(b_pt, a_pt)
            b_pts.append(b_pt)
            shared = nb.crypto_scalarmult_ed25519_noclamp(b, a_pt)
            keys[i] = np.frombuffer(_kdf(party.session, tag, i, a_pt, b_pt, shared), np.uint8)
        party.send(peer, "B", np.frombuffer(b"".join(b_pts), np.uint8).reshape(n, POINT_BYTES))
    return keys


def choice_bits(choices: np.ndarray) -> np.ndarray:
    """``choices`` as ``uint8`` 0/1, refusing anything but a 1-D array of bits."""
    c = np.asarray(choices)
    if c.ndim != 1 or not (np.issubdtype(c.dtype, np.integer) or c.dtype == bool):
        raise ParameterError("choices must be a 1-D array of bits")
    if c.size and (c.min() < 0 or c.max() > 1):
        raise ParameterError("choices must be 0 or 1")
    return c.astype(np.uint8)


def _pad(keys: np.ndarray, length: int, side: int) -> np.ndarray:
    """Expand each 16-byte key into ``length`` pad bytes (SHAKE-256, domain ``side``)."""
    out = np.empty((keys.shape[0], length), np.uint8)
    for i, k in enumerate(keys):
        out[i] = np.frombuffer(hashlib.shake_256(bytes([side]) + k.tobytes()).digest(length), np.uint8)
    return out


def send(party: Party, peer: int, m0: np.ndarray, m1: np.ndarray) -> None:
    """Chosen-message OT, sender: the receiver gets ``m0[i]`` or ``m1[i]`` by its choice.

    ``m0``, ``m1``: ``uint8[n, L]`` arrays of equal shape. One more message than
    random OT: ``2 n L`` bytes, each message padded with a SHAKE-256 expansion
    of its random-OT key.
    """
    m0 = np.asarray(m0)
    m1 = np.asarray(m1)
    if m0.dtype != np.uint8 or m0.shape != m1.shape or m1.dtype != np.uint8 or m0.ndim != 2:
        raise ParameterError("m0 and m1 must be uint8 arrays of the same shape (n, L)")
    k0, k1 = random_send(party, peer, m0.shape[0])
    party.send(peer, party.fresh("base-ot-payload"), m0 ^ _pad(k0, m0.shape[1], 0),
               m1 ^ _pad(k1, m1.shape[1], 0))


def receive(party: Party, peer: int, choices: np.ndarray) -> np.ndarray:
    """Chosen-message OT, receiver: returns ``uint8[n, L]``, row i = ``m_{c_i}[i]``."""
    c = choice_bits(choices)
    k = random_receive(party, peer, c)
    e0, e1 = recv_arrays(party, peer, party.fresh("base-ot-payload"), 2)
    if (e0.shape != e1.shape or e0.ndim != 2 or e0.shape[0] != c.size or e0.dtype != np.uint8
            or e1.dtype != np.uint8):
        raise EncodingError(f"party {peer} sent OT payloads of shape {e0.shape}, expected ({c.size}, L)")
    chosen = np.where(c[:, None].astype(bool), e1, e0)
    return chosen ^ _pad(k, e0.shape[1], 0)
