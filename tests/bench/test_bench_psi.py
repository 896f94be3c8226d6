"""Smoke test of the psi and vertical benchmarks (quick sizes) and their record schema."""

import json

from bench.__main__ import discover, main
from bench.psi import bench_psi, bench_vertical

ROUNDS_OPRF = 6
FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"}


def test_psi_records():
    recs = bench_psi(True)
    assert recs and all(FIELDS <= r.keys() for r in recs)
    assert {r["params"]["protocol"] for r in recs} == {"dh", "oprf"}
    for r in recs:
        assert r["name"] == "psi" and set(r["params"]) == {"protocol", "n", "overlap"}
        assert r["exact"] is True
        n = r["params"]["n"]
        if r["params"]["protocol"] == "dh":
            assert r["rounds"] == 2
            assert r["bytes_sent"] == {"0": 12 + 32 * n, "1": 12 + 48 * n}
        else:   # the cost formula of protocols.psi.oprf
            from protocols.psi.oprf import table_size, value_bytes
            assert r["rounds"] == ROUNDS_OPRF
            u = 512 * ((table_size(n) + 7) // 8)
            assert r["bytes_sent"] == {"0": 12 + 128 * 32 + 16 + u,
                                       "1": 12 + 32 + 128 * 64 + 16 + 3 * n * value_bytes(n, n)}
            assert r["dh_seconds"] > 0 and r["speedup_vs_dh"] == r["dh_seconds"] / r["seconds"]
        assert r["cpu_seconds"] > 0 and r["cores_used"] > 0 and r["load_average"] >= 0


def test_vertical_records(tmp_path):
    out = tmp_path / "v.json"
    assert main(["vertical", "--quick", "--json", str(out)]) == 0
    recs = json.loads(out.read_text())
    assert {r["params"]["method"] for r in recs} >= {"ss"}
    for r in recs:
        assert r["name"] == "vertical_lr" and FIELDS <= r.keys()
        assert 0.5 <= r["accuracy"] <= 1 and 0.9 <= r["centralized_accuracy"] <= 1
        assert r["bytes_per_party"] > 0 and r["rounds"] > 0
        assert r["ratio"] == r["seconds"] / r["baseline_seconds"]
    assert "psi" in discover() and "vertical" in discover()
    assert bench_vertical is discover()["vertical"]
