"""Smoke test of the analytics benchmark (quick sizes)."""

from bench.analytics import bench_histogram


def test_histogram_records():
    recs = bench_histogram(quick=True)
    assert [r["name"] for r in recs] == ["histogram", "histogram"]
    noisy, exact = recs
    assert noisy["params"]["epsilon"] == 1.0 and noisy["noise_std"] > 0
    assert exact["params"]["epsilon"] is None and exact["l1_error"] == 0.0
    for r in recs:
        assert r["ratio"] == r["seconds"] / r["baseline_seconds"]
        assert r["rounds"] == 4 and r["bytes_per_client"] > 0 and r["server_seconds"] > 0
