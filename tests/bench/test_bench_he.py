"""Smoke test of the HE benchmark (quick sizes): record names and params the checks use."""

from bench.__main__ import discover
from bench.he import NaivePaillier, bench_he

FIELDS = {"name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"}


def test_he_records():
    assert "he" in discover()
    recs = bench_he(True)
    assert all(FIELDS <= r.keys() for r in recs)
    ckks = [r for r in recs if r["name"] == "ckks"]
    ops = {r["params"]["op"] for r in ckks}
    assert {"create", "encrypt", "add", "multiply", "dot", "serialize", "load", "decrypt"} <= ops
    for r in ckks:
        assert set(r["params"]) == {"op", "N"} and r["baseline_seconds"] > 0
        assert r["ratio"] == r["seconds"] / r["baseline_seconds"]
        assert r["cpu_seconds"] > 0 and r["cpu_ratio"] == r["cpu_seconds"] / r["baseline_cpu_seconds"]
        assert r["ciphertext_bytes"] > 100_000
        if r["max_abs_error"] is not None:
            assert r["max_abs_error"] < 1e-4
    pai = [r for r in recs if r["name"] == "paillier"]
    naive = [r for r in pai if r["params"].get("impl") == "naive"]
    ours = [r for r in pai if "impl" not in r["params"]]
    assert {r["params"]["op"] for r in naive} >= {"keygen", "encrypt", "decrypt", "add"}
    assert {(r["params"]["op"], r["params"]["packed"]) for r in ours} >= {
        (op, p) for op in ("encrypt", "decrypt", "add") for p in (False, True)}
    for r in pai:
        assert {"op", "bits", "packed"} <= set(r["params"]) and r["ops_per_second"] > 0


def test_naive_paillier_is_correct():
    from mpc.he import paillier_keygen
    sk = paillier_keygen(512, insecure_for_testing=True).secret
    naive = NaivePaillier(sk._p, sk._q)
    a, b = naive.encrypt(20), naive.encrypt(-3)
    assert naive.decrypt(naive.add(a, b)) == 17
    assert sk.decrypt_raw([naive.add(a, b)]) == [17]  # the same cryptosystem
