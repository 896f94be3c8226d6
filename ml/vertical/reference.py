"""The vertical trainers' algorithms in the clear on all columns: references for tests and benchmarks (layer: ml)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mpc.errors import ParameterError

from .common import _ACTIVATIONS, _check_X, _check_y, _standardize, sigmoid_piecewise


def fit_plain(blocks: Sequence[np.ndarray], y: np.ndarray, *, iterations: int = 300, lr: float = 1.0,
              l2: float | None = None, standardize: bool = True,
              activation: str = "piecewise") -> tuple[np.ndarray, float]:
    """The same training in the clear on all columns (a reference): returns (w, b).

    ``w`` is over the standardised columns of ``blocks`` concatenated.
    """
    X = np.concatenate([_standardize(_check_X(b), standardize)[0] for b in blocks], axis=1)
    y = _check_y(y, len(X))
    n = len(X)
    l2 = 1.0 / n if l2 is None else float(l2)
    if activation not in ("piecewise", "sigmoid"):
        raise ParameterError(f"activation must be 'piecewise' or 'sigmoid', not {activation!r}")
    act = sigmoid_piecewise if activation == "piecewise" else (lambda z: 1 / (1 + np.exp(-z)))
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(iterations):
        r = act(X @ w + b) - y
        w = w * (1.0 - lr * l2) - lr / n * (X.T @ r)
        b -= lr / n * r.sum()
    return w, b



def fit_plain_minibatch(blocks: Sequence[np.ndarray], y: np.ndarray, *, epochs: int = 20,
                        batch_size: int = 64, lr: float | None = None, l2: float | None = None,
                        standardize: bool = True, activation: str = "piecewise") -> tuple[np.ndarray, float]:
    """:func:`fit_paillier`'s algorithm in the clear (mini-batches, same defaults): (w, b)."""
    if activation not in _ACTIVATIONS:
        raise ParameterError(f"activation must be one of {_ACTIVATIONS}, not {activation!r}")
    lr = (1.0 if activation == "piecewise" else 0.5) if lr is None else lr
    X = np.concatenate([_standardize(_check_X(b), standardize)[0] for b in blocks], axis=1)
    y = _check_y(y, len(X))
    n = len(X)
    l2 = 1.0 / n if l2 is None else float(l2)
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(epochs):
        for start in range(0, n, batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            u = (xb @ w + b) / 4 + 0.5
            r = (np.clip(u, 0.0, 1.0) if activation == "piecewise" else u) - yb
            w = w - lr * (xb.T @ r / len(xb) + l2 * w)
            b -= lr * r.mean()
    return w, b
