"""Convert trained models to the private-inference form :class:`~ml.inference.layers.Network` (layer: ml).

:func:`to_network` accepts:

* :mod:`ml.models` -- ``LogisticRegression`` (sigmoid head),
  ``SoftmaxRegression`` and ``MLP`` (tanh or ReLU hidden layers, softmax head);
* scikit-learn -- ``LogisticRegression`` (binary: one score and a sigmoid
  head; multi-class, multinomial or one-vs-rest: one score per class, whose
  argmax is scikit-learn's prediction), ``MLPClassifier`` (activations
  ``identity``, ``logistic``, ``tanh``, ``relu``), and a ``Pipeline`` of
  ``StandardScaler`` steps before one of those (folded into the first layer);
* an ONNX model (a path, serialized bytes or an ``onnx.ModelProto``), read by
  :func:`ml.inference.onnx_import.from_onnx` (extra ``onnx``);
* a :class:`Network` (returned as is).

Predicted labels are indices: for scikit-learn, into ``model.classes_``.
Anything else is refused with :class:`~ml.inference.layers.UnsupportedModelError`
naming the model, layer or activation. scikit-learn is not imported here:
models are recognised by class name and fitted attributes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mpc.errors import ParameterError

from .layers import Activation, Dense, Network, UnsupportedModelError, mlp

SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SUPPORTED = ("ml.models.LogisticRegression", "ml.models.SoftmaxRegression", "ml.models.MLP",
             "sklearn LogisticRegression", "sklearn MLPClassifier",
             "sklearn Pipeline of StandardScaler steps and one of those", "an ONNX model (path, bytes, ModelProto)",
             "ml.inference.Network")


def _is_sklearn(model: Any, name: str) -> bool:
    cls = type(model)
    return cls.__name__ == name and cls.__module__.startswith("sklearn.")


def _is_ml_model(model: Any, name: str) -> bool:
    cls = type(model)
    return cls.__name__ == name and cls.__module__ == "ml.models"


def _fitted(model: Any, *attrs: str) -> None:
    missing = [a for a in attrs if not hasattr(model, a)]
    if missing:
        raise ParameterError(f"{type(model).__name__} is not fitted (no {', '.join(missing)}); fit it first")


def _sklearn_logistic(model: Any) -> Network:
    _fitted(model, "coef_", "intercept_")
    coef, intercept = np.asarray(model.coef_, np.float64), np.asarray(model.intercept_, np.float64)
    if coef.shape[0] == 1:
        return Network((coef.shape[1],), (Dense(coef.T, intercept),), "sigmoid", "sklearn-logistic")
    return Network((coef.shape[1],), (Dense(coef.T, intercept),), "softmax", "sklearn-logistic")


def _sklearn_mlp(model: Any) -> Network:
    _fitted(model, "coefs_", "intercepts_", "out_activation_")
    act = model.activation
    if act not in SKLEARN_ACTIVATIONS:
        raise UnsupportedModelError(f"MLPClassifier activation {act!r} is not supported; supported: "
                                    + ", ".join(SKLEARN_ACTIVATIONS))
    out = model.out_activation_
    layers = list(zip(model.coefs_, model.intercepts_))
    if out == "softmax":
        head = "softmax"
    elif out == "logistic" and layers[-1][0].shape[1] == 1:
        head = "sigmoid"
    else:
        raise UnsupportedModelError(f"MLPClassifier output activation {out!r} with "
                                    f"{layers[-1][0].shape[1]} outputs (multi-label) is not supported")
    return mlp(layers, SKLEARN_ACTIVATIONS[act], head, name="sklearn-mlp")


def _ml_model(model: Any) -> Network:
    name = type(model).__name__
    p = np.asarray(model.params, dtype=np.float64)
    d = model.n_features
    if name == "LogisticRegression":
        return Network((d,), (Dense(p[:-1].reshape(d, 1), p[-1:]),), "sigmoid", "logistic")
    if name == "SoftmaxRegression":
        k = model.n_classes
        return Network((d,), (Dense(p[:d * k].reshape(d, k), p[d * k:]),), "softmax", "softmax")
    layers = model._layers(p)
    return mlp(layers, model.activation, "softmax", name="mlp")


def _fold_scaler(scaler: Any, net: Network) -> Network:
    """Fold ``(x - mean) / scale`` into the first Dense layer of ``net``."""
    _fitted(scaler, "n_features_in_")
    first = net.layers[0]
    if not isinstance(first, Dense):
        raise UnsupportedModelError(f"a StandardScaler can only precede a dense layer, not "
                                    f"{type(first).__name__}")
    d = first.weight.shape[0]
    mean = np.asarray(getattr(scaler, "mean_", None) if scaler.with_mean else np.zeros(d), np.float64)
    scale = np.asarray(getattr(scaler, "scale_", None) if scaler.with_std else np.ones(d), np.float64)
    if mean.shape != (d,) or scale.shape != (d,):
        raise ParameterError(f"StandardScaler fitted on {scaler.n_features_in_} features, model has {d}")
    w = first.weight / scale[:, None]
    b = first.bias - (mean / scale) @ first.weight
    return Network(net.input_shape, (Dense(w, b), *net.layers[1:]), net.head, net.name)


def to_network(model: Any) -> Network:
    """The private-inference form of a trained classifier (see the module docstring).

    Raises
    ------
    UnsupportedModelError
        A model type, pipeline step, activation or output the private back ends
        cannot run; the message names it and lists what is supported.
    ParameterError
        An unfitted model.
    """
    if isinstance(model, Network):
        return model
    if isinstance(model, (str, os.PathLike, bytes, bytearray)) or type(model).__name__ == "ModelProto":
        from .onnx_import import from_onnx

        return from_onnx(model)
    if _is_sklearn(model, "Pipeline"):
        steps = [est for _, est in model.steps if est not in (None, "passthrough")]
        if not steps:
            raise UnsupportedModelError("an empty Pipeline has no model to convert")
        net = to_network(steps[-1])
        for step in reversed(steps[:-1]):
            if not _is_sklearn(step, "StandardScaler"):
                raise UnsupportedModelError(
                    f"unsupported pipeline step {type(step).__name__}: only StandardScaler steps may "
                    "precede the classifier")
            net = _fold_scaler(step, net)
        return net
    if _is_sklearn(model, "LogisticRegression"):
        return _sklearn_logistic(model)
    if _is_sklearn(model, "MLPClassifier"):
        return _sklearn_mlp(model)
    if any(_is_ml_model(model, n) for n in ("LogisticRegression", "SoftmaxRegression", "MLP")):
        return _ml_model(model)
    raise UnsupportedModelError(
        f"unsupported model {type(model).__module__}.{type(model).__name__}; private inference "
        f"supports: {', '.join(SUPPORTED)}")


__all__ = ["Activation", "SKLEARN_ACTIVATIONS", "SUPPORTED", "UnsupportedModelError", "to_network"]
