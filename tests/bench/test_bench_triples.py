"""Smoke test of ``python -m bench triples``: the records the checks read, with sane values."""

from bench.triples import BENCHMARKS


def test_triples_benchmark_quick_records():
    recs = BENCHMARKS["triples"](True)
    got = {(r["params"]["source"], r["params"]["kind"]): r for r in recs if r["params"]["parties"] == 2}
    assert set(got) == {("dealer", "arithmetic"), ("ot", "arithmetic"), ("he", "arithmetic"),
                        ("dealer", "binary"), ("ot", "binary")}
    three = {r["params"]["kind"]: r for r in recs if r["params"]["parties"] == 3}
    assert set(three) == {"arithmetic", "binary"} and all(r["params"]["source"] == "ot" for r in three.values())
    for r in recs:
        assert r["name"] == "triples"
        assert r["per_second"] > 0 and r["cpu_per_second"] > 0 and r["seconds"] > 0
        assert r["bytes_per_triple"] > 0
    # exact traffic: OT triples cost 128 OTs of 16 + 8 bytes; AND triples 2 OTs of 16 bytes
    assert got[("ot", "arithmetic")]["bytes_per_triple"] == 3072
    assert got[("ot", "binary")]["bytes_per_triple"] == 32
    # the dealer sends one 8-byte correction per triple, one word per 64 AND triples
    assert got[("dealer", "arithmetic")]["bytes_per_triple"] == 8
    assert got[("dealer", "binary")]["bytes_per_triple"] == 8 / 64
    assert got[("ot", "arithmetic")]["rounds"] == 2 and got[("ot", "binary")]["rounds"] == 1
    assert got[("dealer", "arithmetic")]["rounds"] == 0
    # three parties: three pairs, each as two parties; pair (0, 1) sends no AND corrections,
    # the two others 2 bits per AND bit; the same rounds as two parties (binary: one more for them)
    assert three["arithmetic"]["bytes_per_triple"] == 3 * 3072
    assert three["binary"]["bytes_per_triple"] == 3 * 32 + 2 * 2 / 8
    assert three["arithmetic"]["bytes_per_party_per_triple"] == 3072
    assert three["arithmetic"]["rounds"] == 2 and three["binary"]["rounds"] == 2
