"""Triple generation throughput: trusted dealer vs dealer-free OT and Paillier, two parties.

Name: ``triples``; params ``source`` (``dealer``, ``ot``, ``he``), ``kind``
(``arithmetic``: 64-bit Beaver triples over Z_2^64; ``binary``: AND triples,
one per bit, 64 per uint64 word) and ``count`` (triples per batch). Full
runs add records named ``matrix_triples`` (``kind="matmul"``: 16 x 16 x 16
matrix triples, one batch each).

Each repeat produces ``count`` triples in one batch (``prefetch``) after a
warm-up that pays the one-time setup (base OTs, Paillier key). Reported:
``seconds`` (median wall time, first party starting to last finishing),
``per_second`` = count / seconds, ``cpu_per_second`` = count / the busier
party thread's CPU time (what a quiet two-core machine would show; the wall
clock suffers from other jobs on a shared machine), ``bytes_per_party``
(payload bytes one party sends per batch, the mean of the two),
``dealer_bytes`` (what the dealer sends per batch), ``bytes_per_triple``
(payload bytes sent by both parties and the dealer, per triple),
``rounds`` per batch, ``load_average`` during the run, and as ``baseline``
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


def _measure(source: str, kind: str, count: int, repeat: int, quick: bool) -> dict[str, Any]:
    """Produce ``count`` triples ``repeat`` times; wall and CPU time, bytes, rounds."""
    barrier = threading.Barrier(2)
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
    params: dict[str, Any] = {"source": source, "kind": kind, "count": count, "parties": 2}
    if kind == "matmul":
        params["shape"] = f"{side}x{side}x{side}"
    if source == "he":
        bits = 1024 if quick else 2048
        pre = lambda n: he_factory(n, key_bits=bits, insecure_for_testing=quick)  # noqa: E731
        params["key_bits"] = bits
    load0 = os.getloadavg()[0]
    res = mpc.run(program, 2, preprocessing=pre, timeout=1800)
    load1 = os.getloadavg()[0]
    r0, r1 = res.outputs
    walls = [max(a[1], b[1]) - min(a[0], b[0]) for a, b in zip(r0, r1)]
    cpus = [max(a[2], b[2]) for a, b in zip(r0, r1)]
    own = [a[3][0] + b[3][0] for a, b in zip(r0, r1)]          # what the two parties sent
    sent = [a[3][0] + b[3][0] + a[3][1] + b[3][1] for a, b in zip(r0, r1)]   # and the dealer
    rounds = max((max(a[4] + b[4]) - min(a[4] + b[4]) + 1) if a[4] + b[4] else 0 for a, b in zip(r0, r1))
    secs = statistics.median(walls)
    base = _baseline(kind, count)
    name = "matrix_triples" if kind == "matmul" else "triples"
    return record(name, params, secs, base, bytes_per_party=statistics.median(own) / 2,
                  rounds=rounds, per_second=count / secs, cpu_per_second=count / statistics.median(cpus),
                  bytes_per_triple=statistics.median(sent) / count,
                  dealer_bytes=statistics.median(sent) - statistics.median(own),
                  spread=max(walls) - min(walls),
                  load_average=round((load0 + load1) / 2, 1))


def bench_triples(quick: bool) -> list[dict]:
    """Beaver triples per second from the dealer, OT and HE sources, arithmetic and binary."""
    if quick:
        plan = [("dealer", "arithmetic", 10_000), ("ot", "arithmetic", 2_000), ("he", "arithmetic", 24),
                ("dealer", "binary", 64 * 1_000), ("ot", "binary", 64 * 1_000)]
        repeat = 1
    else:
        plan = [("dealer", "arithmetic", 1_000_000), ("ot", "arithmetic", 100_000),
                ("he", "arithmetic", 600),
                ("dealer", "binary", 64 * 1_000_000), ("ot", "binary", 64 * 100_000),
                ("dealer", "matmul", 10), ("ot", "matmul", 10), ("he", "matmul", 1)]
        repeat = 3
    return [_measure(source, kind, count, repeat, quick) for source, kind, count in plan]


BENCHMARKS = {"triples": bench_triples}
