"""Smoke test of bench/fedalgo.py: the quick run's records, named and shaped as the checks expect."""

from __future__ import annotations

import json

from bench.__main__ import main


def test_fedalgo_bench_quick_records(tmp_path, capsys):
    out = tmp_path / "fedalgo.json"
    assert main(["fedalgo", "--quick", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert {r["name"] for r in records} == {"fedalgo"}
    robust = {r["params"]["aggregator"]: r for r in records if r["params"]["experiment"] == "robust"}
    assert set(robust) == {"plaintext", "median", "trimmed_mean", "krum", "multi_krum", "twoserver"}
    for r in robust.values():
        assert r["seconds"] > 0 and r["bytes_per_party"] > 0 and 0 <= r["accuracy"] <= 1
    assert robust["plaintext"]["accuracy"] < robust["plaintext"]["clean_accuracy"] - 0.3   # poisoned
    assert all(robust[a]["accuracy"] > 0.8 for a in robust if a != "plaintext")
    assert robust["twoserver"]["accepted"] <= robust["twoserver"]["params"]["clients"] - 1
    comp = {r["params"]["variant"]: r for r in records if r["params"]["experiment"] == "compression"}
    assert set(comp) == {"dense", "quantized-8bit", "quantized-4bit", "sparse25-8bit"}
    assert (comp["dense"]["masked_bytes"] > comp["quantized-8bit"]["masked_bytes"]
            > comp["quantized-4bit"]["masked_bytes"] > comp["sparse25-8bit"]["masked_bytes"])
    assert all(r["bytes_per_party"] > 0 and 0 <= r["accuracy"] <= 1 for r in comp.values())
    sel = {r["params"]["rule"]: r for r in records if r["params"]["experiment"] == "selection"}
    assert set(sel) == {"uniform", "power-of-choice", "power-of-choice-dp"}
    assert all(0 < r["accuracy"] <= 1 and r["seconds"] > 0 for r in sel.values())
    asy = {r["params"]["method"]: r for r in records if r["params"]["experiment"] == "async"}
    assert set(asy) == {"fedavg", "fedbuff", "fedbuff-unweighted"}
    assert all(0 < r["accuracy"] <= 1 and r["sim_seconds"] > 0 and r["bytes_per_party"] > 0
               for r in asy.values())
    # simulated (deterministic) time: the buffer does not wait for the slowest client
    assert asy["fedbuff"]["seconds"] < asy["fedavg"]["seconds"] == asy["fedbuff"]["baseline_seconds"]
    per = {r["params"]["method"]: r for r in records if r["params"]["experiment"] == "personal"}
    assert set(per) == {"fedavg", "fedper", "ditto", "local"}
    for r in per.values():
        assert len(r["per_client"]) == 10 and abs(r["worst_accuracy"] - min(r["per_client"])) < 1e-4
        assert 0 < r["worst_accuracy"] <= r["accuracy"] <= 1 and r["bytes_per_party"] > 0
