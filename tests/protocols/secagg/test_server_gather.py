"""The server's share gathering at scale: the first t shares per owner, in memory O(n k)."""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import numpy as np

from protocols.secagg.server import _gather
from protocols.secagg.sharing import PRIME, SEED_ELEMS, reconstruct


def _rows(n: int, k: int, rng: np.random.Generator) -> list:
    """n responders, each holding shares of k owners (a shuffled ring: every owner has k holders)."""
    rows, perm = [], rng.permutation(n)
    for u in range(n):
        ids = np.sort(perm[(np.arange(k) + u) % n]).astype(np.int64)
        rows.append((u, ids, rng.integers(0, PRIME, (k, SEED_ELEMS), dtype=np.uint32)))
    return rows


def test_gather_takes_the_first_t_shares_of_each_owner():
    rng = np.random.default_rng(0)
    n, k, t = 60, 12, 3
    rows = _rows(n, k, rng)
    owners = np.array(sorted({int(w) for _, ids, _ in rows for w in ids}), dtype=np.int64)
    server = SimpleNamespace(config=SimpleNamespace(threshold=t))
    got = _gather(server, owners, rows, SEED_ELEMS, "seed")
    for i, w in enumerate(owners.tolist()):
        held = [(u, sh[list(ids).index(w)]) for u, ids, sh in rows if w in ids][:t]
        points = np.array([[u + 1 for u, _ in held]])
        want = reconstruct(points, np.array([[s for _, s in held]]))
        assert np.array_equal(got[i], want[0])


def test_gather_memory_grows_with_n_k_not_n_squared():
    rng = np.random.default_rng(1)
    n, k, t = 2000, 8, 3
    rows = _rows(n, k, rng)
    owners = np.array(sorted({int(w) for _, ids, _ in rows for w in ids}), dtype=np.int64)
    server = SimpleNamespace(config=SimpleNamespace(threshold=t))
    tracemalloc.start()
    try:
        _gather(server, owners, rows, SEED_ELEMS, "seed")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2 ** 20, peak     # a dense owners x responders table: > 80 MB
