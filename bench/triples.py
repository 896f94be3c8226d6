"""Triple generation throughput: trusted dealer vs dealer-free OT and Paillier, n parties.

Name: ``triples``; params ``source`` (``dealer``, ``ot``, ``he``), ``kind``
(``arithmetic``: 64-bit Beaver triples over Z_2^64; ``binary``: AND triples,
one per bit, 64 per uint64 word), ``count`` (triples per batch) and
``parties`` (2 for every source; the OT source also at 3 and 4, every pair
running its own OT extension). Full runs add records named
``matrix_triples`` (``kind="matmul"``: 16 x 16 x 16 matrix triples, one
batch each).

Each repeat produces ``count`` triples in one batch (``prefetch``) after a
warm-up that pays the one-time setup (base OTs, Paillier key). Reported:
``seconds`` (median wall time, first party starting to last finishing),
``per_second`` = count / seconds, ``cpu_per_second`` = count / the busier
party thread's CPU time (what a quiet machine with a core per party would
show; the wall clock suffers from other jobs on a shared machine),
``bytes_per_party`` (payload bytes one party sends per batch, the mean over
the parties), ``bytes_per_party_per_triple`` (the same per triple),
``dealer_bytes`` (what the dealer sends per batch), ``bytes_per_triple``
(payload bytes sent by all parties and the dealer, per triple),
``rounds`` per batch (the parties' round clocks are aligned after the
warm-up, so a batch's rounds are its own), ``load_average`` during the run, and as ``baseline``
the same triples drawn in plaintext numpy by one process (what an insecure
"everyone knows everything" generator costs).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

import numpy as np

import mpc
from bench.common import median_time, record
from mpc.arith.ring import ring_matmul
from mpc.preprocessing.he import he_factory
from mpc.transport.stats import DEALER


MATMUL_SIDE = 16
"""``kind="matmul"``: one triple is a 16 x 16 by 16 x 16 matrix triple."""


def _baseline(kind: str, count: int) -> float:
    rng = np.random.default_rng(0)
    if kind == "matmul":
        def draw():
            a = rng.integers(0, 2**64 - 1, (MATMUL_SIDE, MATMUL_SIDE), dtype=np.uint64, endpoint=True)
            return [ring_matmul(a, a) for _ in range(count)]
    elif kind == "arithmetic":
        def draw():
            a = rng.integers(0, 2**64 - 1, count, dtype=np.uint64, endpoint=True)
            b = rng.integers(0, 2**64 - 1, count, dtype=np.uint64, endpoint=True)
            return a * b
    else:
        words = count // 64

        def draw():
            a = rng.integers(0, 2**64 - 1, words, dtype=np.uint64, endpoint=True)
            b = rng.integers(0, 2**64 - 1, words, dtype=np.uint64, endpoint=True)
            return a & b
    secs, _, _ = median_time(draw, repeat=3)
    return secs


def _align(party: Any) -> None:
    """Every party's round clock to one value (Lamport clocks differ after the warm-up)."""
    mine = party.clock
    got = party.exchange(party.fresh("bench-align"), np.array([mine], np.int64))
    party.clock = max(party.clock, 1 + max([mine, *(int(a[0][0]) for a in got.values())]))


def _measure(source: str, kind: str, count: int, repeat: int, quick: bool,
             parties: int = 2) -> dict[str, Any]:
    """Produce ``count`` triples ``repeat`` times; wall and CPU time, bytes, rounds."""
    barrier = threading.Barrier(parties)
    shape = (count,) if kind == "arithmetic" else (count // 64,)
    side = MATMUL_SIDE

    def make(p: Any) -> None:
        if kind == "matmul":
            for _ in range(count):
                p.prefetch("matmul", (side, side), (side, side), count=1)
                p.triple("matmul", (side, side), (side, side))
        elif kind == "arithmetic":
            p.prefetch("mul", shape, shape, count=1)
            p.triple("mul", shape, shape)
        else:
            p.prefetch("binary", shape, count=1)
            p.binary_triple(shape)

    def program(party: Any) -> list[tuple[float, float, float, int, list[int]]]:
        p = party.preprocessing
        p.triple("mul", (4,), (4,))            # warm-up: base OTs, Paillier key
        p.binary_triple((1,))
        runs = []
        for _ in range(repeat):
            _align(party)
            barrier.wait()
            start = len(party.log)
            c0, t0 = time.thread_time(), time.perf_counter()
            make(p)
            t1, c1 = time.perf_counter(), time.thread_time()
            own = sum(m.payload_bytes for m in party.log[start:] if m.sender == party.id)
            dealt = sum(m.payload_bytes for m in party.log[start:] if m.sender == DEALER)
            stamps = [m.round for m in party.log[start:] if m.sender == party.id]
            runs.append((t0, t1, c1 - c0, (own, dealt), stamps))
        return runs

    pre: Any = source
    params: dict[str, Any] = {"source": source, "kind": kind, "count": count, "parties": parties}
    if kind == "matmul":
        params["shape"] = f"{side}x{side}x{side}"
    if source == "he":
        bits = 1024 if quick else 2048
        pre = lambda n: he_factory(n, key_bits=bits, insecure_for_testing=quick)  # noqa: E731
        params["key_bits"] = bits
    load0 = os.getloadavg()[0]
    res = mpc.run(program, parties, preprocessing=pre, timeout=1800)
    load1 = os.getloadavg()[0]
    runs = list(zip(*res.outputs))                              # per repeat: every party's record
    walls = [max(p[1] for p in run) - min(p[0] for p in run) for run in runs]
    cpus = [max(p[2] for p in run) for run in runs]
    own = [sum(p[3][0] for p in run) for run in runs]           # what the parties sent
    sent = [sum(p[3][0] + p[3][1] for p in run) for run in runs]   # and the dealer
    stamps = [[r for p in run for r in p[4]] for run in runs]
    rounds = max((max(s) - min(s) + 1) if s else 0 for s in stamps)
    secs = statistics.median(walls)
    base = _baseline(kind, count)
    name = "matrix_triples" if kind == "matmul" else "triples"
    return record(name, params, secs, base, bytes_per_party=statistics.median(own) / parties,
                  bytes_per_party_per_triple=statistics.median(own) / parties / count,
                  rounds=rounds, per_second=count / secs, cpu_per_second=count / statistics.median(cpus),
                  bytes_per_triple=statistics.median(sent) / count,
                  dealer_bytes=statistics.median(sent) - statistics.median(own),
                  spread=max(walls) - min(walls),
                  load_average=round((load0 + load1) / 2, 1))


def bench_triples(quick: bool) -> list[dict]:
    """Beaver triples per second from the dealer, OT and HE sources, arithmetic and binary;
    the OT source for 2, 3 and 4 parties."""
    if quick:
        plan = [("dealer", "arithmetic", 10_000, 2), ("ot", "arithmetic", 2_000, 2),
                ("he", "arithmetic", 24, 2), ("dealer", "binary", 64 * 1_000, 2),
                ("ot", "binary", 64 * 1_000, 2), ("ot", "arithmetic", 1_000, 3),
                ("ot", "binary", 64 * 500, 3)]
        repeat = 1
    else:
        plan = [("dealer", "arithmetic", 1_000_000, 2), ("ot", "arithmetic", 100_000, 2),
                ("ot", "arithmetic", 50_000, 3), ("ot", "arithmetic", 30_000, 4),
                ("he", "arithmetic", 600, 2),
                ("dealer", "binary", 64 * 1_000_000, 2), ("ot", "binary", 64 * 100_000, 2),
                ("ot", "binary", 64 * 50_000, 3), ("ot", "binary", 64 * 30_000, 4),
                ("dealer", "matmul", 10, 2), ("ot", "matmul", 10, 2), ("ot", "matmul", 10, 3),
                ("he", "matmul", 1, 2)]
        repeat = 3
    return [_measure(source, kind, count, repeat, quick, parties) for source, kind, count, parties in plan]


BENCHMARKS = {"triples": bench_triples}
