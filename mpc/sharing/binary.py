"""Binary (XOR) secret sharing of bits packed in uint64 words (layer: mpc core).

A secret word ``x`` is held as XOR shares ``x = x_0 ^ x_1 ^ ... ^ x_{n-1}``;
each ``uint64`` word carries 64 independent bits. XOR, NOT, shifts, rotations
and ANDs with public masks are local; AND of two shared words uses one binary
Beaver triple (one round), so a whole array of words is ANDed 64 bits at a time.

Besides :class:`BinaryTensor` (the user-facing type, like ``SharedTensor``),
this module holds the pure bit-stream helpers the conversions use: packing
per-element bits into a little-endian stream of words (:func:`pack_bits`,
:func:`unpack_bits`) and splitting a stream into its even and odd bits
(:func:`split_even_odd`), which lets a tree of ANDs halve its traffic at every
level.

Protocol (AND, Beaver 1991 over GF(2)^64)
-----------------------------------------
1. Take XOR shares of a triple ``(a, b, c = a & b)`` from preprocessing.
2. Open ``d = x ^ a`` and ``e = y ^ b`` (one round; both uniformly masked).
3. ``z_i = c_i ^ (d & b_i) ^ (e & a_i)``; party 0 also XORs ``d & e``.

Security: semi-honest, any n-1 colluding parties, given a correct triple
source: the opened ``d`` and ``e`` are uniform and independent of ``x``, ``y``.

Cost: AND of ``w`` words: 1 round, each party sends ``16 * w`` bytes to each of
the n-1 others and consumes ``w`` words of binary triples. Everything else: 0.

References: Beaver, "Efficient multiparty protocols using circuit
randomization", CRYPTO 1991; Demmler, Schneider, Zohner, "ABY", NDSS 2015.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import ParameterError
from ..rand import PRG, random_seed
from .opening import open_words
from .seeded import read_seed_message

if TYPE_CHECKING:
    from ..party import Party

_MASK64 = 0xFFFFFFFFFFFFFFFF
# masks that gather the even bits of a word into its low half
_COMPRESS = [(np.uint64(1), np.uint64(0x3333333333333333)), (np.uint64(2), np.uint64(0x0F0F0F0F0F0F0F0F)),
             (np.uint64(4), np.uint64(0x00FF00FF00FF00FF)), (np.uint64(8), np.uint64(0x0000FFFF0000FFFF)),
             (np.uint64(16), np.uint64(0x00000000FFFFFFFF))]
_EVEN = np.uint64(0x5555555555555555)


# -- pure bit-stream helpers -----------------------------------------------------------
def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack 0/1 values (flattened, in C order) into a little-endian stream of uint64 words.

    Bit ``t`` of the stream is bit ``t % 64`` of word ``t // 64``; the last word
    is zero-padded.
    """
    flat = np.asarray(bits, dtype=np.uint8).reshape(-1)
    words = (flat.size + 63) // 64
    padded = np.zeros(words * 64, dtype=np.uint8)
    padded[:flat.size] = flat
    return np.packbits(padded, bitorder="little").view("<u8").astype(np.uint64)


def unpack_bits(words: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` bits of a stream made by :func:`pack_bits`, as uint8 0/1."""
    words = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1)
    if count > 64 * words.size or count < 0:
        raise ParameterError(f"a stream of {words.size} words holds at most {64 * words.size} bits")
    raw = words.astype("<u8").view(np.uint8)
    return np.unpackbits(raw, count=count, bitorder="little")


def word_bits(words: np.ndarray, width: int = 64) -> np.ndarray:
    """The low ``width`` bits of each word as uint8 0/1, shape ``words.shape + (width,)``."""
    if not 1 <= width <= 64:
        raise ParameterError(f"width must be in [1, 64], got {width}")
    w = np.asarray(words, dtype=np.uint64)
    raw = np.ascontiguousarray(w, dtype="<u8").reshape(-1).view(np.uint8).reshape(w.shape + (8,))
    return np.unpackbits(raw, axis=-1, bitorder="little")[..., :width]


def _compress_even(x: np.ndarray) -> np.ndarray:
    """Gather bits 0, 2, ..., 62 of each word into bits 0..31 (a bit unshuffle)."""
    x = x & _EVEN
    for shift, mask in _COMPRESS:
        x = (x | (x >> shift)) & mask
    return x


def split_even_odd(stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a bit stream into (even-indexed bits, odd-indexed bits), each half as long.

    Linear over XOR, so it applies to shares locally. The stream is padded with
    a zero word to an even length first.
    """
    s = np.asarray(stream, dtype=np.uint64).reshape(-1)
    if s.size % 2:
        s = np.concatenate([s, np.zeros(1, np.uint64)])
    half = np.uint64(32)

    def gather(v: np.ndarray) -> np.ndarray:
        c = _compress_even(v)
        return c[0::2] | (c[1::2] << half)

    return gather(s), gather(s >> np.uint64(1))


def public_share(party: Party, value: np.ndarray) -> np.ndarray:
    """This party's XOR share of a public word array: party 0 holds it, others hold 0."""
    value = np.asarray(value, dtype=np.uint64)
    return value.copy() if party.id == 0 else np.zeros_like(value)


# -- interactive ---------------------------------------------------------------------
def and_words(party: Party, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """XOR shares of ``x & y`` from XOR shares of two word arrays of one shape (1 round)."""
    x = np.asarray(x, dtype=np.uint64)
    y = np.asarray(y, dtype=np.uint64)
    if x.shape != y.shape:
        raise ParameterError(f"AND needs arrays of one shape, got {x.shape} and {y.shape}")
    if party.preprocessing is None:
        raise ParameterError("AND of shared bits needs a preprocessing source "
                             "(run with preprocessing='dealer' or another source)")
    a, b, c = party.preprocessing.binary_triple(x.shape)
    d = x ^ a
    e = y ^ b
    tag = party.fresh("and")
    for dj, ej in party.exchange(tag, d, e, strict=True).values():
        d ^= dj
        e ^= ej
    z = c ^ (d & b) ^ (e & a)
    if party.id == 0:
        z ^= d & e
    return z


def and_many(party: Party, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Several ANDs of word arrays (any shapes) in one round."""
    if not pairs:
        return []
    xs = [np.asarray(x, dtype=np.uint64).reshape(-1) for x, _ in pairs]
    ys = [np.asarray(y, dtype=np.uint64).reshape(-1) for _, y in pairs]
    for (x, y), fx, fy in zip(pairs, xs, ys):
        if np.shape(x) != np.shape(y):
            raise ParameterError(f"AND needs arrays of one shape, got {np.shape(x)} and {np.shape(y)}")
    z = and_words(party, np.concatenate(xs), np.concatenate(ys))
    out, pos = [], 0
    for (x, _), fx in zip(pairs, xs):
        out.append(z[pos:pos + fx.size].reshape(np.shape(x)))
        pos += fx.size
    return out


def _as_words(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iub":
        raise ParameterError(f"binary shares combine only with integer words, not {arr.dtype}")
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind == "b":
        return arr.astype(np.uint64)
    return arr.astype(np.int64).view(np.uint64)


class BinaryTensor:
    """One party's XOR share of a tensor of 64-bit words.

    ``^``, ``~``, ``<<``, ``>>`` and ``&``/``|`` with public words are local;
    ``&`` and ``|`` between shared tensors cost one round (:func:`and_words`).
    Create with :func:`share_binary` or :func:`mpc.sharing.convert.a2b`; open
    with :meth:`reveal`.
    """

    __slots__ = ("party", "share")
    __array_ufunc__ = None

    def __init__(self, party: Party, share: np.ndarray) -> None:
        self.party = party
        self.share = np.asarray(share, dtype=np.uint64)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.share.shape

    def __bool__(self) -> bool:
        raise TypeError("a secret-shared value has no truth value; reveal it first")

    def __repr__(self) -> str:
        return f"BinaryTensor(shape={self.shape}, party {self.party.id})"

    def _new(self, share: np.ndarray) -> "BinaryTensor":
        return BinaryTensor(self.party, share)

    def _other(self, other: Any) -> np.ndarray:
        """The other operand's share (shared) or this party's share of it (public)."""
        if isinstance(other, BinaryTensor):
            if other.party is not self.party:
                raise ParameterError("cannot mix shares held by different parties or runs")
            return other.share
        return public_share(self.party, _as_words(other))

    def __xor__(self, other: Any) -> "BinaryTensor":
        return self._new(self.share ^ self._other(other))

    __rxor__ = __xor__

    def __invert__(self) -> "BinaryTensor":
        return self._new(self.share ^ public_share(self.party, np.full(self.shape, _MASK64, np.uint64)))

    def __and__(self, other: Any) -> "BinaryTensor":
        if isinstance(other, BinaryTensor):
            y = self._other(other)
            shape = np.broadcast_shapes(self.shape, y.shape)
            return self._new(and_words(self.party, np.broadcast_to(self.share, shape).copy(),
                                       np.broadcast_to(y, shape).copy()))
        return self._new(self.share & _as_words(other))

    __rand__ = __and__

    def __or__(self, other: Any) -> "BinaryTensor":
        return self ^ other ^ (self & other)

    __ror__ = __or__

    def _shift_amount(self, k: Any) -> np.uint64:
        if not isinstance(k, (int, np.integer)) or not 0 <= k < 64:
            raise ParameterError(f"shift amount must be an int in [0, 64), got {k!r}")
        return np.uint64(k)

    def __lshift__(self, k: int) -> "BinaryTensor":
        return self._new(self.share << self._shift_amount(k))

    def __rshift__(self, k: int) -> "BinaryTensor":
        """Logical right shift (zeros enter at the top)."""
        return self._new(self.share >> self._shift_amount(k))

    def __getitem__(self, index: Any) -> "BinaryTensor":
        return self._new(np.asarray(self.share[index]))

    def reshape(self, *shape: Any) -> "BinaryTensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._new(self.share.reshape(shape))

    def reveal(self, to: int | Sequence[int] | None = None) -> np.ndarray | None:
        """Open the words (uint64) to ``to`` (default: everyone); others get None. 1 round."""
        return open_words(self.party, self.share, to, "open_binary", xor=True)[1]


def share_binary(party: Party, value: Any = None, owner: int = 0) -> BinaryTensor:
    """XOR-share integer words held by ``owner``; every party calls it (others pass None).

    The owner sends each other party a fresh 128-bit seed and its shape; that
    party's share is the seed's PRG expansion. Cost: 1 round, ``16 + 8*ndim``
    bytes to each other party.
    """
    if not 0 <= owner < party.n:
        raise ParameterError(f"owner {owner} out of range: parties are 0..{party.n - 1}")
    tag = party.fresh("share_binary")
    if party.id != owner:
        seed, shape, _ = read_seed_message(party, owner, tag, party.recv(owner, tag), frac_bits=False)
        return BinaryTensor(party, PRG(seed).uint64(shape))
    if value is None:
        raise ParameterError(f"party {party.id} owns this input but passed None")
    mine = _as_words(value).copy()
    for p in party.peers:
        seed = random_seed()
        mine ^= PRG(seed).uint64(mine.shape)
        party.send(p, tag, np.frombuffer(seed, np.uint8), np.asarray(mine.shape, np.uint64).reshape(-1))
    return BinaryTensor(party, mine)
