"""The client adapter of the built-in numpy models, and their local SGD (layer: ml).

:class:`NumpyClient` wraps a :class:`ml.models.Model` and its data; ``fit`` runs
:func:`local_train`: ``local_epochs`` epochs of mini-batch SGD in an order drawn
from ``config["seed"]`` (FedProx with ``mu > 0``). This is the client that
:func:`ml.federated.train` builds for every data partition when it is given a
built-in model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mpc.errors import ParameterError
from mpc.rand import PRG, random_seed

from ..models import Model
from .base import Config, Dataset, Weights, flatten, unflatten


def permutation(prg: PRG, n: int) -> np.ndarray:
    """A uniform permutation of ``range(n)`` drawn from ``prg``."""
    return np.argsort(prg.uint64(n), kind="stable")


def local_train(model: Model, data: Dataset, epochs: int, batch_size: int, lr: float,
                prg: PRG, mu: float = 0.0) -> Model:
    """Client side: ``epochs`` of mini-batch SGD from ``model`` (copied); FedProx if mu > 0."""
    X, y = data
    local = model.copy()
    center = model.params if mu > 0 else None
    n = X.shape[0]
    for _ in range(epochs):
        order = permutation(prg, n)
        for start in range(0, n, batch_size):
            b = order[start: start + batch_size]
            local.step(X[b], y[b], lr, prox_center=center, mu=mu)
    return local


class NumpyClient:
    """A built-in model and one data set behind the client interface.

    ``fit`` reads ``local_epochs`` (1), ``batch_size`` (32), ``lr`` (0.1), ``mu``
    (0.0) and ``seed`` (fresh OS randomness if absent) from ``config``;
    ``evaluate`` returns the mean cross-entropy and ``{"accuracy": ...}``.
    """

    def __init__(self, model: Model, data: Dataset) -> None:
        X, y = data
        if np.shape(X)[0] != np.shape(y)[0]:
            raise ParameterError(f"X has {np.shape(X)[0]} rows but y has {np.shape(y)[0]} labels")
        self.model, self.data = model, (X, y)
        self.n_examples = int(np.shape(X)[0])

    def get_weights(self) -> Weights:
        return unflatten(self.model.params, self.model.layer_shapes())

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        shapes = self.model.layer_shapes()
        if [tuple(np.shape(w)) for w in weights] != shapes:
            raise ParameterError(f"weights of shapes {[np.shape(w) for w in weights]} do not fit "
                                 f"this model's layers {shapes}")
        self.model.set_params(flatten(weights))

    def fit(self, config: Config) -> tuple[Weights, int, dict[str, float]]:
        seed = config.get("seed") or random_seed()
        local = local_train(self.model, self.data, int(config.get("local_epochs", 1)),
                            int(config.get("batch_size", 32)), float(config.get("lr", 0.1)),
                            PRG(seed), float(config.get("mu", 0.0)))
        self.model.params = local.params  # a fresh array of the model's own training
        return self.get_weights(), self.n_examples, {}

    def evaluate(self, config: Config) -> tuple[float, int, dict[str, float]]:
        loss, acc = self.model.evaluate(*self.data)
        return loss, self.n_examples, {"accuracy": acc}


__all__ = ["NumpyClient", "local_train", "permutation"]
