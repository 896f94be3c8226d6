"""KKRT16 batched related-key OPRF: 1-out-of-N OT extension with a pseudorandom code (layer: mpc core).

The *OPRF receiver* (the IKNP extension receiver) holds one input ``r_b`` per
instance ``b``; the *OPRF sender* learns a key per instance and can evaluate
``F_b(y)`` on any number of inputs ``y``; the receiver learns ``F_b(r_b)`` and
nothing else, the sender learns nothing. Inputs are 128-bit blocks (callers
hash longer items into one block first).

Protocol (Kolesnikov, Kumaresan, Rosulek, Trieu 2016, Fig. 2; semi-honest)
--------
0. Setup: the sender draws ``s`` in {0,1}^k (``k = CODE_BITS = 512``) and a
   16-byte seed of the pseudorandom code ``C``; by ``k`` random OTs (roles
   reversed) it learns ``k_j^{s_j}`` of the receiver's random pairs; it sends
   the code seed. The ``k`` OTs are themselves extended by IKNP from 128
   base OTs (as libOTe bootstraps KKRT), a third of the cost of 512 base OTs.
1. Receiver, ``m`` inputs: columns ``t_j = G(k_j^0)``, ``u_j = t_j xor
   G(k_j^1) xor c_j``, where ``c_j`` is column ``j`` of the ``m x k`` matrix
   whose rows are ``C(r_b)``; sends ``u`` (``k x m`` bits).
2. Sender: ``q_j = G(k_j^{s_j}) xor s_j u_j``; by rows
   ``q_b = t_b xor (C(r_b) and s)``. Its key for instance ``b`` is ``(q_b, s)``:
   ``F_b(y) = H(q_b xor (C(y) and s), b)``.
3. Receiver outputs ``H(t_b, b) = F_b(r_b)``.

``C(x) = AES_{c0}(x) || AES_{c1}(x) || AES_{c2}(x) || AES_{c3}(x)`` with four
keys expanded from the code seed. ``H`` hashes the four 128-bit blocks of a
row by a chain of the fixed-key tweakable hash of :mod:`mpc.ot.crhash`:
``h = H'(x_0, b)``, ``h = H'(h xor x_i, b)`` for ``i = 1, 2, 3`` (a
different tweak domain per step), 16 bytes out.

Security
--------
Semi-honest, two parties. The sender's view (``u``) is uniform whatever the
inputs (each ``u_j`` is masked by ``G(k_j^{1-s_j})``). For ``y != r_b`` the
receiver would need ``q_b xor (C(y) and s) = t_b xor ((C(r_b) xor C(y)) and
s)``: the codewords differ in about ``k/2 = 256`` bits (a random 512-bit code;
fewer than 128 with probability below 2^-96 per pair), so ``F_b(y)`` hides
at least 128 unknown bits of ``s`` behind ``H``, which KKRT model as a random
oracle (we instantiate it from fixed-key AES in the ideal-permutation model,
as libOTe does). Each ``(q_b, s)`` may be evaluated on many ``y``: that is the
related-key OPRF of KKRT, not a general PRF. Not secure against a malicious
receiver (no consistency check).

Cost
----
Setup: 128 base OTs (sender -> receiver 32 bytes, back ``128·32``), one IKNP
extension of 512 random OTs (sender -> receiver ``128·64`` bytes) and 16 bytes
of code seed: 3 messages. ``m`` instances: one message receiver -> sender of
``64 · 8·ceil(m/8)`` bytes (``k/8`` bytes per instance). Computation: receiver
``4m`` AES for the code, ``2k`` PRG streams of ``m/8`` bytes, a ``512 x m``
bit transpose twice, ``4m`` hash AES; sender ``4`` code AES and ``4`` hash AES
per evaluated input.

References
----------
V. Kolesnikov, R. Kumaresan, M. Rosulek, N. Trieu, "Efficient Batched
Oblivious PRF with Applications to Private Set Intersection", CCS 2016.
Y. Ishai, J. Kilian, K. Nissim, E. Petrank, CRYPTO 2003 (the extension).
"""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import EncodingError, ParameterError
from ..party import Party
from . import base
from .crhash import DOMAIN_OT, FixedKeyHash
from .iknp import MAX_EXTEND, IKNPReceiver, IKNPSender, _expand
from .transpose import transpose_bits

CODE_BITS = 512
"""Width ``k`` of the pseudorandom code, in bits (4 AES blocks)."""
CODE_WORDS = CODE_BITS // 64
OUT_BYTES = 16
"""Bytes of each OPRF output."""
_DOMAIN = DOMAIN_OT | np.uint64(1 << 62)      # tweaks of the output hash chain
_CHUNK = 1 << 16                             # rows per evaluation batch (bounds memory)


def _aes_ecb(key: bytes, src: np.ndarray) -> np.ndarray:
    """AES-128-ECB of the C-contiguous ``uint64[n, 2]`` blocks under ``key``, as a new array."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    n = src.size * 8
    buf = np.empty(n + 16, np.uint8)
    if n:
        enc.update_into(memoryview(src.reshape(-1).view(np.uint8)), memoryview(buf[:n + 15]))  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
    return buf[:n].view(np.uint64).reshape(src.shape)


class PseudorandomCode:
    """``C: {0,1}^128 -> {0,1}^512``, four AES-128 keys from a 16-byte seed."""

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != 16:
            raise ParameterError("the code seed must be 16 bytes")
        raw = hashlib.shake_128(b"Concilium KKRT code v1" + bytes(seed)).digest(64)
        self._keys = [raw[16 * i: 16 * i + 16] for i in range(4)]

    def __call__(self, blocks: np.ndarray) -> np.ndarray:
        """Codewords of ``uint64[n, 2]`` blocks: ``uint64[n, 8]``."""
        src = np.ascontiguousarray(blocks, dtype=np.uint64)
        if src.ndim != 2 or src.shape[1] != 2:
            raise ParameterError("code inputs must be uint64[n, 2] blocks")
        out = np.empty((src.shape[0], CODE_WORDS), np.uint64)
        for i, key in enumerate(self._keys):     # 4 AES calls over the whole array
            out[:, 2 * i: 2 * i + 2] = _aes_ecb(key, src)
        return out


def _hash_rows(h: FixedKeyHash, rows: np.ndarray, tweak: np.ndarray) -> np.ndarray:
    """The output hash: a chain of the tweakable fixed-key hash over the 4 blocks of each row."""
    acc = h(np.ascontiguousarray(rows[:, 0:2]), tweak, _DOMAIN)
    for i in range(1, 4):
        acc ^= rows[:, 2 * i: 2 * i + 2]
        acc = h(acc, tweak, _DOMAIN | np.uint64(i))
    return acc.view(np.uint8)


def _check_count(m: int) -> int:
    if not isinstance(m, (int, np.integer)) or not 0 < m <= MAX_EXTEND:
        raise ParameterError(f"number of OPRF instances must be in [1, {MAX_EXTEND}], got {m!r}")
    return int(m)


class KKRTSender:
    """OPRF sender after setup (holds ``s``, the chosen base keys and the code). One per peer."""

    def __init__(self, party: Party, peer: int, s: np.ndarray, keys: np.ndarray, code_seed: bytes) -> None:
        self.party = party
        self.peer = peer
        self._s_bits = s
        self._s = np.packbits(s, bitorder="little").view(np.uint64)     # uint64[8]
        self._keys = keys
        self.code = PseudorandomCode(code_seed)
        self._calls = 0
        self._count = 0
        self._hash = FixedKeyHash()

    @classmethod
    def setup(cls, party: Party, peer: int) -> "KKRTSender":
        """Get the ``k`` random OTs (as their receiver, by IKNP) and send the code seed."""
        with party.scope("kkrt-setup"):
            s = party.prg.bits(CODE_BITS)
            keys = IKNPReceiver.setup(party, peer).random(s)
            seed = party.prg.bytes(16)
            party.send(peer, "code", np.frombuffer(seed, np.uint8))
        return cls(party, peer, s, keys, seed)

    def keys(self, m: int) -> "OPRFKeys":
        """Receive the receiver's matrix for ``m`` instances; return their keys."""
        m = _check_count(m)
        party = self.party
        nbytes = (m + 7) // 8
        (u,) = base.recv_arrays(party, self.peer, party.fresh("kkrt-u"), 1)
        if u.dtype != np.uint8 or u.shape != (CODE_BITS, nbytes):
            raise EncodingError(f"party {self.peer} sent a KKRT matrix of {u.dtype} {u.shape}, "
                                f"expected ({CODE_BITS}, {nbytes}) uint8")
        q = _expand(self._keys, self._calls, nbytes)
        q ^= u * self._s_bits[:, None]
        rows = np.ascontiguousarray(transpose_bits(q, m)).view(np.uint64)   # uint64[m, 8]
        keys = OPRFKeys(rows, self._s, self.code, self._count)
        self._calls += 1
        self._count += m
        return keys


class OPRFKeys:
    """The sender's keys of one batch of ``m`` instances: evaluate ``F_b(y)`` for any ``(b, y)``."""

    def __init__(self, q: np.ndarray, s: np.ndarray, code: PseudorandomCode, offset: int) -> None:
        self._q, self._s, self._code, self._offset = q, s, code, offset
        self._hash = FixedKeyHash()

    def __len__(self) -> int:
        return self._q.shape[0]

    def evaluate(self, instances: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """``F_b(y)`` for each pair (``instances[i]``, ``blocks[i]``): ``uint8[n, 16]``."""
        b = np.asarray(instances)
        if b.ndim != 1 or b.shape[0] != blocks.shape[0] or (b.size and (b.min() < 0 or b.max() >= len(self))):
            raise ParameterError(f"instances must be a 1-D array of indices below {len(self)}, "
                                 "one per block")
        out = np.empty((b.size, OUT_BYTES), np.uint8)
        for lo in range(0, b.size, _CHUNK):      # bounded memory; each chunk fully vectorised
            bi = b[lo:lo + _CHUNK]
            rows = self._code(blocks[lo:lo + _CHUNK])
            rows &= self._s
            rows ^= self._q[bi]
            tweak = bi.astype(np.uint64) + np.uint64(self._offset)
            out[lo:lo + _CHUNK] = _hash_rows(self._hash, rows, tweak)
        return out


class KKRTReceiver:
    """OPRF receiver after setup: holds the ``k`` base key pairs and the code. One per peer."""

    def __init__(self, party: Party, peer: int, k0: np.ndarray, k1: np.ndarray, code_seed: bytes) -> None:
        self.party = party
        self.peer = peer
        self._k0, self._k1 = k0, k1
        self.code = PseudorandomCode(code_seed)
        self._calls = 0
        self._count = 0
        self._hash = FixedKeyHash()

    @classmethod
    def setup(cls, party: Party, peer: int) -> "KKRTReceiver":
        """Get the ``k`` random OT pairs (as their sender, by IKNP) and receive the code seed."""
        with party.scope("kkrt-setup"):
            k0, k1 = IKNPSender.setup(party, peer).random(CODE_BITS)
            (seed,) = base.recv_arrays(party, peer, "code", 1)
            if seed.dtype != np.uint8 or seed.shape != (16,):
                raise EncodingError(f"party {peer} sent a KKRT code seed of {seed.dtype} {seed.shape}, "
                                    "expected (16,) uint8")
        return cls(party, peer, k0, k1, seed.tobytes())

    def encode(self, blocks: np.ndarray) -> np.ndarray:
        """Send the matrix for inputs ``blocks`` (``uint64[m, 2]``); return ``F_b(r_b)``, ``uint8[m, 16]``."""
        blocks = np.ascontiguousarray(blocks, dtype=np.uint64)
        if blocks.ndim != 2 or blocks.shape[1] != 2:
            raise ParameterError("OPRF inputs must be uint64[m, 2] blocks")
        m = _check_count(blocks.shape[0])
        nbytes = (m + 7) // 8
        mpad = -(-m // 64) * 64
        code = np.zeros((mpad, CODE_WORDS), np.uint64)
        code[:m] = self.code(blocks)
        cols = transpose_bits(code.view(np.uint8), CODE_BITS)          # uint8[512, mpad/8]
        t = _expand(self._k0, self._calls, nbytes)
        u = _expand(self._k1, self._calls, nbytes)
        u ^= t
        u ^= cols[:, :nbytes]
        party = self.party
        party.send(self.peer, party.fresh("kkrt-u"), u)
        rows = np.ascontiguousarray(transpose_bits(t, m)).view(np.uint64)   # uint64[m, 8]
        tweak = np.arange(self._count, self._count + m, dtype=np.uint64)
        out = np.empty((m, OUT_BYTES), np.uint8)
        for lo in range(0, m, _CHUNK):
            out[lo:lo + _CHUNK] = _hash_rows(self._hash, rows[lo:lo + _CHUNK], tweak[lo:lo + _CHUNK])
        self._calls += 1
        self._count += m
        return out
