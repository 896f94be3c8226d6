"""OT correlations between every pair of n >= 2 parties, all pairs in the same rounds (layer: mpc core).

The plumbing under :class:`~mpc.preprocessing.ot.OTSource`. For each pair
``i < j`` there is one IKNP extension with party ``i`` as OT *sender* and
``j`` as *receiver*; its messages are tagged under the scope ``pair<i>-<j>``,
so that each pair's counters advance on their own. A primitive first sends
every IKNP matrix (as receiver), then answers every matrix it receives (as
sender), then reads the answers: all pairs share the same rounds.

Protocol
--------
1. **Vector OLE** (:meth:`PairwiseOT._ole`, Gilboa 1999). Each party passes
   vectors ``x`` (what it offers to higher parties) and scalars ``y`` (whose
   low ``L`` bits it chooses by towards lower parties). In pair ``(i, j)``, for
   bit ``t`` of ``y_j`` one random OT gives party i pads ``p_0, p_1``; party i
   sends ``d = p_0 - p_1 + 2^t x_i`` and keeps ``-p_0``; party j keeps
   ``p_c + c d``. The result is this party's share of
   ``sum_{i < j} x_i * y_j`` over its pairs. A product of sums
   ``(sum_i a_i)(sum_j b_j)`` takes ``x = (a, b)`` and ``y = (b, a)``: the
   pair ``(i, j)`` yields ``a_i b_j + b_i a_j``, every cross term once.
2. **Shared random bits** (:meth:`PairwiseOT._shared_bits`). Party i draws
   ``u_i``; ``r = u_0 xor ... xor u_{n-1}`` is XOR-shared for free. Its
   additive sharing is a chain: ``r_1 = u_0`` (held by party 0) and
   ``r_{k+1} = r_k + u_k - 2 r_k u_k`` for ``k = 1 .. n-1``, where
   ``r_k u_k = sum_{i<k} [r_k]_i u_k`` is one 1-bit OLE from each party
   ``i < k`` to party ``k``. Party ``k`` can answer only once it holds its
   share of ``r_k``, so the chain takes ``n - 1`` correction rounds (the IKNP
   matrices all go in the first).
3. **AND triples** (:meth:`PairwiseOT._and_words`, ALSZ 2013): per AND bit
   and pair, two random OTs chosen by the receiver's ``a_j`` and ``b_j``; the
   sender sends one bit ``lsb(k_0) xor lsb(k_1) xor x`` per OT, ``x`` its
   ``b_i`` (resp. ``a_i``). Party 0 takes its shares from the pair ``(0, 1)``
   keys themselves (``lsb(k_0 xor k_1)``), so that pair needs no reply (with
   two parties: no reply at all, as before).

Security
--------
Semi-honest, dishonest majority: any coalition of up to ``n - 1`` parties
learns nothing about the others' shares. Each pair's view is the two-party
view (IKNP matrix uniform for the sender; corrections masked by the pad of
the choice not taken); a coalition sees the union of its honest peers'
pairwise views, each of which is independent of the honest shares. Not
secure against an active party.

Cost (``P = n(n-1)/2`` pairs; 16 bytes of IKNP matrix per OT)
-------------------------------------------------------------
* OLE of ``N`` scalars of ``L`` bits, width ``w``: ``P L N`` OTs and
  ``P L N (16 + 8 w)`` bytes; 2 rounds.
* ``N`` shared bits: ``P N`` OTs, ``24 P N`` bytes; ``n`` rounds.
* ``N`` AND bits: ``2 P N`` OTs (``32 P N`` bytes of matrices) plus
  ``2 N / 8`` bytes of corrections for every pair but ``(0, 1)``; 1 round for
  two parties, 2 for more.
* Setup: 128 base OTs per pair (``32 * 129`` bytes), about ``n`` rounds once.

References
----------
N. Gilboa, "Two party RSA key generation", CRYPTO 1999.
Y. Ishai, J. Kilian, K. Nissim, E. Petrank, "Extending oblivious transfers
efficiently", CRYPTO 2003.
G. Asharov, Y. Lindell, T. Schneider, M. Zohner, "More efficient oblivious
transfer and extensions", CCS 2013.
M. Keller, E. Orsini, P. Scholl, "MASCOT", CCS 2016 (n-party triples from
pairwise OT).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ..errors import EncodingError
from ..ot.crhash import FixedKeyHash
from ..ot.iknp import IKNPReceiver, IKNPSender
from ..party import Party

MAX_OTS = 1 << 20
"""OTs per IKNP extension call and pair (bounds memory: about 16 MB of keys per side)."""
_MAX_WORDS = 1 << 22
"""Correction words per chunk and pair (32 MB)."""
_PAD_DOMAIN = 0x5A << 56


def bits_of(y: np.ndarray, nbits: int) -> np.ndarray:
    """The low ``nbits`` bits of each word, flattened: bit j of word e at ``e * nbits + j``."""
    if nbits == 1:
        return (y & np.uint64(1)).astype(np.uint8)
    raw = np.ascontiguousarray(y, dtype="<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :nbits].reshape(-1)


class PairwiseOT:
    """One party's IKNP extensions with every other party and the primitives on them.

    A base for preprocessing sources; subclasses call :meth:`_init_pairwise`.
    """

    party: Party
    batch_ots: int

    def _init_pairwise(self, party: Party, batch_ots: int) -> None:
        self.party = party
        self.batch_ots = int(batch_ots)
        self.higher = list(range(party.id + 1, party.n))
        """Peers this party is the IKNP sender to (it offers ``x``)."""
        self.lower = list(range(party.id))
        """Peers this party is the IKNP receiver from (it chooses by ``y``)."""
        self._as_sender: dict[int, IKNPSender] = {}
        """This party's extension to each higher peer."""
        self._as_receiver: dict[int, IKNPReceiver] = {}
        """This party's extension from each lower peer."""
        self._hash = FixedKeyHash()
        self._pads = 0
        self.ots = 0
        """OTs this party took part in so far (as sender or receiver, summed over its pairs)."""

    # -- local randomness (hooks for tests) -------------------------------------------
    def _random(self, shape: tuple[int, ...]) -> np.ndarray:
        """This party's uniform share words."""
        return self.party.prg.uint64(shape)

    def _random_bits(self, count: int) -> np.ndarray:
        return self.party.prg.bits(count).astype(np.uint8)

    # -- extensions --------------------------------------------------------------------
    def _pair(self, peer: int) -> AbstractContextManager[None]:
        """The tag scope of the pair (this party, ``peer``): the same name at both ends."""
        lo, hi = sorted((self.party.id, peer))
        return self.party.scope(f"pair{lo}-{hi}")

    def _setup(self) -> None:
        """Every pair's extension, set up on first use (base OTs as receiver first, then as sender)."""
        if self._as_sender or self._as_receiver:
            return
        with self.party.scope("ot-setup"):
            for p in self.lower:            # base-OT sender: send A, wait for B
                with self._pair(p):
                    self._as_receiver[p] = IKNPReceiver.setup(self.party, p)
            for p in self.higher:           # base-OT receiver: wait for A, send B
                with self._pair(p):
                    self._as_sender[p] = IKNPSender.setup(self.party, p)

    def _expand(self, keys: np.ndarray, w: int) -> np.ndarray:
        """Pads of ``w`` words from 16-byte OT keys (``uint8[m, 16]``) -> ``uint64[m, w]``."""
        blocks = keys.view(np.uint64).reshape(-1, 2)
        if w <= 2:
            return blocks[:, :w]
        m = blocks.shape[0]
        nb = (w + 1) // 2
        out = np.empty((m, nb, 2), np.uint64)
        out[:, 0] = blocks
        idx = np.arange(self._pads, self._pads + m, dtype=np.uint64)
        for b in range(1, nb):  # nb = w/2 blocks, one batched AES call each
            out[:, b] = self._hash(blocks, idx, _PAD_DOMAIN | b)
        return out.reshape(m, 2 * nb)[:, :w]

    def _recv_words(self, peer: int, tag: str, shape: tuple[int, ...], what: str) -> np.ndarray:
        with self._pair(peer):
            (d,) = self.party.recv(peer, tag)
        if d.dtype != np.uint64 or d.shape != shape:
            raise EncodingError(f"party {self.party.id}: party {peer} sent {what} of shape {d.shape} "
                                f"{d.dtype} under {tag!r}, expected {shape} uint64")
        return d

    # -- vector OLE --------------------------------------------------------------------
    def _ole(self, x: np.ndarray | None, y: np.ndarray | None, count: int, w: int,
             nbits: int = 64) -> np.ndarray:
        """This party's share of ``sum_{pairs i < j} x_i[e] * y_j[e]`` (``uint64[count, w]``).

        ``x`` (``uint64[count, w]``) is offered to every higher party, the low
        ``nbits`` bits of ``y`` (``uint64[count]``) choose towards every lower
        one; either may be None where this party has no such peer. Chunks of
        at most ``batch_ots`` OTs and ``_MAX_WORDS`` correction words per pair,
        pipelined: the next chunk's matrices go out before this chunk's
        corrections are read.
        """
        out = np.zeros((count, w), np.uint64)
        if count == 0 or w == 0:       # nothing to multiply (an empty matmul dimension)
            return out
        per = max(1, min(self.batch_ots // nbits, _MAX_WORDS // (nbits * w)))
        self._setup()
        weights = (np.uint64(1) << np.arange(nbits, dtype=np.uint64))[None, :, None]
        pending: list[tuple[int, int, str, np.ndarray, list[tuple[int, np.ndarray]]]] = []
        for lo in range(0, count, per):
            hi = min(count, lo + per)
            m = (hi - lo) * nbits
            self.ots += m * (self.party.n - 1)
            tag = self.party.fresh("ole")
            if self.lower:             # 1. as receiver: every matrix out
                c = bits_of(y[lo:hi], nbits)  # type: ignore[index]
                pcs = []
                for p in self.lower:
                    with self._pair(p):
                        pcs.append((p, self._expand(self._as_receiver[p].random(c), w)))
                pending.append((lo, hi, tag, c, pcs))
            for p in self.higher:      # 2. as sender: answer every matrix
                with self._pair(p):
                    k0, k1 = self._as_sender[p].random(m)
                    p0 = self._expand(k0, w).reshape(hi - lo, nbits, w)
                    d = p0 - self._expand(k1, w).reshape(hi - lo, nbits, w)
                    d += x[lo:hi, None, :] * weights  # type: ignore[index]
                    self.party.send(p, tag, d.reshape(m, w))
                out[lo:hi] -= p0.sum(axis=1, dtype=np.uint64)
            if len(pending) > 1:       # 3. as receiver: the previous chunk's corrections
                self._finish_chunk(out, nbits, w, *pending.pop(0))
            self._pads += m
        for item in pending:
            self._finish_chunk(out, nbits, w, *item)
        return out

    def _finish_chunk(self, out: np.ndarray, nbits: int, w: int, lo: int, hi: int, tag: str,
                      c: np.ndarray, pcs: list[tuple[int, np.ndarray]]) -> None:
        """Receiver: ``p_c + c d`` summed over the bits and the lower peers, for one chunk."""
        m = (hi - lo) * nbits
        cw = c[:, None].astype(np.uint64)
        for p, pc in pcs:
            d = self._recv_words(p, tag, (m, w), "OLE corrections") * cw
            d += pc
            out[lo:hi] += d.reshape(hi - lo, nbits, w).sum(axis=1, dtype=np.uint64)

    # -- shared random bits ------------------------------------------------------------
    def _shared_bits(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` random bits: this party's XOR share (uint8 0/1) and additive share (uint64)."""
        u = self._random_bits(count)
        u64 = u.astype(np.uint64)
        share = u64.copy() if self.party.id == 0 else np.zeros(count, np.uint64)
        if count == 0:
            return u, share
        self._setup()
        me, n = self.party.id, self.party.n
        for lo in range(0, count, self.batch_ots):
            hi = min(count, lo + self.batch_ots)
            m = hi - lo
            self.ots += m * (n - 1)
            tag = self.party.fresh("bits")
            pcs = []
            for p in self.lower:       # all matrices first: the choices u are known now
                with self._pair(p):
                    pcs.append((p, self._expand(self._as_receiver[p].random(u[lo:hi]), 1)[:, 0]))
            for k in range(1, n):      # the chain r <- r + u_k - 2 r u_k, k = 1 .. n-1
                if me < k:             # offer my share of r_k to party k
                    with self._pair(k):
                        k0, k1 = self._as_sender[k].random(m)
                        p0 = self._expand(k0, 1)[:, 0]
                        self.party.send(k, tag, p0 - self._expand(k1, 1)[:, 0] + share[lo:hi])
                    share[lo:hi] += p0 << np.uint64(1)   # - 2 * (my share -p0 of r_k u_k)
                elif me == k:          # collect r_k u_k from every lower party
                    prod = share[lo:hi] * u64[lo:hi]
                    for p, pc in pcs:
                        d = self._recv_words(p, tag, (m,), "bit corrections")
                        prod += pc + u64[lo:hi] * d
                    share[lo:hi] += u64[lo:hi] - (prod << np.uint64(1))
            self._pads += m
        return u, share

    # -- AND triples -------------------------------------------------------------------
    def _and_words(self, size: int) -> np.ndarray:
        """``uint64[3, size]``: this party's XOR shares of ``a``, ``b``, ``a & b`` (2 random OTs per bit and pair)."""
        return self._and_finish(self._and_start(size))

    def _and_start(self, size: int) -> tuple[Any, ...]:
        """Steps 1-2 of an AND batch: matrices out (as receiver), corrections out (as sender)."""
        nbytes = size * 8
        self._setup()
        self.ots += 128 * size * (self.party.n - 1)
        tag = self.party.fresh("and")
        a = b = choices = None
        got: list[tuple[int, np.ndarray]] = []
        if self.lower:                 # 1. as receiver: my shares are my choices
            ab = self._random((2, size))
            a, b = ab[0].view(np.uint8), ab[1].view(np.uint8)
            choices = ab.view(np.uint8).reshape(-1)        # a bits, then b bits
            bits = np.unpackbits(choices, bitorder="little")
            for p in self.lower:
                with self._pair(p):
                    kc = self._as_receiver[p].random(bits)
                got.append((p, np.packbits(kc[:, 0] & 1, bitorder="little")))
        cross = np.zeros(2 * nbytes, np.uint8)
        for p in self.higher:          # 2. as sender
            with self._pair(p):
                k0, k1 = self._as_sender[p].random(128 * size)
                lsb0 = k0[:, 0] & 1
                delta = np.packbits((lsb0 ^ k1[:, 0]) & 1, bitorder="little")
                if a is None:          # party 0: its shares are the pair (0, 1)'s offsets, no reply
                    b, a = delta[:nbytes], delta[nbytes:]  # b0 for the OTs chosen by a1, a0 by b1
                else:
                    self.party.send(p, tag, delta ^ np.concatenate([b, a]))  # type: ignore[list-item]
            cross ^= np.packbits(lsb0, bitorder="little")
        self._pads += 128 * size
        return nbytes, tag, a, b, choices, got, cross

    def _and_finish(self, state: tuple[Any, ...]) -> np.ndarray:
        """Step 3 of an AND batch: as receiver, ``lsb(k_c) xor c * correction``; the words."""
        nbytes, tag, a, b, choices, got, cross = state
        for p, kc_bits in got:
            if p == 0 and self.party.id == 1:
                cross ^= kc_bits
                continue
            with self._pair(p):
                (e,) = self.party.recv(p, tag)
            if e.dtype != np.uint8 or e.shape != (2 * nbytes,):
                raise EncodingError(f"party {self.party.id}: party {p} sent AND corrections of shape "
                                    f"{e.shape} {e.dtype} under {tag!r}, expected ({2 * nbytes},) uint8")
            cross ^= kc_bits ^ (e & choices)
        c = (a & b) ^ cross[:nbytes] ^ cross[nbytes:]
        return np.stack([np.ascontiguousarray(v).view(np.uint64) for v in (a, b, c)])
