"""Smoke test of the gc, ot and millionaires benchmarks (quick sizes) and the names the checks use."""

import json

from bench.__main__ import discover, main
from bench.gc import bench_gc, bench_millionaires, bench_ot

FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"}


def test_gc_records():
    recs = bench_gc(True)
    assert {(r["params"]["circuit"], r["params"]["phase"]) for r in recs} >= {
        ("aes_128", "garble"), ("aes_128", "evaluate"), ("gt32", "garble"), ("gt32", "evaluate")}
    for r in recs:
        assert FIELDS <= r.keys() and r["name"] == "gc"
        assert r["correct"] and r["and_per_second"] > 0
        assert r["and_per_second"] == r["and_gates"] / r["seconds"]
        assert r["and_per_cpu_second"] == r["and_gates"] / r["cpu_seconds"] and r["chunk"] >= 1


def test_ot_and_millionaires_records():
    recs = bench_ot(True)
    assert {r["params"]["kind"] for r in recs} == {"base", "iknp"}
    for r in recs:
        assert r["name"] == "ot" and r["ot_per_second"] > 0 and r["params"]["n"] > 0
        assert r.get("correct", True)
    recs = bench_millionaires(True)
    for r in recs:
        assert r["name"] == "millionaires" and {"bits", "batch"} <= r["params"].keys()
        assert r["correct"] and r["rounds"] == 5 and r["bytes_per_party"] > 0


def test_runner_lists_names_and_writes_json(tmp_path):
    assert {"gc", "ot", "millionaires"} <= discover().keys()
    out = tmp_path / "r.json"
    assert main(["millionaires", "--quick", "--json", str(out)]) == 0
    assert [r["name"] for r in json.loads(out.read_text())] == ["millionaires", "millionaires"]
