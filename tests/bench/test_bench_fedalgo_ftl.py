"""Smoke test of the ``ftl`` experiment of bench/fedalgo.py (quick: 512-bit test keys, 5 steps)."""

from __future__ import annotations

from bench.fedalgo import bench_ftl


def test_fedalgo_ftl_quick_records():
    records = bench_ftl(quick=True)
    assert {r["name"] for r in records} == {"fedalgo"}
    assert {r["params"]["experiment"] for r in records} == {"ftl"}
    by = {r["params"]["method"]: r for r in records}
    assert set(by) == {"guest-alone", "ftl-paillier"}
    assert by["ftl-paillier"]["accuracy"] > by["guest-alone"]["accuracy"]
    assert by["ftl-paillier"]["seconds"] > 0 and by["ftl-paillier"]["bytes_per_party"] > 0
    assert by["ftl-paillier"]["rounds"] == 3 * 5 + 2
