"""Conversions between additive and binary shares: bit decomposition and bit injection (layer: mpc core).

Arithmetic to binary (:func:`a2b`, :func:`msb`)
------------------------------------------------
Additive shares ``x = x_0 + ... + x_{n-1} mod 2^64`` are, bit for bit, a sum
of n words each known to one party. Each ``x_i`` is a (trivial) XOR sharing of
itself, so the parties add n binary-shared words.

Protocol:

1. Reduce n summands to two with carry-save adders, 3 -> 2 per adder:
   ``s = a ^ b ^ c``, ``carry = maj(a, b, c) << 1`` with
   ``maj = ((a ^ c) & (b ^ c)) ^ c`` (one AND, one round per layer;
   ``ceil(log_{3/2}(n/2))`` layers: 0 for 2 parties, 1 for 3, 3 for 5).
2. Add the two words with a parallel-prefix (Kogge-Stone) adder:
   ``G = a & b``, ``P = a ^ b``, then for ``s = 1, 2, 4, ..., 32``:
   ``G ^= P & (G << s)``, ``P &= P << s`` (group generate/propagate; the two
   terms of the OR are disjoint, so XOR is OR); ``sum = a ^ b ^ (G << 1)``.
   7 rounds for all 64 bits.
3. :func:`msb` needs only the carry into bit 63, the group generate of bits
   0..62. It halves the stream at each level instead: pairs of adjacent
   groups ``(hi, lo)`` combine to ``G = G_hi ^ P_hi & G_lo``,
   ``P = P_hi & P_lo``, and the even/odd bits of the packed stream are
   gathered locally (:func:`~mpc.sharing.binary.split_even_odd`), so level k
   ANDs only ``64 / 2^k`` bits per element: 189 AND gates per element instead
   of 768, in the same 7 rounds.

Binary to arithmetic (:func:`inject`, :func:`b2a`)
--------------------------------------------------
With a daBit ``r`` (a random bit shared in both domains, from preprocessing):

1. Open ``c = b ^ r`` (one round; ``c`` is uniform: it reveals nothing).
2. ``[b] = c + [r] - 2 c [r]``: linear, ``c`` public.

:func:`inject` can also return ``[b * y]`` for shared ``y`` in the same round:
it opens Beaver masks for ``[r * y]`` beside ``c`` and uses
``b * y = c * y + (1 - 2c) * (r * y)``. A comparison followed by a
multiplexer (ReLU, max, clip) thus costs no extra round.

Security: semi-honest, any n-1 colluding parties, given correct
preprocessing. Every opened value is masked by a fresh uniform triple word or
daBit; each party's view is independent of the inputs.

Cost (n parties, m elements, ``L`` carry-save layers):

========  ===========  ===============================================
function  rounds       bytes sent per party to each other party
========  ===========  ===============================================
a2b       L + 7        16 m (L + 12)
msb       L + 7        16 m L + 16 w, w = m + 2 sum_{k=1..5} ceil(m / 2^k)
                       + ceil(m / 64) (189 m / 64 when 64 | m: about 47 m)
inject    1            8 ceil(m / 64), plus 8 m (1 + k) with k factors
b2a       1            8 m (64 daBits per word)
========  ===========  ===============================================

References: Demmler, Schneider, Zohner, "ABY", NDSS 2015 (conversions);
Mohassel, Rindal, "ABY3", CCS 2018 (carry-save reduction of 3 summands);
Rotaru, Wood, "MArBled circuits", INDOCRYPT 2019 and Escudero et al.,
"Improved primitives for MPC over mixed arithmetic-binary circuits",
CRYPTO 2020 (daBits); Knott et al., "CrypTen", NeurIPS 2021 (the same
A2B with a Kogge-Stone adder).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import ParameterError
from .binary import (and_many, and_words, pack_bits, public_share, split_even_odd,
                     unpack_bits, word_bits)

if TYPE_CHECKING:
    from ..party import Party
    from ..preprocessing.base import Preprocessing

_ONE = np.uint64(1)
_TOP = np.uint64(1 << 63)


def _need(party: Party) -> Preprocessing:
    """The party's preprocessing source (refused if it has none)."""
    if party.preprocessing is None:
        raise ParameterError("conversions between shares need a preprocessing source "
                             "(run with preprocessing='dealer' or another source)")
    return party.preprocessing


def _summands(party: Party, x: np.ndarray) -> list[np.ndarray]:
    """This party's XOR shares of the n words ``x_0 .. x_{n-1}`` (trivial sharings)."""
    zero = np.zeros_like(x)
    return [x.copy() if j == party.id else zero for j in range(party.n)]


def reduce_to_two(party: Party, terms: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Carry-save reduce binary-shared words to two with the same sum mod 2^64."""
    terms = list(terms)
    while len(terms) > 2:
        groups = len(terms) // 3
        pairs = []
        for g in range(groups):
            a, b, c = terms[3 * g:3 * g + 3]
            pairs.append((a ^ c, b ^ c))
        majs = and_many(party, pairs)
        nxt = []
        for g in range(groups):
            a, b, c = terms[3 * g:3 * g + 3]
            nxt.append(a ^ b ^ c)
            nxt.append((majs[g] ^ c) << _ONE)
        terms = nxt + terms[3 * groups:]
    if len(terms) == 1:
        return terms[0], np.zeros_like(terms[0])
    return terms[0], terms[1]


def add_binary(party: Party, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """XOR shares of ``a + b mod 2^64`` from XOR shares of words (Kogge-Stone, 7 rounds)."""
    p0 = a ^ b
    g = and_words(party, a, b)
    p = p0
    for s in (1, 2, 4, 8, 16, 32):
        sh = np.uint64(s)
        if s < 32:
            t, p_next = and_many(party, [(p, g << sh), (p, p << sh)])
            g = g ^ t
            p = p_next
        else:
            g = g ^ and_words(party, p, g << sh)
    return p0 ^ (g << _ONE)


def a2b(party: Party, x: np.ndarray) -> np.ndarray:
    """XOR shares of the ring elements whose additive shares are ``x`` (bit decomposition)."""
    _need(party)
    x = np.asarray(x, dtype=np.uint64)
    if x.size == 0:
        return np.zeros_like(x)
    flat = x.reshape(-1)
    a, b = reduce_to_two(party, _summands(party, flat))
    return add_binary(party, a, b).reshape(x.shape)


def msb(party: Party, x: np.ndarray) -> np.ndarray:
    """Packed XOR shares of the top bit of each ring element (stream order of ``x.ravel()``).

    Returns ``ceil(x.size / 64)`` words; see :func:`inject` to turn them into
    additive shares.
    """
    _need(party)
    flat = np.asarray(x, dtype=np.uint64).reshape(-1)
    m = flat.size
    if m == 0:
        return np.zeros(0, np.uint64)
    a, b = reduce_to_two(party, _summands(party, flat))
    p = a ^ b
    top = pack_bits(((p >> np.uint64(63)) & _ONE).astype(np.uint8))
    # carry into bit 63 = group generate of bits 0..62: make bit 63 a pure
    # propagate (P=1, G=0) and reduce the 64 groups of each word to one.
    g = and_words(party, a, b) & ~_TOP
    p = (p & ~_TOP) ^ public_share(party, np.full(m, _TOP, np.uint64))
    for level in range(6):
        g_lo, g_hi = split_even_odd(g)
        p_lo, p_hi = split_even_odd(p)
        if level < 5:
            t, p = and_many(party, [(p_hi, g_lo), (p_hi, p_lo)])
        else:
            t = and_words(party, p_hi, g_lo)
        g = g_hi ^ t
    words = (m + 63) // 64
    return top ^ g[:words]


def inject(party: Party, stream: np.ndarray, count: int,
           factors: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Additive shares of ``count`` XOR-shared bits packed in ``stream`` (bit injection, 1 round).

    Each entry of ``factors`` is an additive share array of shape
    ``(count,)``; the second result holds the shares of ``bit * factor`` for
    each, computed in the same round.
    """
    pre = _need(party)
    stream = np.asarray(stream, dtype=np.uint64).reshape(-1)
    words = (count + 63) // 64
    if stream.size != words:
        raise ParameterError(f"{count} bits need a stream of {words} words, got {stream.size}")
    factors = [np.asarray(f, dtype=np.uint64).reshape(-1) for f in factors]
    for f in factors:
        if f.size != count:
            raise ParameterError(f"each factor needs {count} elements, got {f.size}")
    if count == 0:
        return np.zeros(0, np.uint64), [np.zeros(0, np.uint64) for _ in factors]
    rb, ra = pre.dabit((count,))
    masked = stream ^ rb
    arrays = [masked]
    if factors:
        y = np.stack(factors)
        ta, tb, tc = pre.triple("mul", (count,), y.shape)
        e = ra - ta
        d = y - tb
        arrays += [e, d]
    tag = party.fresh("inject")
    for got in party.exchange(tag, *arrays, strict=True).values():
        masked ^= got[0]
        if factors:
            e += got[1]
            d += got[2]
    c = unpack_bits(masked, count).astype(np.uint64)
    flip = _ONE - (c << _ONE)  # 1 - 2c, in the ring
    bits = ra * flip
    if party.id == 0:
        bits += c
    prods: list[np.ndarray] = []
    if factors:
        # Beaver: r * y = c_t + e * b_t + a_t * d (+ e * d at party 0)
        ry = tc + e * (tb + d if party.id == 0 else tb) + ta * d
        out = y * c + ry * flip
        prods = list(out)
    return bits, prods


def inject_bits(party: Party, words: np.ndarray, width: int = 64) -> np.ndarray:
    """Additive shares of each of the low ``width`` bits of XOR-shared words.

    Returns shape ``words.shape + (width,)``; bit ``j`` of a word is entry ``j``.
    1 round, ``width`` daBits per word.
    """
    words = np.asarray(words, dtype=np.uint64)
    bits = word_bits(words, width)
    arith, _ = inject(party, pack_bits(bits), bits.size)
    return arith.reshape(words.shape + (width,))


def b2a(party: Party, words: np.ndarray) -> np.ndarray:
    """Additive shares of XOR-shared 64-bit words (1 round, 64 daBits per word)."""
    words = np.asarray(words, dtype=np.uint64)
    bits = inject_bits(party, words, 64)
    weights = (np.uint64(1) << np.arange(64, dtype=np.uint64))
    return (bits * weights).sum(axis=-1, dtype=np.uint64)


def bit_inject(party: Party, bits: np.ndarray) -> np.ndarray:
    """Additive shares of XOR-shared single bits (bit 0 of each word), 1 round."""
    bits = np.asarray(bits, dtype=np.uint64)
    arith, _ = inject(party, pack_bits((bits & _ONE).astype(np.uint8)), bits.size)
    return arith.reshape(bits.shape)
