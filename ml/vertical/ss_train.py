"""Vertical logistic regression trained on additive secret shares (layer: ml)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

import mpc
from mpc.errors import ParameterError
from mpc.sharing.tensor import SharedTensor, concatenate

from .common import VerticalModel, _check_training, _standardize

if TYPE_CHECKING:
    from mpc.party import Party


def fit_ss(party: Party, X: Any, y: Any = None, *, label_party: int = 0, iterations: int = 300,
           lr: float = 1.0, l2: float | None = None, standardize: bool = True,
           activation: str = "piecewise") -> VerticalModel:
    """Train on additive secret shares; every party calls it with its aligned columns.

    Parameters
    ----------
    X:
        This party's columns for the aligned rows (``n x d_p``), same row order
        at every party (as :func:`align` returns).
    y:
        The 0/1 labels at the label party; None elsewhere.
    iterations, lr, l2:
        Full-batch gradient descent on the mean cross-entropy plus
        ``l2/2 ||w||^2`` (default ``l2 = 1/n``, scikit-learn's ``C = 1``).
    activation:
        ``"piecewise"`` (SecureML's ``clip(z/4 + 1/2, 0, 1)``, one batched
        comparison) or ``"sigmoid"`` (:func:`mpc.sharing.approx.sigmoid`,
        error < 5e-5, about 40 rounds).

    Protocol (``[v]`` is a secret-shared value)
    -------------------------------------------
    1. Each party shares its standardised block; the label party shares ``y``;
       ``[X] = [X_0 | X_1 | ...]``; ``[w] = 0``, ``[b] = 0``.
    2. Per iteration: ``[z] = [X][w] + [b]`` (Beaver matmul);
       ``[s] = clip([z]/4 + 1/2, 0, 1)`` (two secure comparisons);
       ``[r] = [s] - [y]``; ``[w] -= lr/n [X]^T [r] + lr l2 [w]``;
       ``[b] -= lr/n sum [r]``.
    3. Party ``p`` opens its own block of ``[w]``; the label party opens ``[b]``.

    Cost per iteration, for ``n`` rows, ``d`` columns in all, 2 parties: 16
    rounds; about ``8 (2 n d + 3 d + 12 n)`` bytes to the peer plus the
    comparisons (~``94 n``), i.e. ``~16 n d`` bytes. The trusted dealer sends
    the triples (see :mod:`mpc.sharing`).
    """
    X, y = _check_training(party, X, y, label_party, iterations, lr)
    if activation not in ("piecewise", "sigmoid"):
        raise ParameterError(f"activation must be 'piecewise' or 'sigmoid', not {activation!r}")
    X, mean, scale = _standardize(X, standardize)
    with party.scope(party.fresh("vertical-ss")), party.phase("vertical/train-ss"):
        # Public bounds: a standardised column (population std) has |z| <= sqrt(n - 1); raw
        # columns get the session's input bound; labels are 0/1.
        x_bound = math.sqrt(len(X)) if standardize else None
        blocks = [mpc.share(party, X if party.id == p else None, p, bound=x_bound) for p in range(party.n)]
        n = blocks[0].shape[0]
        if any(b.shape[0] != n for b in blocks) or n == 0:
            raise ParameterError(f"party {party.id}: the parties' row counts differ or are zero: "
                                 f"{[b.shape[0] for b in blocks]} (align the rows first)")
        widths = [b.shape[1] for b in blocks]
        shared_x = concatenate(blocks, axis=1)
        shared_y = mpc.share(party, y.reshape(-1, 1) if y is not None else None, label_party, bound=1.0)
        l2 = 1.0 / n if l2 is None else float(l2)
        frac = party.fixed.frac_bits
        w = SharedTensor(party, np.zeros((sum(widths), 1), np.uint64), frac, 0.0)
        b = SharedTensor(party, np.zeros((1, 1), np.uint64), frac, 0.0)
        step, decay = lr / n, 1.0 - lr * l2
        for _ in range(iterations):
            z = shared_x @ w + b
            s = (z * 0.25 + 0.5).clip(0.0, 1.0) if activation == "piecewise" else z.sigmoid()
            r = (s - shared_y).assume_bound(s.bound)     # s in [0, 1] and y in {0, 1}
            w = w * decay - (shared_x.T @ r) * step
            b = b - r.sum(axis=0, keepdims=True) * step
        offsets = np.concatenate([[0], np.cumsum(widths)])
        opened = [w[int(offsets[p]):int(offsets[p + 1])].reveal(to=p) for p in range(party.n)]
        intercept = b.reveal(to=label_party)
    mine = opened[party.id]
    assert mine is not None  # reveal(to=p) opens party p's block to party p
    return VerticalModel(weights=mine.ravel(), mean=mean, scale=scale, method="ss",
                         intercept=float(intercept[0, 0]) if intercept is not None else 0.0,
                         label_party=label_party)
