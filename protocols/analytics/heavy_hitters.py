"""Heavy hitters over an open domain: one secure sum of prefix sketches, then a tree walk.

Method (a one-round, distributed-DP variant of the prefix-tree methods of
Bassily et al. 2017 and Zhu et al. 2020): each client holds one string, read
as UTF-8 bytes (at most ``max_bytes``; longer ones are cut at a character
boundary and counted). For
every level l = 1 .. len + 1 it inserts one key into a count-min sketch of
``rows x width`` counters per level: the first l bytes at levels up to len,
and the whole string with an end mark at level len + 1. Keys are hashed with
BLAKE2b under a fresh public key per query, so nobody can aim collisions.
The client's sketch (all levels, one vector) gets discrete Gaussian noise and
enters one secure sum (SecAgg / SecAgg+). The analyst then walks the prefix
tree on the noisy total alone: starting from the empty prefix, each candidate
is extended by every byte and by the end mark, a child's count is estimated
as the minimum over the rows, and children at or above the threshold survive
(at most ``max_candidates`` per level, the largest); children with the end
mark are the found items.

Privacy: one client adds at most one 1 per row and level, so its L2
sensitivity is ``sqrt(rows * levels)`` and L1 ``rows * levels`` with
``levels = max_bytes + 1``; the noise is calibrated for that, in one query.
Items rarer than the threshold (default ``max(min_count, 4 sigma)``, which
keeps noise from inventing items) are not found: the price of privacy.
Counts of found items are noisy and can be biased upward by collisions
(count-min), which the width keeps small.

Cost: one secure sum of ``rows * width * levels`` small integers per client;
the walk costs the analyst ``levels * max_candidates * 257 * rows`` hashes.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np

from mpc.dp import PrivacyAccountant
from mpc.errors import ParameterError
from mpc.rand import random_seed

from .privacy import NO_NOISE, calibrate, check_privacy_parameters
from .queries import QueryResult, _finish, _run, _survivor_mask
from .secure_sum import min_noisy_clients

_END = b"\x00end"
_ALPHABET = [bytes([b]) for b in range(256)]


def _bucket(key: bytes, level: int, row: int, prefix: bytes, end: bool, width: int) -> int:
    h = hashlib.blake2b(prefix + (_END if end else b""), digest_size=8, key=key,
                        person=level.to_bytes(4, "little") + row.to_bytes(4, "little")
                        + bytes([end]) + bytes(7))
    return int.from_bytes(h.digest(), "little") % width


def _sketch_offsets(key: bytes, level: int, prefix: bytes, end: bool, rows: int,
                    width: int, levels: int) -> list[int]:
    """Flat positions of one key in the (levels, rows, width) sketch."""
    return [((level - 1) * rows + r) * width + _bucket(key, level, r, prefix, end, width)
            for r in range(rows)]


def heavy_hitters(items: Sequence[str], k: int = 10, *, epsilon: float | None = None,
                  delta: float = 1e-6, max_bytes: int = 10, rows: int = 1, width: int = 1024,
                  threshold: float | None = None, min_count: int = 5,
                  max_candidates: int = 32, dropped: Sequence[int] | np.ndarray = (),
                  variant: str = "secagg+", accountant: PrivacyAccountant | None = None,
                  seed: bytes | None = None,
                  progress: Callable[[int], None] | None = None) -> QueryResult:
    """The ``k`` most common strings with their noisy counts, most common first.

    ``progress(1)`` is called after each client's step of each of the secure
    sum's four rounds (at most ``4 n`` calls; a tqdm bar's ``update`` fits).
    """
    if not 1 <= max_bytes <= 64:
        raise ParameterError(f"max_bytes must be in 1..64, got {max_bytes}")
    if not (1 <= rows <= 8 and 16 <= width <= 2 ** 16):
        raise ParameterError("rows must be in 1..8 and width in 16..65536")
    if not 1 <= k <= max_candidates:
        raise ParameterError(f"need 1 <= k <= max_candidates, got k={k}")
    check_privacy_parameters(epsilon, delta)
    n = len(items)
    if n < 2:
        raise ParameterError("heavy hitters need at least two clients")
    levels = max_bytes + 1
    seed = seed if seed is not None else random_seed()
    key = hashlib.blake2b(seed, digest_size=32, person=b"hh-key").digest()  # public per query

    # Clients: one sketch each (the loop is each device's own local work).
    sketch = np.zeros((n, levels * rows * width), dtype=np.int64)
    cut = 0
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ParameterError(f"heavy hitters take strings; client {i} has {type(item).__name__}")
        raw = item.encode("utf-8")
        if len(raw) > max_bytes:               # cut on a character boundary
            raw, cut = raw[:max_bytes].decode("utf-8", errors="ignore").encode("utf-8"), cut + 1
        for level in range(1, len(raw) + 2):
            end = level == len(raw) + 1
            sketch[i, _sketch_offsets(key, level, raw[: level - 1] if end else raw[:level],
                                      end, rows, width, levels)] = 1

    t = min_noisy_clients(n)
    plan = NO_NOISE if epsilon is None else calibrate(
        epsilon, delta, l2=float(np.sqrt(rows * levels)), l1=float(rows * levels), threshold=t)
    noise_std = 0.0 if plan.noiseless else plan.std
    keep_at = threshold if threshold is not None else max(float(min_count), 4.0 * noise_std)
    total, outcome = _run(sketch, n, plan, _survivor_mask(n, dropped), variant, seed,
                          progress=progress)
    counts = total.reshape(levels, rows, width)

    # Analyst: walk the prefix tree on the noisy sketch.
    found: dict[bytes, float] = {}
    candidates = [b""]
    for level in range(1, levels + 1):
        children = [(c + b, False) for c in candidates for b in _ALPHABET] if level < levels else []
        children += [(c, True) for c in candidates]
        est = np.array([min(counts[level - 1, r, _bucket(key, level, r, p, e, width)]
                            for r in range(rows)) for p, e in children])
        keep = np.flatnonzero(est >= keep_at)
        keep = keep[np.argsort(-est[keep], kind="stable")]
        nxt = []
        for j in keep.tolist():
            prefix, end = children[j]
            if end:
                found[prefix] = float(est[j])
            elif len(nxt) < max_candidates:
                nxt.append(prefix)
        candidates = nxt
        if not candidates:
            break
    top = sorted(found.items(), key=lambda kv: -kv[1])[:k]
    value = [(p.decode("utf-8", errors="replace"), c) for p, c in top]
    return _finish(value, plan, cut, outcome, n, accountant,
                   details={"threshold": keep_at, "levels": levels, "rows": rows,
                            "width": width, "sketch_values": levels * rows * width})
