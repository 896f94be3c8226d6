"""Compression under secure aggregation: quantization into SecAgg's ring and shared-seed sparsification (layer: ml).

:mod:`ml.compression` compresses plaintext uploads (top-k, error feedback);
a masked upload cannot be compressed afterwards (masks are uniform), so the
compression must happen before masking, on values the secure sum still adds
correctly:

* **Stochastic quantization into the ring.** Each value x, clipped to
  [-c, c], becomes an integer in [0, L], L = 2^b - 1, by unbiased stochastic
  rounding: ``q = floor((x + c) / (2c) L + u)``, u uniform in [0, 1), so
  E[q] = (x + c) / (2c) L (Suresh et al. 2017; the quantizer of Kairouz,
  Liu, Steinke 2021 without the noise). The sum of n clients lies in
  [0, n L]: a slot of ``k = bitlen(n L)`` bits cannot overflow (the overflow
  rule), and ``floor(64 / k)`` slots are packed in each 64-bit word
  of SecAgg's ring Z_2^64, so that the sum of packed words is the packed
  sums (no carry crosses a slot). The server unpacks and decodes
  ``sum x = sum q * 2c / L - n_s c`` (n_s: the survivors, public).
* **Random sparsification with a shared seed.** Each round, every client
  keeps the same ``keep`` coordinates, drawn from a public per-round seed
  (the server announces it), so the masked vectors line up and the secure
  sum of the kept coordinates is the sparsified plaintext sum; the other
  coordinates are zero in the result (rand-k without rescaling; the last
  coordinate, where :mod:`ml.federated` puts the weight, is always kept).

Per client the masked input shrinks from ``8 d`` (dense, 64-bit ring) to
``8 ceil(keep / floor(64 / k))`` bytes; the key exchange and share messages
of SecAgg do not depend on d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from mpc.dp import uniform01
from mpc.errors import ParameterError, ProtocolAbort
from mpc.rand import PRG, derive_seed, random_seed

from .aggregators import AggregationResult, Aggregator
from .clients.numpy_model import permutation


@dataclass(frozen=True)
class StochasticQuantizer:
    """Unbiased b-bit stochastic rounding of values clipped to ``[-clip, clip]`` (per coordinate)."""

    bits: int = 8
    clip: float | np.ndarray = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 32:
            raise ParameterError(f"quantization bits must be in [1, 32], got {self.bits}")
        c = np.asarray(self.clip, dtype=np.float64)
        if not (np.all(c > 0) and np.all(np.isfinite(c))):
            raise ParameterError("the clipping range must be positive and finite")

    @property
    def levels(self) -> int:
        """L = 2^b - 1: a value becomes an integer in [0, L]."""
        return (1 << self.bits) - 1

    def slot_bits(self, n: int) -> int:
        """Bits of one packed slot: the sum of ``n`` clients' integers in [0, L] cannot overflow it."""
        return (n * self.levels).bit_length()

    def encode(self, x: np.ndarray, prg: PRG) -> tuple[np.ndarray, int]:
        """(integers in [0, L] as uint64, how many values were clipped)."""
        c = np.asarray(self.clip, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        clipped = int(np.count_nonzero(np.abs(x) > c))
        y = (np.clip(x, -c, c) + c) / (2 * c) * self.levels
        q = np.floor(y + uniform01(prg, y.size).reshape(y.shape))
        return np.minimum(q, self.levels).astype(np.uint64), clipped

    def decode_sum(self, s: np.ndarray, n: int) -> np.ndarray:
        """The sum of ``n`` clients' values from the sum of their integers."""
        c = np.asarray(self.clip, dtype=np.float64)
        return np.asarray(s, dtype=np.float64) * (2 * c) / self.levels - n * c


def pack(q: np.ndarray, slot_bits: int) -> np.ndarray:
    """Pack integers below 2^slot_bits, ``floor(64 / slot_bits)`` per uint64 word (low slot first)."""
    if not 1 <= slot_bits <= 64:
        raise ParameterError(f"a slot must have 1 to 64 bits, got {slot_bits}")
    per = 64 // slot_bits
    words = -(-q.size // per)
    padded = np.zeros(words * per, dtype=np.uint64)
    padded[:q.size] = q
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(slot_bits))
    return np.bitwise_or.reduce(padded.reshape(words, per) << shifts, axis=1)


def unpack(words: np.ndarray, slot_bits: int, size: int) -> np.ndarray:
    """Inverse of :func:`pack`: the first ``size`` slots."""
    per = 64 // slot_bits
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(slot_bits))
    mask = np.uint64((1 << slot_bits) - 1) if slot_bits < 64 else np.uint64(2 ** 64 - 1)
    slots = (np.asarray(words, dtype=np.uint64)[:, None] >> shifts) & mask
    return slots.reshape(-1)[:size]


def shared_coordinates(seed: bytes, round_index: int, dim: int, keep: int,
                       always: Iterable[int] = ()) -> np.ndarray:
    """The coordinates every client keeps in a round: ``keep`` of ``dim`` (sorted), from the
    public round seed, including ``always``."""
    fixed = sorted({int(i) for i in always})
    if not len(fixed) <= keep <= dim:
        raise ParameterError(f"keep must be in [{len(fixed)}, {dim}], got {keep}")
    rest = np.setdiff1d(np.arange(dim), fixed)
    order = permutation(PRG(derive_seed(seed, "sparsify", round_index)), rest.size)
    return np.sort(np.concatenate([rest[order[:keep - len(fixed)]], fixed]).astype(np.int64))


class CompressedSecAggAggregator(Aggregator):
    """SecAgg / SecAgg+ over stochastically quantized, packed and optionally sparsified vectors.

    Parameters
    ----------
    bits:
        Bits per value before summing (``None``: no quantization, the dense
        fixed-point encoding of :class:`~ml.aggregators.SecAggAggregator`).
    clip:
        Range [-clip, clip] of every coordinate but the last (the updates);
        the last (the weight, at most 1 in :mod:`ml.federated`) uses ``weight_clip``.
    keep:
        Fraction of the coordinates kept each round (``None``: all).
    seed:
        Public seed of the per-round coordinate choice (default: fresh).
    variant, dropout_bound, corruption:
        As :class:`~ml.aggregators.SecAggAggregator`.

    Security
    --------
    That of SecAgg / SecAgg+ (see :class:`~ml.aggregators.SecAggAggregator`):
    the server learns the sum of the survivors' compressed vectors; the kept
    coordinates are public (chosen from the public seed, not from the data).
    The stochastic rounding draws from a PRG keyed from the OS CSPRNG.
    With ``bits`` set, :func:`ml.federated.train` refuses DP: the rounding
    moves an update by up to ``2 clip / (2^bits - 1)`` per coordinate, so the
    sum's sensitivity is no longer the DP clip the noise is calibrated to.

    Cost
    ----
    As SecAgg, with the masked input of ``8 ceil(keep d / floor(64 / k))``
    bytes, k = bitlen(n (2^bits - 1)) (see the module docstring).
    Error per coordinate of the sum: unbiased, variance at most
    ``n (2 clip / (2^bits - 1))^2 / 4``.
    """

    name = "secagg-compressed"

    def __init__(self, bits: int | None = 8, clip: float = 1.0, keep: float | None = None,
                 seed: bytes | None = None, variant: str = "secagg", dropout_bound: float = 0.3,
                 corruption: float = 0.1, frac_bits: int = 20, weight_clip: float = 1.0) -> None:
        super().__init__()
        if keep is not None and not 0 < keep <= 1:
            raise ParameterError(f"keep must be a fraction in (0, 1], got {keep}")
        if variant not in ("secagg", "secagg+"):
            raise ParameterError("variant must be 'secagg' or 'secagg+'")
        self.bits, self.clip, self.keep = bits, float(clip), keep
        self.seed = seed or random_seed()
        self.variant, self.dropout_bound, self.corruption = variant, dropout_bound, corruption
        self.frac_bits, self.weight_clip = frac_bits, float(weight_clip)
        self.round_index = 0
        self._prg = PRG.fresh()

    def coordinates(self, round_index: int) -> np.ndarray:
        """This round's kept coordinates (all of them without sparsification)."""
        if self.keep is None:
            return np.arange(self.dim)
        k = max(2, math.ceil(self.keep * self.dim))
        return shared_coordinates(self.seed, round_index, self.dim, min(k, self.dim),
                                  always=[self.dim - 1])

    def aggregate(self, vectors: dict[int, np.ndarray],
                  dropped: Iterable[int] = ()) -> AggregationResult:
        from protocols.secagg import aggregate

        ids, drop, vecs = self._check(vectors, dropped)
        survivors = [i for i in ids if i not in drop]
        if not survivors:
            raise ProtocolAbort(f"{self.name}: every client of the round dropped out")
        idx = self.coordinates(self.round_index)
        self.round_index += 1
        common: dict[str, Any] = dict(variant=self.variant, dropouts={u: 2 for u, i in enumerate(ids) if i in drop},
                      dropout_bound=self.dropout_bound, corruption=self.corruption)
        if self.bits is None:
            res = aggregate([vecs[i][idx] for i in ids], clip=self.value_bound,
                            frac_bits=self.frac_bits, **common)
            kept_sum = res.total
        else:
            clip = np.full(idx.size, self.clip)
            clip[idx == self.dim - 1] = self.weight_clip
            quant = StochasticQuantizer(self.bits, clip)
            k = quant.slot_bits(len(ids))
            packed = [pack(quant.encode(vecs[i][idx], self._prg)[0], k) for i in ids]
            res = aggregate(packed, bits=64, **common)
            kept_sum = quant.decode_sum(unpack(res.total, k, idx.size), len(res.survivors))
        total = np.zeros(self.dim)
        total[idx] = kept_sum
        return AggregationResult(
            total, [ids[u] for u in res.survivors],
            bytes_per_client=res.cost.bytes_per_client + 8 * self.dim,   # and the model down
            server_seconds=res.cost.server_seconds, client_seconds=res.cost.client_seconds,
            server_state={"total": total, "coordinates": idx,
                          "masked_bytes_per_client":
                              res.cost.round_bytes.get("masked", 0) / len(res.survivors)})


__all__ = ["CompressedSecAggAggregator", "StochasticQuantizer", "pack", "shared_coordinates", "unpack"]
