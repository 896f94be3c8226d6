"""Smoke test of the flnet benchmark (quick sizes): processes over TLS, records in the shared schema."""

from bench.__main__ import discover
from bench.flnet import bench_flnet


def test_flnet_records():
    records = bench_flnet(True)
    assert discover()["flnet"] is bench_flnet
    assert {r["params"]["aggregator"] for r in records} == {"secagg+", "plaintext"}
    for rec in records:
        assert rec["name"] == "flnet"
        assert set(rec["params"]) == {"aggregator", "clients", "values"}
        assert rec["seconds"] >= rec["server_seconds"] > 0 and rec["baseline_seconds"] > 0
        assert rec["ratio"] == rec["seconds"] / rec["baseline_seconds"]
        assert rec["startup_seconds"] > 0
        assert rec["server_cpu_seconds"] > 0 and rec["baseline_cpu_seconds"] > 0
        floor = 4 * rec["params"]["values"]   # at least the masked input (uint32) or update
        assert rec["bytes_per_party"] >= floor
        assert rec["rounds"] == (4 if rec["params"]["aggregator"] == "secagg+" else 1)
