"""Update compression: stochastic quantization and top-k sparsification with error feedback (layer: ml).

A client compresses its model update before upload; the server decompresses.
Every compressor reports the payload size it would send, so the training loop
can report the bytes saved against dense float64 (8 bytes per entry).

* :class:`Quantizer` -- ``bits``-bit unbiased stochastic rounding onto a uniform
  grid between the vector's min and max (QSGD-style; Alistarh et al. 2017).
  Payload: ceil(d * bits / 8) + 16 bytes (min and max as float64).
* :class:`TopK` -- keep the ``fraction`` of entries largest in magnitude.
  Payload: k * (4 + 8) bytes (uint32 index, float64 value) + 4.
* :class:`ErrorFeedback` -- per-client memory of what compression dropped,
  added back before the next compression (Seide et al. 2014; Karimireddy et al.
  2019), so biased compressors such as top-k still converge.

Stochastic rounding draws from :mod:`mpc.rand`. These compressors act on the
plaintext upload path: secure aggregation sums dense vectors, so
:func:`ml.federated.train` refuses compression with a secure aggregator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mpc.errors import ParameterError
from mpc.rand import PRG

DENSE_BYTES_PER_ENTRY = 8


@dataclass
class Compressed:
    """A compressed vector: the arrays a client would send and their size."""

    kind: str
    dim: int
    arrays: dict[str, np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays.values()))

    @property
    def dense_bytes(self) -> int:
        return DENSE_BYTES_PER_ENTRY * self.dim


class Compressor:
    """Interface: ``compress(prg, x) -> Compressed`` and ``decompress(c) -> x``."""

    def compress(self, prg: PRG, x: np.ndarray) -> Compressed:
        raise NotImplementedError

    def decompress(self, c: Compressed) -> np.ndarray:
        raise NotImplementedError


def _vector(x: np.ndarray) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise ParameterError("cannot compress NaN or infinite values")
    return v


@dataclass(frozen=True)
class Quantizer(Compressor):
    """Unbiased ``bits``-bit stochastic quantization between min and max."""

    bits: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 16:
            raise ParameterError("quantization bits must be in [1, 16]")

    def compress(self, prg: PRG, x: np.ndarray) -> Compressed:
        v = _vector(x)
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
        levels = (1 << self.bits) - 1
        span = hi - lo
        if span == 0:
            q = np.zeros(v.size, dtype=np.uint16)
        else:
            y = (v - lo) / span * levels
            low = np.floor(y)
            u = (prg.uint64(v.size) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
            q = np.minimum(low + (u < (y - low)), levels).astype(np.uint16)
        packed = np.packbits(
            np.unpackbits(q.astype(">u2").view(np.uint8).reshape(-1, 2), axis=1)[:, 16 - self.bits:]
        )
        return Compressed("quantized", v.size, {"range": np.array([lo, hi]), "codes": packed})

    def decompress(self, c: Compressed) -> np.ndarray:
        if c.kind != "quantized":
            raise ParameterError(f"not a quantized vector: {c.kind}")
        lo, hi = c.arrays["range"]
        bits = np.unpackbits(c.arrays["codes"])[: c.dim * self.bits].reshape(c.dim, self.bits)
        weights = (1 << np.arange(self.bits - 1, -1, -1)).astype(np.float64)
        q = bits @ weights
        levels = (1 << self.bits) - 1
        return lo + q * ((hi - lo) / levels)


@dataclass(frozen=True)
class TopK(Compressor):
    """Keep the ``fraction`` (0, 1] of entries of largest magnitude (at least one)."""

    fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ParameterError("top-k fraction must be in (0, 1]")

    def compress(self, prg: PRG, x: np.ndarray) -> Compressed:
        v = _vector(x)
        if v.size >= 1 << 32:
            raise ParameterError("top-k indices are uint32: vector too long")
        k = max(1, int(round(self.fraction * v.size))) if v.size else 0
        idx = np.sort(np.argpartition(-np.abs(v), k - 1)[:k]) if k else np.zeros(0, np.int64)
        return Compressed("topk", v.size, {"dim": np.array([v.size], dtype=np.uint32),
                                           "index": idx.astype(np.uint32),
                                           "value": v[idx]})

    def decompress(self, c: Compressed) -> np.ndarray:
        if c.kind != "topk":
            raise ParameterError(f"not a top-k vector: {c.kind}")
        out = np.zeros(c.dim)
        out[c.arrays["index"].astype(np.int64)] = c.arrays["value"]
        return out


@dataclass
class ErrorFeedback:
    """Error-feedback memory of one client around a compressor.

    ``step(prg, x)`` compresses ``x + residual``, keeps the new residual (what
    was lost) and returns the compressed message and its decompression.
    ``clip``: the L2 bound the sent vector must keep (what is clipped off stays
    in the residual); ``delivered=False``: the client dropped out before its
    message arrived, so all of ``x + residual`` stays for the next round.
    """

    compressor: Compressor
    residual: np.ndarray | None = field(default=None)

    def step(self, prg: PRG, x: np.ndarray, *, clip: float | None = None,
             delivered: bool = True) -> tuple[Compressed, np.ndarray]:
        v = _vector(x)
        if self.residual is not None and self.residual.shape != v.shape:
            raise ParameterError("update length changed between rounds")
        target = v if self.residual is None else v + self.residual
        sent = target
        if clip is not None:
            norm = float(np.linalg.norm(target))
            sent = target * (clip / norm) if norm > clip else target
        c = self.compressor.compress(prg, sent)
        approx = self.compressor.decompress(c)
        if clip is not None:   # rounding may pass the bound by one unit in the last place
            approx = np.clip(approx, -clip, clip)
        self.residual = target - approx if delivered else target
        return c, approx


def bytes_saved(messages: list[Compressed]) -> tuple[int, int]:
    """(compressed bytes, dense float64 bytes) over a list of messages."""
    return sum(m.nbytes for m in messages), sum(m.dense_bytes for m in messages)
