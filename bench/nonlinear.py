"""Secure comparisons, ReLU and approximations, 3 parties in one process, against numpy.

Names: ``cmp`` (10^5 comparisons ``x < y`` of two shared vectors), ``relu``
(10^5 ReLUs) and ``approx`` (one record per function and input range, with
the error against numpy float64 on the encoded inputs: ``max_abs_error``,
``mean_abs_error`` and, where the function's accuracy is relative,
``max_rel_error``). Time is from the first party starting the operation to
the last one finishing, preprocessing (the trusted dealer, on demand)
included; the baseline is the same function in plaintext numpy.

``python -m bench.nonlinear --docs docs/nonlinear.md`` runs all three and
rewrites the measured tables in that file (between the ``bench:nonlinear``
markers).
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import mpc
from bench.common import markdown_table, median_time, record
from mpc.sharing import approx

PARTIES = 3
FP = mpc.FixedPoint()


def _grid(x: np.ndarray) -> np.ndarray:
    """The values as the fixed-point encoding sees them."""
    return FP.decode(FP.encode(x))


def _secure(op: Callable[..., Any], inputs: list[np.ndarray], repeat: int) -> tuple[float, Any, float, int]:
    """Median seconds of ``op`` on shared ``inputs`` (input k owned by party k), its output,
    bytes sent per party per call and rounds per call."""
    barrier = threading.Barrier(PARTIES)
    spans: list[list[tuple[float, float]]] = [[] for _ in range(PARTIES)]

    def program(party):
        # the simulated inputs are public to the benchmark: their peak is the declared bound
        shared = [mpc.share(party, x if party.id == k else None, k,
                            bound=max(float(np.max(np.abs(x), initial=0.0)), 1.0))
                  for k, x in enumerate(inputs)]
        result = None
        for _ in range(repeat):
            barrier.wait()
            with party.phase("measured"):
                t0 = time.perf_counter()
                result = op(*shared)
                spans[party.id].append((t0, time.perf_counter()))
        return result.reveal(to=0)

    res = mpc.run(program, PARTIES, timeout=900)
    per_op = [max(spans[p][k][1] for p in range(PARTIES)) - min(spans[p][k][0] for p in range(PARTIES))
              for k in range(repeat)]
    measured = res.cost.phases()["measured"]
    bytes_per_party = sum(v for p, v in measured.bytes_sent.items() if p >= 0) / PARTIES / repeat
    return float(np.median(per_op)), res.outputs[0], bytes_per_party, measured.rounds // repeat


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1000, 1000, n)
    y = rng.uniform(-1000, 1000, n)
    q = max(1, n // 10)
    x[:q] = y[:q]  # equal values
    y[q:2 * q] = 0.0
    x[-2:], y[-2:] = [2.0**46 - 1, -(2.0**46 - 1)], [-(2.0**46 - 1), 2.0**46 - 1]  # range limits
    return _grid(x), _grid(y)


def bench_cmp(quick: bool) -> list[dict]:
    """10^5 secure comparisons x < y of shared vectors, 3 parties, dealer included, vs numpy."""
    n = 2_000 if quick else 100_000
    x, y = _pairs(n)
    repeat = 2 if quick else 3
    base, _, want = median_time(lambda: x < y, repeat=5)
    secs, got, bpp, rounds = _secure(lambda a, b: a < b, [x, y], repeat)
    return [record("cmp", {"n": n, "parties": PARTIES}, secs, base, bytes_per_party=bpp, rounds=rounds,
                   bytes_per_element=bpp / n, mismatches=int(np.sum(got != want)))]


def bench_relu(quick: bool) -> list[dict]:
    """10^5 secure ReLUs, 3 parties, dealer included, vs numpy."""
    n = 2_000 if quick else 100_000
    x, _ = _pairs(n)
    repeat = 2 if quick else 3
    base, _, want = median_time(lambda: np.maximum(x, 0.0), repeat=5)
    secs, got, bpp, rounds = _secure(lambda a: a.relu(), [x], repeat)
    return [record("relu", {"n": n, "parties": PARTIES}, secs, base, bytes_per_party=bpp, rounds=rounds,
                   bytes_per_element=bpp / n, max_abs_error=float(np.abs(got - want).max()))]


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# name, secure function, plaintext function, input maker (n -> inputs), range, relative error?
CASES: list[tuple[str, Callable, Callable, Callable[[int], np.ndarray], list[float], bool]] = [
    ("exp", approx.exp, np.exp, lambda n: np.linspace(-10, 0, n), [-10, 0], False),
    ("exp", approx.exp, np.exp, lambda n: np.linspace(0, 20, n), [0, 20], True),
    ("log", approx.log, np.log, lambda n: np.geomspace(2.0**-16, 2.0**24 * 0.999, n), [2.0**-16, 2.0**24], False),
    ("reciprocal", approx.reciprocal, np.reciprocal, lambda n: np.geomspace(1e-2, 1e3, n), [1e-2, 1e3], True),
    ("sqrt", approx.sqrt, np.sqrt, lambda n: np.linspace(0, 1e4, n), [0, 1e4], False),
    ("rsqrt", approx.rsqrt, lambda v: 1 / np.sqrt(v), lambda n: np.geomspace(1e-2, 1e4, n), [1e-2, 1e4], True),
    ("sigmoid", approx.sigmoid, lambda v: 1 / (1 + np.exp(-v)), lambda n: np.linspace(-10, 10, n), [-10, 10],
     False),
    ("tanh", approx.tanh, np.tanh, lambda n: np.linspace(-10, 10, n), [-10, 10], False),
    ("softmax", approx.softmax, _softmax,
     lambda n: np.random.default_rng(1).uniform(-10, 10, (n // 10, 10)), [-10, 10], False),
]


def bench_approx(quick: bool) -> list[dict]:
    """exp, log, reciprocal, sqrt, sigmoid, tanh on shares: error against numpy, and time."""
    n = 500 if quick else 10_000
    out = []
    for name, fn, ref, make, rng, relative in CASES:
        x = _grid(make(n))
        base, _, want = median_time(lambda x=x, ref=ref: ref(x), repeat=5)
        secs, got, bpp, rounds = _secure(fn, [x], 1)
        err = np.abs(got - want)
        extra: dict[str, Any] = {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())}
        if relative:
            extra["max_rel_error"] = float((err / np.abs(want)).max())
        out.append(record("approx", {"fn": name, "range": rng}, secs, base, bytes_per_party=bpp,
                          rounds=rounds, bytes_per_element=bpp / x.size, **extra))
    return out


BENCHMARKS = {"cmp": bench_cmp, "relu": bench_relu, "approx": bench_approx}

_BEGIN, _END = "<!-- bench:nonlinear -->", "<!-- /bench:nonlinear -->"


def docs_block(records: list[dict], command: str) -> str:
    """The Markdown written between the markers of docs/nonlinear.md."""
    ops = [r for r in records if r["name"] in ("cmp", "relu")]
    approx_rows = ["| function | range | max abs error | mean abs error | max rel error | rounds | "
                   "bytes per element per party | seconds | ratio to numpy |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r["name"] != "approx":
            continue
        lo, hi = r["params"]["range"]
        rel = r.get("max_rel_error")
        approx_rows.append(
            f"| {r['params']['fn']} | [{lo:.3g}, {hi:.3g}] | {r['max_abs_error']:.2e} | {r['mean_abs_error']:.2e} | "
            f"{'-' if rel is None else f'{rel:.2e}'} | {r['rounds']} | {r['bytes_per_element']:.0f} | "
            f"{r['seconds']:.3f} | {r['ratio']:.3g} |")
    return "\n".join([_BEGIN, f"Measured with `{command}` (3 parties, one process, 2 cores).", "",
                      markdown_table(ops), "", *approx_rows, _END])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nonlinear", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--docs", metavar="FILE", help="rewrite the measured tables in this Markdown file")
    args = parser.parse_args(argv)
    records = bench_cmp(args.quick) + bench_relu(args.quick) + bench_approx(args.quick)
    command = "python -m bench.nonlinear" + (" --quick" if args.quick else "") + (
        f" --docs {args.docs}" if args.docs else "")
    block = docs_block(records, command)
    print(block)
    if args.docs:
        write_docs(Path(args.docs), block)
    return 0


def write_docs(path: Path, block: str) -> None:
    """Replace the text between the markers in ``path`` by ``block`` (append the markers if missing)."""
    text = path.read_text() if path.exists() else ""
    if _BEGIN not in text or _END not in text:
        text = text.rstrip("\n") + f"\n\n{_BEGIN}\n{_END}\n"
    pattern = re.compile(re.escape(_BEGIN) + ".*?" + re.escape(_END), re.S)
    path.write_text(pattern.sub(lambda _: block, text, count=1))


if __name__ == "__main__":
    sys.exit(main())
