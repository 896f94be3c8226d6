"""Dealer-free Beaver triples for two parties from Paillier encryption (layer: mpc core).

:class:`PaillierSource` makes arithmetic triples (``mul`` and ``matmul``) over
Z_2^64 with additively homomorphic encryption instead of OT, for comparison
with :mod:`mpc.preprocessing.ot`: far less traffic for matrix triples, far
more computation. Truncation pairs, binary triples and daBits are delegated
to an :class:`~mpc.preprocessing.ot.OTSource` on the same parties (they need
random bits, which OT makes cheaply).

Protocol (party 0 holds the key; semi-honest)
--------
0. Setup (once): party 0 generates a Paillier key (``key_bits``, 2048 by
   default) and sends the public key.
1. Each party draws its shares ``a_i, b_i`` (uniform in Z_2^64).
2. Party 0 sends ``E(a_0)`` and ``E(b_0)``, one ciphertext per entry.
3. Party 1 computes, for each entry ``e`` of ``c`` (with ``T`` terms: 1 for
   ``mul``, ``k`` for a matmul with inner dimension ``k``)
   ``E(v_e) = prod_t E(a_0)^(b_1) E(b_0)^(a_1) * E(r_e)``, i.e.
   ``v_e = sum_t (a_0 b_1 + b_0 a_1) + r_e`` over the integers, with
   ``r_e`` uniform below ``2^(129 + log2 T + sigma)`` (``sigma = 40``:
   statistical hiding). It packs ``floor((bits - 1) / s)`` of them per
   ciphertext by Horner's rule (slot ``s = 130 + ceil(log2 T) + sigma`` bits),
   re-randomises each packed ciphertext and sends it.
4. Party 0 decrypts, reads the slots, ``c_0 = a_0 * b_0 + v mod 2^64``;
   party 1 keeps ``c_1 = a_1 * b_1 - r mod 2^64``.

Security: semi-honest, two parties. Party 1 sees only ciphertexts under party
0's key (IND-CPA under DCR); party 0 sees ``v_e``, within ``2^-40`` of
uniform whatever ``a_1, b_1`` are, and fresh ciphertexts (re-randomised, so
their randomness carries nothing). Keys under 2048 bits are refused unless
``insecure_for_testing=True``.

Cost (``bits``-bit modulus, ciphertext ``L = bits/4`` bytes; ``A``, ``B``,
``C`` entries of ``a``, ``b``, ``c``; ``k`` = slots per ciphertext)
--------------------------------------------------------------------
Bytes: party 0 sends ``L (A + B)``, party 1 ``L ceil(C / k)``; a ``mul``
triple at 2048 bits: 1,024 + 512/12 = about 1,067 bytes (vs 3,072 by OT); a
``64 x 64 x 64`` matmul: 4.4 MB (vs 277 MB by OT). Work: party 0 ``A + B``
encryptions and ``ceil(C / k)`` decryptions; party 1 ``C`` multi-exponentiations
of ``2T`` 64-bit exponents. Rounds: 2 per batch, plus 1 for the key.

References: P. Paillier, Eurocrypt 1999; the triple protocol is the
two-party "multiplication with masking" of e.g. SecureML (Mohassel-Zhang,
S&P 2017, LHE-based matrix triples) and ABY's DJN-based triple generation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import gmpy2
import numpy as np
from gmpy2 import mpz

from ..arith.ring import ring_matmul
from ..errors import EncodingError, ParameterError
from ..he import paillier
from ..rand import random_seed
from .base import Preprocessing, Shares, triple_shapes
from .ot import OTSource
from .store import SealableMixin, offline

if TYPE_CHECKING:
    from ..party import Party

SIGMA = 40
"""Statistical security of the mask ``r`` (bits)."""
_MASK64 = (1 << 64) - 1


def _to_bytes(values: list[mpz], width: int) -> np.ndarray:
    return np.frombuffer(b"".join(int(v).to_bytes(width, "little") for v in values), np.uint8)


def _from_bytes(arr: np.ndarray, count: int, width: int, pub: paillier.PaillierPublicKey,
                who: str, tag: str) -> list[mpz]:
    """``count`` little-endian ciphertexts, each a unit mod n^2 (as in ``parse_ciphertexts``)."""
    if arr.dtype != np.uint8 or arr.size != count * width:
        raise EncodingError(f"{who} sent {arr.size} bytes of ciphertexts under {tag!r}, "
                            f"expected {count} x {width}")
    raw = arr.tobytes()
    out = [mpz(int.from_bytes(raw[i * width:(i + 1) * width], "little")) for i in range(count)]
    for i, c in enumerate(out):
        if not pub.is_ciphertext(c):
            raise EncodingError(f"{who} sent ciphertext {i} under {tag!r} that is not a unit "
                                "modulo n^2 (outside (0, n^2) or sharing a factor with n)")
    return out


def _terms(op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(ia, ib)`` of shape ``(C, T)``: entry e of c sums ``a[ia[e,t]] * b[ib[e,t]]``."""
    if op == "mul":
        sc = triple_shapes(op, sa, sb)
        ia = np.broadcast_to(np.arange(int(np.prod(sa, dtype=np.int64))).reshape(sa), sc).reshape(-1, 1)
        ib = np.broadcast_to(np.arange(int(np.prod(sb, dtype=np.int64))).reshape(sb), sc).reshape(-1, 1)
        return ia, ib
    A: np.ndarray = np.arange(int(np.prod(sa, dtype=np.int64))).reshape(sa)
    B: np.ndarray = np.arange(int(np.prod(sb, dtype=np.int64))).reshape(sb)
    A = A.reshape((1,) + sa) if len(sa) == 1 else A
    B = B.reshape(sb + (1,)) if len(sb) == 1 else B
    m, k, n = A.shape[-2], A.shape[-1], B.shape[-1]
    batch = tuple(np.broadcast_shapes(A.shape[:-2], B.shape[:-2]))
    Ab = np.broadcast_to(A, batch + (m, k))[..., :, None, :]              # (..., m, 1, k)
    Bb = np.swapaxes(np.broadcast_to(B, batch + (k, n)), -1, -2)[..., None, :, :]  # (..., 1, n, k)
    full = batch + (m, n, k)
    rows = int(np.prod(full[:-1], dtype=np.int64))      # explicit: -1 is ambiguous when k = 0
    return np.broadcast_to(Ab, full).reshape(rows, k), np.broadcast_to(Bb, full).reshape(rows, k)


class PaillierSource(SealableMixin, Preprocessing):
    """Arithmetic triples by Paillier for one of two parties (party 0 holds the key).

    Parameters
    ----------
    party:
        This party of a two-party session.
    key_bits:
        Paillier modulus size (2048 default; smaller only with ``insecure_for_testing``).
    """

    def __init__(self, party: Party, *, key_bits: int = paillier.DEFAULT_BITS,
                 insecure_for_testing: bool = False) -> None:
        super().__init__()
        if party.n != 2:
            raise ParameterError(f"the Paillier preprocessing source serves exactly 2 parties, not {party.n}")
        if key_bits < paillier.MIN_BITS and not insecure_for_testing:
            raise ParameterError(f"a {key_bits}-bit Paillier key is insecure; at least {paillier.MIN_BITS} "
                                 "bits are required (insecure_for_testing=True only in tests)")
        self.party = party
        self.peer = 1 - party.id
        self.key_bits = key_bits
        self.insecure = insecure_for_testing
        self._public: paillier.PaillierPublicKey | None = None
        self._secret: paillier.PaillierSecretKey | None = None
        self._bits_source = OTSource(party)

    def _random(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.party.prg.uint64(shape)

    def _key(self) -> paillier.PaillierPublicKey:
        if self._public is None:
            tag = self.party.fresh("he-key")
            if self.party.id == 0:
                pair = paillier.keygen(self.key_bits, insecure_for_testing=self.insecure)
                self._public, self._secret = pair.public, pair.secret
                self.party.send(self.peer, tag, np.frombuffer(pair.public.serialize(), np.uint8), public=True)
            else:
                (raw,) = self.party.recv(self.peer, tag)
                if raw.dtype != np.uint8 or raw.ndim != 1:
                    raise EncodingError(f"party {self.peer} sent a public key as {raw.dtype}{raw.shape}")
                pub = paillier.PaillierPublicKey.load(raw.tobytes(), insecure_for_testing=self.insecure)
                if pub.bits < self.key_bits:
                    raise ParameterError(f"party {self.peer}'s key has {pub.bits} bits, expected {self.key_bits}")
                self._public = pub
        return self._public

    def _triples(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...], count: int) -> list[Shares]:
        sc = triple_shapes(op, sa, sb)
        ia, ib = _terms(op, sa, sb)
        T = ia.shape[1] if ia.ndim == 2 else 1
        a = self._random((count,) + sa)
        b = self._random((count,) + sb)
        own = [a[i] * b[i] if op == "mul" else ring_matmul(a[i], b[i]) for i in range(count)]
        C = ia.shape[0]
        if C == 0 or T == 0:            # no cross terms (an empty dimension)
            return [(a[i], b[i], np.asarray(own[i]).reshape(sc)) for i in range(count)]
        with offline(self.party), self.party.scope("he-triple"):
            pub = self._key()
            width = 2 * ((pub.bits + 7) // 8)
            slot = 130 + max(0, math.ceil(math.log2(T))) + SIGMA
            per = (pub.bits - 1) // slot
            total = C * count
            packs = (total + per - 1) // per
            tag = self.party.fresh("he")
            A_flat, B_flat = a.reshape(count, -1), b.reshape(count, -1)
            if self.party.id == 0:
                plain = [int(v) for v in A_flat.reshape(-1)] + [int(v) for v in B_flat.reshape(-1)]
                cts = pub.encrypt_raw(plain)
                self.party.send(self.peer, tag, _to_bytes(cts, width))
                (back,) = self.party.recv(self.peer, tag)
                packed = _from_bytes(back, packs, width, pub, f"party {self.peer}", tag)
                values = self._secret.decrypt_raw(packed)  # type: ignore[union-attr]
                v = np.empty(packs * per, np.uint64)
                for p, x in enumerate(values):
                    x = int(x)
                    for s in range(per):
                        v[p * per + s] = (x >> (slot * s)) & _MASK64
                cross = v[:total].reshape(count, C)
            else:
                (got,) = self.party.recv(self.peer, tag)
                na, nb = A_flat.shape[1], B_flat.shape[1]
                cts = _from_bytes(got, count * (na + nb), width, pub, f"party {self.peer}", tag)
                ea, eb = cts[:count * na], cts[count * na:]
                n, n2 = pub.n, pub.n_squared
                rbits = slot - 1
                rraw = random_seed(max(16, total * ((rbits + 7) // 8)))
                step = (rbits + 7) // 8
                rs = [int.from_bytes(rraw[i * step:(i + 1) * step], "little") >> (8 * step - rbits)
                      for i in range(total)]
                out_cts: list[mpz] = []
                for i in range(count):
                    a1 = [int(x) for x in A_flat[i]]
                    b1 = [int(x) for x in B_flat[i]]
                    for e in range(C):
                        bases = [ea[i * na + j] for j in ia[e]] + [eb[i * nb + j] for j in ib[e]]
                        exps = [b1[j] for j in ib[e]] + [a1[j] for j in ia[e]]
                        ct = paillier.multiexp(bases, exps, n2)
                        out_cts.append(ct * (1 + rs[i * C + e] * n) % n2)
                shift = mpz(1) << slot
                packed = []
                for p in range(packs):
                    group = out_cts[p * per:(p + 1) * per]
                    acc = group[-1]
                    for ct in reversed(group[:-1]):  # Horner: slot s holds entry p * per + s
                        acc = gmpy2.powmod(acc, shift, n2) * ct % n2
                    packed.append(acc)
                noise = pub.randomness(len(packed))
                packed = [c * r % n2 for c, r in zip(packed, noise)]
                self.party.send(self.peer, tag, _to_bytes(packed, width))
                masks = np.array([r & _MASK64 for r in rs], dtype=np.uint64).reshape(count, C)
                cross = np.zeros((count, C), np.uint64) - masks
        return [(a[i], b[i], (np.asarray(own[i]).reshape(-1) + cross[i]).reshape(sc)) for i in range(count)]

    def _triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> Shares:
        return self._triples(op, sa, sb, 1)[0]

    # random-bit items come from OT (cheap there; HE would need a bit decomposition)
    def _trunc_pair(self, shape: tuple[int, ...], frac_bits: int) -> Shares:
        return self._bits_source._trunc_pair(shape, frac_bits)

    def _binary_triple(self, shape: tuple[int, ...]) -> Shares:
        return self._bits_source._binary_triple(shape)

    def _dabit(self, shape: tuple[int, ...]) -> Shares:
        return self._bits_source._dabit(shape)

    def prefetch(self, kind: str, *args: Any, count: int = 1) -> None:
        """Produce ``count`` items in one batch (triples by Paillier, the rest by OT)."""
        norm = self._prefetch_args(kind, args, count)
        if norm is None:
            return
        if kind in ("mul", "matmul"):
            sa, sb = norm
            items = self._triples(kind, sa, sb, count)
        elif kind in ("trunc", "binary", "dabit"):
            self._bits_source.prefetch(kind, *norm, count=count)
            key = (kind, *norm)
            items = [self._bits_source._store[key].popleft() for _ in range(count)]
        else:
            raise ParameterError(f"unknown preprocessing kind {kind!r}; "
                                 "expected one of ['binary', 'dabit', 'matmul', 'mul', 'trunc']")
        self.produced[kind] += count
        self._store[(kind,) + tuple(norm)].extend(items)


def he_factory(n: int, *, key_bits: int = paillier.DEFAULT_BITS,
               insecure_for_testing: bool = False) -> Callable[[Any], PaillierSource]:
    """``mpc.run(..., preprocessing="he")``: a :class:`PaillierSource` per party (2 parties only)."""
    if n != 2:
        raise ParameterError(f"preprocessing='he' serves exactly 2 parties, not {n}; "
                             "use 'dealer' (or a factory) for more parties")

    def make(party: Party) -> PaillierSource:
        return PaillierSource(party, key_bits=key_bits, insecure_for_testing=insecure_for_testing)
    return make

