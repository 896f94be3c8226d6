"""Secret-shared multiplication and matmul, 3 parties in one process, against numpy.

Names: ``mul`` (10^6 elementwise fixed-point products) and ``matmul`` (n x n,
n = 128..1024). Each is reported twice: ``phase: "online"`` (triples and
truncation pairs prefetched from the dealer before the clock starts) and
``phase: "total"`` (the dealer's preprocessing on demand, inside the clock).
Time is from the first party starting the operation to the last one
finishing; the baseline is the same product in plaintext numpy float64 (the
faster of BLAS with its default threads and with one thread).

``mul`` adds a third record, ``params: {"workload": "near-limits"}``: products,
sums and public factors whose declared bounds straddle the fixed-point limits
(``|x y| < 2^30``, ``|x| < 2^46`` at 16 fractional bits). Each case either
raises :class:`mpc.RangeError` before computing (``refused``) or must match
numpy within the documented error (one unit ``2^-16`` for a product, relative
``2^-16`` per public factor); any other result counts in ``wrong_results``
(0 expected).
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
    bx = float(np.max(np.abs(x)))   # simulated data: their peaks are the declared public bounds
    by = float(np.max(np.abs(y)))
    barrier = threading.Barrier(PARTIES)
    spans: list[list[tuple[float, float]]] = [[] for _ in range(PARTIES)]

    def program(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=bx)
        sy = mpc.share(party, y if party.id == 1 else None, 1, bound=by)
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
    return _records("mul", {"n": n}, "mul", x, y, repeat=2 if quick else 5) + [near_limits(quick)]


ULP = 2.0**-16


def _limit_cases(rng: np.random.Generator, cases: int, m: int) -> list[tuple]:
    """(kind, x, bound_x, y, bound_y) with bounds straddling the limits; values up to the bounds."""
    out = []
    for k in range(cases):
        kind = ("mul", "add", "scale")[k % 3]
        if kind == "mul":                    # |x y| < 2^30: exponents summing to 26..34
            a = int(rng.integers(-4, 40))
            b = int(rng.integers(26, 35)) - a
            bx, by = 2.0**a, 2.0**b
        elif kind == "add":                  # |x + y| < 2^46
            bx, by = 2.0 ** rng.uniform(40, 45.99), 2.0 ** rng.uniform(40, 45.99)
        else:                                # x times public factors from 1e-4 to 1e4
            bx, by = 2.0 ** rng.uniform(0, 34), 0.0
        x = rng.uniform(-bx, bx, m)
        x[:2] = [bx, -bx]                    # the extremes themselves
        if kind == "scale":
            y = rng.choice([-1.0, 1.0], m) * 10.0 ** rng.uniform(-4, 4, m)
            y[:3] = [0.75, -0.3, 1e-4]
        else:
            y = rng.uniform(-by, by, m)
            y[:2] = [-by, by]
        out.append((kind, x, bx, y, by))
    return out


def _limit_program(party: mpc.Party, cases: list[tuple]) -> list[np.ndarray | None]:
    results: list[np.ndarray | None] = []
    for kind, x, bx, y, by in cases:
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=bx)
        try:
            if kind == "scale":
                z = sx * y
            else:
                sy = mpc.share(party, y if party.id == 1 else None, 1, bound=by)
                z = sx * sy if kind == "mul" else sx + sy
        except mpc.RangeError:               # every party refuses alike: public bounds only
            results.append(None)
            continue
        results.append(z.reveal())
    return results


def _is_wrong(kind: str, got: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    fp = mpc.FixedPoint(16)
    ex = fp.decode(fp.encode(x))
    if kind == "scale":        # relative error 2^-16 per factor, plus one unit of truncation
        want = ex * y
        return np.abs(got - want) > np.abs(want) * 2.0**-16 + ULP + np.abs(want) * 1e-12
    ey = fp.decode(fp.encode(y))
    want = ex * ey if kind == "mul" else ex + ey
    return np.abs(got - want) > ULP * (1 + 1e-9) + np.abs(want) * 2.0**-52


def near_limits(quick: bool) -> dict:
    """The near-limits workload: every case refused before computing, or correct."""
    rng = np.random.default_rng(2)
    cases = _limit_cases(rng, 24 if quick else 120, 200 if quick else 2000)
    t0 = time.perf_counter()
    res = mpc.run(_limit_program, PARTIES, args=(cases,), timeout=600)
    secs = time.perf_counter() - t0
    fn = {"mul": np.multiply, "add": np.add, "scale": np.multiply}
    base, _, _ = median_time(lambda: [fn[c[0]](c[1], c[3]) for c in cases], repeat=3)
    wrong = refused = checked = 0
    for (kind, x, _, y, _), got in zip(cases, res.outputs[0]):
        if got is None:
            refused += x.size
            continue
        checked += x.size
        wrong += int(_is_wrong(kind, got, x, y).sum())
    return record("mul", {"workload": "near-limits", "cases": len(cases), "parties": PARTIES},
                  secs, base, rounds=res.cost.rounds, wrong_results=wrong, refused=refused,
                  checked=checked, refused_cases=sum(o is None for o in res.outputs[0]))


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
