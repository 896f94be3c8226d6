"""The private-inference form of a model: layers, their plaintext forward pass and im2col (layer: ml).

A :class:`Network` is an input shape, a list of layers and a head. It is what
both private back ends run (:mod:`ml.inference.secure` under secret sharing,
:mod:`ml.inference.ckks` under CKKS) and what :mod:`ml.inference.convert`
builds from scikit-learn and :mod:`ml.models` models. Its
:meth:`Network.forward` is the plaintext reference the private results are
tested against.

Layers (all shapes per example; a batch adds a leading axis):

* :class:`Dense` ``(d,) -> (k,)``: ``x @ W + b``;
* :class:`Conv2d` ``(C, H, W) -> (O, H', W')``: cross-correlation as PyTorch,
  computed as im2col then one matrix product;
* :class:`AvgPool2d` ``(C, H, W) -> (C, H', W')``: window means;
* :class:`MaxPool2d` ``(C, H, W) -> (C, H', W')``: window maxima (secret
  sharing only: CKKS cannot compare);
* :class:`Flatten` ``(...) -> (prod,)``;
* :class:`Activation` elementwise: ``relu``, ``sigmoid``, ``tanh``,
  ``square``, ``identity``, or a polynomial (:class:`Polynomial`).

The head says how scores become outputs: ``"softmax"`` (argmax is the label)
or ``"sigmoid"`` (one score; label ``score > 0``).

The architecture (layer kinds and shapes, activations, head) is public in
both protocols; :meth:`Network.architecture` is that public part, without
weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np

from mpc.errors import ParameterError

ACTIVATIONS = ("relu", "sigmoid", "tanh", "square", "identity")
HEADS = ("softmax", "sigmoid")


class UnsupportedModelError(ParameterError):
    """A model, layer or activation that private inference cannot run."""


# -- im2col: pure index arithmetic, valid on floats and on additive shares alike ---------

def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of one spatial axis."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Patches of a ``(B, C, H, W)`` array as rows: ``(B * H' * W', C * kh * kw)``.

    Only copies and zero padding: applied to each party's additive share it
    yields shares of the patches of the secret (zero is a valid share of 0).
    """
    b, c, h, w = x.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    sb, sc, sh, sw = x.strides
    view = np.lib.stride_tricks.as_strided(
        x, shape=(b, oh, ow, c, kh, kw), strides=(sb, sh * stride, sw * stride, sc, sh, sw),
        writeable=False)
    return view.reshape(b * oh * ow, c * kh * kw)


# -- layers -------------------------------------------------------------------------------

def _finite(name: str, arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} has NaN or infinite values")
    return arr


@dataclass(frozen=True)
class Dense:
    """``x @ weight + bias``; weight ``(d, k)``, bias ``(k,)``."""

    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        w, b = _finite("Dense weight", self.weight), _finite("Dense bias", self.bias)
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise ParameterError(f"Dense needs weight (d, k) and bias (k,), got {w.shape} and {b.shape}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if shape != (self.weight.shape[0],):
            raise ParameterError(f"Dense expects inputs of shape ({self.weight.shape[0]},), got {shape}")
        return (self.weight.shape[1],)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight + self.bias


@dataclass(frozen=True)
class Conv2d:
    """2-D convolution; weight ``(O, C, kh, kw)``, bias ``(O,)``."""

    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    padding: int = 0

    def __post_init__(self) -> None:
        w, b = _finite("Conv2d weight", self.weight), _finite("Conv2d bias", self.bias)
        if w.ndim != 4 or b.shape != (w.shape[0],):
            raise ParameterError(f"Conv2d needs weight (O, C, kh, kw) and bias (O,), got {w.shape}, {b.shape}")
        if self.stride < 1 or self.padding < 0:
            raise ParameterError("Conv2d needs stride >= 1 and padding >= 0")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    @property
    def matrix(self) -> np.ndarray:
        """The kernel as a ``(C * kh * kw, O)`` matrix for im2col rows."""
        return self.weight.reshape(self.weight.shape[0], -1).T

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        o, c, kh, kw = self.weight.shape
        if len(shape) != 3 or shape[0] != c:
            raise ParameterError(f"Conv2d expects inputs of shape ({c}, H, W), got {shape}")
        oh = conv_output_size(shape[1], kh, self.stride, self.padding)
        ow = conv_output_size(shape[2], kw, self.stride, self.padding)
        if oh < 1 or ow < 1:
            raise ParameterError(f"Conv2d kernel {kh}x{kw} does not fit inputs of shape {shape}")
        return (o, oh, ow)

    def forward(self, x: np.ndarray) -> np.ndarray:
        o, _, kh, kw = self.weight.shape
        _, oh, ow = self.out_shape(x.shape[1:])
        cols = im2col(x, kh, kw, self.stride, self.padding) @ self.matrix + self.bias
        return cols.reshape(x.shape[0], oh, ow, o).transpose(0, 3, 1, 2)


@dataclass(frozen=True)
class AvgPool2d:
    """Mean over ``size x size`` windows (stride defaults to ``size``)."""

    size: int
    stride: int = 0

    def __post_init__(self) -> None:
        if self.size < 1 or self.stride < 0:
            raise ParameterError("AvgPool2d needs size >= 1 and stride >= 0")
        if not self.stride:
            object.__setattr__(self, "stride", self.size)

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ParameterError(f"AvgPool2d expects (C, H, W) inputs, got {shape}")
        oh = conv_output_size(shape[1], self.size, self.stride, 0)
        ow = conv_output_size(shape[2], self.size, self.stride, 0)
        if oh < 1 or ow < 1:
            raise ParameterError(f"AvgPool2d window {self.size} does not fit inputs of shape {shape}")
        return (shape[0], oh, ow)

    def window_sum(self, x: np.ndarray) -> np.ndarray:
        """Window sums of a ``(B, C, H, W)`` array (floats or shares: additions only)."""
        b, c = x.shape[:2]
        _, oh, ow = self.out_shape(x.shape[1:])
        cols = im2col(x.reshape(b * c, 1, *x.shape[2:]), self.size, self.size, self.stride)
        return cols.sum(axis=1, dtype=x.dtype).reshape(b, c, oh, ow)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.window_sum(x) / float(self.size * self.size)


@dataclass(frozen=True)
class MaxPool2d:
    """Maximum over ``size x size`` windows (stride defaults to ``size``); secret sharing only."""

    size: int
    stride: int = 0

    def __post_init__(self) -> None:
        if self.size < 1 or self.stride < 0:
            raise ParameterError("MaxPool2d needs size >= 1 and stride >= 0")
        if not self.stride:
            object.__setattr__(self, "stride", self.size)

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return AvgPool2d(self.size, self.stride).out_shape(shape)

    def windows(self, x: np.ndarray) -> np.ndarray:
        """Windows of a ``(B, C, H, W)`` array as rows ``(B * C * H' * W', size^2)`` (copies only)."""
        b, c = x.shape[:2]
        return im2col(x.reshape(b * c, 1, *x.shape[2:]), self.size, self.size, self.stride)

    def forward(self, x: np.ndarray) -> np.ndarray:
        _, oh, ow = self.out_shape(x.shape[1:])
        return self.windows(x).max(axis=1).reshape(x.shape[0], x.shape[1], oh, ow)


@dataclass(frozen=True)
class Flatten:
    """``(...) -> (prod,)`` per example (C-order, as numpy and PyTorch)."""

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(shape)),)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], -1)


@dataclass(frozen=True)
class Polynomial:
    """A polynomial activation ``c[0] + c[1] x + ...`` (increasing order) standing in for ``name``."""

    coefficients: tuple[float, ...]
    name: str = "polynomial"

    @property
    def degree(self) -> int:
        nz = np.flatnonzero(self.coefficients)
        return int(nz[-1]) if nz.size else 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.polynomial.polynomial.polyval(x, np.asarray(self.coefficients))


@dataclass(frozen=True)
class Activation:
    """Elementwise nonlinearity: one of :data:`ACTIVATIONS` or a :class:`Polynomial`."""

    function: Union[str, Polynomial]

    def __post_init__(self) -> None:
        if isinstance(self.function, Polynomial):
            return
        if self.function not in ACTIVATIONS:
            raise UnsupportedModelError(
                f"unsupported activation {self.function!r}; supported: {', '.join(ACTIVATIONS)} "
                "or a Polynomial")

    @property
    def name(self) -> str:
        f = self.function
        return f"polynomial{list(f.coefficients)}" if isinstance(f, Polynomial) else f

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        f = self.function
        if isinstance(f, Polynomial):
            return f(x)
        if f == "relu":
            return np.maximum(x, 0.0)
        if f == "sigmoid":
            return 0.5 * (1.0 + np.tanh(0.5 * x))
        if f == "tanh":
            return np.tanh(x)
        if f == "square":
            return x * x
        return x


Layer = Union[Dense, Conv2d, AvgPool2d, MaxPool2d, Flatten, Activation]
LAYER_TYPES = (Dense, Conv2d, AvgPool2d, MaxPool2d, Flatten, Activation)


@dataclass(frozen=True)
class Network:
    """Input shape, layers and head of a classifier in private-inference form."""

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    head: str = "softmax"
    name: str = "network"
    shapes: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.head not in HEADS:
            raise UnsupportedModelError(f"unsupported head {self.head!r}; supported: {', '.join(HEADS)}")
        if not self.layers:
            raise ParameterError("a network needs at least one layer")
        shapes = [self.input_shape]
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, LAYER_TYPES):
                raise UnsupportedModelError(
                    f"unsupported layer {type(layer).__name__} at position {i}; supported: "
                    + ", ".join(t.__name__ for t in LAYER_TYPES))
            shapes.append(layer.out_shape(shapes[-1]))
        if len(shapes[-1]) != 1:
            raise ParameterError(f"the last layer must output a vector of scores, got shape {shapes[-1]}")
        if self.head == "sigmoid" and shapes[-1] != (1,):
            raise ParameterError(f"a sigmoid head needs one score, got {shapes[-1][0]}")
        if self.head == "softmax" and shapes[-1][0] < 2:
            raise ParameterError("a softmax head needs at least two scores")
        object.__setattr__(self, "shapes", tuple(shapes))

    @property
    def n_classes(self) -> int:
        return 2 if self.head == "sigmoid" else self.shapes[-1][0]

    def _check_input(self, X: np.ndarray) -> np.ndarray:
        X = _finite("input", X)
        if X.shape[1:] != self.input_shape:
            if X.ndim == 2 and X.shape[1] == int(np.prod(self.input_shape)):
                return X.reshape(X.shape[0], *self.input_shape)
            raise ParameterError(f"inputs must have shape (n, {', '.join(map(str, self.input_shape))}), "
                                 f"got {X.shape}")
        return X

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Scores (logits) of a batch, shape ``(n, k)``, in float64."""
        h = self._check_input(X)
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels, as :func:`labels_from_scores`."""
        return labels_from_scores(self.forward(X), self.head)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = self.forward(X)
        if self.head == "sigmoid":
            p = 0.5 * (1.0 + np.tanh(0.5 * z[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def architecture(self) -> list[str]:
        """The public description: one line per layer with its shapes, no weights."""
        out = []
        for layer, (i, o) in zip(self.layers, zip(self.shapes, self.shapes[1:])):
            kind = layer.name if isinstance(layer, Activation) else type(layer).__name__
            out.append(f"{kind} {i} -> {o}")
        return out + [f"head {self.head}"]

    @property
    def n_params(self) -> int:
        return sum(layer.weight.size + layer.bias.size for layer in self.layers
                   if isinstance(layer, (Dense, Conv2d)))


def labels_from_scores(scores: np.ndarray, head: str) -> np.ndarray:
    """``argmax`` for a softmax head (first maximum), ``score > 0`` for a sigmoid head."""
    scores = np.asarray(scores)
    if head == "sigmoid":
        return (scores[:, 0] > 0).astype(np.int64)
    return np.argmax(scores, axis=1)


def mlp(weights: Sequence[tuple[np.ndarray, np.ndarray]], activation: str | Polynomial,
        head: str = "softmax", name: str = "mlp") -> Network:
    """A dense network: ``activation`` between consecutive ``(W, b)`` layers."""
    if not weights:
        raise ParameterError("an MLP needs at least one (W, b) layer")
    layers: list[Layer] = []
    for i, (w, b) in enumerate(weights):
        if i:
            layers.append(Activation(activation))
        layers.append(Dense(w, b))
    return Network((np.asarray(weights[0][0]).shape[0],), tuple(layers), head, name)
