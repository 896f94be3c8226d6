"""Dealer-free preprocessing for n >= 2 parties from pairwise IKNP oblivious transfer (layer: mpc core).

:class:`OTSource` implements the :class:`~mpc.preprocessing.base.Preprocessing`
interface with no third party: the parties make every triple, truncation pair
and daBit themselves, each pair ``i < j`` with its own IKNP extension (party
``i`` the OT sender), all pairs in the same rounds
(:mod:`mpc.preprocessing.pairwise`: the OLE, shared bits and AND primitives,
their security argument and per-pair cost). Everything is produced inside
``party.phase("offline")``, so its bytes and rounds are reported apart from
the online phase.

Protocol
--------
Party ``i`` draws its shares ``a_i, b_i`` locally; ``a = sum_i a_i`` etc.

* ``mul`` triple: ``c = a b = sum_i a_i b_i + sum_{i<j} (a_i b_j + b_i a_j)``;
  the cross terms of pair ``(i, j)`` are one Gilboa vector OLE (party ``i``
  offers ``(a_i, b_i)``, party ``j`` chooses by the bits of ``(b_j, a_j)``),
  ``c_i = a_i b_i + `` this party's OLE shares.
* ``matmul`` triple ``(m x k) @ (k x n)``: the same with vector OLE, the
  higher party's scalars ``b_j[l, n']`` against the lower one's columns
  ``a_i[:, l]`` (``w = m``) and ``a_j[m', l]`` against the rows ``b_i[l, :]``
  (``w = n``): ``64 (kn + mk)`` OTs but ``8 * 64 * 2mkn`` bytes of
  corrections per pair (Gilboa matmul costs ``O(mkn 64^2)`` bits, which is
  why HE is preferred for large matrices with two parties).
* random **shared bits** (daBits): ``r = u_0 xor ... xor u_{n-1}`` is
  XOR-shared for free, and additively shared by the chain
  ``r <- r + u_k - 2 r u_k`` of 1-bit OLEs (``n`` rounds).
* **truncation pair**: 64 shared random bits ``r_t`` per element;
  ``r = sum 2^t r_t``, ``r >> f = sum_{t >= f} 2^(t-f) r_t``, ``msb = r_63``:
  exact (no wrap error), all local after the bits.
* **binary (AND) triple**: ``a & b = xor_i a_i b_i xor xor_{i<j}(a_i b_j xor
  a_j b_i)``, each cross term from random OT (ALSZ 2013): 2 OTs per AND bit
  and pair, plus 2 correction bits except for the pair ``(0, 1)``.

Security
--------
Semi-honest, dishonest majority (up to ``n - 1`` colluding parties), static
corruption, no third party. A party's view is the union of its pairwise
views: IKNP matrices (uniform whatever the receiver's choices) and
corrections masked by the OT pad of the choice not taken. Shares come from
each party's own CSPRNG-seeded PRG (:mod:`mpc.rand`). Not secure against an
active party (no MAC check, as in SPDZ2k/MASCOT).

Cost (``P = n(n-1)/2`` pairs; the IKNP matrix is 16 bytes per OT)
-----------------------------------------------------------------
========================  ============  ===================================
item                      OTs           bytes (all parties together)
========================  ============  ===================================
``mul`` triple, per elt.  128 P         3,072 P  (128 * 16 + 128 * 8)
``matmul`` m x k x n      64(kn+mk) P   (1024 (kn+mk) + 1024 m k n) P
truncation pair, per elt  64 P          1,536 P
daBit                     P             24 P
binary triple, per word   128 P         2,048 P + 16 (P - 1)
========================  ============  ===================================

Per party, party ``i`` sends the matrices of its ``i`` lower pairs and the
corrections of its ``n - 1 - i`` higher ones (a ``mul`` triple: ``2048 i +
1024 (n - 1 - i)`` bytes). Rounds per batch: 2 for triples (1 for AND
triples with two parties), ``n`` for shared bits, whatever ``n``; the setup
(128 base OTs per pair) about ``n`` rounds once. :meth:`OTSource.prefetch`
makes ``count`` items in one batch and :meth:`OTSource.prefetch_plan` a whole
plan of kinds and shapes in a constant number of batches.

References
----------
N. Gilboa, "Two party RSA key generation", CRYPTO 1999 (OT multiplication).
M. Keller, E. Orsini, P. Scholl, "MASCOT", CCS 2016 (n-party triples from pairwise OT).
G. Asharov, Y. Lindell, T. Schneider, M. Zohner, "More efficient oblivious
transfer and extensions", CCS 2013 (AND triples from random OT).
P. Mohassel, Y. Zhang, "SecureML", S&P 2017 (OT-based matrix triples).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..arith.ring import ring_matmul
from ..errors import ParameterError
from ..party import Party
from ..sharing.binary import pack_bits
from .base import Preprocessing, Shares, matmul_shape, triple_shapes
from .pairwise import MAX_OTS, PairwiseOT
from .store import SealableMixin, offline

Job = tuple[int, int, "np.ndarray | None", "np.ndarray | None"]
"""An OLE job: width ``w``, scalar count, ``x`` offered to higher parties, ``y`` chosen towards lower."""


def _check_frac(frac_bits: int) -> None:
    if not isinstance(frac_bits, (int, np.integer)) or not 0 < frac_bits < 63:
        raise ParameterError(f"frac_bits must be in [1, 62] for a truncation pair, got {frac_bits!r}")


def _cut_dabits(xor: np.ndarray, arith: np.ndarray, shape: tuple[int, ...], count: int) -> list[Shares]:
    """``count`` daBits of ``shape`` from shared bits (XOR shares 0/1, additive shares)."""
    size = int(np.prod(shape, dtype=np.int64))
    return [(pack_bits(xor[i * size:(i + 1) * size]), arith[i * size:(i + 1) * size].reshape(shape))
            for i in range(count)]


def _cut_trunc(bits: np.ndarray, shape: tuple[int, ...], frac_bits: int, count: int) -> list[Shares]:
    """``count`` truncation pairs from additive shares of ``64 * size * count`` random bits."""
    size = int(np.prod(shape, dtype=np.int64))
    bits = bits.reshape(count, size, 64)
    j = np.arange(64, dtype=np.uint64)
    r = (bits << j).sum(axis=2, dtype=np.uint64)
    hi = (bits[:, :, frac_bits:] << (j[frac_bits:] - np.uint64(frac_bits))).sum(axis=2, dtype=np.uint64)
    msb = bits[:, :, 63]
    return [(r[i].reshape(shape), hi[i].reshape(shape), msb[i].reshape(shape).copy())
            for i in range(count)]


class OTSource(SealableMixin, PairwiseOT, Preprocessing):
    """Triples, truncation pairs, binary triples and daBits for one of n >= 2 parties, by pairwise IKNP OT.

    Parameters
    ----------
    party:
        This party (:class:`mpc.party.Party`) of a session of two or more parties.
    batch_ots:
        Most OTs per IKNP extension call and pair (memory bound; default 2^20).

    See the module docstring for the protocols, security and cost.
    """

    def __init__(self, party: Party, *, batch_ots: int = MAX_OTS) -> None:
        super().__init__()
        if party.n < 2:
            raise ParameterError(f"the OT preprocessing source needs at least 2 parties, not {party.n}")
        if not 1024 <= batch_ots <= (1 << 26):
            raise ParameterError("batch_ots must be in [1024, 2^26]")
        self._init_pairwise(party, batch_ots)

    def _ole_many(self, jobs: list[Job], nbits: int = 64) -> list[np.ndarray]:
        """Run several OLE jobs ``(w, N, x (N, w), y (N,))`` of any widths, one batch per width."""
        results: list[np.ndarray | None] = [None] * len(jobs)
        for w in sorted({job[0] for job in jobs}):
            idx = [i for i, job in enumerate(jobs) if job[0] == w]
            sizes = [jobs[i][1] for i in idx]
            xs = np.concatenate([jobs[i][2] for i in idx]) if self.higher else None  # type: ignore[misc]
            ys = np.concatenate([jobs[i][3] for i in idx]) if self.lower else None  # type: ignore[misc]
            got = self._ole(xs, ys, sum(sizes), w, nbits)
            for i, part in zip(idx, np.split(got, np.cumsum(sizes)[:-1])):
                results[i] = part
        return results  # type: ignore[return-value]

    # -- arithmetic triples ------------------------------------------------------------
    def _plan_triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]
                     ) -> tuple[list[Job], Callable[[list[np.ndarray]], Shares]]:
        """This party's share draw, the OLE jobs it needs and how to finish from their results."""
        a = self._random(sa)
        b = self._random(sb)
        sc = triple_shapes(op, sa, sb)
        if op == "mul":
            xa, xb = np.broadcast_to(a, sc).reshape(-1), np.broadcast_to(b, sc).reshape(-1)
            # cross terms a_i*b_j and b_i*a_j of pair i < j: i offers (a_i, b_i), j chooses by (b_j, a_j)
            x = np.concatenate([xa, xb])[:, None] if self.higher else None
            y = np.concatenate([xb, xa]) if self.lower else None
            jobs: list[Job] = [(1, 2 * xa.size, x, y)]

            def finish(res: list[np.ndarray]) -> Shares:
                cross = res[0][:, 0]
                n = cross.size // 2
                c = (a * b).reshape(-1) + cross[:n] + cross[n:]
                return a, b, c.reshape(sc)
            return jobs, finish
        # matmul: promote 1-D operands, broadcast batch dims, flatten the batch
        A = a.reshape((1,) + sa) if len(sa) == 1 else a
        B = b.reshape(sb + (1,)) if len(sb) == 1 else b
        m, k, n = A.shape[-2], A.shape[-1], B.shape[-1]
        batch = tuple(np.broadcast_shapes(A.shape[:-2], B.shape[:-2]))
        T = int(np.prod(batch, dtype=np.int64))
        if 0 in (T, m, k, n):   # an empty product: c is empty or all zeros, nothing to multiply
            return [], lambda res: (a, b, np.zeros(matmul_shape(sa, sb), np.uint64))
        Ab = np.broadcast_to(A, batch + (m, k)).reshape(T, m, k)
        Bb = np.broadcast_to(B, batch + (k, n)).reshape(T, k, n)
        x1 = x2 = y1 = y2 = None
        if self.higher:
            # term 1: a lower party's columns a_i[t, :, l] times a higher one's scalars b_j[t, l, n] (w = m)
            x1 = np.broadcast_to(Ab.transpose(0, 2, 1)[:, :, None, :], (T, k, n, m)).reshape(-1, m)
            # term 2: the lower party's rows b_i[t, l, :] times the higher one's scalars a_j[t, i, l] (w = n)
            x2 = np.broadcast_to(Bb[:, None, :, :], (T, m, k, n)).reshape(-1, n)
        if self.lower:
            y1, y2 = Bb.reshape(-1), Ab.reshape(-1)
        jobs = [(m, T * k * n, x1, y1), (n, T * m * k, x2, y2)]

        def finish_mm(res: list[np.ndarray]) -> Shares:
            t1 = res[0].reshape(T, k, n, m).sum(axis=1, dtype=np.uint64).transpose(0, 2, 1)
            t2 = res[1].reshape(T, m, k, n).sum(axis=2, dtype=np.uint64)
            c = ring_matmul(Ab, Bb) + t1 + t2
            return a, b, c.reshape(matmul_shape(sa, sb))
        return jobs, finish_mm

    def _triples(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...], count: int) -> list[Shares]:
        plans = [self._plan_triple(op, sa, sb) for _ in range(count)]
        jobs = [j for p in plans for j in p[0]]
        with offline(self.party), self.party.scope("ot-triple"):
            res = self._ole_many(jobs)
        out, i = [], 0
        for plan_jobs, finish in plans:
            out.append(finish(res[i:i + len(plan_jobs)]))
            i += len(plan_jobs)
        return out

    def _triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> Shares:
        return self._triples(op, sa, sb, 1)[0]

    # -- shared random bits: daBits and truncation pairs ------------------------------
    def _dabits(self, shape: tuple[int, ...], count: int) -> list[Shares]:
        size = int(np.prod(shape, dtype=np.int64))
        with offline(self.party), self.party.scope("ot-dabit"):
            xor, arith = self._shared_bits(size * count)
        return _cut_dabits(xor, arith, shape, count)

    def _dabit(self, shape: tuple[int, ...]) -> Shares:
        return self._dabits(shape, 1)[0]

    def _trunc_pairs(self, shape: tuple[int, ...], frac_bits: int, count: int) -> list[Shares]:
        _check_frac(frac_bits)
        size = int(np.prod(shape, dtype=np.int64))
        with offline(self.party), self.party.scope("ot-trunc"):
            _, bits = self._shared_bits(size * count * 64)
        return _cut_trunc(bits, shape, frac_bits, count)

    def _trunc_pair(self, shape: tuple[int, ...], frac_bits: int) -> Shares:
        return self._trunc_pairs(shape, frac_bits, 1)[0]

    # -- binary triples ----------------------------------------------------------------
    def _and_batch(self, size: int) -> np.ndarray:
        """``uint64[3, size]`` AND-triple words, in IKNP chunks of ``batch_ots`` OTs."""
        out = np.zeros((3, size), np.uint64)
        per = max(1, self.batch_ots // 128)
        pending: list[tuple[int, int, tuple[Any, ...]]] = []
        for lo in range(0, size, per):  # pipelined: the next chunk's matrices before this one's replies
            hi = min(size, lo + per)
            pending.append((lo, hi, self._and_start(hi - lo)))
            if len(pending) > 1:
                lo0, hi0, state = pending.pop(0)
                out[:, lo0:hi0] = self._and_finish(state)
        for lo0, hi0, state in pending:
            out[:, lo0:hi0] = self._and_finish(state)
        return out

    def _binary_triples(self, shape: tuple[int, ...], count: int) -> list[Shares]:
        size = int(np.prod(shape, dtype=np.int64)) * count
        with offline(self.party), self.party.scope("ot-and"):
            out = self._and_batch(size)
        words = out.reshape((3, count) + shape)
        return [(words[0, i], words[1, i], words[2, i]) for i in range(count)]

    def _binary_triple(self, shape: tuple[int, ...]) -> Shares:
        return self._binary_triples(shape, 1)[0]

    # -- bulk production ---------------------------------------------------------------
    def prefetch(self, kind: str, *args: Any, count: int = 1) -> None:
        """Produce ``count`` items of one kind in one batch (the offline phase).

        ``kind`` is ``"mul"``/``"matmul"`` (args ``sa, sb``), ``"trunc"``
        (``shape, frac_bits``), ``"binary"`` (``shape``) or ``"dabit"`` (``shape``).
        """
        norm = self._prefetch_args(kind, args, count)
        if norm is None:
            return
        if kind in ("mul", "matmul"):
            sa, sb = norm
            triple_shapes(kind, sa, sb)
            items = self._triples(kind, sa, sb, count)
        elif kind == "trunc":
            items = self._trunc_pairs(norm[0], int(norm[1]), count)
        elif kind == "binary":
            items = self._binary_triples(norm[0], count)
        elif kind == "dabit":
            items = self._dabits(norm[0], count)
        else:
            raise ParameterError(f"unknown preprocessing kind {kind!r}; "
                                 "expected one of ['binary', 'dabit', 'matmul', 'mul', 'trunc']")
        self.produced[kind] += count
        self._store[(kind,) + tuple(norm)].extend(items)


    def prefetch_plan(self, plan: list[tuple[tuple[Any, ...], int]]) -> None:
        """Produce a whole plan (``[(key, count), ...]``, see :mod:`mpc.preprocessing.plan`) at once.

        All triples share one OLE batch per vector width, all truncation pairs
        and daBits one batch of shared bits, all AND triples one IKNP batch:
        rounds independent of the plan's size (after the setup: 2 per vector width, n for the
        bits, 2 for AND triples, 1 with two parties).
        """
        if self._sealed:
            for key, count in plan:
                self._check_stored(tuple(key), count)
            return
        keys = [(tuple(key), int(count)) for key, count in plan if count]
        for key, _ in keys:
            if key[0] in ("mul", "matmul"):
                triple_shapes(key[0], key[1], key[2])
            elif key[0] == "trunc":
                _check_frac(key[2])
            elif key[0] not in ("binary", "dabit"):
                raise ParameterError(f"unknown preprocessing kind {key[0]!r} in the plan")
        with offline(self.party), self.party.scope("ot-plan"):
            plans = [(key, self._plan_triple(key[0], key[1], key[2]))
                     for key, count in keys if key[0] in ("mul", "matmul") for _ in range(count)]
            res = self._ole_many([job for _, (jobs, _) in plans for job in jobs])
            i = 0
            for key, (jobs, finish) in plans:
                self._store[key].append(finish(res[i:i + len(jobs)]))
                i += len(jobs)
            bit_keys = [(key, count) for key, count in keys if key[0] in ("trunc", "dabit")]
            sizes = [int(np.prod(key[1], dtype=np.int64)) * count * (64 if key[0] == "trunc" else 1)
                     for key, count in bit_keys]
            xor, arith = self._shared_bits(sum(sizes))
            lo = 0
            for (key, count), size in zip(bit_keys, sizes):
                if key[0] == "trunc":
                    items = _cut_trunc(arith[lo:lo + size], key[1], key[2], count)
                else:
                    items = _cut_dabits(xor[lo:lo + size], arith[lo:lo + size], key[1], count)
                self._store[key].extend(items)
                lo += size
            and_keys = [(key, count) for key, count in keys if key[0] == "binary"]
            sizes = [int(np.prod(key[1], dtype=np.int64)) * count for key, count in and_keys]
            words = self._and_batch(sum(sizes))
            lo = 0
            for (key, count), size in zip(and_keys, sizes):
                w = words[:, lo:lo + size].reshape((3, count) + key[1])
                self._store[key].extend((w[0, k], w[1, k], w[2, k]) for k in range(count))
                lo += size
        for key, count in keys:
            self.produced[key[0]] += count

def ot_factory(n: int) -> Callable[[Any], OTSource]:
    """``mpc.run(..., preprocessing="ot")``: an :class:`OTSource` per party, for any ``n >= 2``."""
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ParameterError(f"preprocessing='ot' needs at least 2 parties, not {n!r}")
    return OTSource
