"""Smoke test of the cmp, relu and approx benchmarks (quick sizes) and of the docs table writer."""

import json

from bench.__main__ import main
from bench.nonlinear import docs_block, write_docs

FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"}


def test_records_follow_the_issue_names(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["cmp", "relu", "approx", "--quick", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    by_name = {}
    for rec in records:
        assert FIELDS <= rec.keys()
        assert rec["rounds"] > 0 and rec["bytes_per_party"] > 0 and rec["ratio"] > 0
        by_name.setdefault(rec["name"], []).append(rec)
    assert set(by_name) == {"cmp", "relu", "approx"}
    (cmp,), (relu,) = by_name["cmp"], by_name["relu"]
    assert set(cmp["params"]) == {"n", "parties"} and cmp["params"]["parties"] == 3
    assert cmp["mismatches"] == 0 and cmp["rounds"] == 9  # L + 8 with L = 1 for 3 parties
    assert set(relu["params"]) == {"n", "parties"} and relu["max_abs_error"] == 0
    fns = {r["params"]["fn"] for r in by_name["approx"]}
    assert {"exp", "log", "reciprocal", "sqrt", "rsqrt", "sigmoid", "tanh", "softmax"} <= fns
    for rec in by_name["approx"]:
        assert set(rec["params"]) == {"fn", "range"} and len(rec["params"]["range"]) == 2
        assert {"max_abs_error", "mean_abs_error"} <= rec.keys()
        fn = rec["params"]["fn"]
        if fn == "reciprocal":
            assert rec["max_rel_error"] < 1e-3
        if fn in ("sigmoid", "tanh", "softmax"):
            assert rec["max_abs_error"] < 1e-3
    assert "| cmp |" in capsys.readouterr().out

    doc = tmp_path / "nonlinear.md"
    doc.write_text("# Title\n\ntext before\n")
    block = docs_block(records, "python -m bench.nonlinear --quick")
    write_docs(doc, block)
    write_docs(doc, block)  # idempotent: the block is replaced, not appended twice
    text = doc.read_text()
    assert text.startswith("# Title") and text.count("<!-- bench:nonlinear -->") == 1
    assert "| sigmoid | [-10, 10] |" in text and "| reciprocal | [0.01, 1e+03] |" in text
