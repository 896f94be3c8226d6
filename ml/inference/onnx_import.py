"""Import an ONNX model as a private-inference :class:`~ml.inference.layers.Network` (layer: ml).

:func:`from_onnx` reads a model (a path, the serialized bytes or an
``onnx.ModelProto``) and builds the :class:`~ml.inference.layers.Network`
that both private back ends run (:mod:`ml.inference.secure`,
:mod:`ml.inference.ckks`). The ``onnx`` package (extra ``onnx``) is imported
only when a model is read.

Supported: default-domain opsets :data:`MIN_OPSET` to :data:`MAX_OPSET`; one
float input ``(N, ...)`` whose batch axis ``N`` may be dynamic and whose other
axes are fixed; a chain of operators (each consumes the previous one's output
and constants):

* ``Gemm`` (``alpha``, ``beta``, ``transB``; ``transA`` only on the weight
  side, i.e. refused) and ``MatMul`` by a constant matrix -> ``Dense``;
* ``Conv`` (2-D, ``group = 1``, ``dilations = 1``, equal strides and equal
  symmetric padding, ``auto_pad`` included) -> ``Conv2d``;
* ``AveragePool``, ``MaxPool`` (square windows, equal strides, no padding),
  ``GlobalAveragePool`` (square inputs) -> ``AvgPool2d`` / ``MaxPool2d``;
* ``Relu``, ``Sigmoid``, ``Tanh`` -> ``Activation``; a final ``Softmax``
  (last axis) -> the softmax head, a final ``Sigmoid`` on one score -> the
  sigmoid head;
* ``Flatten`` (axis 1), ``Reshape`` (keeping the batch axis; to a vector, or
  of the input itself) -> ``Flatten`` or the input shape;
* ``Mul(x, x)`` and ``Pow(x, 2)`` -> the ``square`` activation (CKKS);
* ``Add``, ``Sub``, ``Mul``, ``Div`` by a constant and
  ``BatchNormalization`` (inference) -> elementwise affine maps folded into
  the neighbouring ``Dense``/``Conv2d`` (into the layer before when they
  follow it directly, else into the next one), never a layer of their own;
* ``Relu`` then ``MaxPool`` run as ``MaxPool`` then ``Relu`` (the same values,
  the ReLU's secure comparisons on size^2 times fewer values);
* ``Identity``, ``Dropout`` (inference), ``Cast`` to float -> nothing; nodes whose inputs are all
  constants are evaluated once (``onnx.reference``) and become constants.

scikit-learn exports (skl2onnx) add ``ai.onnx.ml`` operators, read by
:mod:`ml.inference.onnx_ml`. With several outputs the only float one is
imported (or ``output=``); nodes that only feed other outputs (a label
branch) are left out.

Anything else raises :class:`~ml.inference.layers.UnsupportedModelError`
naming the operator and its node: no model is ever imported wrongly. The
network's :meth:`~ml.inference.layers.Network.forward` gives the scores
before a final ``Softmax``/``Sigmoid``; ``predict_proba`` then equals the
ONNX output, and ``predict`` its argmax (``> 0.5`` for one sigmoid output).

Modules: :mod:`ml.inference.onnx_chain` (the import state and the folding),
:mod:`ml.inference.onnx_ops` (one handler per operator),
:mod:`ml.inference.onnx_ml` (``ai.onnx.ml``), this one (reading the model,
choosing the output, walking the nodes).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mpc.errors import ParameterError
from mpc.optional import require

from .layers import AvgPool2d, Network, UnsupportedModelError
from .onnx_chain import FLOAT_TYPES, Chain
from .onnx_ml import ML_HANDLERS
from .onnx_ops import ACTIVATIONS, activation, attrs, dense, elementwise, fold_constant, handler_table

MIN_OPSET = 9   # BatchNormalization without ``spatial``, Dropout without ``is_test``
MAX_OPSET = 23  # every supported operator's semantics checked up to this opset
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Pow")
SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Relu", "Sigmoid", "Tanh", "Softmax", "Conv",
                 "AveragePool", "MaxPool", "GlobalAveragePool", "Flatten", "Reshape", "BatchNormalization",
                 "Identity", "Dropout", "Cast")


def _onnx() -> Any:
    return require("onnx", "onnx", "ml.inference.from_onnx")


def load_model(source: Any) -> Any:
    """An ``onnx.ModelProto`` from a path, serialized bytes or a ModelProto."""
    onnx = _onnx()
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        try:
            return onnx.load_from_string(bytes(source))
        except Exception as exc:
            raise ParameterError(f"these {len(source)} bytes are not a serialized ONNX model: {exc}") from None
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise ParameterError(f"no ONNX model file at {os.fspath(source)!r}")
        try:
            return onnx.load(os.fspath(source))
        except Exception as exc:
            raise ParameterError(f"{os.fspath(source)!r} is not an ONNX model: {exc}") from None
    raise ParameterError(f"from_onnx takes a path, bytes or an onnx.ModelProto, not {type(source).__name__}")


def _describe(node: Any, index: int) -> str:
    return f"{node.op_type} node {node.name or '#' + str(index)!r}"


def _opset(model: Any) -> int:
    versions = {o.domain: o.version for o in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None:
        raise UnsupportedModelError("the model imports no default-domain (ai.onnx) opset")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise UnsupportedModelError(f"opset {version} is not supported; supported: {MIN_OPSET} to {MAX_OPSET}")
    return int(version)


def _output(graph: Any, output: str | None) -> str:
    """The output to import: ``output``, else the graph's only float output."""
    names = [o.name for o in graph.output]
    if output is not None:
        if output not in names:
            raise ParameterError(f"the model has no output {output!r}; its outputs: {', '.join(names)}")
        return output
    floats = [o.name for o in graph.output if o.type.HasField("tensor_type")
              and o.type.tensor_type.elem_type in FLOAT_TYPES]
    if len(floats) != 1:
        raise UnsupportedModelError(f"the model has {len(floats)} float outputs among {', '.join(names)}; "
                                    "choose the scores or probabilities with output=")
    return floats[0]


def _needed(graph: Any, output: str) -> list[tuple[int, Any]]:
    """The nodes ``output`` depends on, with their positions, in graph order (a label branch beside
    it is left out)."""
    wanted, keep = {output}, []
    for index in range(len(graph.node) - 1, -1, -1):
        node = graph.node[index]
        if wanted.intersection(node.output):
            keep.append((index, node))
            wanted.update(n for n in node.input if n)
    return keep[::-1]


def from_onnx(source: Any, *, output: str | None = None, name: str | None = None) -> Network:
    """The private-inference :class:`Network` of an ONNX model (see the module docstring).

    ``source``: a file path, the serialized model (bytes) or an ``onnx.ModelProto``.
    ``output``: the output to compute (default: the only float output; the
    nodes of other outputs, e.g. a label beside probabilities, are left out:
    the private label is the argmax of these scores).

    Raises
    ------
    UnsupportedModelError
        An operator, attribute, graph shape (branches, several inputs or
        outputs), dynamic dimension, non-constant weight or opset that the
        private back ends cannot run; the message names the node.
    ParameterError
        A source that is not an ONNX model.
    mpc.optional.MissingExtra
        The ``onnx`` package is not installed (``pip install 'concilium[onnx]'``).
    """
    onnx = _onnx()
    model = load_model(source)
    _opset(model)
    graph = model.graph
    chain = Chain(onnx, graph)
    handlers = handler_table()
    target = _output(graph, output)
    nodes = _needed(graph, target)
    for index, node in nodes:
        where = _describe(node, index)
        if node.domain not in ("", "ai.onnx") and not (node.domain == "ai.onnx.ml" and node.op_type in ML_HANDLERS):
            raise UnsupportedModelError(f"{where} (domain {node.domain!r}) is not supported; supported "
                                        f"operators (ai.onnx): {', '.join(SUPPORTED_OPS)}; (ai.onnx.ml): "
                                        f"{', '.join(ML_HANDLERS)}")
        if node.op_type == "Constant" or (node.input and all(n in chain.consts for n in node.input if n)):
            fold_constant(chain, node, where)
            continue
        if node.op_type not in SUPPORTED_OPS and node.domain != "ai.onnx.ml":
            raise UnsupportedModelError(f"{where} is not supported; supported operators: "
                                        f"{', '.join(SUPPORTED_OPS)}")
        if node.op_type in ELEMENTWISE:
            attrs(onnx, node, {}, where)
            elementwise(chain, node, where)
            continue
        if node.domain == "ai.onnx.ml":
            chain.take_live(node, where, after_head=node.op_type == "Normalizer")
            out = ML_HANDLERS[node.op_type](chain, onnx, node, where)
            chain.set_live(node, chain.shape, out)
            continue
        pos = chain.take_live(node, where, after_head=node.op_type in ("Identity", "Cast"))
        if node.op_type == "MatMul":
            if pos != 0:
                raise UnsupportedModelError(f"{where}: a constant times the computed tensor is not supported")
            w = chain.const(node, 1, "weight", where)
            if w.ndim != 2:
                raise UnsupportedModelError(f"{where}: the weight must be a matrix, got shape {w.shape}")
            dense(chain, w, np.zeros(w.shape[1]), where)
        elif node.op_type in ACTIVATIONS:
            activation(chain, onnx, node, where)
        elif node.op_type == "GlobalAveragePool":
            if len(chain.shape) != 3 or chain.shape[1] != chain.shape[2]:
                raise UnsupportedModelError(f"{where}: only square (N, C, H, H) inputs are supported, got "
                                            f"(N, {chain.shape})")
            chain.emit(AvgPool2d(chain.shape[1]), where)
        elif node.op_type in ("Identity", "Cast"):
            if int(attrs(onnx, node, {"to": 1, "saturate": 1}, where)["to"]) not in FLOAT_TYPES:
                raise UnsupportedModelError(f"{where}: only casts to float or double are supported")
        else:
            if pos != 0:
                raise UnsupportedModelError(f"{where}: the computed tensor must be its first input")
            handlers[node.op_type](chain, onnx, node, where)
        chain.set_live(node, chain.shape)
    return chain.finish(target, name or graph.name or "onnx")


__all__ = ["MAX_OPSET", "MIN_OPSET", "SUPPORTED_OPS", "UnsupportedModelError", "from_onnx", "load_model"]
