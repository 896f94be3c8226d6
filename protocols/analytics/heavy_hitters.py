"""Heavy hitters over an open domain: one secure sum of prefix sketches, then a tree walk.

Method (a one-round, distributed-DP variant of the prefix-tree methods of
Bassily et al. 2017 and Zhu et al. 2020): each client holds one string, read
as UTF-8 bytes (at most ``max_bytes``; longer ones are cut at a character
boundary and counted). It inserts its first l bytes into a count-min sketch
of ``rows x width`` counters for every level l = 1 .. len, and the whole
string into a separate *item* sketch of ``item_rows x width`` counters. Keys
are hashed with BLAKE2b under a fresh public key per query, so nobody can aim
collisions. The client's sketches (one vector) get discrete Gaussian noise
and enter one secure sum (SecAgg / SecAgg+). The analyst then walks the
prefix tree on the noisy total alone: from the empty prefix, each candidate
is looked up in the item sketch (every row at or above the threshold: a
found item, counted by the median of its rows) and extended by every byte (children at or
above the threshold on the next prefix level survive, at most
``max_candidates`` per level, the largest).

Only the item sketch decides what is reported: a prefix level is a hint where
to look. With one row, a probe lands in the bucket of a frequent key with
probability about ``h / width`` (h frequent keys on that level), and the walk
makes hundreds of probes, so a prefix sketch alone reported items nobody held
(the demo once listed ``"map"``, held by nobody, with the 155 of a frequent
key's bucket). An item is reported only if
all ``item_rows`` independent rows reach the threshold: see docs/analytics.md
for the remaining false-positive probability.

Privacy: one client adds at most one 1 per row of each level and of the item
sketch, so its L2 sensitivity is ``sqrt(rows * max_bytes + item_rows)`` and
L1 ``rows * max_bytes + item_rows``; the noise is calibrated for that, in one
query. Items rarer than the threshold (default ``max(min_count, 4 sigma)``)
are not found: the price of privacy. A found item's count is the median of
its item rows: noisy, and biased upward only if collisions hit most rows.

Cost: one secure sum of ``(rows * max_bytes + item_rows) * width`` small
integers per client; the walk costs the analyst about
``max_bytes * max_candidates * (256 rows + item_rows)`` hashes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from mpc.backend import Ray
from mpc.dp import PrivacyAccountant
from mpc.errors import ParameterError
from mpc.rand import random_seed

from .privacy import NO_NOISE, calibrate, check_privacy_parameters
from .queries import QueryResult, _finish, _run, _survivor_mask
from .secure_sum import min_noisy_clients

_ALPHABET = [bytes([b]) for b in range(256)]
_PREFIX, _ITEM = b"p", b"i"


@dataclass(frozen=True)
class SketchLayout:
    """Where keys go in one client's vector: ``max_bytes`` prefix levels of
    ``rows x width`` counters, then the item sketch of ``item_rows x width``."""

    key: bytes                  # public hash key of the query
    max_bytes: int
    rows: int
    item_rows: int
    width: int

    @property
    def size(self) -> int:
        return (self.rows * self.max_bytes + self.item_rows) * self.width

    def _offset(self, kind: bytes, level: int, row: int, data: bytes) -> int:
        h = hashlib.blake2b(data, digest_size=8, key=self.key,
                            person=kind + level.to_bytes(4, "little") + row.to_bytes(4, "little")
                            + bytes(7))
        table = (level - 1) * self.rows + row if kind == _PREFIX else \
            self.max_bytes * self.rows + row
        return table * self.width + int.from_bytes(h.digest(), "little") % self.width

    def prefix_offsets(self, prefix: bytes) -> list[int]:
        """Positions of a prefix of ``len(prefix)`` bytes (1 .. max_bytes), one per row."""
        return [self._offset(_PREFIX, len(prefix), r, prefix) for r in range(self.rows)]

    def item_offsets(self, item: bytes) -> list[int]:
        """Positions of a whole item in the item sketch, one per item row."""
        return [self._offset(_ITEM, 0, r, item) for r in range(self.item_rows)]

    def client_offsets(self, raw: bytes) -> list[int]:
        """Every position where one client holding ``raw`` (already cut) adds 1."""
        out = [o for level in range(1, len(raw) + 1) for o in self.prefix_offsets(raw[:level])]
        return out + self.item_offsets(raw)


def walk(total: np.ndarray, layout: SketchLayout, keep_at: float,
         max_candidates: int) -> dict[bytes, float]:
    """The analyst's tree walk on the (noisy) summed sketch: found items and their counts.

    A key passes when every one of its rows reaches ``keep_at``; only the item
    sketch reports items (with the median of its rows as the count: unbiased
    under the noise, robust to a collision in one row), the prefix levels only
    choose where to look.
    """
    found: dict[bytes, float] = {}
    candidates = [b""]
    for level in range(1, layout.max_bytes + 2):
        for c in candidates:
            row_counts = total[layout.item_offsets(c)]
            if row_counts.min() >= keep_at:         # every row: a collision must repeat in all
                found[c] = float(np.median(row_counts))   # the minimum would be biased down by noise
        if level > layout.max_bytes:
            break
        children = [c + b for c in candidates for b in _ALPHABET]
        est_children = np.array([min(total[o] for o in layout.prefix_offsets(p))
                                 for p in children], dtype=float)
        keep = np.flatnonzero(est_children >= keep_at)
        keep = keep[np.argsort(-est_children[keep], kind="stable")][:max_candidates]
        candidates = [children[j] for j in keep.tolist()]
        if not candidates:
            break
    return found


def heavy_hitters(items: Sequence[str], k: int = 10, *, epsilon: float | None = None,
                  delta: float = 1e-6, max_bytes: int = 10, rows: int = 1, item_rows: int = 3,
                  width: int = 1024, threshold: float | None = None, min_count: int = 5,
                  max_candidates: int = 64, dropped: Sequence[int] | np.ndarray = (),
                  variant: str = "secagg+", accountant: PrivacyAccountant | None = None,
                  seed: bytes | None = None,
                  progress: Callable[[int], None] | None = None,
                  backend: str | Ray = "local") -> QueryResult:
    """The ``k`` most common strings with their noisy counts, most common first.

    ``progress(1)`` is called after each client's step of each of the secure
    sum's four rounds (at most ``4 n`` calls; a tqdm bar's ``update`` fits).
    """
    if not 1 <= max_bytes <= 64:
        raise ParameterError(f"max_bytes must be in 1..64, got {max_bytes}")
    if not (1 <= rows <= 8 and 1 <= item_rows <= 8 and 16 <= width <= 2 ** 16):
        raise ParameterError("rows and item_rows must be in 1..8 and width in 16..65536")
    if not 1 <= k <= max_candidates:
        raise ParameterError(f"need 1 <= k <= max_candidates, got k={k}")
    check_privacy_parameters(epsilon, delta)
    n = len(items)
    if n < 2:
        raise ParameterError("heavy hitters need at least two clients")
    seed = seed if seed is not None else random_seed()
    layout = SketchLayout(hashlib.blake2b(seed, digest_size=32, person=b"hh-key").digest(),
                          max_bytes, rows, item_rows, width)      # the key is public per query

    # Clients: one sketch each (the loop is each device's own local work).
    sketch = np.zeros((n, layout.size), dtype=np.int64)
    cut = 0
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ParameterError(f"heavy hitters take strings; client {i} has {type(item).__name__}")
        raw = item.encode("utf-8")
        if len(raw) > max_bytes:               # cut on a character boundary
            raw, cut = raw[:max_bytes].decode("utf-8", errors="ignore").encode("utf-8"), cut + 1
        sketch[i, layout.client_offsets(raw)] = 1

    ones = rows * max_bytes + item_rows         # at most one 1 per row of every table
    plan = NO_NOISE if epsilon is None else calibrate(
        epsilon, delta, l2=float(np.sqrt(ones)), l1=float(ones), threshold=min_noisy_clients(n))
    noise_std = 0.0 if plan.noiseless else plan.std
    keep_at = threshold if threshold is not None else max(float(min_count), 4.0 * noise_std)
    total, outcome = _run(sketch, n, plan, _survivor_mask(n, dropped), variant, seed,
                          progress=progress, backend=backend)

    found = walk(total, layout, keep_at, max_candidates)
    top = sorted(found.items(), key=lambda kv: -kv[1])[:k]
    value = [(p.decode("utf-8", errors="replace"), c) for p, c in top]
    return _finish(value, plan, cut, outcome, n, accountant,
                   details={"threshold": keep_at, "prefix_levels": max_bytes, "rows": rows,
                            "item_rows": item_rows, "width": width, "sketch_values": layout.size})
