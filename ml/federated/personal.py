"""Personalized federated learning: FedPer (shared body, local head) and Ditto (layer: ml).

Both run inside :func:`ml.federated.train` (any aggregator, secure or not) as
clients wrapping a built-in numpy model; each client also holds a local test
set, and :func:`personal_accuracy` scores every client's *personal* model on
it (mean and worst client, the numbers personalization is judged by).

* :class:`FedPerClient` (Arivazhagan et al. 2019): the last ``head_layers``
  weight arrays (default 2: the output layer's W and b) never leave the client.
  It trains the whole model locally from the global body and its own head,
  keeps the trained head, and uploads the body's update with a zero update in
  the head's place (the aggregator's vector keeps its length; the global head
  stays at its initial value and means nothing). Its personal model is the
  global body with its own head.
* :class:`DittoClient` (Li, Hu, Beirami, Smith 2021): uploads exactly FedAvg's
  update (so the global trajectory is FedAvg's, bit for bit), and besides
  trains its personal model ``v_k`` by the same number of SGD epochs on
  ``F_k(v) + lam/2 ||v - w_global||^2``, ``w_global`` the model it received.
  ``lam = 0`` is local training alone; large ``lam`` pulls ``v_k`` to the global
  model. A client never sampled has no personal model yet and is scored with
  the global one.

Security
--------
The uploads are those of FedAvg (Ditto) or FedAvg's with the head zeroed
(FedPer), through the same aggregator: the server learns nothing more. The
personal parts (a head, ``v_k``) never leave their client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed, random_seed

from ..clients.base import Config, Dataset, Weights, flatten
from ..clients.numpy_model import NumpyClient, permutation
from ..models import Model


class PersonalClient(NumpyClient):
    """A numpy client with a local test set and a personal model (see the subclasses)."""

    def __init__(self, model: Model, data: Dataset, test: Dataset) -> None:
        super().__init__(model, data)
        self.test = test

    def personal_model(self, global_weights: Sequence[np.ndarray]) -> Model:
        """The model this client would use, given the final global weights."""
        raise NotImplementedError

    def personal_evaluate(self, global_weights: Sequence[np.ndarray]) -> tuple[float, float]:
        """(loss, accuracy) of the personal model on this client's test set."""
        return self.personal_model(global_weights).evaluate(*self.test)


class FedPerClient(PersonalClient):
    """Shared body, local head: the last ``head_layers`` weight arrays stay here (FedPer)."""

    def __init__(self, model: Model, data: Dataset, test: Dataset, head_layers: int = 2) -> None:
        super().__init__(model, data, test)
        if not 1 <= head_layers < len(model.layer_shapes()):
            raise ParameterError(f"head_layers must leave a shared body: in [1, "
                                 f"{len(model.layer_shapes()) - 1}] for this model, got {head_layers}")
        self.h = head_layers
        self.head: Weights | None = None         # own head, from the first global model it sees
        self._global_head: Weights = []

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        weights = [np.asarray(w, dtype=np.float64) for w in weights]
        self._global_head = [w.copy() for w in weights[-self.h:]]
        if self.head is None:
            self.head = [w.copy() for w in weights[-self.h:]]
        super().set_weights(weights[:-self.h] + self.head)

    def fit(self, config: Config) -> tuple[Weights, int, dict[str, float]]:
        fitted, n, metrics = super().fit(config)
        self.head = [w.copy() for w in fitted[-self.h:]]
        return fitted[:-self.h] + self._global_head, n, metrics   # the head's update is zero

    def personal_model(self, global_weights: Sequence[np.ndarray]) -> Model:
        head = self.head if self.head is not None else list(global_weights[-self.h:])
        m = self.model.copy()
        m.set_params(flatten(list(global_weights[:-self.h]) + list(head)))
        return m


class DittoClient(PersonalClient):
    """FedAvg's upload plus a personal model regularized toward the global one (Ditto)."""

    def __init__(self, model: Model, data: Dataset, test: Dataset, lam: float = 0.1) -> None:
        super().__init__(model, data, test)
        if not lam >= 0:
            raise ParameterError(f"Ditto's lam must be >= 0, got {lam}")
        self.lam = lam
        self.personal: np.ndarray | None = None

    def fit(self, config: Config) -> tuple[Weights, int, dict[str, float]]:
        w_global = self.model.params.copy()
        v = self.model.copy()
        v.set_params(w_global if self.personal is None else self.personal)
        seed = derive_seed(config.get("seed") or random_seed(), "ditto")
        prg, (X, y) = PRG(seed), self.data
        bs, lr = int(config.get("batch_size", 32)), float(config.get("lr", 0.1))
        for _ in range(int(config.get("local_epochs", 1))):
            order = permutation(prg, X.shape[0])
            for start in range(0, X.shape[0], bs):
                b = order[start: start + bs]
                # grad F_k(v) + lam (v - w_global)   [Li et al. 2021, Algorithm 1, line 7]
                v.step(X[b], y[b], lr, prox_center=w_global if self.lam > 0 else None, mu=self.lam)
        self.personal = v.params.copy()
        return super().fit(config)                 # the global model's update, as FedAvg's

    def personal_model(self, global_weights: Sequence[np.ndarray]) -> Model:
        m = self.model.copy()
        m.set_params(self.personal if self.personal is not None else flatten(global_weights))
        return m


@dataclass
class PersonalMetrics:
    """Per-client test accuracy of the personal models, with their mean and the worst client's."""

    accuracy: list[float]
    loss: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def worst(self) -> float:
        return float(np.min(self.accuracy))


def personal_accuracy(clients: Sequence[PersonalClient], global_weights: Sequence[np.ndarray]
                      ) -> PersonalMetrics:
    """Score every client's personal model on its own test set."""
    scores = [c.personal_evaluate(global_weights) for c in clients]
    return PersonalMetrics([a for _, a in scores], [lo for lo, _ in scores])


def global_accuracy(model: Model, tests: Sequence[Dataset], global_weights: Sequence[np.ndarray]
                    ) -> PersonalMetrics:
    """The same metrics for one global model on every client's test set (the FedAvg baseline)."""
    m = model.copy()
    m.set_params(flatten(list(global_weights)))
    scores = [m.evaluate(*t) for t in tests]
    return PersonalMetrics([a for _, a in scores], [lo for lo, _ in scores])


def split_local(data: Sequence[Dataset], test_fraction: float, seed: int = 0
                ) -> tuple[list[Dataset], list[Dataset]]:
    """Each client's data split into its own train and test sets (same label mix in expectation)."""
    if not 0 < test_fraction < 1:
        raise ParameterError(f"test_fraction must be in (0, 1), got {test_fraction}")
    trains, tests = [], []
    for k, (X, y) in enumerate(data):
        order = permutation(PRG(derive_seed(b"concilium.ml.federated.personal", "split", seed * 1_000_003 + k)),
                            len(y))
        cut = max(1, int(round(len(y) * test_fraction)))
        if cut >= len(y):
            raise ParameterError(f"client {k} has {len(y)} examples: too few to keep a local test set")
        tests.append((X[order[:cut]], y[order[:cut]]))
        trains.append((X[order[cut:]], y[order[cut:]]))
    return trains, tests


__all__ = ["DittoClient", "FedPerClient", "PersonalClient", "PersonalMetrics", "global_accuracy",
           "personal_accuracy", "split_local"]
