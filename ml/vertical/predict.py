"""Prediction with a vertical model: partial logits summed on secret shares (layer: ml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

import mpc
from mpc.errors import ParameterError

from .common import VerticalModel

if TYPE_CHECKING:
    from mpc.party import Party


def predict_proba(party: Party, X: Any, model: VerticalModel) -> np.ndarray | None:
    """P(y = 1) for aligned rows ``X`` (this party's columns); the label party gets it, others None.

    Each party secret-shares its partial logits, the shares are summed and only
    the label party opens the sum (1 round to share, 1 to open; ``8 n`` bytes
    per peer each), then applies the exact sigmoid.
    """
    u = model.partial_logits(X)
    with party.scope(party.fresh("vertical-predict")), party.phase("vertical/predict"):
        # only summed and opened: any bound whose n-fold sum fits the fixed-point range
        parts = mpc.share_all(party, u, bound=party.fixed.max_abs / (2 * party.n))
        if any(p.shape != parts[0].shape for p in parts):
            raise ParameterError(f"party {party.id}: the parties predict different numbers of rows: "
                                 f"{[p.shape for p in parts]}")
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        z = total.reveal(to=model.label_party)
    if z is None:
        return None
    return 1.0 / (1.0 + np.exp(-z))
