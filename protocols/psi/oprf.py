"""OT-based PSI (KKRT16): batched related-key OPRF, cuckoo and simple hashing (layer: protocols).

Selected by ``psi(..., protocol="oprf")`` (:func:`protocols.psi.psi`); the
same roles and results as the Diffie-Hellman PSI: the receiver R (set X)
learns ``X ∩ Y`` or ``|X ∩ Y|``, the sender S (set Y) nothing, unless
``both=True``. Only symmetric crypto after 128 base OTs: no curve work per item.

Protocol (Kolesnikov, Kumaresan, Rosulek, Trieu 2016, §4; Pinkas, Schneider, Zohner 2014)
--------
1. Both send a header: version, item kind, output, ``both``, set size.
   Empty sets end here.
2. KKRT setup: 512 random OTs (IKNP from 128 base OTs), S sends the code seed (:mod:`mpc.ot.kkrt`).
3. R draws a public hash seed (three hash functions ``h_1, h_2, h_3`` into
   ``m`` bins, from AES under the seed) and places each ``x`` in bin
   ``h_i(x)`` by cuckoo hashing, one item per bin, no stash; it sends the
   seed, then runs the OPRF with input ``(x, i)`` in the bin of ``x`` (a random
   dummy in empty bins) and learns ``F_b(x, i)``.
4. S (simple hashing) evaluates ``F_{h_i(y)}(y, i)`` for each ``y`` and
   ``i = 1, 2, 3``, truncates to ``ell`` bytes, and sends the ``3 n_S`` values
   sorted (an order that depends on the values only, not on Y's order; R
   checks it and then needs no sort of its own).
5. R outputs the ``x`` whose truncated ``F`` value is among them (or their
   number); with ``both``, R sends S the positions of the matching values
   (or the count), and S maps them back to its items.

Protocol parameters:

* code width ``k = 512`` bits (KKRT's 424-448 bits rounded up to 4 AES blocks);
* cuckoo hashing: 3 hash functions, no stash, ``m = ceil(e n_R)`` bins with
  the expansion ``e`` that the experimental fit of libOTe/cryptoTools
  (``CuckooIndex::selectParams``, after Pinkas, Schneider, Weinert, Wieder)
  gives for failure probability ``2^-40``: ``40 = 240 e - 256 - log2 n`` for
  ``n >= 512`` (``e = 1.275`` at 2^10, ``1.316`` at 10^6, ``1.333`` at
  2^24; the often quoted ``1.27`` gives only about 2^-29 at 10^6 by that
  fit), and its per-size lines below 512 items. The fit is for libOTe's
  insertion; ours (random walk, 2000 rounds) is checked in the tests, not
  re-fitted. If insertion fails, R draws a new hash seed (at most 4 tries)
  before anything is sent, so results stay exact;
* statistical security ``sigma = 40``: the values are cut to
  ``ell = ceil((40 + log2(n_R) + log2(3 n_S)) / 8)`` bytes (at most 16), so a
  false match has probability at most 2^-40 over the whole run.

Security
--------
Semi-honest, two parties, no third party; the OPRF as in :mod:`mpc.ot.kkrt`
(random-oracle model for the output hash, fixed-key AES). S's view (the hash
seed and the uniform OT matrix) is independent of X, except that the hash
seed is conditioned on cuckoo insertion succeeding for X (statistical
distance at most the failure probability above). R sees ``3 n_S`` values
``F(y, i)``: those of items outside X are pseudorandom. What leaks: both set
sizes (distinct items); R learns the intersection (or its size). A malicious
party is not covered (no OT consistency check; S could send any values).
Duplicates are removed, as for the DH protocol.

Cost
----
Rounds: 6 (7 with ``both``): headers; the KKRT setup (3: base OTs both
ways, then 512 IKNP random OTs with the code seed); hash seed and OT matrix
R -> S; values S -> R. Bytes R -> S: ``12`` (header) ``+ 128·32`` (base OTs)
``+ 16`` (hash seed) ``+ 512·ceil(m/8)`` (the matrix: about ``84 n_R``).
S -> R: ``12 + 32 + 128·64 + 16 + 3 n_S ell``. For ``n = 10^6`` per side:
84 MB and 33 MB (checked in ``tests/bench/test_bench_psi.py``).

References
----------
V. Kolesnikov, R. Kumaresan, M. Rosulek, N. Trieu, "Efficient Batched
Oblivious PRF with Applications to Private Set Intersection", CCS 2016.
B. Pinkas, T. Schneider, M. Zohner, "Faster Private Set Intersection Based on
OT Extension", USENIX Security 2014 (cuckoo and simple hashing).
B. Pinkas, T. Schneider, C. Weinert, U. Wieder, "Efficient Circuit-Based PSI
via Cuckoo Hashing", Eurocrypt 2018 (stash-less table sizes).
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mpc.errors import ParameterError, ProtocolError
from mpc.ot.kkrt import MAX_EXTEND, KKRTReceiver, KKRTSender, _aes_ecb
from mpc.schema import ArraySpec

from .hashing import _KIND_BYTES, _KIND_EMPTY, _KIND_INT, _KIND_NAMES, _KIND_STR, canonical_items

if TYPE_CHECKING:
    from mpc.party import Party

VERSION = 2
HASHES = 3
SIGMA = 40
TRIES = 4
_HEADER = ArraySpec(np.uint8, (4,), field="header")
_SIZE = ArraySpec(np.uint64, (1,), field="set size")


# -- pure part ------------------------------------------------------------------------------
_SMALL_FIT = ((5.5, 6.35), (5.5, 6.35), (5.5, 6.35), (8.5, -0.07), (13.4, -6.74), (21.9, -16.1),
              (57.8, -62.6), (100.0, -113.0), (142.0, -158.0))
"""(slope, intercept) of ``sigma = slope · e + intercept`` for ``floor(log2 n) = 0..8`` (cryptoTools)."""


def table_size(n: int) -> int:
    """Cuckoo bins for ``n`` receiver items, stash-less with 3 hash functions, failure 2^-SIGMA.

    ``ceil(e n)`` with ``SIGMA = 240 e - 256 - log2 n`` for ``n >= 512`` and the
    per-size lines of :data:`_SMALL_FIT` below (libOTe's experimental fit); at least 3.
    """
    if n < 1:
        raise ParameterError(f"a cuckoo table needs at least one item, got {n}")
    bits = n.bit_length() - 1
    if bits < len(_SMALL_FIT):
        slope, intercept = _SMALL_FIT[bits]
        e = (SIGMA - intercept) / slope
    else:
        e = (SIGMA + 256 + math.log2(n)) / 240
    return max(HASHES, math.ceil(e * n))


def value_bytes(n_r: int, n_s: int) -> int:
    """Bytes ``ell`` of each OPRF value: false matches below 2^-SIGMA over ``n_r · 3 n_s`` pairs."""
    bits = SIGMA + math.log2(max(n_r, 1)) + math.log2(HASHES * max(n_s, 1))
    return min(16, math.ceil(bits / 8))


def item_blocks(items: Any) -> tuple[int, Any, np.ndarray]:
    """Deduplicate and sort ``items`` (as :func:`canonical_items`); return (kind, values, blocks).

    ``blocks`` (``uint64[n, 2]``) are the OPRF inputs: an integer in the low
    word (high word 1), or the 16-byte BLAKE2b of the kind-prefixed encoding of
    a str/bytes item (one hash per item, outside the vectorised path).
    """
    if isinstance(items, np.ndarray) and items.ndim == 1 and items.size and np.issubdtype(items.dtype, np.integer):
        if items.dtype == np.uint64 and int(items.max()) > np.iinfo(np.int64).max:
            raise ParameterError("integer items must fit in int64")
        values = np.sort(items.astype(np.int64))
        keep = np.ones(len(values), bool)
        keep[1:] = values[1:] != values[:-1]
        kind, values = _KIND_INT, values[keep]              # np.unique, without its cost here
    else:
        kind, values, enc = canonical_items(items)
    blocks = np.empty((len(values), 2), np.uint64)
    if kind == _KIND_INT:
        blocks[:, 0] = values.view(np.uint64)
        blocks[:, 1] = 1
    elif kind in (_KIND_STR, _KIND_BYTES):
        raw = b"".join(hashlib.blake2b(e, digest_size=16, person=b"concilium-psi").digest() for e in enc)
        blocks[:] = np.frombuffer(raw, np.uint64).reshape(-1, 2)
        blocks[:, 1] &= np.uint64((1 << 56) - 1)
        blocks[:, 1] |= np.uint64(kind << 56)
    return kind, values, blocks


def with_hash_index(blocks: np.ndarray, index: np.ndarray | int) -> np.ndarray:
    """The OPRF input ``(x, i)``: hash-function number ``i`` in bits 60-61 of the high word."""
    out = blocks.copy()
    out[:, 1] |= np.asarray(index, dtype=np.uint64) << np.uint64(60)
    return out


def bin_positions(blocks: np.ndarray, seed: bytes, m: int) -> np.ndarray:
    """``h_1..h_3`` of each block into ``m`` bins: ``int64[n, 3]`` (AES under ``seed``, multiply-shift)."""
    if not 0 < m < 1 << 32:
        raise ParameterError(f"cuckoo table size must be in [1, 2^32), got {m}")
    words = _aes_ecb(seed, np.ascontiguousarray(blocks)).view(np.uint32)[:, :HASHES].astype(np.uint64)
    return ((words * np.uint64(m)) >> np.uint64(32)).astype(np.int64)


def cuckoo(positions: np.ndarray, m: int, rng_bits: Any, rounds: int = 2000) -> tuple[np.ndarray, np.ndarray] | None:
    """Place item ``j`` in one of its bins ``positions[j]``, one item per bin, no stash.

    Returns ``(table, choice)``: ``table[b]`` the item in bin ``b`` or -1,
    ``choice[j]`` the hash function used; ``None`` if insertion did not finish
    in ``rounds`` rounds. Random-walk insertion run for all pending items at
    once: each round, every homeless item claims its current bin (one
    claimant wins; an evicted or losing item moves to a random other choice).
    ``rng_bits(k)`` returns ``k`` random 0/1 values.
    """
    n = positions.shape[0]
    table = np.full(m, -1, np.int64)
    choice = np.zeros(n, np.int64)
    pending = np.arange(n, dtype=np.int64)
    for _ in range(rounds):
        if pending.size == 0:
            return table, choice
        target = positions[pending, choice[pending]]
        old = table[target]
        table[target] = pending
        won = table[target] == pending
        evicted = old[won]
        pending = np.concatenate([pending[~won], evicted[evicted >= 0]])
        choice[pending] = (choice[pending] + 1 + rng_bits(pending.size)) % HASHES
    return (table, choice) if pending.size == 0 else None


def _words(rows: np.ndarray) -> np.ndarray:
    """``uint8[n, ell]`` rows (ell <= 16) zero-padded to two ``uint64`` words each."""
    out = np.zeros((len(rows), 16), np.uint8)
    out[:, :rows.shape[1]] = rows
    return out.view(np.uint64)


def found_in(a: np.ndarray, b: np.ndarray, b_sorted: bool = False) -> np.ndarray:
    """Exact membership: which rows of ``uint8[n, ell]`` array ``a`` occur in ``b``.

    Both sides sorted by their first 8 bytes, then one merge-like binary
    search (sorted queries stay in cache); both words are compared. Rows of
    ``b`` sharing their first 8 bytes (probability about ``len(b)^2 / 2^65``
    for OPRF values) are checked one by one. ``b_sorted``: ``b`` is already
    sorted by its first 8 bytes (as the sender sends it).
    """
    wa, wb = _words(a), _words(b)
    if len(wb) == 0 or len(wa) == 0:
        return np.zeros(len(wa), bool)
    if not b_sorted:
        wb = wb[np.argsort(wb[:, 0])]
    b0, b1 = np.ascontiguousarray(wb[:, 0]), np.ascontiguousarray(wb[:, 1])
    oa = np.argsort(wa[:, 0])
    a0, a1 = wa[oa, 0], wa[oa, 1]
    idx = np.minimum(np.searchsorted(b0, a0), len(b0) - 1)
    hit = np.empty(len(wa), bool)
    hit[oa] = (b0[idx] == a0) & (b1[idx] == a1)
    tie = np.flatnonzero(b0[1:] == b0[:-1])
    if tie.size:                                  # rare: equal first words, look at every one
        rest = {(int(x), int(y)) for x, y in wb}
        tied = set(b0[tie].tolist())
        for j in np.flatnonzero(~hit):
            if int(wa[j, 0]) in tied:
                hit[j] = (int(wa[j, 0]), int(wa[j, 1])) in rest
    return hit


def sort_values(values: np.ndarray) -> np.ndarray:
    """The order that sorts ``uint8[n, ell]`` values by their first 8 bytes (a canonical order)."""
    return np.argsort(_words(values)[:, 0], kind="stable")


# -- interactive part -----------------------------------------------------------------------
def _hello(party: Party, peer: int, role: str, header: np.ndarray, n: int,
           limit: int | None) -> tuple[int, int]:
    """Exchange headers; return (peer's kind, peer's set size)."""
    party.send(peer, f"hello-{role}", header, np.array([n], np.uint64))
    other = "s" if role == "r" else "r"
    theirs, size = party.recv_checked(peer, f"hello-{other}", [_HEADER, _SIZE])
    if theirs[0] != header[0] or theirs[2] != header[2] or theirs[3] != header[3]:
        raise ParameterError(f"party {party.id}: OPRF-PSI settings differ from party {peer}'s "
                             f"(version, output, both): {header[[0, 2, 3]].tolist()} vs "
                             f"{theirs[[0, 2, 3]].tolist()}")
    k1, k2 = int(header[1]), int(theirs[1])
    if k1 and k2 and k1 != k2:
        raise ParameterError(f"party {party.id} holds {_KIND_NAMES.get(k1, k1)} but party "
                             f"{peer} holds {_KIND_NAMES.get(k2, k2)}")
    n_peer = int(size[0])
    if n_peer > MAX_EXTEND // 2 or (k2 == _KIND_EMPTY) != (n_peer == 0):
        raise ProtocolError(f"party {party.id}: party {peer} announced an invalid set size")
    if limit is not None and n_peer > limit:
        raise ProtocolError(f"party {party.id}: party {peer} sent {n_peer} items, more than "
                            f"max_peer_items = {limit}")
    return k2, n_peer


def _typed_empty(values: Any, kind_peer: int) -> Any:
    if len(values) == 0 and kind_peer in (_KIND_STR, _KIND_BYTES):
        return []
    return values


def _select(values: Any, mask: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return values[mask]
    return [v for v, keep in zip(values, mask.tolist()) if keep]


def run(party: Party, peer: int, is_receiver: bool, items: Any, size_only: bool, both: bool,
        limit: int | None) -> Any:
    """Both roles of the OPRF PSI (called by :func:`protocols.psi.psi` inside its scope)."""
    kind, values, blocks = item_blocks(items)
    header = np.array([VERSION, kind, int(size_only), int(both)], np.uint8)
    role = "r" if is_receiver else "s"
    kind_peer, n_peer = _hello(party, peer, role, header, len(values), limit)
    values = _typed_empty(values, kind_peer)
    if len(values) == 0 or n_peer == 0:
        if not is_receiver and not both:
            return None
        return 0 if size_only else _select(values, np.zeros(len(values), bool))
    if is_receiver:
        return _receiver(party, peer, values, blocks, n_peer, size_only, both)
    return _sender(party, peer, values, blocks, n_peer, size_only, both)


def _receiver(party: Party, peer: int, values: Any, blocks: np.ndarray, n_s: int,
              size_only: bool, both: bool) -> Any:
    kkrt = KKRTReceiver.setup(party, peer)
    n, m = len(blocks), table_size(len(blocks))
    with party.phase("psi/cuckoo"):
        for _ in range(TRIES):                                       # step 3
            seed = party.prg.bytes(16)
            placed = cuckoo(bin_positions(blocks, seed, m), m, party.prg.bits)
            if placed is not None:
                break
        else:
            raise ProtocolError(f"party {party.id}: cuckoo hashing of {n} items into {m} bins "
                                f"failed {TRIES} times")
        table, choice = placed
        inputs = party.prg.uint64((m, 2))                            # dummies in empty bins
        full = table >= 0
        inputs[full] = with_hash_index(blocks[table[full]], choice[table[full]])
    party.send(peer, "hash-seed", np.frombuffer(seed, np.uint8))
    with party.phase("psi/oprf"):
        outs = kkrt.encode(inputs)
    ell = value_bytes(n, n_s)
    mine = np.empty((n, ell), np.uint8)
    mine[table[full]] = outs[full, :ell]
    (theirs,) = party.recv_checked(peer, "values", [ArraySpec(np.uint8, (HASHES * n_s, ell),
                                                              field="OPRF values")])
    with party.phase("psi/match"):
        first = _words(theirs)[:, 0]
        if np.any(first[1:] < first[:-1]):
            raise ProtocolError(f"party {party.id}: party {peer}'s OPRF values under "
                                f"{party.tag('values')!r} are not sorted")
        hit = found_in(mine, theirs, b_sorted=True)                  # step 5
    if size_only:
        count = int(hit.sum())
        if both:
            party.send(peer, "result", np.array([count], np.int64), public=True)
        return count
    if both:
        positions = np.flatnonzero(found_in(theirs, mine[hit]))
        party.send(peer, "result", positions.astype(np.int64), public=True)
    return _select(values, hit)


def _sender(party: Party, peer: int, values: Any, blocks: np.ndarray, n_r: int,
            size_only: bool, both: bool) -> Any:
    kkrt = KKRTSender.setup(party, peer)
    n, m = len(blocks), table_size(n_r)
    (seed,) = party.recv_checked(peer, "hash-seed", [ArraySpec(np.uint8, (16,), field="hash seed")])
    keys = kkrt.keys(m)
    with party.phase("psi/oprf"):                                    # step 4
        pos = bin_positions(blocks, seed.tobytes(), m)
        inputs = np.concatenate([with_hash_index(blocks, i) for i in range(HASHES)])
        vals = keys.evaluate(pos.T.ravel(), inputs)[:, :value_bytes(n_r, n)]
        order = sort_values(vals)          # sorted: an order that depends on the values only
    party.send(peer, "values", vals[order])
    if not both:
        return None
    if size_only:
        (count,) = party.recv_checked(peer, "result", [ArraySpec(np.int64, (1,), low=0, high=min(n, n_r),
                                                                 field="intersection size")])
        return int(count[0])
    (got,) = party.recv_checked(peer, "result", [ArraySpec(np.int64, (None,), low=0,
                                                           high=len(vals) - 1, max_len=min(n, n_r),
                                                           field="match positions")])
    mask = np.zeros(n, bool)
    mask[order[got] % n] = True
    return _select(values, mask)
