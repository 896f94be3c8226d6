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
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from mpc.errors import ParameterError
from mpc.optional import require

from .layers import (Activation, AvgPool2d, Conv2d, Dense, Flatten, Layer, MaxPool2d, Network,
                     UnsupportedModelError)

MIN_OPSET = 9   # BatchNormalization without ``spatial``, Dropout without ``is_test``
MAX_OPSET = 23  # every supported operator's semantics checked up to this opset
FLOAT_TYPES = (1, 11)  # TensorProto.FLOAT, DOUBLE
ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
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


class _Chain:
    """The state of the import: constants, the one computed tensor, layers and a pending affine map."""

    def __init__(self, onnx: Any, graph: Any) -> None:
        self.onnx = onnx
        self.consts: dict[str, np.ndarray] = {}
        for init in graph.initializer:
            self.consts[init.name] = _as_const(onnx.numpy_helper.to_array(init))
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs) or "none"
            raise UnsupportedModelError(
                f"the graph has {len(inputs)} non-constant inputs ({names}); private inference takes one "
                "data input, and every weight must be a constant (an initializer or a Constant node)")
        self.input_name = inputs[0].name
        self.input_shape = self._input_shape(inputs[0])
        self.live = self.input_name          # the one tensor computed from the input
        self.used: set[str] = set()          # computed tensors already consumed
        self.shape = self.input_shape        # per-example shape of ``live``
        self.layers: list[Layer] = []
        self.after_linear = False            # ``live`` is the direct output of layers[-1] (Dense/Conv2d)
        self.pending: tuple[np.ndarray, np.ndarray] | None = None  # live = layers' output * s + t
        self.pending_from = ""
        self.head_node: str | None = None    # the final Softmax / Sigmoid, if any
        self.head = "softmax"

    @staticmethod
    def _input_shape(value_info: Any) -> tuple[int, ...]:
        t = value_info.type.tensor_type
        if t.elem_type not in FLOAT_TYPES:
            raise UnsupportedModelError(f"input {value_info.name!r} has element type {t.elem_type}; "
                                        "private inference takes float or double inputs")
        if not t.HasField("shape"):
            raise UnsupportedModelError(f"input {value_info.name!r} has no declared shape; private "
                                        "inference needs fixed shapes (only the batch axis 0 may be dynamic)")
        dims = list(t.shape.dim)
        if len(dims) < 2:
            raise UnsupportedModelError(f"input {value_info.name!r} has rank {len(dims)}; it needs a batch "
                                        "axis 0 and at least one feature axis")
        shape = []
        for axis, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                label = d.dim_param or "unknown"
                raise UnsupportedModelError(
                    f"input {value_info.name!r} has a dynamic dimension {label!r} at axis {axis}; private "
                    "inference needs fixed shapes (only the batch axis 0 may be dynamic)")
            shape.append(int(d.dim_value))
        return tuple(shape)

    # -- inputs of a node ----------------------------------------------------------------------

    def const(self, node: Any, index: int, what: str, where: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        if name in self.consts:
            return self.consts[name]
        if not name:
            raise UnsupportedModelError(f"{where} has no {what} input")
        raise UnsupportedModelError(f"{where}: its {what} {name!r} is not a constant (an initializer or a "
                                    "Constant node); weights computed at run time are not supported")

    def optional_const(self, node: Any, index: int, what: str, where: str) -> np.ndarray | None:
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.const(node, index, what, where)

    def take_live(self, node: Any, where: str, after_head: bool = False) -> int:
        """Position of the computed input of ``node``; refuses branches and joins."""
        computed = [i for i, n in enumerate(node.input) if n and n not in self.consts]
        for i in computed:
            name = node.input[i]
            if name in self.used or name != self.live:
                if name in self.used or name == self.input_name:
                    raise UnsupportedModelError(
                        f"{where} reads {name!r}, which another node already consumed: only chains of "
                        "operators are supported (no branches or skip connections)")
                raise UnsupportedModelError(f"{where} reads {name!r}, which is neither a constant nor "
                                            "computed by an earlier node")
        if len(computed) != 1:
            raise UnsupportedModelError(f"{where} combines {len(computed)} computed tensors; only chains "
                                        "with constant second operands are supported")
        if self.head_node is not None and not after_head:
            raise UnsupportedModelError(f"{where} follows {self.head_node}; Softmax (and a Sigmoid head) "
                                        "are supported only as the last operator")
        return computed[0]

    def set_live(self, node: Any, shape: tuple[int, ...], output: int = 0) -> None:
        self.used.add(self.live)
        self.live = node.output[output]
        self.shape = shape

    # -- layers -------------------------------------------------------------------------------

    def emit(self, layer: Layer, where: str) -> None:
        if isinstance(layer, (Dense, Conv2d)):
            layer = self._fold_pending_into(layer, where)
        elif self.pending is not None:
            self.pending = self._pending_through(layer, where)
        shape = layer.out_shape(self.shape)
        last = self.layers[-1] if self.layers else None
        if isinstance(layer, MaxPool2d) and isinstance(last, Activation) and last.function == "relu":
            # relu then max = max then relu (both monotone): the comparisons of the ReLU run on
            # the pooled values only, size^2 times fewer
            self.layers[-1:] = [layer, last]
        else:
            self.layers.append(layer)
        self.after_linear = isinstance(layer, (Dense, Conv2d))
        self.shape = shape

    def affine(self, scale: np.ndarray, shift: np.ndarray, where: str) -> None:
        """``live <- live * scale + shift`` (arrays of the per-example shape)."""
        if self.after_linear and self.pending is None:
            self.layers[-1] = self._fold_after(self.layers[-1], scale, shift, where)  # type: ignore[arg-type]
            return
        if self.pending is None:
            self.pending, self.pending_from = (scale, shift), where
        else:
            s, t = self.pending
            self.pending = (s * scale, t * scale + shift)

    def _fold_after(self, layer: Dense | Conv2d, scale: np.ndarray, shift: np.ndarray, where: str) -> Layer:
        if isinstance(layer, Dense):
            return Dense(layer.weight * scale[None, :], layer.bias * scale + shift)
        s, t = _per_channel(scale, where), _per_channel(shift, where)
        return Conv2d(layer.weight * s[:, None, None, None], layer.bias * s + t, layer.stride, layer.padding)

    def _fold_pending_into(self, layer: Dense | Conv2d, where: str) -> Layer:
        if self.pending is None:
            return layer
        s, t = self.pending
        self.pending = None
        if isinstance(layer, Dense):
            return Dense(s[:, None] * layer.weight, layer.bias + t @ layer.weight)
        sc, tc = _per_channel(s, self.pending_from), _per_channel(t, self.pending_from)
        if layer.padding and np.any(tc != 0.0):
            raise UnsupportedModelError(
                f"{self.pending_from} adds a constant before {where}, which pads with zeros: the padding "
                "would not be shifted, so it cannot be folded into the convolution")
        w = layer.weight * sc[None, :, None, None]
        return Conv2d(w, layer.bias + np.einsum("ocij,c->o", layer.weight, tc), layer.stride, layer.padding)

    def _pending_through(self, layer: Layer, where: str) -> tuple[np.ndarray, np.ndarray] | None:
        s, t = self.pending  # type: ignore[misc]
        if np.all(s == 1.0) and np.all(t == 0.0):
            return None
        out = layer.out_shape(self.shape)
        if isinstance(layer, Flatten):
            return s.reshape(out), t.reshape(out)
        if isinstance(layer, (AvgPool2d, MaxPool2d)) and _is_per_channel(s) and _is_per_channel(t) and (
                isinstance(layer, AvgPool2d) or np.all(s > 0.0)):
            # per-channel maps commute with window means, and with maxima when the scale is positive
            return (np.broadcast_to(s[:, :1, :1], out).copy(), np.broadcast_to(t[:, :1, :1], out).copy())
        raise UnsupportedModelError(
            f"{self.pending_from} is an elementwise constant operation that cannot be folded into a "
            f"convolution or dense layer: {where} comes between it and the next one")

    def finish(self, output: str, name: str) -> Network:
        if output != self.live:
            raise UnsupportedModelError(f"the output {output!r} is not the end of the chain of operators "
                                        f"({self.live!r})")
        if self.pending is not None and not (np.all(self.pending[0] == 1.0) and np.all(self.pending[1] == 0.0)):
            raise UnsupportedModelError(
                f"{self.pending_from} is an elementwise constant operation after the last dense or convolution "
                "layer, not directly after it: it cannot be folded")
        if not self.layers:
            raise UnsupportedModelError("the model has no layers")
        if len(self.shape) != 1:
            raise UnsupportedModelError(f"the model outputs shape {self.shape} per example; private "
                                        "inference needs a vector of scores (add a Flatten)")
        if self.shape == (1,):
            if self.head_node is not None and self.head != "sigmoid":
                raise UnsupportedModelError(f"{self.head_node} is over a single score")
            self.head = "sigmoid"
            last = self.layers[-1]
            if isinstance(last, Activation) and last.function == "sigmoid" and len(self.layers) > 1:
                self.layers.pop()  # a final Sigmoid on one score is the sigmoid head
        return Network(self.input_shape, tuple(self.layers), self.head, name)


def _as_const(value: Any) -> np.ndarray:
    value = np.asarray(value)
    return value.astype(np.float64) if value.dtype.kind == "f" else value


def _is_per_channel(a: np.ndarray) -> bool:
    return a.ndim == 3 and bool(np.all(a == a[:, :1, :1]))


def _per_channel(a: np.ndarray, where: str) -> np.ndarray:
    if not _is_per_channel(a):
        raise UnsupportedModelError(f"{where} varies within a channel; only per-channel constants fold into "
                                    "a convolution")
    return a[:, 0, 0].copy()


def _attrs(onnx: Any, node: Any, allowed: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(allowed)
    for a in node.attribute:
        if a.name not in allowed:
            raise UnsupportedModelError(f"{where}: attribute {a.name!r} is not supported")
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _no_second_output(node: Any, where: str, what: str) -> None:
    if any(node.output[1:]):
        raise UnsupportedModelError(f"{where}: its {what} output is not supported")


def _square(values: Any, what: str, where: str) -> int:
    vals = [int(v) for v in values]
    if len(vals) != 2 or vals[0] != vals[1]:
        raise UnsupportedModelError(f"{where}: {what} {vals} is not supported; 2-D with equal values only")
    return vals[0]


def _padding(a: dict[str, Any], shape: tuple[int, ...], kernel: tuple[int, int], stride: int, where: str) -> int:
    auto = a["auto_pad"]
    if auto in ("NOTSET", ""):
        pads = [int(p) for p in (a["pads"] or [0, 0, 0, 0])]
        if len(pads) != 4 or len(set(pads)) != 1:
            raise UnsupportedModelError(f"{where}: pads {pads} are not supported; equal padding on all sides only")
        return pads[0]
    if auto == "VALID":
        return 0
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        totals = [max((-(-n // stride) - 1) * stride + k - n, 0) for n, k in zip(shape[1:], kernel)]
        if totals[0] != totals[1] or totals[0] % 2:
            raise UnsupportedModelError(f"{where}: auto_pad {auto} pads {totals} in total per axis; equal "
                                        "symmetric padding only")
        return totals[0] // 2
    raise UnsupportedModelError(f"{where}: auto_pad {auto!r} is not supported")


def _pool(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    allowed = {"auto_pad": "NOTSET", "ceil_mode": 0, "kernel_shape": [], "pads": [], "strides": [],
               "dilations": []}
    allowed.update({"count_include_pad": 0} if node.op_type == "AveragePool" else {"storage_order": 0})
    a = _attrs(onnx, node, allowed, where)
    if node.op_type == "MaxPool":
        _no_second_output(node, where, "Indices")
    if len(chain.shape) != 3:
        raise UnsupportedModelError(f"{where} needs (N, C, H, W) inputs, got (N, {chain.shape})")
    size = _square(a["kernel_shape"], "kernel_shape", where)
    stride = _square(a["strides"] or [1, 1], "strides", where)
    if a["dilations"] and any(int(d) != 1 for d in a["dilations"]):
        raise UnsupportedModelError(f"{where}: dilations {list(a['dilations'])} are not supported")
    if _padding(a, chain.shape, (size, size), stride, where):
        raise UnsupportedModelError(f"{where}: padded pooling is not supported")
    if a["ceil_mode"] and any((n - size) % stride for n in chain.shape[1:]):
        raise UnsupportedModelError(f"{where}: ceil_mode=1 with partial windows is not supported")
    chain.emit((AvgPool2d if node.op_type == "AveragePool" else MaxPool2d)(size, stride), where)


def _conv(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    a = _attrs(onnx, node, {"auto_pad": "NOTSET", "dilations": [], "group": 1, "kernel_shape": [],
                            "pads": [], "strides": []}, where)
    w = chain.const(node, 1, "weight", where)
    b = chain.optional_const(node, 2, "bias", where)
    if w.ndim != 4 or len(chain.shape) != 3:
        raise UnsupportedModelError(f"{where}: only 2-D convolutions on (N, C, H, W) inputs are supported "
                                    f"(weight {w.shape}, input (N, {chain.shape}))")
    if int(a["group"]) != 1:
        raise UnsupportedModelError(f"{where}: group={a['group']} is not supported (group=1 only)")
    if a["dilations"] and any(int(d) != 1 for d in a["dilations"]):
        raise UnsupportedModelError(f"{where}: dilations {list(a['dilations'])} are not supported")
    if a["kernel_shape"] and tuple(int(k) for k in a["kernel_shape"]) != w.shape[2:]:
        raise UnsupportedModelError(f"{where}: kernel_shape {list(a['kernel_shape'])} differs from the "
                                    f"weight's {w.shape[2:]}")
    stride = _square(a["strides"] or [1, 1], "strides", where)
    padding = _padding(a, chain.shape, (w.shape[2], w.shape[3]), stride, where)
    bias = np.zeros(w.shape[0]) if b is None else b.reshape(-1)
    chain.emit(Conv2d(w, bias, stride, padding), where)


def _gemm(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    a = _attrs(onnx, node, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}, where)
    if chain.take_live(node, where) != 0 or a["transA"]:
        raise UnsupportedModelError(f"{where}: the computed tensor must be A, untransposed (transA=0)")
    w = chain.const(node, 1, "weight B", where)
    if w.ndim != 2:
        raise UnsupportedModelError(f"{where}: B must be a matrix, got shape {w.shape}")
    w = (w.T if a["transB"] else w) * float(a["alpha"])
    c = chain.optional_const(node, 2, "bias C", where)
    bias = np.zeros(w.shape[1]) if c is None else _broadcast(float(a["beta"]) * c, (w.shape[1],), where)
    _dense(chain, w, bias, where)


def _dense(chain: _Chain, w: np.ndarray, bias: np.ndarray, where: str) -> None:
    if chain.shape != (w.shape[0],):
        raise UnsupportedModelError(f"{where} multiplies inputs of shape (N, {', '.join(map(str, chain.shape))}) "
                                    f"by a {w.shape} matrix; it needs (N, {w.shape[0]})")
    chain.emit(Dense(w, bias), where)


def _broadcast(c: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``c`` as an array of the per-example ``shape``, broadcasting against ``(N, *shape)``."""
    full = (1, *shape)
    c = np.asarray(c, dtype=np.float64)
    if c.ndim > len(full):
        raise UnsupportedModelError(f"{where}: a constant of shape {c.shape} would add axes to inputs "
                                    f"(N, {', '.join(map(str, shape))})")
    try:
        ok = np.broadcast_shapes(c.shape, full) == full
    except ValueError:
        ok = False
    if not ok:
        raise UnsupportedModelError(f"{where}: a constant of shape {c.shape} does not broadcast to the "
                                    f"per-example shape {shape} (nor may it vary along the batch axis)")
    return np.broadcast_to(c, full).reshape(shape).copy()


def _square_of_live(chain: _Chain, node: Any, where: str) -> bool:
    """``Mul(x, x)`` and ``Pow(x, 2)``: the square activation (CryptoNets)."""
    ins = [n for n in node.input if n]
    if node.op_type == "Mul" and len(ins) == 2 and ins[0] == ins[1] == chain.live:
        pass
    elif node.op_type == "Pow" and len(ins) == 2 and ins[0] == chain.live and ins[1] in chain.consts:
        exponent = np.asarray(chain.consts[ins[1]], dtype=np.float64)
        if exponent.size != 1 or float(exponent.reshape(-1)[0]) != 2.0:
            raise UnsupportedModelError(f"{where}: only the exponent 2 (a square) is supported")
    else:
        return False
    if chain.head_node is not None:
        raise UnsupportedModelError(f"{where} follows {chain.head_node}, which must be the last operator")
    chain.emit(Activation("square"), where)
    chain.set_live(node, chain.shape)
    return True


def _elementwise(chain: _Chain, node: Any, where: str) -> None:
    if _square_of_live(chain, node, where):
        return
    pos = chain.take_live(node, where)
    c = _broadcast(chain.const(node, 1 - pos, "constant operand", where), chain.shape, where)
    one, zero = np.ones(chain.shape), np.zeros(chain.shape)
    op = node.op_type
    if op == "Add":
        chain.affine(one, c, where)
    elif op == "Sub":
        chain.affine(one, -c, where) if pos == 0 else chain.affine(-one, c, where)
    elif op == "Mul":
        chain.affine(c, zero, where)
    elif op == "Pow":
        raise UnsupportedModelError(f"{where}: only Pow(x, 2) of the computed tensor is supported")
    else:  # Div
        if pos == 1:
            raise UnsupportedModelError(f"{where} divides by a computed tensor; only division by a constant")
        if np.any(c == 0.0):
            raise UnsupportedModelError(f"{where} divides by a constant that has zeros")
        chain.affine(1.0 / c, zero, where)
    chain.set_live(node, chain.shape)


def _batchnorm(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    a = _attrs(onnx, node, {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0, "spatial": 1}, where)
    if a["training_mode"] or not a["spatial"]:
        raise UnsupportedModelError(f"{where}: only inference mode (training_mode=0, spatial=1) is supported")
    _no_second_output(node, where, "running statistics")
    scale, bias, mean, var = (chain.const(node, i, what, where)
                              for i, what in enumerate(("scale", "B", "mean", "var"), start=1))
    s = scale / np.sqrt(var + float(a["epsilon"]))
    t = bias - mean * s
    if s.shape != (chain.shape[0],):
        raise UnsupportedModelError(f"{where}: {s.shape[0]} channels, the input has {chain.shape[0]}")
    extra = (1,) * (len(chain.shape) - 1)
    chain.affine(np.broadcast_to(s.reshape(-1, *extra), chain.shape).copy(),
                 np.broadcast_to(t.reshape(-1, *extra), chain.shape).copy(), where)


def _reshape(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    a = _attrs(onnx, node, {"allowzero": 0}, where)
    target = [int(v) for v in chain.const(node, 1, "shape", where).reshape(-1)]
    if a["allowzero"] and 0 in target:
        raise UnsupportedModelError(f"{where}: allowzero=1 with a zero in the shape is not supported")
    per = int(np.prod(chain.shape))
    if len(target) < 2 or target.count(-1) > 1:
        raise UnsupportedModelError(f"{where}: reshape to {target} does not keep the batch axis")
    rest = []
    for i, v in enumerate(target[1:], start=1):
        if v == 0:
            if i > len(chain.shape):
                raise UnsupportedModelError(f"{where}: shape {target} copies a dimension the input lacks")
            v = chain.shape[i - 1]
        rest.append(v)
    if -1 in rest:  # the batch axis is target[0] (0 copies it, k fixes it): -1 is the rest of an example
        known = int(np.prod([d for d in rest if d != -1]))
        if known < 1 or per % known:
            raise UnsupportedModelError(f"{where}: cannot reshape {chain.shape} per example to {target}")
        rest = [per // known if d == -1 else d for d in rest]
    new = tuple(rest)
    if int(np.prod(new)) != per or min(new) < 1:
        raise UnsupportedModelError(f"{where}: reshape to {target} does not keep the batch axis "
                                    f"(an example has {per} values)")
    _to_shape(chain, new, where)


def _to_shape(chain: _Chain, new: tuple[int, ...], where: str) -> None:
    if new == chain.shape:
        return
    if len(new) == 1:
        chain.emit(Flatten(), where)
    elif not chain.layers and chain.pending is None:
        chain.input_shape = new  # a reshape of the input itself: the network reads inputs in this shape
        chain.shape = new
    else:
        raise UnsupportedModelError(f"{where}: reshaping {chain.shape} to {new} per example is supported only "
                                    "to a vector or on the model input")


def _flatten(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    a = _attrs(onnx, node, {"axis": 1}, where)
    axis = int(a["axis"])
    if axis < 0:
        axis += len(chain.shape) + 1
    if axis != 1:
        raise UnsupportedModelError(f"{where}: axis={a['axis']} is not supported (axis 1: keep the batch)")
    _to_shape(chain, (int(np.prod(chain.shape)),), where)


def _softmax(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    a = _attrs(onnx, node, {"axis": -1}, where)
    if len(chain.shape) != 1 or int(a["axis"]) not in (-1, 1):
        raise UnsupportedModelError(f"{where}: Softmax only over the scores of (N, k) tensors")
    chain.head, chain.head_node = "softmax", where


def _activation(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    _attrs(onnx, node, {}, where)
    chain.emit(Activation(ACTIVATIONS[node.op_type]), where)


def _dropout(chain: _Chain, onnx: Any, node: Any, where: str) -> None:
    _attrs(onnx, node, {"ratio": 0.5, "seed": 0}, where)
    _no_second_output(node, where, "mask")
    mode = chain.optional_const(node, 2, "training_mode", where)
    if mode is not None and bool(np.asarray(mode).reshape(-1)[0]):
        raise UnsupportedModelError(f"{where}: training_mode=True is not supported (inference only)")


def _fold_constant(chain: _Chain, node: Any, where: str) -> None:
    """Evaluate a node whose inputs are all constants, once, with onnx's reference evaluator."""
    if node.op_type.startswith("Random") or node.op_type in ("Bernoulli", "Multinomial"):
        raise UnsupportedModelError(f"{where} is random; it is not supported")
    reference = require("onnx.reference", "onnx", "ml.inference.from_onnx")
    try:
        value = reference.ReferenceEvaluator(node).run(None, {n: chain.consts[n] for n in node.input if n})[0]
    except Exception as exc:
        raise UnsupportedModelError(f"{where}: cannot evaluate it on its constant inputs ({exc})") from None
    chain.consts[node.output[0]] = _as_const(value)


def _handlers() -> dict[str, Callable[..., None]]:
    return {"Conv": _conv, "Gemm": _gemm, "BatchNormalization": _batchnorm, "Reshape": _reshape,
            "Flatten": _flatten, "Softmax": _softmax, "AveragePool": _pool, "MaxPool": _pool,
            "Dropout": _dropout}


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
    from .onnx_ml import ML_HANDLERS  # the scikit-learn converters' operators (skl2onnx)

    graph = model.graph
    chain = _Chain(onnx, graph)
    handlers = _handlers()
    target = _output(graph, output)
    nodes = _needed(graph, target)
    for index, node in nodes:
        where = _describe(node, index)
        if node.domain not in ("", "ai.onnx") and not (node.domain == "ai.onnx.ml" and node.op_type in ML_HANDLERS):
            raise UnsupportedModelError(f"{where} (domain {node.domain!r}) is not supported; supported "
                                        f"operators (ai.onnx): {', '.join(SUPPORTED_OPS)}; (ai.onnx.ml): "
                                        f"{', '.join(ML_HANDLERS)}")
        if node.op_type == "Constant" or (node.input and all(n in chain.consts for n in node.input if n)):
            _fold_constant(chain, node, where)
            continue
        if node.op_type not in SUPPORTED_OPS and node.domain != "ai.onnx.ml":
            raise UnsupportedModelError(f"{where} is not supported; supported operators: "
                                        f"{', '.join(SUPPORTED_OPS)}")
        if node.op_type in ELEMENTWISE:
            _attrs(onnx, node, {}, where)
            _elementwise(chain, node, where)
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
            _dense(chain, w, np.zeros(w.shape[1]), where)
        elif node.op_type in ACTIVATIONS:
            _activation(chain, onnx, node, where)
        elif node.op_type == "GlobalAveragePool":
            if len(chain.shape) != 3 or chain.shape[1] != chain.shape[2]:
                raise UnsupportedModelError(f"{where}: only square (N, C, H, H) inputs are supported, got "
                                            f"(N, {chain.shape})")
            chain.emit(AvgPool2d(chain.shape[1]), where)
        elif node.op_type in ("Identity", "Cast"):
            if int(_attrs(onnx, node, {"to": 1, "saturate": 1}, where)["to"]) not in FLOAT_TYPES:
                raise UnsupportedModelError(f"{where}: only casts to float or double are supported")
        else:
            if pos != 0:
                raise UnsupportedModelError(f"{where}: the computed tensor must be its first input")
            handlers[node.op_type](chain, onnx, node, where)
        chain.set_live(node, chain.shape)
    return chain.finish(target, name or graph.name or "onnx")


__all__ = ["MAX_OPSET", "MIN_OPSET", "SUPPORTED_OPS", "UnsupportedModelError", "from_onnx", "load_model"]
