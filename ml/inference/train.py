"""Train HE-friendly networks: MLPs with polynomial (square) activations (layer: ml).

CKKS evaluates only additions and products, so a network meant for
:mod:`ml.inference.ckks` is best *trained* with a polynomial activation, as
CryptoNets did (Gilad-Bachrach et al., ICML 2016), rather than approximated
after training. :func:`train_polynomial_mlp` fits one hidden-layer-at-a-time
MLP with activation ``a z^2 + b z`` (``square``: a = 1, b = 0) by full-batch
Adam on the softmax cross-entropy and returns a
:class:`~ml.inference.layers.Network`. Initial weights come from
:mod:`mpc.rand` seeded by an integer (weights are not secrets, but package
code uses one randomness module).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed

from .layers import Network, Polynomial, mlp


def _init(seed: int, shape: tuple[int, int]) -> np.ndarray:
    prg = PRG(derive_seed(b"concilium.ml.inference.train", "init", int(seed) % (1 << 64)))
    u = (prg.uint64(shape) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return (2.0 * u - 1.0) * np.sqrt(6.0 / sum(shape))


def train_polynomial_mlp(X: np.ndarray, y: np.ndarray, hidden: Sequence[int] = (32,), *,
                         activation: Polynomial | str = "square", epochs: int = 300, lr: float = 0.01,
                         l2: float = 1e-4, seed: int = 0) -> Network:
    """An MLP with a degree-2 activation, trained on ``(X, y)`` (labels 0..k-1).

    ``activation``: ``"square"`` or a degree-2 :class:`Polynomial`. Inputs
    should be scaled to about [-1, 1] (the square amplifies large values).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if X.ndim != 2 or y.shape != (X.shape[0],) or X.shape[0] == 0:
        raise ParameterError(f"need X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}")
    if epochs < 1 or not lr > 0 or l2 < 0 or not hidden or min(hidden) < 1:
        raise ParameterError("need epochs >= 1, lr > 0, l2 >= 0 and hidden widths >= 1")
    poly = Polynomial((0.0, 0.0, 1.0), "square") if activation == "square" else activation
    if not isinstance(poly, Polynomial) or poly.degree != 2:
        raise ParameterError("activation must be 'square' or a degree-2 Polynomial")
    c0, c1, c2 = (tuple(poly.coefficients) + (0.0,) * 3)[:3]
    k = int(y.max()) + 1
    sizes = [X.shape[1], *hidden, max(k, 2)]
    params = []
    for i in range(len(sizes) - 1):
        params += [_init(seed * 131 + i, (sizes[i], sizes[i + 1])), np.zeros(sizes[i + 1])]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(sizes[-1])[y]
    for t in range(1, epochs + 1):
        zs, acts = [], [X]
        for i in range(0, len(params) - 2, 2):
            z = acts[-1] @ params[i] + params[i + 1]
            zs.append(z)
            acts.append(c0 + c1 * z + c2 * z * z)
        logits = acts[-1] @ params[-2] + params[-1]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        g = (e / e.sum(axis=1, keepdims=True) - onehot) / len(X)
        grads: list[np.ndarray] = []
        for i in range(len(params) - 2, -1, -2):
            layer = i // 2
            grads = [acts[layer].T @ g + l2 * params[i], g.sum(axis=0)] + grads
            if layer:
                g = (g @ params[i].T) * (c1 + 2.0 * c2 * zs[layer - 1])
        for i, gr in enumerate(grads):  # Adam
            m[i] = 0.9 * m[i] + 0.1 * gr
            v[i] = 0.999 * v[i] + 0.001 * gr * gr
            params[i] = params[i] - lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    layers = [(params[i], params[i + 1]) for i in range(0, len(params), 2)]
    return mlp(layers, "square" if activation == "square" else poly, "softmax", name="poly-mlp")
