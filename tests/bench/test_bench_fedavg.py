"""Smoke test of bench/fedavg.py: the quick run produces one well-formed record per aggregator."""

from __future__ import annotations

from bench.fedavg import BENCHMARKS
from ml.aggregators import AGGREGATORS


def test_fedavg_bench_quick_records():
    records = BENCHMARKS["fedavg"](True)
    assert [r["params"]["aggregator"] for r in records] == list(AGGREGATORS)
    for r in records:
        assert r["name"] == "fedavg" and r["params"]["clients"] == 10
        if r["seconds"] is None:  # an aggregator whose module is not installed
            assert r["note"].startswith("not available")
            continue
        assert r["seconds"] > 0 and r["baseline_seconds"] > 0
        assert r["bytes_per_client"] > 0 and r["bytes_per_party"] == r["bytes_per_client"]
        assert 0.5 < r["accuracy"] <= 1.0
        assert abs(r["accuracy_gap"]) <= 0.5  # secure sums match plaintext FedAvg
    plain = records[0]
    assert plain["accuracy_gap"] == 0 and plain["bytes_per_client"] == 2 * 8 * 651
