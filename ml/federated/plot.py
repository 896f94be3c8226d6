"""Plots of federated runs; matplotlib is imported only when a plot is drawn (layer: ml)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mpc.optional import require

if TYPE_CHECKING:
    from .history import History


def x_axis(histories: Sequence["History"]) -> tuple[str, list[list[float]]]:
    """The x label and values of each run: simulated seconds if every round has them, else rounds."""
    timed = all(r.sim_seconds is not None for h in histories for r in h.rounds)
    return ("simulated seconds" if timed else "round",
            [[float(r.sim_seconds if timed else r.round) for r in h.rounds]  # type: ignore[arg-type]
             for h in histories])


def plot_histories(histories: Sequence["History"], path: str | Path,
                   title: str | None = None) -> Path:
    """Accuracy and loss of ``histories`` (the first drawn solid) as a PNG: against simulated
    seconds when every round of every run has them (:mod:`.fedbuff`), else against rounds."""
    matplotlib = require("matplotlib", "plot", "History.plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    xlabel, axes = x_axis(histories)
    for i, h in enumerate(histories):
        xs = axes[i]
        acc = [100 * r.accuracy for r in h.rounds]
        loss = [r.loss for r in h.rounds]
        if h.initial is not None:  # round 0: the initial model
            xs, loss, acc = [0.0, *xs], [h.initial[0], *loss], [100 * h.initial[1], *acc]
        style = dict(marker="o." [i % 2], linestyle="-" if i == 0 else "--",
                     markersize=5 if i == 0 else 3, label=h.config.get("label", h.aggregator))
        ax1.plot(xs, acc, **style)
        ax2.plot(xs, loss, **style)
    ax1.set(xlabel=xlabel, ylabel="held-out accuracy (%)", title="accuracy")
    ax2.set(xlabel=xlabel, ylabel="held-out cross-entropy", title="loss")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


__all__ = ["plot_histories", "x_axis"]
