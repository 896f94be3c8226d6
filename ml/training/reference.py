"""The same training in float64: same initialization, batches, learning rate, momentum and clipping (layer: ml).

:func:`train_plain` is what :func:`ml.training.secure.private_train` computes,
without shares and without fixed point: the baseline its accuracy is
compared with (the example, the tests, ``python -m bench train``).
"""

from __future__ import annotations

import numpy as np

from ..inference.layers import Activation, Dense, Network
from .nn import public_init
from .secure import TrainConfig, batches, one_hot


def train_plain(X: np.ndarray, y: np.ndarray, config: TrainConfig,
                margins: list[float] | None = None) -> Network:
    """Train ``config``'s MLP on ``(X, y)`` in float64 with the schedule of the private run.

    ``margins``, if given, receives per step the smallest ``|z|`` of a hidden
    pre-activation: how near the run came to a ReLU's kink, where fixed-point
    error may flip the comparison bit and with it a whole row of the gradient.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = one_hot(y, config.classes)
    params = [p.copy() for pair in public_init(config.sizes, config.seed) for p in pair]
    velocity = [np.zeros_like(p) for p in params]
    relu = config.activation == "relu"
    first, step = True, 0
    for epoch in range(config.epochs):
        for idx in batches(len(X), config.batch_size, config.seed, epoch):
            hs, pre = [X[idx]], []
            for i in range(0, len(params), 2):
                z = hs[-1] @ params[i] + params[i + 1]
                pre.append(z)
                if i + 2 < len(params):
                    if margins is not None:
                        margins.append(float(np.min(np.abs(z), initial=np.inf)))
                    hs.append(np.maximum(z, 0.0) if relu else 1.0 / (1.0 + np.exp(-z)))
            e = np.exp(pre[-1] - pre[-1].max(axis=1, keepdims=True))
            g = (e / e.sum(axis=1, keepdims=True) - Y[idx]) / len(idx)
            grads: list[np.ndarray] = []
            for i in range(len(params) - 2, -1, -2):
                layer = i // 2
                grads = [hs[layer].T @ g, g.sum(axis=0)] + grads
                if layer:
                    g = g @ params[i].T
                    g = g * (pre[layer - 1] > 0) if relu else g * hs[layer] * (1.0 - hs[layer])
            step += 1
            bound = config.weight_bound
            clip = bound is not None and step % config.clip_every == 0
            for j, gr in enumerate(grads):
                velocity[j] = config.momentum * velocity[j] + gr if config.momentum and not first else gr
                params[j] = params[j] - config.lr * velocity[j]
                if clip and bound is not None:
                    params[j] = np.clip(params[j], -bound, bound)
            first = False
    layers: list[Dense | Activation] = []
    for i in range(0, len(params), 2):
        if i:
            layers.append(Activation(config.activation))
        layers.append(Dense(params[i], params[i + 1]))
    return Network((config.sizes[0],), tuple(layers), "softmax", "mlp-float64")
