"""The peer workloads W1-W4 of issue 25, in memory and between processes over TLS, against CrypTen.

``python -m bench peerset [--quick] [--json FILE]`` writes one ``peerset`` record
per workload, transport and party count (params ``workload``, ``transport``,
``parties``, ``n``):

* ``mul`` (W1): 10^5 fixed-point products of values in [-100, 100];
* ``cmp`` (W2): 10^4 comparisons ``x < y`` of values in [-1000, 1000];
* ``matmul`` (W3): 128x128 @ 128x128 of values in [-1, 1];
* ``lr`` (W4): ``sigmoid(X w + b)`` over the 569 standardized rows of the
  breast cancer set, X from party 0, (w, b) from party 1 (a logistic
  regression fitted in plaintext).

x comes from party 0 and y from party 1. ``transport`` ``memory``: the parties
are threads of one process (:func:`mpc.run`); ``tcp``: one OS process per
party over loopback TCP + TLS 1.3, as ``mpc run --local`` runs them
(:func:`mpc.distributed.run_local`, the launcher serving as the dealer).

Fields: ``seconds`` from after input sharing to the revealed result (opened to
every party), the dealer's work and round trips inside the clock (the median
over repetitions of first-party-start to last-party-end, one clock for all:
same machine); ``online_seconds`` the same with the run's whole preprocessing
(recorded once as a plan, :mod:`mpc.preprocessing.plan`) fetched before the
clock; ``bytes_per_party`` and ``rounds`` of the parties' own messages per
operation (reveal included; the dealer's traffic is not in it);
``wrong`` the results off the exact answer on the encoded inputs by more than
the operation's stated error (one unit 2^-16 of truncation for products; the
sign for comparisons; 1e-4 for the sigmoid, whose stated error is 5e-5).

Each party runs with one BLAS thread (CrypTen's parties had one torch thread each).

Baselines: ``baseline_seconds`` is the plaintext numpy computation timed in
the same run (the faster of numpy's default threads and one thread). ``peer_seconds`` is CrypTen's time for the same workload *as
measured on this machine for issue 25* (CrypTen 0.4.1, one process per party,
one torch thread each), copied from the issue, not measured in this run:
CrypTen 0.4.1 does not install here (it depends on the deprecated ``sklearn``
package, which refuses to build) and, installed without its dependencies,
does not import under this environment's torch 2.13 (``torch.onnx._internal.
registration`` is gone); ``peer_ratio = seconds / peer_seconds``. The issue gives CrypTen
figures for 3 parties on all four workloads and for 2 parties on matmul only;
other records have ``peer_seconds`` null.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import mpc
from bench.common import median_time, record
from mpc.distributed import run_local
from mpc.preprocessing.plan import plan_from_json, plan_to_json, record_plan

WORKLOADS = ("mul", "cmp", "matmul", "lr")
SIZES = {"mul": 100_000, "cmp": 10_000, "matmul": 128, "lr": 569}
QUICK_SIZES = {"mul": 2_000, "cmp": 500, "matmul": 16, "lr": 64}
ULP = 2.0**-16
SIGMOID_TOLERANCE = 1e-4
#: CrypTen 0.4.1 on this machine, processes, one torch thread each (issue 25's table).
PEER = {("mul", 3): 0.037, ("cmp", 3): 0.093, ("matmul", 3): 0.013, ("lr", 3): 0.17,
        ("matmul", 2): 0.0067}
#: Bytes CrypTen sends for W1 (all parties together), from the same issue.
PEER_TOTAL_BYTES = {("mul", 2): 4.8e6, ("mul", 3): 10.4e6}
PEER_SOURCE = ("CrypTen 0.4.1 figures measured on this machine for issue 25, not in this run: "
               "CrypTen 0.4.1 does not install here (deprecated 'sklearn' dependency) nor import "
               "under torch 2.13")
FP = mpc.FixedPoint()


def _grid(x: np.ndarray) -> np.ndarray:
    return FP.decode(FP.encode(x))


def _breast_cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    return X, model.coef_.reshape(-1, 1), model.intercept_.astype(float)


def operands(workload: str, n: int) -> tuple[np.ndarray, ...]:
    """The simulated inputs (x from party 0; y, or (w, b), from party 1)."""
    rng = np.random.default_rng(25)
    if workload == "mul":
        return rng.uniform(-100, 100, n), rng.uniform(-100, 100, n)
    if workload == "cmp":
        return rng.uniform(-1000, 1000, n), rng.uniform(-1000, 1000, n)
    if workload == "matmul":
        return rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))
    X, w, b = _breast_cancer()
    return X[:n], w, b


def plaintext(workload: str, ops: tuple[np.ndarray, ...]) -> np.ndarray:
    """The workload in numpy float64."""
    if workload == "mul":
        return ops[0] * ops[1]
    if workload == "cmp":
        return ops[0] < ops[1]
    if workload == "matmul":
        return ops[0] @ ops[1]
    return 1.0 / (1.0 + np.exp(-(ops[0] @ ops[1] + ops[2])))


def wrong(workload: str, ops: tuple[np.ndarray, ...], got: np.ndarray) -> int:
    """How many results are off the exact answer on the encoded inputs beyond the stated error."""
    enc = tuple(_grid(o) for o in ops)
    want = plaintext(workload, enc)
    if workload == "cmp":
        return int(np.sum(np.asarray(got) != want))
    tol = SIGMOID_TOLERANCE if workload == "lr" else ULP * (1 + 1e-9)
    return int(np.sum(np.abs(got - want) > tol + np.abs(want) * 2.0**-50))


def _secure(party: Any, workload: str, shared: list) -> Any:
    if workload == "mul":
        return shared[0] * shared[1]
    if workload == "cmp":
        return shared[0] < shared[1]
    if workload == "matmul":
        return shared[0] @ shared[1]
    return (shared[0] @ shared[1] + shared[2]).sigmoid()


def peerset_program(party: Any, workload: str, n: int, repeat: int, plan: dict | None = None) -> dict:
    """Party code: share the inputs, (prefetch ``plan`` x ``repeat``), then ``repeat`` timed runs
    of the workload through the revealed result; returns the spans and the last result."""
    ops = operands(workload, n)
    owners = [0] + [1] * (len(ops) - 1)
    shared = [mpc.share(party, o if party.id == k else None, k,
                        bound=max(float(np.max(np.abs(o))), 1.0))  # simulated data: the peaks are public
              for o, k in zip(ops, owners)]
    if plan is not None:
        with party.phase("offline"):
            for key, count in plan_from_json(plan):
                party.preprocessing.prefetch(key[0], *key[1:], count=count * repeat)
    spans, result = [], None
    with threadpool_limits(1, user_api="blas"):  # one BLAS thread per party, as CrypTen's one torch thread
        for _ in range(repeat):
            with party.phase("sync"):
                party.exchange(party.fresh("sync"), np.zeros(1, np.uint8))
            with party.phase("measured"):
                t0 = time.time()
                result = _secure(party, workload, shared).reveal()
                spans.append([t0, time.time()])
    return {"spans": spans, "result": result if party.id == 0 else None}


def _one_op_program(party: Any, workload: str, n: int) -> None:
    ops = operands(workload, n)
    owners = [0] + [1] * (len(ops) - 1)
    shared = [mpc.share(party, o if party.id == k else None, k, bound=max(float(np.max(np.abs(o))), 1.0))
              for o, k in zip(ops, owners)]
    _secure(party, workload, shared).reveal()


def _plan(workload: str, n: int, parties: int) -> dict:
    """What one operation asks of the preprocessing (a public plan: kinds, shapes, counts)."""
    return plan_to_json(record_plan(_one_op_program, parties, kwargs={"workload": workload, "n": n}))


def _run(workload: str, n: int, parties: int, transport: str, repeat: int, plan: dict | None,
         processes: bool) -> tuple[float, Any, float, int]:
    kwargs = {"workload": workload, "n": n, "repeat": repeat, "plan": plan}
    if transport == "memory":
        res = mpc.run(peerset_program, parties, kwargs=kwargs, timeout=600)
    else:
        with threadpool_limits(1, user_api="blas"):  # the launcher is the dealer: one BLAS thread too
            res = run_local("bench.peerset:peerset_program", parties, kwargs=kwargs, timeout=600,
                            processes=processes)
    spans = [o["spans"] for o in res.outputs]
    per_op = [max(s[k][1] for s in spans) - min(s[k][0] for s in spans) for k in range(repeat)]
    measured = res.cost.phases()["measured"]
    bpp = sum(v for p, v in measured.bytes_sent.items() if p >= 0) / parties / repeat
    return float(np.median(per_op)), res.outputs[0]["result"], bpp, measured.rounds // repeat


def bench_peerset(quick: bool) -> list[dict]:
    """W1-W4 (mul, cmp, matmul, LR inference) with 2 and 3 parties, in memory and over TLS, vs CrypTen."""
    sizes = QUICK_SIZES if quick else SIZES
    repeat = 2 if quick else 5
    out = []
    for workload in WORKLOADS:
        n = sizes[workload]
        ops = operands(workload, n)
        base, _, _ = median_time(lambda: plaintext(workload, ops), repeat=max(repeat, 5))
        with threadpool_limits(1, user_api="blas"):  # numpy at its best: with its threads or with one
            base = min(base, median_time(lambda: plaintext(workload, ops), repeat=max(repeat, 5))[0])
        for parties in (2, 3):
            plan = _plan(workload, n, parties)
            for transport in ("memory", "tcp"):
                secs, got, bpp, rounds = _run(workload, n, parties, transport, repeat, None,
                                                      not quick)
                online, got_on, _, _ = _run(workload, n, parties, transport, repeat, plan, not quick)
                bad = wrong(workload, ops, got) + wrong(workload, ops, got_on)
                peer = PEER.get((workload, parties))
                peer_bytes = PEER_TOTAL_BYTES.get((workload, parties))
                out.append(record(
                    "peerset", {"workload": workload, "transport": transport, "parties": parties, "n": n},
                    secs, base, bytes_per_party=bpp, rounds=rounds, online_seconds=online,
                    wrong=bad, checked=2 * int(np.asarray(got).size),
                    total_bytes=bpp * parties,
                    peer_seconds=None if quick else peer,
                    peer_ratio=None if quick or peer is None else secs / peer,
                    peer_online_ratio=None if quick or peer is None else online / peer,
                    peer_total_bytes=None if quick else peer_bytes,
                    peer_source=PEER_SOURCE, processes=transport == "tcp" and not quick))
    return out


BENCHMARKS = {"peerset": bench_peerset}
