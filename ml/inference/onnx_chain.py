"""The state of an ONNX import: the one computed tensor, the layers so far, folded affine maps (layer: ml).

:class:`Chain` is what :mod:`ml.inference.onnx_ops` handlers update, node by
node, for :func:`ml.inference.onnx_import.from_onnx`: the constants, the name
and per-example shape of the one tensor computed from the input (refusing
branches and joins), the layers emitted, and a pending elementwise map
``x * s + t`` from constant ``Add``/``Sub``/``Mul``/``Div``/batch
normalisation that is folded into the neighbouring ``Dense``/``Conv2d``
(into the layer before when it directly follows it, else into the next).
Pure numpy; no onnx import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import Activation, AvgPool2d, Conv2d, Dense, Flatten, Layer, MaxPool2d, Network, UnsupportedModelError

FLOAT_TYPES = (1, 11)  # TensorProto.FLOAT, DOUBLE


class Chain:
    """The state of the import: constants, the one computed tensor, layers and a pending affine map."""

    def __init__(self, onnx: Any, graph: Any) -> None:
        self.onnx = onnx
        self.consts: dict[str, np.ndarray] = {}
        for init in graph.initializer:
            self.consts[init.name] = as_const(onnx.numpy_helper.to_array(init))
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


def as_const(value: Any) -> np.ndarray:
    value = np.asarray(value)
    return value.astype(np.float64) if value.dtype.kind == "f" else value


def _is_per_channel(a: np.ndarray) -> bool:
    return a.ndim == 3 and bool(np.all(a == a[:, :1, :1]))


def _per_channel(a: np.ndarray, where: str) -> np.ndarray:
    if not _is_per_channel(a):
        raise UnsupportedModelError(f"{where} varies within a channel; only per-channel constants fold into "
                                    "a convolution")
    return a[:, 0, 0].copy()


__all__ = ["FLOAT_TYPES", "Chain", "as_const"]
