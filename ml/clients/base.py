"""The client interface of federated training, in numpy terms (layer: ml).

A federated client is anything with four methods over lists of numpy arrays,
like Flower's ``NumPyClient``, so that any framework plugs in without
Concilium depending on it:

* ``get_weights() -> list[np.ndarray]`` -- the model's weights, layer by layer;
* ``set_weights(weights)`` -- replace them (the global model, every round);
* ``fit(config) -> (weights, n_examples, metrics)`` -- train locally from the
  weights last set, return the new weights, the number of examples trained on
  (the client's FedAvg weight) and a dict of floats;
* ``evaluate(config) -> (loss, n_examples, metrics)`` -- on the client's own
  data; ``metrics["accuracy"]`` is what :class:`ml.federated.History` records.

``config`` is a dict of plain values. :func:`ml.federated.train` passes
``round``, ``local_epochs``, ``batch_size``, ``lr``, ``mu`` (FedProx) and
``seed`` (16 bytes from :mod:`mpc.rand`, distinct per client and round, for the
batch order); an adapter reads what applies to it. Adapters: :mod:`.numpy_model`
(the built-in models), :mod:`.scikit` (scikit-learn), :mod:`.pytorch` (PyTorch).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from mpc.errors import ParameterError

Weights = list[np.ndarray]
Config = dict[str, Any]
Dataset = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class Client(Protocol):
    """What :func:`ml.federated.train` drives; see the module docstring."""

    def get_weights(self) -> Weights: ...

    def set_weights(self, weights: Sequence[np.ndarray]) -> None: ...

    def fit(self, config: Config) -> tuple[Weights, int, dict[str, float]]: ...

    def evaluate(self, config: Config) -> tuple[float, int, dict[str, float]]: ...


ClientFactory = Callable[[Dataset], Client]
"""Builds a client around one data set: a partition's, or the server's held-out set."""


def flatten(weights: Sequence[np.ndarray]) -> np.ndarray:
    """One float64 vector of all the weights, in order (what the aggregators sum)."""
    if not weights:
        return np.zeros(0)
    return np.concatenate([np.asarray(w, dtype=np.float64).reshape(-1) for w in weights])


def unflatten(vector: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> Weights:
    """The inverse of :func:`flatten` for weights of these shapes (float64 copies)."""
    out, pos = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(np.array(vector[pos: pos + size], dtype=np.float64).reshape(shape))
        pos += size
    if pos != vector.size:
        raise ParameterError(f"{vector.size} values do not fill weights of shapes {list(shapes)}")
    return out


def check_weights(weights: Sequence[np.ndarray], shapes: Sequence[tuple[int, ...]],
                  who: str) -> None:
    """Refuse weights whose layout differs from the global model's, naming ``who`` sent them."""
    got = [tuple(np.shape(w)) for w in weights]
    if got != [tuple(s) for s in shapes]:
        raise ParameterError(f"{who} returned weights of shapes {got}, expected {list(shapes)}")
    for i, w in enumerate(weights):
        if not np.all(np.isfinite(w)):
            raise ParameterError(f"{who} returned non-finite weights in array {i}")


def set_into(arrays: Sequence[np.ndarray], weights: Sequence[np.ndarray], who: str) -> None:
    """Write ``weights`` into existing ``arrays`` in place, casting to their dtype.

    In place because frameworks keep aliases of their parameter arrays
    (scikit-learn's SGD keeps ``_standard_coef``, optimizers keep references).
    """
    if len(arrays) != len(weights):
        raise ParameterError(f"{who}: expected {len(arrays)} weight arrays, got {len(weights)}")
    for i, (a, w) in enumerate(zip(arrays, weights)):
        w = np.asarray(w)
        if w.shape != a.shape:
            raise ParameterError(f"{who}: weight array {i} has shape {w.shape}, expected {a.shape}")
        a[...] = w


__all__ = ["Client", "ClientFactory", "Config", "Dataset", "Weights", "check_weights", "flatten",
           "set_into", "unflatten"]
