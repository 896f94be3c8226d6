"""The record of a federated run: per-round metrics, JSON in and out (layer: ml)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..aggregators import AggregationResult


@dataclass
class RoundMetrics:
    """What one round produced.

    ``seconds`` is the whole round (local training included); ``server_seconds``
    the server's part of the aggregation and ``client_seconds`` one client's
    (mean); ``bytes_per_client`` what one client sent and received.
    ``epsilon`` is the privacy spent so far with the amplification by client
    sampling, ``epsilon_unamplified`` without it (the bound that holds against
    the server, which draws the sample).
    """

    round: int
    loss: float
    accuracy: float
    sampled: int
    survivors: int
    bytes_per_client: float
    seconds: float
    server_seconds: float
    client_seconds: float = 0.0
    epsilon: float | None = None
    skipped: bool = False
    note: str = ""
    upload_bytes: int | None = None
    dense_bytes: int | None = None
    epsilon_unamplified: float | None = None
    sim_seconds: float | None = None
    """Simulated time at the end of the round (asynchronous runs, :mod:`.fedbuff`)."""
    staleness: list[int] | None = None
    """Per buffer slot: server steps since that upload's client took the model (:mod:`.fedbuff`)."""
    buffer_clients: list[int] | None = None
    """Per buffer slot: which client sent it (:mod:`.fedbuff`)."""


@dataclass
class History:
    """Per-round metrics of a run; saves to JSON and plots to PNG."""

    aggregator: str
    config: dict[str, Any]
    rounds: list[RoundMetrics] = field(default_factory=list)
    initial: tuple[float, float] | None = None
    last_result: AggregationResult | None = field(default=None, repr=False, compare=False)
    """The last round's aggregation (with the server's transcript); not saved to JSON."""
    weights: list[np.ndarray] | None = field(default=None, repr=False, compare=False)
    """The final global weights, layer by layer (as ``get_weights`` gives them); not saved to JSON."""
    memory: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    """Peak resident memory in MB: this process (``driver_mb``), the largest Ray actor (``worker_mb``)."""

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy if self.rounds else float("nan")

    @property
    def accuracy(self) -> list[float]:
        return [r.accuracy for r in self.rounds]

    def to_dict(self) -> dict[str, Any]:
        return {"aggregator": self.aggregator, "config": self.config,
                "initial": list(self.initial) if self.initial else None, "rounds": [asdict(r) for r in self.rounds]}

    def save_json(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2))
        return p

    @classmethod
    def load_json(cls, path: str | Path) -> "History":
        d = json.loads(Path(path).read_text())
        init = tuple(d["initial"]) if d.get("initial") else None
        return cls(d["aggregator"], d["config"], [RoundMetrics(**r) for r in d["rounds"]],
                   init)  # type: ignore[arg-type]

    def plot(self, path: str | Path, others: Sequence["History"] = (),
             title: str | None = None) -> Path:
        """Accuracy and loss against rounds (this run and ``others``) as a PNG.

        Needs matplotlib (``pip install 'concilium[plot]'``), imported only here.
        """
        from .plot import plot_histories

        return plot_histories([self, *others], path, title)


__all__ = ["History", "RoundMetrics"]
