"""Handlers of the default-domain ONNX operators: each node updates a :class:`~ml.inference.onnx_chain.Chain` (layer: ml).

One function per operator (or family); each checks the node's attributes
against the ones it understands (any other is refused by name), reads its
constant inputs and emits layers or folds an affine map. See
:mod:`ml.inference.onnx_import` for the list and what each becomes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from mpc.optional import require

from .layers import Activation, AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, UnsupportedModelError
from .onnx_chain import Chain, as_const

ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def attrs(onnx: Any, node: Any, allowed: dict[str, Any], where: str) -> dict[str, Any]:
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


def _pool(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    allowed = {"auto_pad": "NOTSET", "ceil_mode": 0, "kernel_shape": [], "pads": [], "strides": [],
               "dilations": []}
    allowed.update({"count_include_pad": 0} if node.op_type == "AveragePool" else {"storage_order": 0})
    a = attrs(onnx, node, allowed, where)
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


def _conv(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    a = attrs(onnx, node, {"auto_pad": "NOTSET", "dilations": [], "group": 1, "kernel_shape": [],
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


def _gemm(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    a = attrs(onnx, node, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}, where)
    if chain.take_live(node, where) != 0 or a["transA"]:
        raise UnsupportedModelError(f"{where}: the computed tensor must be A, untransposed (transA=0)")
    w = chain.const(node, 1, "weight B", where)
    if w.ndim != 2:
        raise UnsupportedModelError(f"{where}: B must be a matrix, got shape {w.shape}")
    w = (w.T if a["transB"] else w) * float(a["alpha"])
    c = chain.optional_const(node, 2, "bias C", where)
    bias = np.zeros(w.shape[1]) if c is None else broadcast(float(a["beta"]) * c, (w.shape[1],), where)
    dense(chain, w, bias, where)


def dense(chain: Chain, w: np.ndarray, bias: np.ndarray, where: str) -> None:
    if chain.shape != (w.shape[0],):
        raise UnsupportedModelError(f"{where} multiplies inputs of shape (N, {', '.join(map(str, chain.shape))}) "
                                    f"by a {w.shape} matrix; it needs (N, {w.shape[0]})")
    chain.emit(Dense(w, bias), where)


def broadcast(c: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
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


def _square_of_live(chain: Chain, node: Any, where: str) -> bool:
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


def elementwise(chain: Chain, node: Any, where: str) -> None:
    if _square_of_live(chain, node, where):
        return
    pos = chain.take_live(node, where)
    c = broadcast(chain.const(node, 1 - pos, "constant operand", where), chain.shape, where)
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


def _batchnorm(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    a = attrs(onnx, node, {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0, "spatial": 1}, where)
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


def _reshape(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    a = attrs(onnx, node, {"allowzero": 0}, where)
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


def _to_shape(chain: Chain, new: tuple[int, ...], where: str) -> None:
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


def _flatten(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    a = attrs(onnx, node, {"axis": 1}, where)
    axis = int(a["axis"])
    if axis < 0:
        axis += len(chain.shape) + 1
    if axis != 1:
        raise UnsupportedModelError(f"{where}: axis={a['axis']} is not supported (axis 1: keep the batch)")
    _to_shape(chain, (int(np.prod(chain.shape)),), where)


def _softmax(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    a = attrs(onnx, node, {"axis": -1}, where)
    if len(chain.shape) != 1 or int(a["axis"]) not in (-1, 1):
        raise UnsupportedModelError(f"{where}: Softmax only over the scores of (N, k) tensors")
    chain.head, chain.head_node = "softmax", where


def activation(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    attrs(onnx, node, {}, where)
    chain.emit(Activation(ACTIVATIONS[node.op_type]), where)


def _dropout(chain: Chain, onnx: Any, node: Any, where: str) -> None:
    attrs(onnx, node, {"ratio": 0.5, "seed": 0}, where)
    _no_second_output(node, where, "mask")
    mode = chain.optional_const(node, 2, "training_mode", where)
    if mode is not None and bool(np.asarray(mode).reshape(-1)[0]):
        raise UnsupportedModelError(f"{where}: training_mode=True is not supported (inference only)")


def fold_constant(chain: Chain, node: Any, where: str) -> None:
    """Evaluate a node whose inputs are all constants, once, with onnx's reference evaluator."""
    if node.op_type.startswith("Random") or node.op_type in ("Bernoulli", "Multinomial"):
        raise UnsupportedModelError(f"{where} is random; it is not supported")
    reference = require("onnx.reference", "onnx", "ml.inference.from_onnx")
    try:
        value = reference.ReferenceEvaluator(node).run(None, {n: chain.consts[n] for n in node.input if n})[0]
    except Exception as exc:
        raise UnsupportedModelError(f"{where}: cannot evaluate it on its constant inputs ({exc})") from None
    chain.consts[node.output[0]] = as_const(value)


def handler_table() -> dict[str, Callable[..., None]]:
    return {"Conv": _conv, "Gemm": _gemm, "BatchNormalization": _batchnorm, "Reshape": _reshape,
            "Flatten": _flatten, "Softmax": _softmax, "AveragePool": _pool, "MaxPool": _pool,
            "Dropout": _dropout}


__all__ = ["ACTIVATIONS", "activation", "attrs", "broadcast", "dense", "elementwise", "fold_constant", "handler_table"]
