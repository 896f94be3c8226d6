"""Smoke test of bench.inference: the record format the checks read (quick sizes)."""

from __future__ import annotations

from bench.inference import BENCHMARKS
from mpc.optional import available


def test_inference_bench_quick_records():
    records = BENCHMARKS["inference"](quick=True)
    cnn = [r for r in records if r["params"]["model"] == "cnn"]
    if available("onnx") and available("onnxruntime"):  # the digits CNN imported from ONNX
        assert {(r["params"]["backend"], r["params"]["batch"]) for r in cnn} == {("ss", 1), ("ss", 8)}
        for r in cnn:
            assert r["agreement"] == 1.0 and r["inferences_per_second"] == r["params"]["batch"] / r["seconds"]
            assert r["rounds"] > 10 and r["bytes_per_inference"] > 0 and r["rounds_per_inference"] > 0
    assert {(r["params"]["method"], r["params"]["batch"]) for r in records} == {
        ("ss", 1), ("ss", 8), ("ckks", 1), ("ckks", 8)}
    for r in records:
        assert r["name"] == "inference"
        assert set(r["params"]) >= {"method", "model", "batch"}
        for key in ("accuracy", "agreement", "per_second", "seconds", "baseline_seconds", "bytes_per_party",
                    "rounds"):
            assert r[key] is not None and r[key] >= 0, key
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["agreement"] <= 1.0
        assert r["per_second"] == r["params"]["batch"] / r["seconds"]
    ss = [r for r in records if r["params"]["method"] == "ss"]
    assert all(r["agreement"] == 1.0 for r in ss)  # exact comparisons: every prediction agrees
    assert all(r["rounds"] > 10 and r["bytes_per_party"] > 0 for r in ss)
