"""What every vertical trainer shares: the model, input checks, standardisation (layer: ml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mpc.errors import ParameterError

if TYPE_CHECKING:
    from mpc.party import Party

_ACTIVATIONS = ("piecewise", "taylor")     # the activations of fit_paillier and fit_plain_minibatch


@dataclass
class VerticalModel:
    """One party's part of a vertical model: its weight block and its own standardisation.

    ``intercept`` is non-zero only at the label party.
    """

    weights: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    method: str
    label_party: int

    def partial_logits(self, X: np.ndarray) -> np.ndarray:
        """This party's share of the logits, ``standardise(X) @ w (+ b)``, in the clear."""
        X = _check_X(X, len(self.weights))
        return (X - self.mean) / self.scale @ self.weights + self.intercept


def sigmoid_piecewise(z: np.ndarray) -> np.ndarray:
    """SecureML's sigmoid: ``clip(z/4 + 1/2, 0, 1)``, the tangent at 0 cut at 0 and 1."""
    return np.clip(np.asarray(z, dtype=np.float64) / 4 + 0.5, 0.0, 1.0)


def _check_X(X: Any, d: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ParameterError(f"features must be a 2-D array (rows x columns), got shape {X.shape}")
    if d is not None and X.shape[1] != d:
        raise ParameterError(f"expected {d} feature columns, got {X.shape[1]}")
    if not np.all(np.isfinite(X)):
        raise ParameterError("features must be finite")
    return X


def _check_y(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ParameterError(f"labels must be a 1-D array of {n} entries, got shape {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ParameterError("labels must be 0 or 1")
    return y.astype(np.float64)


def _standardize(X: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not standardize:
        return X, np.zeros(X.shape[1]), np.ones(X.shape[1])
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[(np.ptp(X, axis=0) == 0) | (scale == 0)] = 1.0   # constant columns: std is rounding noise
    return (X - mean) / scale, mean, scale


def _check_training(party: Party, X: Any, y: Any, label_party: int, iterations: int,
                    lr: float, what: str = "iterations") -> tuple[np.ndarray, np.ndarray | None]:
    if not 0 <= label_party < party.n:
        raise ParameterError(f"label_party {label_party!r} is not a party (0..{party.n - 1})")
    if not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ParameterError(f"{what} must be a non-negative integer, got {iterations!r}")
    if not lr > 0:
        raise ParameterError(f"the learning rate must be positive, got {lr!r}")
    X = _check_X(X)
    if len(X) == 0:
        raise ParameterError(f"party {party.id}: no rows to train on (is the aligned ID set empty?)")
    if party.id == label_party:
        if y is None:
            raise ParameterError(f"party {party.id} is the label party but passed no labels")
        return X, _check_y(y, len(X))
    if y is not None:
        raise ParameterError(f"party {party.id} is not the label party ({label_party}): pass y=None")
    return X, None
