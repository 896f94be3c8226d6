"""Smoke test of the mul/matmul benchmarks and the bench runner (quick sizes)."""

import json

from bench.__main__ import discover, main
from bench.arith import bench_matmul, bench_mul

FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"}


def test_mul_and_matmul_records():
    for rec in bench_mul(True) + bench_matmul(True):
        assert FIELDS <= rec.keys()
        assert rec["params"]["phase"] in ("online", "total")
        assert rec["ratio"] == rec["seconds"] / rec["baseline_seconds"]
        assert rec["rounds"] == 2
        assert rec["off_by_more_than_0_01"] == 0
        assert rec["bytes_per_party"] > 0


def test_runner_writes_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["mul", "--quick", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [r["name"] for r in records] == ["mul", "mul"]
    assert "| mul |" in capsys.readouterr().out


def test_runner_rejects_unknown_names():
    assert "mul" in discover() and "matmul" in discover()
    assert main(["no_such_benchmark"]) == 2
