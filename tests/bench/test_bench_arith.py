"""Smoke test of the mul/matmul benchmarks and the bench runner (quick sizes)."""

import json

import pytest

from bench.__main__ import discover, main
from bench.arith import bench_matmul, bench_mul, near_limits

FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"}


def test_mul_and_matmul_records():
    records = bench_mul(True) + bench_matmul(True)
    limits = [r for r in records if r["params"].get("workload") == "near-limits"]
    assert len(limits) == 1 and limits[0]["name"] == "mul"
    assert limits[0]["wrong_results"] == 0
    assert limits[0]["refused"] > 0 and limits[0]["checked"] > 0   # the workload straddles the limits
    for rec in records:
        if rec in limits:
            continue
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
    assert [r["name"] for r in records] == ["mul", "mul", "mul"]
    assert records[-1]["wrong_results"] == 0
    assert "| mul |" in capsys.readouterr().out


def test_runner_rejects_unknown_names():
    assert "mul" in discover() and "matmul" in discover()
    assert main(["no_such_benchmark"]) == 2


def test_near_limits_counts_wrong_results_without_the_range_checks(monkeypatch):
    """Control: with the bound checks disabled (the old behaviour), the workload finds wrong results."""
    from mpc.sharing import bounds

    monkeypatch.setattr(bounds, "check", lambda op, bound, frac_bits, ring_bits=None: bound)
    monkeypatch.setattr(bounds, "check_product", lambda op, bound, raw, frac: bound)
    try:
        rec = near_limits(True)
    except Exception as exc:    # noqa: BLE001 - an unchecked overflow may also break decoding
        pytest.fail(f"unexpected {type(exc).__name__}: {exc}")
    assert rec["refused"] == 0 and rec["wrong_results"] > 0
