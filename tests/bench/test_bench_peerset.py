"""Smoke test of the peer workloads W1-W4 (tiny sizes; TCP parties as threads)."""

import numpy as np
import pytest

from bench import peerset


def test_peerset_is_a_benchmark_with_its_peer_figures():
    assert peerset.BENCHMARKS == {"peerset": peerset.bench_peerset}
    assert set(peerset.WORKLOADS) == {"mul", "cmp", "matmul", "lr"}
    assert peerset.SIZES == {"mul": 100_000, "cmp": 10_000, "matmul": 128, "lr": 569}
    assert {w for w, _ in peerset.PEER} == set(peerset.WORKLOADS)


@pytest.mark.parametrize("workload,n", [("mul", 50), ("cmp", 50), ("matmul", 4), ("lr", 20)])
def test_wrong_counts_exactly_the_results_beyond_the_stated_error(workload, n):
    ops = peerset.operands(workload, n)
    exact = peerset.plaintext(workload, tuple(peerset._grid(o) for o in ops))
    assert peerset.wrong(workload, ops, exact) == 0
    bad = np.array(exact, dtype=float)
    flat = bad.reshape(-1)
    if workload == "cmp":
        flat[3] = 1.0 - flat[3]
    else:  # just beyond the tolerance: one element off
        flat[3] += 2 * peerset.ULP if workload != "lr" else 2 * peerset.SIGMOID_TOLERANCE
    assert peerset.wrong(workload, ops, bad) == 1


def test_workloads_run_exactly_over_tls_and_in_memory():
    n = 200
    plan = peerset._plan("mul", n, 2)
    secs, got, bpp, rounds = peerset._run("mul", n, 2, "tcp", 1, plan, processes=False)
    ops = peerset.operands("mul", n)
    assert secs > 0 and peerset.wrong("mul", ops, got) == 0
    # 2 parties: Beaver opening (epsilon, delta), truncation opening, reveal: one word each
    assert rounds == 3 and bpp == 4 * 8 * n
    secs, got, bpp, rounds = peerset._run("lr", 16, 3, "memory", 1, None, processes=False)
    assert peerset.wrong("lr", peerset.operands("lr", 16), got) == 0 and rounds > 3
