"""IKNP oblivious-transfer extension: millions of OTs from 128 base OTs (layer: mpc core).

Roles are fixed per pair of parties: the *extension sender* holds message
pairs (in garbled circuits, the garbler), the *extension receiver* holds the
choice bits (the evaluator). :meth:`IKNPSender.setup` / :meth:`IKNPReceiver.setup`
run 128 base OTs once, with the roles reversed; afterwards every call to
``random``, ``correlated`` or ``chosen`` extends any number of OTs with one
message from the receiver (and one back for correlated and chosen OT), using
only AES: a PRG per base key, a bit-matrix transpose, a fixed-key AES hash.

Protocol (Ishai, Kilian, Nissim, Petrank 2003; semi-honest)
--------
0. Setup: the sender draws ``s`` in {0,1}^128 and receives, by 128 base OTs,
   seed ``k_j^{s_j}`` of the receiver's pairs ``(k_j^0, k_j^1)``.
1. Receiver, choices ``r`` in {0,1}^m: columns ``t_j = G(k_j^0)``,
   ``u_j = t_j xor G(k_j^1) xor r`` (G: AES-CTR, stream number = call index);
   sends the 128 x m bit matrix ``u``.
2. Sender: ``q_j = G(k_j^{s_j}) xor s_j u_j``; by rows ``q_i = t_i xor r_i s``.
3. Random OT: sender outputs ``x0_i = H(q_i, i)``, ``x1_i = H(q_i xor s, i)``;
   receiver outputs ``H(t_i, i) = x_{r_i}``. Correlated OT with offset Delta:
   the sender keeps ``x0_i`` and sends ``d_i = x0_i xor H(q_i xor s, i) xor Delta``,
   the receiver outputs ``H(t_i, i) xor r_i d_i``. Chosen OT: the sender sends
   ``m0_i xor H(q_i, i)`` and ``m1_i xor H(q_i xor s, i)`` (one hash block per
   16 bytes of message).

Security
--------
Semi-honest, two parties, static corruption. The sender's view (``u``) is
uniform whatever the choices (each ``u_j`` is masked by ``G(k_j^{1-s_j})``,
unknown to it); the receiver learns ``x_{1-r_i}`` only by finding ``s``. ``H``
is the tweakable circular-correlation-robust hash of :mod:`mpc.ot.crhash`, with
a tweak never reused within a session (the running OT count). A malicious
receiver can cheat (use KOS/SoftSpokenOT for that); not covered here.

Cost
----
Setup: 128 base OTs (2 messages, 32 + 4096 bytes). Each extension of m OTs:
1 message of ``16 ceil(m/8) * 8`` bytes receiver -> sender; correlated OT adds
``16 m`` bytes sender -> receiver, chosen OT ``2 m L`` bytes for L-byte messages.
Sender ``2m`` AES hash calls (for random, correlated and chosen OT alike: it
hashes both ``q`` and ``q ^ s``), receiver ``m``.

References
----------
Y. Ishai, J. Kilian, K. Nissim, E. Petrank, "Extending Oblivious Transfers
Efficiently", CRYPTO 2003. G. Asharov, Y. Lindell, T. Schneider, M. Zohner,
"More Efficient Oblivious Transfer and Extensions", CCS 2013 (correlated OT).
C. Guo, J. Katz, X. Wang, Y. Yu, "Efficient and Secure Multiparty Computation
from Fixed-Key Block Ciphers", IEEE S&P 2020 (the hash).
"""

from __future__ import annotations

import numpy as np

from ..errors import EncodingError, ParameterError
from ..party import Party
from ..rand import PRG
from . import base
from .crhash import DOMAIN_OT, FixedKeyHash
from .transpose import transpose_bits

KAPPA = 128
MAX_EXTEND = 1 << 26
"""Most OTs in one extension call: the receiver's matrix is then 1 GiB (frames stop at 2 GiB)."""


def _choices(choices: np.ndarray) -> np.ndarray:
    c = base.choice_bits(choices)
    if not 0 < c.size <= MAX_EXTEND:
        raise ParameterError(f"number of OTs must be in [1, {MAX_EXTEND}], got {c.size}")
    return c


def _check_m(m: int) -> int:
    if not isinstance(m, (int, np.integer)) or not 0 < m <= MAX_EXTEND:
        raise ParameterError(f"number of OTs must be in [1, {MAX_EXTEND}], got {m!r}")
    return int(m)


def _expand(seeds: np.ndarray, call: int, nbytes: int) -> np.ndarray:
    """Row j = ``nbytes`` of AES-CTR stream ``call`` under seed j: ``uint8[128, nbytes]``."""
    out = np.empty((seeds.shape[0], nbytes), np.uint8)
    for j in range(seeds.shape[0]):  # 128 rows: one PRG call each, vectorised inside
        PRG(seeds[j].tobytes(), call).fill(out[j])
    return out


def _check_delta(delta: np.ndarray) -> np.ndarray:
    d = np.asarray(delta)
    if d.dtype != np.uint8 or d.shape != (16,):
        raise ParameterError("Delta must be a uint8[16] block")
    return d.view(np.uint64)


def _blocks(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr).view(np.uint64)


def _hash_rows(h: FixedKeyHash, rows: np.ndarray, offset: int, width: int = 1) -> np.ndarray:
    """``H(row_i, offset + i)`` for ``width`` blocks per row (block b uses high word DOMAIN|b)."""
    m = rows.shape[0]
    idx = np.arange(offset, offset + m, dtype=np.uint64)
    if width == 1:
        return h(rows, idx, DOMAIN_OT)
    out = np.empty((m, width, 2), np.uint64)
    for b in range(width):  # width = message blocks, a small constant
        out[:, b] = h(rows, idx, DOMAIN_OT | np.uint64(b))
    return out.reshape(m, 2 * width)


class IKNPSender:
    """Extension sender after setup: holds ``s`` and the chosen base keys. Use one per peer."""

    def __init__(self, party: Party, peer: int, s: np.ndarray, keys: np.ndarray) -> None:
        self.party = party
        self.peer = peer
        self._s_bits = s
        self._s = _blocks(np.packbits(s, bitorder="little"))  # uint64[2]
        self._keys = keys
        self._calls = 0
        self._count = 0
        self._hash = FixedKeyHash()

    @classmethod
    def setup(cls, party: Party, peer: int) -> "IKNPSender":
        """Run the 128 base OTs (as their receiver, with random choice ``s``)."""
        with party.scope("iknp-setup"):
            s = party.prg.bits(KAPPA)
            keys = base.random_receive(party, peer, s)
        return cls(party, peer, s, keys)

    def _q(self, m: int) -> tuple[np.ndarray, int]:
        """Receive ``u`` and return the rows ``q_i`` (``uint64[m, 2]``) and the tweak offset."""
        party = self.party
        nbytes = (m + 7) // 8
        (u,) = base.recv_arrays(party, self.peer, party.fresh("iknp-u"), 1)
        if u.dtype != np.uint8 or u.shape != (KAPPA, nbytes):
            raise EncodingError(f"party {self.peer} sent an IKNP matrix of shape {u.shape}, "
                                f"expected ({KAPPA}, {nbytes}) uint8")
        q = _expand(self._keys, self._calls, nbytes)
        q ^= u * self._s_bits[:, None]  # s_j = 0/1 selects u_j
        rows = _blocks(transpose_bits(q, m))
        offset = self._count
        self._calls += 1
        self._count += m
        return rows, offset

    def random(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """``m`` random OTs: returns ``(x0, x1)``, each ``uint8[m, 16]``."""
        m = _check_m(m)
        q, off = self._q(m)
        x0 = _hash_rows(self._hash, q, off)
        x1 = _hash_rows(self._hash, q ^ self._s, off)
        return x0.view(np.uint8), x1.view(np.uint8)

    def correlated(self, m: int, delta: np.ndarray) -> np.ndarray:
        """``m`` correlated OTs with offset ``delta`` (``uint8[16]``): returns ``x0``, ``x1 = x0 ^ delta``."""
        m = _check_m(m)
        d = _check_delta(delta)
        q, off = self._q(m)
        x0 = _hash_rows(self._hash, q, off)
        corr = _hash_rows(self._hash, q ^ self._s, off)
        corr ^= x0
        corr ^= d
        self.party.send(self.peer, self.party.fresh("iknp-cot"), corr.view(np.uint8))
        return x0.view(np.uint8)

    def chosen(self, m0: np.ndarray, m1: np.ndarray) -> None:
        """Chosen-message OT of ``uint8[m, L]`` pairs (L a multiple of 16, at most 4096)."""
        m0 = np.asarray(m0)
        m1 = np.asarray(m1)
        if (m0.dtype != np.uint8 or m1.dtype != np.uint8 or m0.shape != m1.shape or m0.ndim != 2
                or m0.shape[1] % 16 or not 0 < m0.shape[1] <= 4096):
            raise ParameterError("m0 and m1 must be uint8[m, L] of one shape, L a multiple of 16 up to 4096")
        m = _check_m(m0.shape[0])
        width = m0.shape[1] // 16
        q, off = self._q(m)
        y0 = _hash_rows(self._hash, q, off, width).view(np.uint8) ^ m0
        y1 = _hash_rows(self._hash, q ^ self._s, off, width).view(np.uint8) ^ m1
        self.party.send(self.peer, self.party.fresh("iknp-chosen"), y0, y1)


class IKNPReceiver:
    """Extension receiver after setup: holds the 128 base key pairs. Use one per peer."""

    def __init__(self, party: Party, peer: int, k0: np.ndarray, k1: np.ndarray) -> None:
        self.party = party
        self.peer = peer
        self._k0 = k0
        self._k1 = k1
        self._calls = 0
        self._count = 0
        self._hash = FixedKeyHash()

    @classmethod
    def setup(cls, party: Party, peer: int) -> "IKNPReceiver":
        """Run the 128 base OTs (as their sender, with random key pairs)."""
        with party.scope("iknp-setup"):
            k0, k1 = base.random_send(party, peer, KAPPA)
        return cls(party, peer, k0, k1)

    def _t(self, c: np.ndarray) -> tuple[np.ndarray, int]:
        party = self.party
        m = c.size
        nbytes = (m + 7) // 8
        t = _expand(self._k0, self._calls, nbytes)
        u = _expand(self._k1, self._calls, nbytes)
        u ^= t
        u ^= np.packbits(c, bitorder="little")[None, :]
        party.send(self.peer, party.fresh("iknp-u"), u)
        rows = _blocks(transpose_bits(t, m))
        offset = self._count
        self._calls += 1
        self._count += m
        return rows, offset

    def random(self, choices: np.ndarray) -> np.ndarray:
        """Random OT: returns ``x_{c_i}`` as ``uint8[m, 16]``."""
        c = _choices(choices)
        t, off = self._t(c)
        return _hash_rows(self._hash, t, off).view(np.uint8)

    def correlated(self, choices: np.ndarray) -> np.ndarray:
        """Correlated OT: returns ``x0_i xor c_i Delta`` as ``uint8[m, 16]``."""
        c = _choices(choices)
        t, off = self._t(c)
        out = _hash_rows(self._hash, t, off)
        (corr,) = base.recv_arrays(self.party, self.peer, self.party.fresh("iknp-cot"), 1)
        if corr.dtype != np.uint8 or corr.shape != (c.size, 16):
            raise EncodingError(f"party {self.peer} sent COT corrections of shape {corr.shape}, "
                                f"expected ({c.size}, 16) uint8")
        out ^= _blocks(corr) * c[:, None].astype(np.uint64)
        return out.view(np.uint8)

    def chosen(self, choices: np.ndarray) -> np.ndarray:
        """Chosen-message OT: returns ``m_{c_i}[i]`` as ``uint8[m, L]``."""
        c = _choices(choices)
        t, off = self._t(c)
        y0, y1 = base.recv_arrays(self.party, self.peer, self.party.fresh("iknp-chosen"), 2)
        if (y0.dtype != np.uint8 or y1.dtype != np.uint8 or y0.shape != y1.shape or y0.ndim != 2
                or y0.shape[0] != c.size
                or y0.shape[1] % 16 or y0.shape[1] == 0):
            raise EncodingError(f"party {self.peer} sent OT payloads of shape {y0.shape}, "
                                f"expected ({c.size}, 16k) uint8")
        pad = _hash_rows(self._hash, t, off, y0.shape[1] // 16).view(np.uint8)
        return np.where(c[:, None].astype(bool), y1, y0) ^ pad
