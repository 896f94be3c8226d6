"""Plots of federated runs; matplotlib is imported only when a plot is drawn (layer: ml)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mpc.optional import require

if TYPE_CHECKING:
    from .history import History


def plot_histories(histories: Sequence["History"], path: str | Path,
                   title: str | None = None) -> Path:
    """Accuracy and loss against rounds of ``histories`` (the first drawn solid) as a PNG."""
    matplotlib = require("matplotlib", "plot", "History.plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for i, h in enumerate(histories):
        xs = [r.round for r in h.rounds]
        acc = [100 * r.accuracy for r in h.rounds]
        loss = [r.loss for r in h.rounds]
        if h.initial is not None:  # round 0: the initial model
            xs, loss, acc = [0, *xs], [h.initial[0], *loss], [100 * h.initial[1], *acc]
        style = dict(marker="o." [i % 2], linestyle="-" if i == 0 else "--",
                     markersize=5 if i == 0 else 3, label=h.config.get("label", h.aggregator))
        ax1.plot(xs, acc, **style)
        ax2.plot(xs, loss, **style)
    ax1.set(xlabel="round", ylabel="held-out accuracy (%)", title="accuracy")
    ax2.set(xlabel="round", ylabel="held-out cross-entropy", title="loss")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


__all__ = ["plot_histories"]
