"""Smoke test of the fuzz benchmark (quick budget) and its record schema."""

import json

from bench.__main__ import discover, main
from bench.fuzz import DECODER_NAMES, bench_fuzz

FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"}


def test_fuzz_records(tmp_path):
    out = tmp_path / "fuzz.json"
    assert main(["fuzz", "--quick", "--json", str(out)]) == 0
    recs = json.loads(out.read_text())
    assert [r["params"]["decoder"] for r in recs] == list(DECODER_NAMES)
    for r in recs:
        assert r["name"] == "fuzz" and FIELDS <= r.keys() and set(r["params"]) == {"decoder"}
        assert r["cases"] == 300
        assert r["undocumented_exceptions"] == 0, (r["params"], r["exceptions"], r["examples"])
        assert sum(r["exceptions"].values()) <= r["cases"]
    assert discover()["fuzz"] is bench_fuzz
