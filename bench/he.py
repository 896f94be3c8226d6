"""Homomorphic encryption: CKKS (mpc.he.ckks against TenSEAL directly) and Paillier
(mpc.he.paillier against a straightforward implementation), in one run.

Records:

* ``ckks`` - params ``op`` (create, encrypt, add, multiply, multiply_plain, dot, sum,
  serialize, load, decrypt) and ``N``; ``seconds`` through ``mpc.he.ckks``,
  ``baseline_seconds`` the same operation on the same keys through TenSEAL's own
  ``CKKSVector`` API, so ``ratio`` is our overhead. Extra: ``length`` (one
  ciphertext, N/2 values), ``ciphertext_bytes``, ``max_abs_error`` against numpy,
  ``cpu_seconds``/``baseline_cpu_seconds``/``cpu_ratio`` (process CPU time, the
  fairer figure on a loaded machine). ``create`` is ``SecretContext.create(preset,
  rotations=("sum",), max_length=length)`` (secret and public context, the sum's
  rotation keys only) against TenSEAL's ``context(...)``, ``global_scale`` and
  ``generate_galois_keys()`` (TenSEAL makes every power-of-two key; it cannot choose).
* ``paillier`` - params ``op`` (keygen, precompute, encrypt, encrypt_online
  [randomness drawn beforehand], decrypt, add),
  ``bits``, ``packed``; extra ``ops_per_second`` (values per second: a packed
  ciphertext holds many) and ``values``; ``baseline_seconds`` is the naive
  implementation on the same values. The naive implementation's own records
  carry ``impl: "naive"``: textbook ``g^m r^n mod n^2`` with a fresh random
  ``r`` and a full ``n``-bit exponent per encryption, and
  ``L(c^lambda mod n^2) mu mod n`` without CRT.
"""

from __future__ import annotations

import time

import gmpy2
import numpy as np
import tenseal as ts

from bench.common import median_time, record
from mpc.he import Packing, SecretContext, paillier_keygen
from mpc.rand import random_seed


def _paired(ours, theirs, repeat: int):
    """Median seconds of ``ours`` and ``theirs`` timed alternately, so that load
    from other processes hits both alike; returns (ours, theirs, ours' result,
    ours' CPU seconds, theirs' CPU seconds)."""
    mine, base, cmine, cbase, result = [], [], [], [], None
    for _ in range(max(1, repeat)):
        t0, c0 = time.perf_counter(), time.process_time()
        theirs()
        t1, c1 = time.perf_counter(), time.process_time()
        result = ours()
        t2, c2 = time.perf_counter(), time.process_time()
        base.append(t1 - t0)
        mine.append(t2 - t1)
        cbase.append(c1 - c0)
        cmine.append(c2 - c1)
    med = [float(np.median(v)) for v in (mine, base, cmine, cbase)]
    return med[0], med[1], result, med[2], med[3]


# --- CKKS --------------------------------------------------------------------------------

def _ckks_records(preset: str, length: int, repeat: int) -> list[dict]:
    sc = SecretContext.create(preset, rotations=("sum",), max_length=length)
    pc = sc.public()
    n = sc.params.poly_modulus_degree
    rng = np.random.default_rng(n)
    x, y = rng.uniform(-1, 1, length), rng.uniform(-1, 1, length)
    sk = sc._ts.secret_key()          # TenSEAL directly, on the very same keys
    tctx = pc._ts
    ex, ey = pc.encrypt(x), pc.encrypt(y)
    tx, ty = ts.ckks_vector(tctx, x.tolist()), ts.ckks_vector(tctx, y.tolist())
    blob, tblob = ex.serialize(), tx.serialize()
    p = sc.params

    def ts_create():
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=n,
                         coeff_mod_bit_sizes=list(p.coeff_mod_bit_sizes))
        ctx.global_scale = 2.0 ** p.scale_bits
        ctx.generate_galois_keys()
        return ctx

    cases = [
        ("create", lambda: SecretContext.create(preset, rotations=("sum",), max_length=length),
         ts_create, None),
        ("encrypt", lambda: pc.encrypt(x), lambda: ts.ckks_vector(tctx, x.tolist()), x),
        ("add", lambda: ex + ey, lambda: tx + ty, x + y),
        ("multiply", lambda: ex * ey, lambda: tx * ty, x * y),
        ("multiply_plain", lambda: ex * y, lambda: tx * y.tolist(), x * y),
        ("dot", lambda: ex.dot(ey), lambda: tx.dot(ty), np.array([x @ y])),
        ("sum", lambda: ex.sum(), lambda: tx.sum(), np.array([x.sum()])),
        ("serialize", lambda: ex.serialize(), lambda: tx.serialize(), None),
        ("load", lambda: pc.load_vector(blob), lambda: ts.ckks_vector_from(tctx, tblob), None),
        ("decrypt", lambda: sc.decrypt(ex), lambda: tx.decrypt(sk), x),
    ]
    out = []
    for op, ours, theirs, want in cases:
        # milliseconds-long operations: more pairs, so the median is not the machine's load
        reps = repeat if op == "create" else 5 * repeat
        secs, base, got, cpu, base_cpu = _paired(ours, theirs, reps)
        err = None
        if want is not None:
            plain = got if isinstance(got, np.ndarray) else sc.decrypt(got)
            err = float(np.abs(plain - want).max())
        out.append(record("ckks", {"op": op, "N": n}, secs, base, length=length,
                          ciphertext_bytes=len(tx.serialize()), envelope_bytes=len(blob),
                          max_abs_error=err, cpu_seconds=cpu, baseline_cpu_seconds=base_cpu,
                          cpu_ratio=cpu / base_cpu if base_cpu else None))
    return out


def bench_ckks(quick: bool) -> list[dict]:
    """CKKS through mpc.he.ckks vs TenSEAL directly on the same keys."""
    if quick:
        return _ckks_records("linear", 256, 3)
    return _ckks_records("quadratic", 4096, 15) + _ckks_records("polynomial", 8192, 9)


# --- Paillier ----------------------------------------------------------------------------

class NaivePaillier:
    """Textbook Paillier for comparison only: g = n + 1 exponentiated generically,
    a fresh r^n per encryption, decryption with lambda and mu mod n^2 (no CRT)."""

    def __init__(self, p: int, q: int) -> None:
        self.n = gmpy2.mpz(p) * q
        self.n2 = self.n * self.n
        self.g = self.n + 1
        self.lam = gmpy2.lcm(p - 1, q - 1)
        self.mu = gmpy2.invert((gmpy2.powmod(self.g, self.lam, self.n2) - 1) // self.n, self.n)

    def encrypt(self, m: int) -> gmpy2.mpz:
        while True:
            r = gmpy2.mpz(int.from_bytes(random_seed(self.n.bit_length() // 8 + 16), "big")) % self.n
            if gmpy2.gcd(r, self.n) == 1:
                break
        return gmpy2.powmod(self.g, m % self.n, self.n2) * gmpy2.powmod(r, self.n, self.n2) % self.n2

    def decrypt(self, c: gmpy2.mpz) -> gmpy2.mpz:
        return (gmpy2.powmod(c, self.lam, self.n2) - 1) // self.n * self.mu % self.n

    def add(self, a: gmpy2.mpz, b: gmpy2.mpz) -> gmpy2.mpz:
        return a * b % self.n2


def _naive_keygen(bits: int) -> NaivePaillier:
    def prime() -> gmpy2.mpz:
        while True:
            c = gmpy2.next_prime(gmpy2.mpz(int.from_bytes(random_seed(bits // 16), "big"))
                                 | (gmpy2.mpz(3) << (bits // 2 - 2)))
            if c.bit_length() == bits // 2:
                return c
    while True:
        p, q = prime(), prime()
        if p != q and (p * q).bit_length() == bits:
            return NaivePaillier(p, q)


def _rate(rec_values: int, secs: float) -> float:
    return rec_values / secs if secs else float("inf")


def bench_paillier(quick: bool) -> list[dict]:
    bits = 1024 if quick else 2048
    count = 8 if quick else 64
    repeat = 1 if quick else 3
    insecure = bits < 2048
    rng = np.random.default_rng(7)
    values = rng.integers(-(2**31), 2**31, count)
    out: list[dict] = []

    naive_kg, _, _ = median_time(lambda: _naive_keygen(bits), repeat)
    kg, _, kp = median_time(lambda: paillier_keygen(bits, insecure_for_testing=insecure), repeat)
    pk, sk = kp
    naive = NaivePaillier(sk._p, sk._q)  # same modulus for both
    t0 = time.perf_counter()
    pk.precompute()
    pre = time.perf_counter() - t0

    nv, _, nct = median_time(lambda: [naive.encrypt(int(v)) for v in values], repeat)
    nd, _, ndec = median_time(lambda: [naive.decrypt(c) for c in nct], repeat)
    na, _, _ = median_time(lambda: [naive.add(a, b) for a, b in zip(nct, nct)], repeat)
    if [int(m) for m in ndec] != [int(v) % int(naive.n) for v in values]:
        raise AssertionError("naive Paillier decrypted wrongly")

    ev, _, enc = median_time(lambda: pk.encrypt(values), repeat)
    pool = [pk.randomness(count) for _ in range(repeat)]  # offline phase
    online, _, _ = median_time(lambda: pk.encrypt(values, randomness=pool.pop()), repeat)
    dv, _, dec = median_time(lambda: sk.decrypt(enc), repeat)
    av, _, _ = median_time(lambda: enc + enc, repeat)
    if not np.array_equal(dec, values):
        raise AssertionError("Paillier decrypted wrongly")

    packing = Packing(value_bits=32, max_additions=1024)
    pev, _, penc = median_time(lambda: pk.encrypt_packed(values, packing), repeat)
    pdv, _, pdec = median_time(lambda: sk.decrypt_packed(penc), repeat)
    pav, _, _ = median_time(lambda: penc + penc, repeat)
    if not np.array_equal(pdec, values):
        raise AssertionError("packed Paillier decrypted wrongly")

    def rec(op, secs, base, packed, n_values, impl=None, **extra):
        params = {"op": op, "bits": bits, "packed": packed}
        if impl:
            params["impl"] = impl
        return record("paillier", params, secs, base, ops_per_second=_rate(n_values, secs),
                      values=n_values, **extra)

    out.append(rec("keygen", kg, naive_kg, False, 1))
    out.append(rec("precompute", pre, None, False, 1, table_entries=sum(len(r) for r in pk._table)))
    for packed, (e, d, a) in ((False, (ev, dv, av)), (True, (pev, pdv, pav))):
        n_ct = penc.n_ciphertexts if packed else count
        out.append(rec("encrypt", e, nv, packed, count, ciphertexts=n_ct))
        if not packed:
            out.append(rec("encrypt_online", online, nv, packed, count, ciphertexts=n_ct))
        out.append(rec("decrypt", d, nd, packed, count, ciphertexts=n_ct))
        out.append(rec("add", a, na, packed, count, ciphertexts=n_ct))
    out.append(rec("keygen", naive_kg, None, False, 1, impl="naive"))
    out.append(rec("encrypt", nv, None, False, count, impl="naive", ciphertexts=count))
    out.append(rec("decrypt", nd, None, False, count, impl="naive", ciphertexts=count))
    out.append(rec("add", na, None, False, count, impl="naive", ciphertexts=count))
    return out


def bench_he(quick: bool) -> list[dict]:
    """CKKS operations vs TenSEAL directly; Paillier operations vs a textbook implementation."""
    return bench_ckks(quick) + bench_paillier(quick)


BENCHMARKS = {"he": bench_he, "ckks": bench_ckks}
