"""Smoke test of bench.train: the record format the checks read (quick sizes), and the CLI's JSON."""

from __future__ import annotations

import json

from bench.__main__ import main


def test_train_bench_quick_records(tmp_path):
    out = tmp_path / "train.json"
    assert main(["train", "--quick", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert {(r["params"]["model"], r["params"]["parties"]) for r in records} == {("mlp-30-64-2", 2),
                                                                                  ("mlp-30-64-2", 3)}
    for r in records:
        assert r["name"] == "train"
        for key in ("seconds_per_epoch", "accuracy", "plaintext_accuracy", "bytes_per_party", "rounds"):
            assert r[key] is not None and r[key] > 0, key
        assert abs(r["accuracy"] - r["plaintext_accuracy"]) <= 0.02
        assert r["crypten_ratio"] == r["seconds_per_epoch"] / r["crypten_seconds_per_epoch"]
        assert r["rounds"] > 100 and r["max_weight_error"] < 1e-2
