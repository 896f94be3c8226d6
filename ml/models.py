"""Small numpy models with one interface: flat parameters, a training step, predict (layer: ml).

Every model keeps all its parameters in one flat float64 vector ``params`` (what
federated averaging adds, clips, quantizes and encrypts) and exposes:

* ``loss_and_grad(X, y, params=None) -> (loss, flat gradient)``
  (mean cross-entropy plus ``l2 / 2 * ||w||^2`` on the weights);
* ``step(X, y, lr, prox_center=None, mu=0.0)`` -- one SGD step, optionally with
  the FedProx proximal term ``mu / 2 * ||params - prox_center||^2``;
* ``predict(X)``, ``predict_proba(X)``, ``evaluate(X, y) -> (loss, accuracy)``;
* ``copy()``, ``n_params``, ``layer_shapes()`` (the arrays ``params`` concatenates).

Models: :class:`LogisticRegression` (binary), :class:`SoftmaxRegression`
(multi-class) and :class:`MLP` (one or more tanh/ReLU hidden layers, softmax
output). :func:`make_model` builds one by name. Initial weights come from
:mod:`mpc.rand` seeded by an integer (weights are not secrets, but package code
uses one randomness module).
"""

from __future__ import annotations

from typing import Sequence, overload

import numpy as np

from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed


def _init_prg(seed: int) -> PRG:
    return PRG(derive_seed(b"concilium.ml.models", "init", int(seed) % (1 << 64)))


def _uniform(prg: PRG, shape: tuple[int, ...], limit: float) -> np.ndarray:
    u = (prg.uint64(shape) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return (2.0 * u - 1.0) * limit


@overload
def _check_xy(X: np.ndarray, y: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def _check_xy(X: np.ndarray, y: None, n_features: int) -> tuple[np.ndarray, None]: ...


def _check_xy(X: np.ndarray, y: np.ndarray | None, n_features: int) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ParameterError(f"X must have shape (n, {n_features}), got {X.shape}")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ParameterError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    return X, y


def _softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -float(logp[np.arange(n), y].mean())
    g = np.exp(logp)
    g[np.arange(n), y] -= 1.0
    return loss, g / n


class Model:
    """Common interface. Subclasses define ``_loss_grad`` and ``_logits``."""

    n_features: int
    n_classes: int
    params: np.ndarray
    l2: float

    @property
    def n_params(self) -> int:
        return int(self.params.size)

    def layer_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the weight arrays that ``params`` concatenates, in order."""
        return [(self.n_params,)]

    def set_params(self, params: np.ndarray) -> None:
        p = np.asarray(params, dtype=np.float64).reshape(-1)
        if p.size != self.n_params:
            raise ParameterError(f"expected {self.n_params} parameters, got {p.size}")
        if not np.all(np.isfinite(p)):
            raise ParameterError("parameters must be finite")
        self.params = p.copy()

    def copy(self) -> "Model":
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.params = self.params.copy()
        return clone

    def _labels(self, y: np.ndarray) -> np.ndarray:
        arr = np.asarray(y)
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise ParameterError("labels must be class indices (integers), not fractions")
        if arr.dtype.kind not in "iufb":
            raise ParameterError(f"labels must be integers, got dtype {arr.dtype}")
        yi = arr.astype(np.int64)
        if yi.size and (yi.min() < 0 or yi.max() >= self.n_classes):
            raise ParameterError(f"labels must be in [0, {self.n_classes})")
        return yi

    def loss_and_grad(self, X: np.ndarray, y: np.ndarray,
                      params: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Mean loss on (X, y) and its gradient, a flat vector like ``params``."""
        X, y = _check_xy(X, y, self.n_features)
        p = self.params if params is None else np.asarray(params, dtype=np.float64)
        if X.shape[0] == 0:
            raise ParameterError("empty batch")
        return self._loss_grad(p, X, self._labels(y))

    def step(self, X: np.ndarray, y: np.ndarray, lr: float,
             prox_center: np.ndarray | None = None, mu: float = 0.0) -> float:
        """One SGD step on the batch; with ``mu > 0`` the FedProx proximal term. Returns the loss."""
        if not lr > 0 or mu < 0:
            raise ParameterError("need lr > 0 and mu >= 0")
        loss, g = self.loss_and_grad(X, y)
        if mu > 0:
            if prox_center is None:
                raise ParameterError("FedProx (mu > 0) needs the global parameters as prox_center")
            diff = self.params - prox_center
            g = g + mu * diff
            loss += 0.5 * mu * float(diff @ diff)
        self.params = self.params - lr * g
        return loss

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, n_classes)."""
        X, _ = _check_xy(X, None, self.n_features)
        z = self._logits(self.params, X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels."""
        X, _ = _check_xy(X, None, self.n_features)
        return np.argmax(self._logits(self.params, X), axis=1)

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean cross-entropy without regularisation, accuracy) on (X, y)."""
        X, y = _check_xy(X, y, self.n_features)
        yi = self._labels(y)
        logits = self._logits(self.params, X)
        loss, _ = _softmax_xent(logits, yi)
        return loss, float(np.mean(np.argmax(logits, axis=1) == yi))

    def _logits(self, p: np.ndarray, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _loss_grad(self, p: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError


class SoftmaxRegression(Model):
    """Multinomial logistic regression: logits = X W + b; params = [W (d x k), b (k)]."""

    def __init__(self, n_features: int, n_classes: int, l2: float = 0.0) -> None:
        if n_features < 1 or n_classes < 2 or l2 < 0:
            raise ParameterError("need n_features >= 1, n_classes >= 2, l2 >= 0")
        self.n_features, self.n_classes, self.l2 = n_features, n_classes, l2
        self.params = np.zeros(n_features * n_classes + n_classes)

    def layer_shapes(self) -> list[tuple[int, ...]]:
        return [(self.n_features, self.n_classes), (self.n_classes,)]

    def _split(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, k = self.n_features, self.n_classes
        return p[: d * k].reshape(d, k), p[d * k:]

    def _logits(self, p: np.ndarray, X: np.ndarray) -> np.ndarray:
        W, b = self._split(p)
        return X @ W + b

    def _loss_grad(self, p: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = self._split(p)
        loss, g = _softmax_xent(X @ W + b, y)
        gW = X.T @ g + self.l2 * W
        loss += 0.5 * self.l2 * float(np.sum(W * W))
        return loss, np.concatenate([gW.reshape(-1), g.sum(axis=0)])


class LogisticRegression(Model):
    """Binary logistic regression: P(y=1) = sigmoid(X w + b); params = [w (d), b]."""

    def __init__(self, n_features: int, l2: float = 0.0) -> None:
        if n_features < 1 or l2 < 0:
            raise ParameterError("need n_features >= 1 and l2 >= 0")
        self.n_features, self.n_classes, self.l2 = n_features, 2, l2
        self.params = np.zeros(n_features + 1)

    def layer_shapes(self) -> list[tuple[int, ...]]:
        return [(self.n_features,), (1,)]

    def _logits(self, p: np.ndarray, X: np.ndarray) -> np.ndarray:
        z = X @ p[:-1] + p[-1]
        return np.stack([np.zeros_like(z), z], axis=1)

    def _loss_grad(self, p: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        w = p[:-1]
        z = X @ w + p[-1]
        # log(1 + e^z) - y z, computed stably
        loss = float(np.mean(np.logaddexp(0.0, z) - y * z)) + 0.5 * self.l2 * float(w @ w)
        r = (0.5 * (1.0 + np.tanh(0.5 * z)) - y) / X.shape[0]
        return loss, np.concatenate([X.T @ r + self.l2 * w, [r.sum()]])


class MLP(Model):
    """Multi-layer perceptron, softmax output; params are the layers' [W, b] concatenated.

    Parameters
    ----------
    n_features, n_classes:
        Input width and number of classes.
    hidden:
        Hidden layer widths, e.g. ``(32,)``.
    activation:
        ``"relu"`` or ``"tanh"``.
    seed:
        Integer seed of the Glorot-uniform initialisation (biases start at 0).
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (32,),
                 activation: str = "tanh", l2: float = 0.0, seed: int = 0) -> None:
        if n_features < 1 or n_classes < 2 or l2 < 0 or not hidden or min(hidden) < 1:
            raise ParameterError("need n_features >= 1, n_classes >= 2, l2 >= 0, hidden widths >= 1")
        if activation not in ("relu", "tanh"):
            raise ParameterError("activation must be 'relu' or 'tanh'")
        self.n_features, self.n_classes, self.l2 = n_features, n_classes, l2
        self.activation = activation
        sizes = [n_features, *hidden, n_classes]
        self.shapes = [(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
        prg = _init_prg(seed)
        parts = []
        for fan_in, fan_out in self.shapes:
            parts.append(_uniform(prg, (fan_in * fan_out,), np.sqrt(6.0 / (fan_in + fan_out))))
            parts.append(np.zeros(fan_out))
        self.params = np.concatenate(parts)

    def layer_shapes(self) -> list[tuple[int, ...]]:
        return [s for fi, fo in self.shapes for s in ((fi, fo), (fo,))]

    def _layers(self, p: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        out, pos = [], 0
        for fi, fo in self.shapes:
            W = p[pos: pos + fi * fo].reshape(fi, fo)
            pos += fi * fo
            out.append((W, p[pos: pos + fo]))
            pos += fo
        return out

    def _act(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0.0) if self.activation == "relu" else np.tanh(z)

    def _act_grad(self, a: np.ndarray) -> np.ndarray:
        return (a > 0).astype(np.float64) if self.activation == "relu" else 1.0 - a * a

    def _logits(self, p: np.ndarray, X: np.ndarray) -> np.ndarray:
        layers = self._layers(p)
        h = X
        for W, b in layers[:-1]:
            h = self._act(h @ W + b)
        W, b = layers[-1]
        return h @ W + b

    def _loss_grad(self, p: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        layers = self._layers(p)
        acts = [X]
        for W, b in layers[:-1]:
            acts.append(self._act(acts[-1] @ W + b))
        W, b = layers[-1]
        loss, g = _softmax_xent(acts[-1] @ W + b, y)
        grads: list[np.ndarray] = []
        for i in range(len(layers) - 1, -1, -1):
            W, _ = layers[i]
            grads.append(g.sum(axis=0))
            grads.append((acts[i].T @ g + self.l2 * W).reshape(-1))
            loss += 0.5 * self.l2 * float(np.sum(W * W))
            if i:
                g = (g @ W.T) * self._act_grad(acts[i])
        return loss, np.concatenate(grads[::-1])


def make_model(name: str, n_features: int, n_classes: int, **kwargs: object) -> Model:
    """Build a model by name: ``"logistic"``, ``"softmax"`` or ``"mlp"``."""
    if name == "logistic":
        if n_classes != 2:
            raise ParameterError("logistic regression is binary; use 'softmax' for more classes")
        return LogisticRegression(n_features, **kwargs)  # type: ignore[arg-type]
    if name == "softmax":
        return SoftmaxRegression(n_features, n_classes, **kwargs)  # type: ignore[arg-type]
    if name == "mlp":
        return MLP(n_features, n_classes, **kwargs)  # type: ignore[arg-type]
    raise ParameterError(f"unknown model {name!r}: choose 'logistic', 'softmax' or 'mlp'")
