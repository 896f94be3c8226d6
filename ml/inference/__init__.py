"""Private inference: a model answers without seeing the input (layer: ml).

* :mod:`ml.inference.layers` -- the private-inference form of a model (:class:`~ml.inference.layers.Network`)
  and its plaintext reference;
* :mod:`ml.inference.convert` -- scikit-learn and :mod:`ml.models` models to that form;
* :mod:`ml.inference.onnx_import` -- ONNX models to that form (:func:`from_onnx`, extra ``onnx``),
  with :mod:`~ml.inference.onnx_chain`, :mod:`~ml.inference.onnx_ops` and :mod:`~ml.inference.onnx_ml`;
* :mod:`ml.inference.secure` -- inference on secret shares (weights and inputs shared);
* :mod:`ml.inference.ckks` -- inference on CKKS-encrypted inputs with plaintext weights;
* :mod:`ml.inference.train` -- square-activation MLPs for CKKS.

Nothing is imported here, so ``import ml.inference.secure`` does not load TenSEAL;
``ml.inference.from_onnx`` is looked up on first use (and imports ``onnx`` only
when it reads a model). See ``docs/inference.md``.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "from_onnx":
        from .onnx_import import from_onnx

        return from_onnx
    raise AttributeError(f"module 'ml.inference' has no attribute {name!r}")


__all__ = ["from_onnx"]
