"""Diffie-Hellman private set intersection on Curve25519 (layer: protocols).

Two parties, a *receiver* R with a set X and a *sender* S with a set Y, learn
``X ∩ Y`` (or only ``|X ∩ Y|``) and nothing else beyond the two set sizes.
The pure part (hashing items to the group, blinding) needs no runtime; only
:func:`psi` talks, through a :class:`mpc.Party`.

Protocol
--------
R holds a secret scalar ``a``, S a secret scalar ``b`` (32 bytes from the OS
CSPRNG, clamped by X25519). ``H`` hashes an item to a point of Curve25519.

1. R sends ``A_i = a·H(x_i)`` for its distinct items, in its own order.
   S, at the same time, sends ``B_j = b·H(y_j)`` for its distinct items in a
   uniformly random order (a PRG permutation: the positions of the matches
   must not reveal where they sit in S's sorted set).
2. S re-blinds ``C_i = b·A_i = ab·H(x_i)``, keeps the first 16 bytes of each
   and sends them in R's order (or shuffled, if only the size is revealed).
   R meanwhile re-blinds ``D_j = a·B_j = ab·H(y_j)``.
3. R outputs the ``x_i`` with ``C_i ∈ {D_j}`` (or the count of such ``i``).
   Optionally (``both=True``) R sends S the positions ``j`` of the matching
   ``D_j`` (or the count), and S maps them back to its items.

Steps 1 and 2 overlap: S re-blinds R's points while R re-blinds S's points,
and each party splits its own multiplications over a thread pool
(``workers``): they call libsodium's ``crypto_scalarmult`` through cffi, which
releases the GIL, on pointers into one buffer. A party hashes its items chunk
by chunk (pure Python: that part holds the GIL) while its pool multiplies the
chunks already hashed.

Group. X25519 (Montgomery ladder, x-coordinate only, RFC 7748) through
libsodium (PyNaCl): about 37 us per scalar multiplication here, against about
95 us for an Ed25519 point multiplication; Ristretto255 is not exposed by
PyNaCl 1.6. Items are hashed with RFC 9380 ``expand_message_xmd`` (SHA-512)
to a field element ``u`` and mapped with Elligator 2 to the u-coordinate of a
point on the curve itself, never on its twist (a raw 32-byte hash would land
on the twist half of the time, and on which side it lands is visible in the
blinded value: one bit of ``H(y)`` per item). This is the ``encode_to_curve``
of suite ``curve25519_XMD:SHA-512_ELL2_NU_`` without the final cofactor
clearing: X25519 clamps every scalar to a multiple of 8, so ``a·H(x)`` always
lies in the subgroup of prime order ``ℓ ≈ 2^252``, and
``a·(b·P) = b·(a·P)``, which is the commutativity the protocol needs.

Security
--------
Semi-honest, two parties, no third party; security in the random-oracle model
under the decisional Diffie-Hellman assumption in the prime-order subgroup
of Curve25519 (x-only: the group modulo ±1), as for the DH-PSI of Meadows and
of Huberman, Franklin and Hogg, with ``hash_to_field`` modelled as a random
oracle into GF(p). The reduction programs it through Elligator 2's inverse:
it draws ``P = r·G + T`` (r known, T a random 8-torsion point, G embedding
the DDH challenge), counts the k in {0, 2, 4} field elements that map to
``x(P)`` (``±u`` on each of the two branches), accepts with probability k/4
and answers one of them at random, else redraws. Every u is then answered
with probability exactly proportional to 1/4, i.e. the programmed oracle is
uniform over GF(p), as the real one. Hence every blinded
value ``a·H(x)`` a party sees from its peer is indistinguishable from a
uniform element of the subgroup (tested in ``tests/test_psi.py``).

What leaks: each party learns the other's number of *distinct* items; R
learns the intersection (or only its size); S learns nothing else, unless
``both=True``, where S learns what R learns and must trust R's report (a
malicious R could report any subset). A malicious party could also use
items it does not hold; this module does not defend against that. Received
points are checked for the right size and small order only: a deviating peer
could send u-coordinates on the twist (or with the top bit set), which X25519
processes anyway; that can only spoil matches, not reveal anything the
semi-honest analysis does not. ``max_peer_items`` bounds the curve work a
peer can cause (its set is refused before any multiplication). Duplicates
are removed before the protocol: the result is a set intersection.

Cost
----
Messages: ``R→S 12 + 32·n_R`` bytes, ``S→R 12 + 32·n_S + 16·n_R`` (12 bytes of
header: version, item kind, settings, digest of ``dst``); with ``both=True``
``R→S 8·|X ∩ Y|`` more (or 8 for the size). Rounds: 2 (3 with ``both``).
Computation: ``n_R + n_S`` X25519 multiplications and ``n`` hashes (two
SHA-512 and one Jacobi symbol each, one batch inversion) per party.

References
----------
C. Meadows, "A more efficient cryptographic matchmaking protocol", IEEE S&P 1986.
B. Huberman, M. Franklin, T. Hogg, "Enhancing privacy and trust in electronic
communities", ACM EC 1999.
D. Bernstein, M. Hamburg, A. Krasnova, T. Lange, "Elligator: elliptic-curve
points indistinguishable from uniform random strings", ACM CCS 2013.
RFC 7748 (X25519), RFC 9380 §5.3.1 (expand_message_xmd), §6.7.1 (Elligator 2).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import gmpy2
import nacl.bindings  # noqa: F401  (runs sodium_init, which picks the fastest X25519 code)
import numpy as np
from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from mpc.errors import MalformedPeerData, ParameterError, ProtocolError

if TYPE_CHECKING:
    from mpc.party import Party

FIELD_PRIME = 2**255 - 19
MONTGOMERY_A = 486662
ELLIGATOR_Z = 2
POINT_BYTES = 32
TAG_BYTES = 16
"""Bytes of each doubly blinded value R receives: false matches have
probability at most n_R·n_S·2^-128."""
DEFAULT_DST = b"CONCILIUM-V01-PSI-with-curve25519_XMD:SHA-512_ELL2_NU_"

_P = gmpy2.mpz(FIELD_PRIME)
_A = gmpy2.mpz(MONTGOMERY_A)
_XMD_LEN = 48  # L = ceil((ceil(log2 p) + k) / 8) with k = 128 (RFC 9380 §5)
_KIND_EMPTY, _KIND_INT, _KIND_STR, _KIND_BYTES = 0, 1, 2, 3
_KIND_NAMES = {_KIND_INT: "integers", _KIND_STR: "strings", _KIND_BYTES: "bytes"}
_MODES = {"intersection": 0, "size": 1}
_VERSION = 1


# -- items ------------------------------------------------------------------------
def canonical_items(items: Any) -> tuple[int, Any, list[bytes]]:
    """Deduplicate and sort ``items``; return (kind, values, encodings).

    ``items`` is a 1-D integer array or a sequence of ints (int64 range), of
    str, or of bytes. ``values`` is a sorted int64 array (integers) or a
    sorted list; ``encodings`` are the byte strings that are hashed, prefixed
    by the kind so that ``5``, ``"5"`` and ``b"5"`` never collide. Strings
    match code point for code point (UTF-8): normalise them first (e.g.
    ``unicodedata.normalize("NFC", s)``) if the parties may spell them
    differently.
    """
    if isinstance(items, (str, bytes)):
        raise ParameterError("items must be a collection of items, not one str or bytes")
    if isinstance(items, np.ndarray):
        if items.ndim != 1:
            raise ParameterError(f"items must be a 1-D array, got shape {items.shape}")
        if items.size == 0:
            return _KIND_EMPTY, np.empty(0, dtype=np.int64), []
        if not np.issubdtype(items.dtype, np.integer):
            raise ParameterError(f"item arrays must hold integers, not {items.dtype}")
        if items.dtype == np.uint64 and int(items.max()) > np.iinfo(np.int64).max:
            raise ParameterError("integer items must fit in int64")
        values = np.unique(items.astype(np.int64))
        return _KIND_INT, values, _encode_ints(values)
    try:
        seq = list(items)
    except TypeError:
        raise ParameterError(f"items must be an array or a sequence, not {type(items).__name__}") from None
    if not seq:
        return _KIND_EMPTY, np.empty(0, dtype=np.int64), []
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in seq):
        if any(not -(2**63) <= int(v) < 2**63 for v in seq):
            raise ParameterError("integer items must fit in int64")
        values = np.unique(np.array([int(v) for v in seq], dtype=np.int64))
        return _KIND_INT, values, _encode_ints(values)
    if all(isinstance(v, str) for v in seq):
        texts = sorted(set(seq))
        try:
            return _KIND_STR, texts, [b"\x02" + v.encode("utf-8") for v in texts]
        except UnicodeEncodeError as exc:   # a lone surrogate
            raise ParameterError(f"a str item is not valid Unicode text: {exc.reason}") from None
    if all(isinstance(v, (bytes, bytearray, memoryview)) for v in seq):
        blobs = sorted({bytes(v) for v in seq})
        return _KIND_BYTES, blobs, [b"\x03" + v for v in blobs]
    raise ParameterError("items must all be integers, all str or all bytes")


def _encode_ints(values: np.ndarray) -> list[bytes]:
    raw = values.astype("<i8").tobytes()
    return [b"\x01" + raw[k:k + 8] for k in range(0, len(raw), 8)]


# -- hashing to the curve (pure) -----------------------------------------------------
def hash_to_field(messages: Sequence[bytes], dst: bytes = DEFAULT_DST) -> list[int]:
    """RFC 9380 ``hash_to_field`` with ``expand_message_xmd``/SHA-512, one element each."""
    if not 0 < len(dst) <= 255:
        raise ParameterError("the domain separation tag must have 1 to 255 bytes")
    dst_prime = dst + bytes([len(dst)])
    head = hashlib.sha512(bytes(128))                # Z_pad
    tail = _XMD_LEN.to_bytes(2, "big") + b"\x00" + dst_prime
    one = b"\x01" + dst_prime
    out = []
    for msg in messages:
        h = head.copy()
        h.update(msg)
        h.update(tail)
        b1 = hashlib.sha512(h.digest() + one).digest()   # b_1; 64 >= L bytes
        out.append(gmpy2.mpz.from_bytes(b1[:_XMD_LEN], "big") % _P)
    return out


def map_to_curve(us: Sequence[int]) -> list[int]:
    """Elligator 2 onto Curve25519 (RFC 9380 §6.7.1, Z = 2), u-coordinates only.

    One field inversion for the whole batch (Montgomery's trick) and one
    Legendre symbol per element.
    """
    tv = [(ELLIGATOR_Z * u * u) % _P for u in us]
    den = [gmpy2.mpz(1) if t == _P - 1 else t + 1 for t in tv]  # 1 + Z·u², or 1 when it is 0
    prefix = []
    acc = gmpy2.mpz(1)
    for d in den:
        prefix.append(acc)
        acc = acc * d % _P
    inv = gmpy2.invert(acc, _P) if den else acc
    xs = [gmpy2.mpz(0)] * len(den)
    for k in range(len(den) - 1, -1, -1):
        x1 = (-_A * inv * prefix[k]) % _P        # -A / (1 + Z·u²)
        inv = inv * den[k] % _P
        gx1 = (x1 * (x1 * (x1 + _A) + 1)) % _P
        xs[k] = x1 if gmpy2.legendre(gx1, _P) >= 0 else (-x1 - _A) % _P
    return [int(x) for x in xs]


def _points(xs: Sequence[int]) -> bytes:
    return b"".join(x.to_bytes(POINT_BYTES, "little") for x in xs)


def _hash_to_points(messages: Sequence[bytes], dst: bytes) -> bytes:
    """``map_to_curve(hash_to_field(messages))`` as 32-byte u-coordinates, joined.

    The same map as the two public functions, fused into one pass: the
    square test needs no inversion, since ``g(x1)`` with ``x1 = -A/d`` is
    ``-A·(d² - A²·(d - 1))/d³``, whose Legendre symbol is that of
    ``-A·d·(d² - A²·(d - 1))`` (times the square ``d⁴``), i.e. the fixed
    symbol of ``-A`` times that of ``d·(d² - A²·(d - 1))``; one inversion by
    Montgomery's trick then gives every ``1/d``.
    """
    if not 0 < len(dst) <= 255:
        raise ParameterError("the domain separation tag must have 1 to 255 bytes")
    if not messages:
        return b""
    dst_prime = dst + bytes([len(dst)])
    head = hashlib.sha512(bytes(128))                # Z_pad
    tail = _XMD_LEN.to_bytes(2, "big") + b"\x00" + dst_prime
    one = b"\x01" + dst_prime
    sha512, from_bytes, jacobi = hashlib.sha512, gmpy2.mpz.from_bytes, gmpy2.jacobi
    p, a, unit, copy = _P, _A, gmpy2.mpz(1), head.copy
    a2 = a * a
    nonsquare = -jacobi(-a % p, p)          # (-A·y | p) = (-A | p)·(y | p)
    dens, flips = [], []
    for msg in messages:
        h = copy()
        h.update(msg + tail)
        u = from_bytes(sha512(h.digest() + one).digest()[:_XMD_LEN], "big") % p
        t = 2 * u * u % p                             # Z·u²
        d = t + 1                                     # 1 + Z·u², or 1 when it is 0
        if d == p:
            d, t = unit, 0
        dens.append(d)
        # g(x1)·d⁴ = -A·d·(d² - A²·(d - 1)) with d - 1 = t: is it a square?
        flips.append(jacobi(d * (d * d - a2 * t) % p, p) == nonsquare)
    prefix = list(itertools.accumulate(dens, lambda x, y: x * y % p, initial=unit))
    inv = gmpy2.invert(prefix.pop(), p)
    out = []
    for d, pre, flip in zip(reversed(dens), reversed(prefix), reversed(flips)):
        i = inv * pre % p                             # 1/d
        inv = inv * d % p
        x = (a * i - a) % p if flip else (-a * i) % p   # x2 = -x1 - A, else x1 = -A/d
        out.append(x.to_bytes(POINT_BYTES, "little"))
    out.reverse()
    return b"".join(out)


def hash_to_group(items: Any, dst: bytes = DEFAULT_DST) -> np.ndarray:
    """Points ``H(item)`` (uint8 array ``(n, 32)``) of the distinct items, sorted.

    Same order as ``canonical_items(items)[1]``.
    """
    _, _, enc = canonical_items(items)
    return _as_array(_hash_to_points(enc, dst))


def _as_array(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, POINT_BYTES).copy()


# -- blinding (pure) ----------------------------------------------------------------
def generate_key() -> bytes:
    """A fresh secret blinding scalar: 32 bytes from the OS CSPRNG (X25519 clamps it)."""
    return os.urandom(POINT_BYTES)


def _mult_into(points: Any, scalar: Any, out: Any, start: int) -> int:
    """``scalar·P`` for each 32-byte point of ``points`` into ``out`` from point ``start``.

    Calls libsodium's ``crypto_scalarmult`` on pointers into the two buffers
    (no per-point Python objects); cffi releases the GIL during each call.
    Returns nonzero if some result was the identity (libsodium returns -1:
    the point had small order).
    """
    src = _ffi.from_buffer("unsigned char[]", points)
    mult, bad, base = _lib.crypto_scalarmult, 0, start * POINT_BYTES
    for off in range(0, len(src), POINT_BYTES):
        bad |= mult(out + (base + off), scalar, src + off)
    return bad


_SMALL_ORDER = ("a point of small order was received: the peer is not following the protocol")


def _mult_many(raw: bytes, key: bytes, workers: int) -> bytes:
    """X25519 ``key·P`` for each 32-byte point of ``raw``, over ``workers`` threads."""
    n = len(raw) // POINT_BYTES
    out = bytearray(len(raw))
    if n == 0:
        return b""
    dst = _ffi.from_buffer("unsigned char[]", out, require_writable=True)
    scalar = _ffi.new("unsigned char[]", key)
    view = memoryview(raw)
    spans = _chunks(n, workers)
    if workers == 1 or len(spans) <= 1:
        bad = _mult_into(raw, scalar, dst, 0)
    else:
        with ThreadPoolExecutor(workers) as pool:
            jobs = [pool.submit(_mult_into, view[s * POINT_BYTES:e * POINT_BYTES], scalar, dst, s)
                    for s, e in spans]
            bad = any([job.result() for job in jobs])
    if bad:
        raise ProtocolError(_SMALL_ORDER)
    return bytes(out)


def _hash_mult_many(encodings: list[bytes], key: bytes, workers: int, dst: bytes) -> bytes:
    """``key·H(m)`` for each ``m``: this thread hashes chunk after chunk while
    ``workers`` threads multiply the chunks already hashed."""
    n = len(encodings)
    if workers == 1 or n < 2:
        return _mult_many(_hash_to_points(encodings, dst), key, workers)
    out = bytearray(n * POINT_BYTES)
    target = _ffi.from_buffer("unsigned char[]", out, require_writable=True)
    scalar = _ffi.new("unsigned char[]", key)
    with ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(_mult_into, _hash_to_points(encodings[s:e], dst), scalar, target, s)
                for s, e in _chunks(n, 2 * workers)]
        bad = any([job.result() for job in jobs])
    if bad:
        raise ProtocolError(_SMALL_ORDER)
    return bytes(out)


def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    parts = max(1, min(n, 4 * workers))   # a few chunks per worker balance the load
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [(int(s), int(e)) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]


def _check_workers(workers: int | None) -> int:
    if workers is None:
        return os.cpu_count() or 1
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ParameterError(f"workers must be a positive integer, got {workers!r}")
    return int(workers)


def blind(points: np.ndarray, key: bytes, workers: int | None = 1) -> np.ndarray:
    """X25519 ``key·P`` for every row of ``points`` (uint8 ``(n, 32)``).

    ``workers`` threads share the rows (libsodium releases the GIL);
    ``None`` uses every core.
    """
    if not isinstance(key, bytes) or len(key) != POINT_BYTES:
        raise ParameterError("the key must be 32 bytes")
    points = np.asarray(points)
    if points.dtype != np.uint8 or points.ndim != 2 or points.shape[1] != POINT_BYTES:
        raise ParameterError(f"points must be a uint8 array of shape (n, 32), got "
                             f"{points.dtype} {points.shape}")
    raw = np.ascontiguousarray(points).tobytes()
    return _as_array(_mult_many(raw, key, _check_workers(workers)))


def hash_and_blind(encodings: list[bytes], key: bytes, workers: int | None = 1,
                   dst: bytes = DEFAULT_DST) -> np.ndarray:
    """``key·H(m)`` for each encoded item ``m``; the multiplications use ``workers`` threads."""
    return _as_array(_hash_mult_many(encodings, key, _check_workers(workers), dst))


# -- the protocol -----------------------------------------------------------------------
def _rows(a: np.ndarray) -> np.ndarray:
    """View rows of a uint8 (n, k) array as single void scalars, for set operations."""
    a = np.ascontiguousarray(a)
    return a.view(np.dtype((np.void, a.shape[1]))).ravel()


def _check_points(arr: np.ndarray, width: int, count: int | None, what: str, me: int) -> None:
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != width or (
            count is not None and arr.shape[0] != count):
        want = f"({count if count is not None else 'n'}, {width}) uint8"
        raise ProtocolError(f"party {me}: {what} has {arr.dtype} {arr.shape}, expected {want}")


def _select(values: Any, mask: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return values[mask]
    return [v for v, keep in zip(values, mask.tolist()) if keep]


def psi(party: Party, items: Any, *, peer: int | None = None, receiver: int | None = None,
        output: Literal["intersection", "size"] = "intersection", both: bool = False,
        workers: int | None = None, dst: bytes = DEFAULT_DST,
        max_peer_items: int | None = None) -> Any:
    """Run DH-PSI with ``peer``; both parties call it (SPMD).

    Parameters
    ----------
    party:
        This party's :class:`mpc.Party`.
    items:
        This party's set: a 1-D integer array, or a sequence of ints, str or bytes
        (both parties the same kind). Duplicates are removed.
    peer:
        The other party; defaults to the only peer of a 2-party session.
    receiver:
        Who learns the result; defaults to the smaller of the two ids.
    output:
        ``"intersection"`` (the common items) or ``"size"`` (their number only).
    both:
        The receiver also tells the sender the result (the sender trusts it).
    workers:
        Threads for this party's scalar multiplications; ``None``: one per core.
    max_peer_items:
        Refuse (``ProtocolError``) a peer set larger than this, before any
        curve work on it; ``None``: no limit.

    Returns
    -------
    For a party that learns the result: the intersection, sorted (an int64
    array for integer items, else a list), or its size (int). Otherwise None.
    """
    if max_peer_items is not None and (not isinstance(max_peer_items, (int, np.integer))
                                       or max_peer_items < 0):
        raise ParameterError(f"max_peer_items must be a non-negative integer, got {max_peer_items!r}")
    if peer is None:
        if party.n != 2:
            raise ParameterError(f"party {party.id}: peer is required in a {party.n}-party session")
        peer = party.peers[0]
    if peer == party.id or not 0 <= peer < party.n:
        raise ParameterError(f"party {party.id}: {peer!r} is not a peer")
    if receiver is None:
        receiver = min(party.id, peer)
    if receiver not in (party.id, peer):
        raise ParameterError(f"receiver {receiver!r} must be one of the two parties {party.id}, {peer}")
    if output not in _MODES:
        raise ParameterError(f"output must be 'intersection' or 'size', not {output!r}")
    workers = _check_workers(workers)
    if not isinstance(dst, bytes) or not 0 < len(dst) <= 255:
        raise ParameterError("the domain separation tag must be 1 to 255 bytes")
    kind, values, enc = canonical_items(items)
    header = np.concatenate([
        np.array([_VERSION, kind, _MODES[output], int(bool(both))], dtype=np.uint8),
        np.frombuffer(hashlib.sha256(dst).digest()[:8], dtype=np.uint8)])
    key = generate_key()
    # One counter per pair of parties, so that several PSIs between different pairs
    # of one session keep matching tags.
    with party.scope(party.fresh(f"psi{min(party.id, peer)}-{max(party.id, peer)}")):
        if party.id == receiver:
            return _receiver(party, peer, header, values, enc, key, workers, dst, max_peer_items)
        return _sender(party, peer, header, values, enc, key, workers, dst, max_peer_items)


def _check_header(party: Party, mine: np.ndarray, theirs: np.ndarray, peer: int) -> None:
    """Both parties must agree on version, output, ``both``, ``dst`` and item kind."""
    if theirs.dtype != np.uint8 or theirs.shape != mine.shape:
        raise ProtocolError(f"party {party.id}: malformed PSI header from party {peer}")
    if theirs[0] != mine[0] or theirs[2] != mine[2] or theirs[3] != mine[3]:
        raise ParameterError(f"party {party.id}: PSI settings differ from party {peer}'s "
                             f"(version, output, both): {mine[[0, 2, 3]].tolist()} vs "
                             f"{theirs[[0, 2, 3]].tolist()}")
    if not np.array_equal(theirs[4:], mine[4:]):
        raise ParameterError(f"party {party.id}: party {peer} hashes with a different "
                             "domain separation tag (dst)")
    k1, k2 = int(mine[1]), int(theirs[1])
    if k1 and k2 and k1 != k2:
        raise ParameterError(f"party {party.id} holds {_KIND_NAMES.get(k1, k1)} but party "
                             f"{peer} holds {_KIND_NAMES.get(k2, k2)}")


def _empty_like_peer(values: Any, theirs: np.ndarray) -> Any:
    """An empty set takes the type of the peer's items (a list for str or bytes)."""
    if len(values) == 0 and int(theirs[1]) in (_KIND_STR, _KIND_BYTES):
        return []
    return values


def _recv(party: Party, peer: int, name: str, count: int) -> tuple[np.ndarray, ...]:
    got = party.recv(peer, name)
    if len(got) != count:
        raise MalformedPeerData(f"party {party.id}: malformed PSI message {name!r} from party {peer}: "
                                f"{len(got)} arrays, expected {count}", peer=peer, round=party.last_round,
                                tag=party.tag(name))
    return got


def _check_size(party: Party, theirs: np.ndarray, limit: int | None, peer: int) -> None:
    if limit is not None and len(theirs) > limit:
        raise ProtocolError(f"party {party.id}: party {peer} sent {len(theirs)} items, more than "
                            f"max_peer_items = {limit}")


def _reblind_peer(party: Party, peer: int, header: np.ndarray, values: Any, key: bytes, workers: int,
                  limit: int | None, tag: str, role: str) -> tuple[Any, np.ndarray]:
    """Receive the peer's header and blinded set, check them, and re-blind the set with our
    key (the first TAG_BYTES of each point). Returns (our values, typed as the peer's if
    ours are empty, the doubly blinded tags)."""
    their_header, theirs = _recv(party, peer, tag, 2)
    _check_header(party, header, their_header, peer)
    values = _empty_like_peer(values, their_header)
    _check_points(theirs, POINT_BYTES, None, f"the {role}'s blinded set", party.id)
    _check_size(party, theirs, limit, peer)
    with party.phase("psi/reblind"):
        return values, blind(theirs, key, workers)[:, :TAG_BYTES]


def _receiver(party: Party, peer: int, header: np.ndarray, values: Any, enc: list[bytes],
              key: bytes, workers: int, dst: bytes, limit: int | None) -> Any:
    size_only, both = bool(header[2]), bool(header[3])
    with party.phase("psi/blind"):
        mine = hash_and_blind(enc, key, workers, dst)                 # step 1: a·H(x_i)
    party.send(peer, "blinded-r", header, mine)
    values, double_theirs = _reblind_peer(party, peer, header, values, key, workers, limit,
                                          "blinded-s", "sender")      # step 2: a·b·H(y_j)
    (double_mine,) = _recv(party, peer, "double-r", 1)
    _check_points(double_mine, TAG_BYTES, len(enc), "the re-blinded set", party.id)
    hit = np.isin(_rows(double_mine), _rows(double_theirs))          # step 3
    if size_only:
        count = int(hit.sum())
        if both:
            party.send(peer, "result", np.array([count], dtype=np.int64), public=True)
        return count
    if both:
        positions = np.flatnonzero(np.isin(_rows(double_theirs), _rows(double_mine)))
        party.send(peer, "result", positions.astype(np.int64), public=True)
    return _select(values, hit)


def _sender(party: Party, peer: int, header: np.ndarray, values: Any, enc: list[bytes],
            key: bytes, workers: int, dst: bytes, limit: int | None) -> Any:
    size_only, both = bool(header[2]), bool(header[3])
    order = np.argsort(party.prg.uint64(len(enc)), kind="stable")   # random order of Y
    with party.phase("psi/blind"):
        mine = hash_and_blind([enc[k] for k in order], key, workers, dst)  # step 1: b·H(y_j)
    party.send(peer, "blinded-s", header, mine)
    values, double = _reblind_peer(party, peer, header, values, key, workers, limit,
                                   "blinded-r", "receiver")          # step 2: b·a·H(x_i)
    if size_only:
        double = double[np.argsort(party.prg.uint64(len(double)), kind="stable")]
    party.send(peer, "double-r", double)
    if not both:
        return None
    (result,) = _recv(party, peer, "result", 1)
    if size_only:
        if result.dtype != np.int64 or result.shape != (1,) or not 0 <= result[0] <= min(len(enc), len(double)):
            raise ProtocolError(f"party {party.id}: malformed intersection size from party {peer}")
        return int(result[0])
    if (result.dtype != np.int64 or result.ndim != 1 or len(result) > min(len(enc), len(double))
            or (len(result) and (result.min() < 0 or result.max() >= len(enc)))
            or len(np.unique(result)) != len(result)):
        raise ProtocolError(f"party {party.id}: malformed intersection positions from party {peer}")
    mask = np.zeros(len(enc), dtype=bool)
    mask[order[result]] = True
    return _select(values, mask)
