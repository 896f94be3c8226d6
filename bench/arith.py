"""Secret-shared multiplication and matmul, 3 parties in one process, against numpy.

Names: ``mul`` (10^6 elementwise fixed-point products) and ``matmul`` (n x n,
n = 128..1024). Each is reported twice: ``phase: "online"`` (triples and
truncation pairs prefetched from the dealer before the clock starts) and
``phase: "total"`` (the dealer's preprocessing on demand, inside the clock).
Time is from the first party starting the operation to the last one
finishing; the baseline is the same product in plaintext numpy float64 (the
faster of BLAS with its default threads and with one thread).
"""

from __future__ import annotations

import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

import mpc
from bench.common import median_time, record

PARTIES = 3


def _secure_op(op: str, x: np.ndarray, y: np.ndarray, repeat: int, prefetch: bool):
    barrier = threading.Barrier(PARTIES)
    spans: list[list[tuple[float, float]]] = [[] for _ in range(PARTIES)]

    def program(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0)
        sy = mpc.share(party, y if party.id == 1 else None, 1)
        kind = "mul" if op == "mul" else "matmul"
        out_shape = (x * y).shape if op == "mul" else (x.shape[0], y.shape[1])
        if prefetch:
            with party.phase("offline"):
                party.preprocessing.prefetch(kind, x.shape, y.shape, count=repeat)
                party.preprocessing.prefetch("trunc", out_shape, party.fixed.frac_bits, count=repeat)
        result = None
        for _ in range(repeat):
            barrier.wait()
            with party.phase("measured"):
                t0 = time.perf_counter()
                result = sx * sy if op == "mul" else sx @ sy
                spans[party.id].append((t0, time.perf_counter()))
        return result.reveal(to=0)

    res = mpc.run(program, PARTIES, timeout=600)
    per_op = [max(spans[p][k][1] for p in range(PARTIES)) - min(spans[p][k][0] for p in range(PARTIES))
              for k in range(repeat)]
    measured = res.cost.phases()["measured"]
    bytes_per_party = sum(v for p, v in measured.bytes_sent.items() if p >= 0) / PARTIES / repeat
    dealer_bytes = sum(m.payload_bytes for m in res.cost.messages
                       if m.sender < 0 and m.tag != "dealer/seed") / repeat
    return float(np.median(per_op)), res.outputs[0], bytes_per_party, measured.rounds // repeat, dealer_bytes


def _records(name: str, params: dict, op: str, x: np.ndarray, y: np.ndarray, repeat: int):
    fn = np.multiply if op == "mul" else np.matmul
    # The baseline is numpy at its best here: BLAS with its default threads or with one
    # (on a busy 2-core machine a 2-thread BLAS waits for the other core, 100x slower).
    base, _, want = median_time(lambda: fn(x, y), repeat=max(repeat, 5))
    with threadpool_limits(1, user_api="blas"):
        base = min(base, median_time(lambda: fn(x, y), repeat=max(repeat, 5))[0])
    out = []
    for phase, prefetch in (("online", True), ("total", False)):
        secs, got, bpp, rounds, dealer = _secure_op(op, x, y, repeat, prefetch)
        err = np.abs(got - want)
        out.append(record(name, {**params, "parties": PARTIES, "phase": phase}, secs, base,
                          bytes_per_party=bpp, rounds=rounds,
                          max_abs_error=float(err.max()), off_by_more_than_0_01=int((err > 0.01).sum()),
                          dealer_bytes=dealer if phase == "total" else 0))
    return out


def bench_mul(quick: bool) -> list[dict]:
    """10^6 secret-shared fixed-point products, 3 parties, online and total, vs numpy."""
    n = 10_000 if quick else 1_000_000
    rng = np.random.default_rng(0)
    x = rng.uniform(-100, 100, n)
    y = rng.uniform(-100, 100, n)
    return _records("mul", {"n": n}, "mul", x, y, repeat=2 if quick else 5)


def bench_matmul(quick: bool) -> list[dict]:
    """Secret-shared n x n matrix products (n = 128..1024), 3 parties, online and total, vs numpy."""
    sizes = [32, 64] if quick else [128, 256, 512, 1024]
    rng = np.random.default_rng(1)
    out = []
    for n in sizes:
        x = rng.uniform(-1, 1, (n, n))
        y = rng.uniform(-1, 1, (n, n))
        out.extend(_records("matmul", {"n": n}, "matmul", x, y, repeat=2 if quick or n >= 512 else 3))
    return out


BENCHMARKS = {"mul": bench_mul, "matmul": bench_matmul}
