"""Smoke test of the secagg benchmark (quick sizes) and its plot."""

from bench.__main__ import discover
from bench.secagg import bench_secagg, plot

FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds",
          "server_seconds", "client_seconds", "bytes_per_client"}


def test_secagg_records(tmp_path):
    records = bench_secagg(True)
    assert discover()["secagg"] is bench_secagg
    assert {r["params"]["variant"] for r in records} == {"secagg", "secagg+"}
    for rec in records:
        assert FIELDS <= rec.keys() and rec["name"] == "secagg"
        assert set(rec["params"]) == {"n", "d", "dropout", "variant"}
        assert rec["correct"] is True
        assert rec["seconds"] == rec["server_seconds"] > 0 and rec["client_seconds"] > 0
        assert rec["bytes_per_client"] > 4 * rec["params"]["d"]  # at least the masked input
        assert rec["rounds"] == 4
        survivors = rec["params"]["n"] - round(rec["params"]["dropout"] * rec["params"]["n"])
        assert rec["expansions"] >= survivors  # one self mask per survivor at least
    # the plot reads the d = 10^5 records; relabel the quick ones to exercise it
    for rec in records:
        rec["params"]["d"] = 100_000
    out = tmp_path / "cost.png"
    plot(records, out)
    assert out.stat().st_size > 1000
