"""The client adapter of PyTorch modules (layer: ml; torch imported only when used).

:class:`TorchClient` puts an ``nn.Module`` and its data behind the client
interface of :mod:`.base`. Weights are the module's ``parameters()`` in order,
as numpy arrays of their dtype (buffers such as batch-norm statistics stay on
the client). ``fit`` runs ``local_epochs`` epochs of mini-batch training
(``batch_size``, ``lr``) in an order drawn from ``config["seed"]``, with the
FedProx term ``mu/2 ||w - w_global||^2`` when ``mu > 0``; the default optimizer
is plain SGD and the default loss the mean cross-entropy over class logits, so
an ``nn.Linear(d, k)`` trains as :class:`ml.models.SoftmaxRegression` does.
Install with ``pip install 'concilium[torch]'``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from mpc.errors import ParameterError
from mpc.optional import require
from mpc.rand import PRG, random_seed

from .base import Config, Dataset, Weights
from .numpy_model import permutation


class TorchClient:
    """A PyTorch module and one data set behind the client interface.

    Parameters
    ----------
    module:
        The model: maps a float32 batch (n, d) to class logits (n, k).
    data:
        The client's (X, y); labels are class indices.
    loss_fn:
        ``loss_fn(logits, labels) -> scalar`` (default: mean cross-entropy).
    optimizer:
        ``optimizer(parameters, lr) -> torch.optim.Optimizer``, built afresh for
        every ``fit`` (default: ``torch.optim.SGD``).
    """

    def __init__(self, module: Any, data: Dataset, loss_fn: Callable[..., Any] | None = None,
                 optimizer: Callable[..., Any] | None = None) -> None:
        torch = require("torch", "torch", "TorchClient")
        self.torch = torch
        X, y = np.asarray(data[0]), np.asarray(data[1])
        if X.ndim < 2 or y.shape != (X.shape[0],):
            raise ParameterError(f"TorchClient needs X of shape (n, ...) and y of shape (n,), "
                                 f"got {X.shape} and {y.shape}")
        self.module = module
        self.X = torch.as_tensor(X, dtype=torch.float32)
        self.y = torch.as_tensor(y.astype(np.int64))
        self.n_examples = int(X.shape[0])
        self.loss_fn = loss_fn or torch.nn.functional.cross_entropy
        self.optimizer = optimizer or (lambda params, lr: torch.optim.SGD(params, lr=lr))

    def _params(self) -> list[Any]:
        return list(self.module.parameters())

    def get_weights(self) -> Weights:
        return [p.detach().cpu().numpy().copy() for p in self._params()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        params = self._params()
        if len(weights) != len(params):
            raise ParameterError(f"TorchClient: expected {len(params)} weight arrays, got {len(weights)}")
        with self.torch.no_grad():
            for i, (p, w) in enumerate(zip(params, weights)):
                if tuple(np.shape(w)) != tuple(p.shape):
                    raise ParameterError(f"TorchClient: weight array {i} has shape {np.shape(w)}, "
                                         f"expected {tuple(p.shape)}")
                p.copy_(self.torch.as_tensor(np.asarray(w), dtype=p.dtype))

    def fit(self, config: Config) -> tuple[Weights, int, dict[str, float]]:
        torch, mu = self.torch, float(config.get("mu", 0.0))
        epochs, batch = int(config.get("local_epochs", 1)), int(config.get("batch_size", 32))
        params = self._params()
        center = [p.detach().clone() for p in params] if mu > 0 else None
        opt = self.optimizer(params, float(config.get("lr", 0.1)))
        prg = PRG(config.get("seed") or random_seed())
        self.module.train()
        for _ in range(epochs):
            order = torch.as_tensor(permutation(prg, self.n_examples).astype(np.int64))
            for start in range(0, self.n_examples, batch):
                b = order[start: start + batch]
                opt.zero_grad()
                loss = self.loss_fn(self.module(self.X[b]), self.y[b])
                if center is not None:
                    loss = loss + 0.5 * mu * sum(((p - c) ** 2).sum() for p, c in zip(params, center))
                loss.backward()
                opt.step()
        return self.get_weights(), self.n_examples, {}

    def evaluate(self, config: Config) -> tuple[float, int, dict[str, float]]:
        """Mean loss and accuracy (argmax of the logits) on the client's data."""
        self.module.eval()
        with self.torch.no_grad():
            logits = self.module(self.X)
            loss = float(self.loss_fn(logits, self.y))
            accuracy = float((logits.argmax(dim=1) == self.y).double().mean())
        return loss, self.n_examples, {"accuracy": accuracy}


__all__ = ["TorchClient"]
