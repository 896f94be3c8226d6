"""The ``ai.onnx.ml`` operators scikit-learn exports use, for :func:`~ml.inference.onnx_import.from_onnx` (layer: ml).

skl2onnx writes linear models as ``Scaler`` (a ``StandardScaler``),
``LinearClassifier`` and ``Normalizer``; these handlers turn them into the
same layers as the default-domain operators:

* ``Scaler``: ``(x - offset) * scale``, an elementwise affine map folded into
  the next layer;
* ``LinearClassifier``: a ``Dense`` layer (scores, output 1; the label
  output 0 is the argmax the private head computes) with ``post_transform``
  ``NONE`` (scores), ``SOFTMAX`` (the softmax head) or, for two classes whose
  scores are ``-z`` and ``z`` (skl2onnx's binary form), ``LOGISTIC`` (the
  sigmoid head on ``z``); ``LOGISTIC`` over more classes (one-vs-rest)
  becomes an elementwise sigmoid;
* ``Normalizer`` with ``L1`` after a softmax head (probabilities already sum
  to one: nothing to do). After anything else it would divide by a
  data-dependent sum: refused.

Labels are indices into ``classlabels_ints``/``classlabels_strings``, as
``to_network``'s are into scikit-learn's ``classes_``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .layers import Activation, UnsupportedModelError
from .onnx_chain import Chain
from .onnx_ops import attrs, broadcast, dense


def _scaler(chain: Chain, onnx: Any, node: Any, where: str) -> int:
    a = attrs(onnx, node, {"offset": [0.0], "scale": [1.0]}, where)
    offset = broadcast(np.asarray(a["offset"], dtype=np.float64), chain.shape, where)
    scale = broadcast(np.asarray(a["scale"], dtype=np.float64), chain.shape, where)
    chain.affine(scale, -offset * scale, where)
    return 0


def _linear_classifier(chain: Chain, onnx: Any, node: Any, where: str) -> int:
    a = attrs(onnx, node, {"coefficients": [], "intercepts": [], "multi_class": 0, "post_transform": "NONE",
                            "classlabels_ints": [], "classlabels_strings": []}, where)
    if len(chain.shape) != 1:
        raise UnsupportedModelError(f"{where} needs (N, d) inputs, got (N, {chain.shape})")
    d = chain.shape[0]
    coef = np.asarray(a["coefficients"], dtype=np.float64)
    if coef.size == 0 or coef.size % d:
        raise UnsupportedModelError(f"{where}: {coef.size} coefficients do not fit {d} features")
    k = coef.size // d
    w = coef.reshape(k, d).T
    b = np.asarray(a["intercepts"], dtype=np.float64) if len(a["intercepts"]) else np.zeros(k)
    if b.shape != (k,):
        raise UnsupportedModelError(f"{where}: {b.size} intercepts for {k} classes")
    labels = len(a["classlabels_ints"]) or len(a["classlabels_strings"])
    if labels != k:
        raise UnsupportedModelError(f"{where}: {k} score columns for {labels} class labels is not supported")
    transform = a["post_transform"]
    if transform == "LOGISTIC" and k == 2 and np.array_equal(w[:, 0], -w[:, 1]) and b[0] == -b[1]:
        dense(chain, w[:, 1:], b[1:], where)   # scores (-z, z): probabilities (1 - p, p), p = sigmoid(z)
        chain.head, chain.head_node = "sigmoid", where
    elif transform in ("NONE", "SOFTMAX", "LOGISTIC"):
        dense(chain, w, b, where)
        if transform == "SOFTMAX":
            chain.head, chain.head_node = "softmax", where
        elif transform == "LOGISTIC":
            chain.emit(Activation("sigmoid"), where)
    else:
        raise UnsupportedModelError(f"{where}: post_transform {transform!r} is not supported")
    return 1  # the scores output; output 0 is the label


def _normalizer(chain: Chain, onnx: Any, node: Any, where: str) -> int:
    a = attrs(onnx, node, {"norm": "MAX"}, where)
    if a["norm"] == "L1" and chain.head == "softmax" and chain.head_node is not None:
        return 0  # softmax probabilities already sum to 1
    raise UnsupportedModelError(f"{where}: norm {a['norm']!r} here divides by a sum of computed values; "
                                "supported only as L1 after a softmax")


ML_HANDLERS: dict[str, Callable[[Chain, Any, Any, str], int]] = {
    "Scaler": _scaler, "LinearClassifier": _linear_classifier, "Normalizer": _normalizer}

__all__ = ["ML_HANDLERS"]
