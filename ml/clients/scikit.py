"""The client adapter of scikit-learn classifiers (layer: ml; scikit-learn imported only when used).

:class:`SklearnClient` puts a scikit-learn classifier and its data behind the
client interface of :mod:`.base`. Two ways of training locally:

* estimators with ``partial_fit`` (``SGDClassifier``, ``MLPClassifier``, ...):
  ``fit`` runs ``local_epochs`` passes of ``partial_fit`` over mini-batches of
  ``batch_size`` in an order drawn from ``config["seed"]``;
* ``LogisticRegression(warm_start=True)`` (and other ``warm_start``
  estimators): ``fit`` calls the estimator's ``fit`` ``local_epochs`` times,
  each starting from the current weights.

Weights are ``[coef_, intercept_]`` for linear models and ``[W_1, b_1, W_2,
b_2, ...]`` (``coefs_`` and ``intercepts_`` interleaved, the layout of
:class:`ml.models.MLP`) for ``MLPClassifier``. The estimator keeps its own
learning-rate settings (``eta0``, ``learning_rate_init``, ``max_iter``): the
config's ``lr`` is not applied, and FedProx (``mu > 0``) is refused.

An unfitted estimator is given its weights without seeing any data: one
``partial_fit`` (or ``fit``) on a zero row per class allocates them, then they
are overwritten (linear models: zeros; MLP: Glorot-uniform from ``seed``,
biases zero) and the MLP's optimizer state is dropped, so the server's
evaluator, built on the held-out set, starts from weights that owe nothing to it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mpc.errors import ParameterError
from mpc.optional import require
from mpc.rand import PRG, derive_seed, random_seed

from ..models import _uniform
from .base import Config, Dataset, Weights, set_into
from .numpy_model import permutation


class SklearnClient:
    """A scikit-learn classifier and one data set behind the client interface.

    Parameters
    ----------
    estimator:
        A classifier with ``partial_fit``, or with ``warm_start=True``.
    data:
        The client's (X, y).
    classes:
        Every label of the task (a client's data may lack some); default: the
        labels present in ``data``.
    seed:
        Seed of the initial MLP weights (every client and the server built with
        the same seed start alike; the run starts from the server's anyway).
    """

    def __init__(self, estimator: Any, data: Dataset, classes: Sequence[Any] | None = None,
                 seed: int = 0) -> None:
        require("sklearn", "sklearn", "SklearnClient")
        X, y = np.asarray(data[0], dtype=np.float64), np.asarray(data[1])
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ParameterError(f"SklearnClient needs X of shape (n, d) and y of shape (n,), "
                                 f"got {X.shape} and {y.shape}")
        self.estimator, self.data, self.n_examples = estimator, (X, y), int(X.shape[0])
        self.classes = np.unique(y) if classes is None else np.unique(np.asarray(classes))
        if self.classes.size < 2:
            raise ParameterError("SklearnClient needs at least two classes (give classes=)")
        self.incremental = hasattr(estimator, "partial_fit")
        if not self.incremental and not getattr(estimator, "warm_start", False):
            raise ParameterError(f"{type(estimator).__name__} has neither partial_fit nor "
                                 "warm_start=True: local training would restart from scratch")
        if getattr(estimator, "average", False):
            raise ParameterError("SGDClassifier(average=...) keeps hidden averaged weights that "
                                 "set_weights cannot reach; use average=False")
        self.seed = seed
        if not self._allocated():
            self._allocate()

    # -- the estimator's weight arrays -----------------------------------------------------
    def _allocated(self) -> bool:
        est = self.estimator
        return hasattr(est, "coefs_") or getattr(est, "coef_", None) is not None

    def _arrays(self) -> list[np.ndarray]:
        est = self.estimator
        if hasattr(est, "coefs_"):
            return [a for pair in zip(est.coefs_, est.intercepts_) for a in pair]
        if np.ndim(est.intercept_) == 0:
            raise ParameterError(f"{type(est).__name__} has no intercept array (fit_intercept=False "
                                 "is not supported)")
        return [est.coef_, est.intercept_]

    def _allocate(self) -> None:
        est, k = self.estimator, self.classes.size
        zeros = np.zeros((k, self.data[0].shape[1]))
        if self.incremental:
            est.partial_fit(zeros, self.classes, classes=self.classes)
        else:
            est.fit(zeros, self.classes)
        if hasattr(est, "coefs_"):
            prg = PRG(derive_seed(b"concilium.ml.clients", "sklearn-init", int(self.seed) % (1 << 64)))
            for W, b in zip(est.coefs_, est.intercepts_):
                W[...] = _uniform(prg, W.shape, np.sqrt(6.0 / (W.shape[0] + W.shape[1])))  # Glorot
                b[...] = 0.0
            if hasattr(est, "_optimizer"):
                del est._optimizer  # the zero rows' step must not steer the first real one
        else:
            for a in self._arrays():
                a[...] = 0.0
        if hasattr(est, "t_") and not hasattr(est, "coefs_"):
            est.t_ = 1.0  # SGDClassifier's learning-rate schedule starts afresh

    # -- the client interface --------------------------------------------------------------
    def get_weights(self) -> Weights:
        return [np.array(a, dtype=np.float64) for a in self._arrays()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        set_into(self._arrays(), weights, f"SklearnClient({type(self.estimator).__name__})")

    def fit(self, config: Config) -> tuple[Weights, int, dict[str, float]]:
        if float(config.get("mu", 0.0)) > 0:
            raise ParameterError("SklearnClient has no FedProx proximal term: use mu = 0")
        X, y = self.data
        epochs, batch = int(config.get("local_epochs", 1)), int(config.get("batch_size", 32))
        prg = PRG(config.get("seed") or random_seed())
        for _ in range(epochs):
            if not self.incremental:
                self.estimator.fit(X, y)
                continue
            order = permutation(prg, self.n_examples)
            for start in range(0, self.n_examples, batch):
                b = order[start: start + batch]
                self.estimator.partial_fit(X[b], y[b], classes=self.classes)
        return self.get_weights(), self.n_examples, {}

    def evaluate(self, config: Config) -> tuple[float, int, dict[str, float]]:
        """Mean cross-entropy (NaN without ``predict_proba``) and accuracy on the client's data."""
        X, y = self.data
        accuracy = float(np.mean(self.estimator.predict(X) == y))
        loss = float("nan")
        if hasattr(self.estimator, "predict_proba"):
            proba = self.estimator.predict_proba(X)
            cols = np.searchsorted(self.estimator.classes_, y)
            loss = float(-np.mean(np.log(np.clip(proba[np.arange(y.size), cols], 1e-15, 1.0))))
        return loss, self.n_examples, {"accuracy": accuracy}


__all__ = ["SklearnClient"]
