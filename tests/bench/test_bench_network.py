"""Smoke test of the network benchmark (quick sizes; TCP parties as threads)."""

from bench.__main__ import discover
from bench.network import bench_network

FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"}


def test_network_records():
    recs = bench_network(True)
    assert "network" in discover()
    transfers = [r for r in recs if r["name"] == "transfer"]
    assert {r["params"]["transport"] for r in transfers} == {"memory", "tcp"}
    for r in transfers:
        assert FIELDS <= r.keys() and r["megabytes_per_second"] > 0
        assert r["params"]["megabytes"] == 4
    tcp = next(r for r in transfers if r["params"]["transport"] == "tcp")
    assert tcp["wire_bytes"] > 4 * 2**20  # ciphertext: the array plus framing and TLS records
    products = [r for r in recs if r["name"] in ("mul", "matmul")]
    assert {(r["name"], r["params"]["phase"]) for r in products} == {
        ("mul", "online"), ("mul", "total"), ("matmul", "online"), ("matmul", "total")}
    for r in products:
        assert r["params"]["transport"] == "tcp" and r["rounds"] == 2
        assert r["off_by_more_than_0_01"] == 0
        assert r["wire_bytes_per_party"] > r["bytes_per_party"] > 0
