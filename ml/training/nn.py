"""Layers, the softmax cross-entropy loss and SGD with momentum, on secret shares (layer: ml).

A :class:`Sequential` of :class:`Linear`, :class:`ReLU` and :class:`Sigmoid`
layers holds its parameters as :class:`~mpc.SharedTensor` objects: every
party holds a share of every weight, none holds a weight. Its forward pass
runs on a :class:`~ml.training.autograd.Tape`; :class:`SGD` updates the
shares in place from the gradients of :meth:`Tape.backward`.

The architecture (layer kinds and sizes) is public, as in
:mod:`ml.inference.secure`; :meth:`Sequential.network` reveals the weights
into a :class:`~ml.inference.layers.Network` only when the owners call it, and
:meth:`Sequential.inference_weights` hands the shares to
:func:`ml.inference.secure.forward` without opening anything.

Initialization is public (seeded, as PyTorch's ``nn.Linear``: uniform in
``+-1/sqrt(fan_in)``), so the plaintext reference of
:mod:`ml.training.reference` starts from the very same weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed
from mpc.sharing.bounds import coarse
from mpc.sharing.tensor import SharedTensor

from ..inference.layers import Activation, Dense, Network
from ..inference.layers import Conv2d as InferenceConv2d
from ..inference.layers import Flatten as InferenceFlatten
from .autograd import Tape, Var, conv2d

if TYPE_CHECKING:
    from mpc.party import Party

ACTIVATIONS = ("relu", "sigmoid")


def public_init(sizes: Sequence[int], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """PyTorch-style ``nn.Linear`` initialization, from a public seed: weights ``(d, k)``, biases ``(k,)``."""
    out = []
    for i, (d, k) in enumerate(zip(sizes[:-1], sizes[1:])):
        prg = PRG(derive_seed(b"concilium.ml.training", f"init/{int(seed)}", i))
        u = (prg.uint64((d * k + k,)) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
        w = (2.0 * u - 1.0) / np.sqrt(d)
        out.append((w[:d * k].reshape(d, k), w[d * k:]))
    return out


def public_tensor(party: Party, value: np.ndarray) -> SharedTensor:
    """A public array as a (trivial) sharing: party 0 holds its encoding, the others zero."""
    f = party.fixed.frac_bits
    enc = party.fixed.encode(np.asarray(value, dtype=np.float64))
    share = enc if party.id == 0 else np.zeros_like(enc)
    peak = float(np.max(np.abs(value), initial=0.0))
    return SharedTensor(party, share, f, max(peak, 2.0 ** -f))


@dataclass
class Parameter:
    """A shared weight tensor, its gradient after a backward pass and its momentum buffer."""

    value: SharedTensor
    grad: SharedTensor | None = None
    velocity: SharedTensor | None = None


class _Weighted:
    """A layer with a shared weight and bias: leaves on the tape, gradients collected after backward."""

    weight: Parameter
    bias: Parameter
    _vars: tuple[Var, Var] | None = None

    def parameters(self) -> list[Parameter]:
        return [self.weight, self.bias]

    def _leaves(self, tape: Tape) -> tuple[Var, Var]:
        self._vars = (tape.leaf(self.weight.value), tape.leaf(self.bias.value))
        return self._vars

    def collect(self) -> None:
        """Move the tape's gradients into the parameters (after :meth:`Tape.backward`)."""
        if self._vars is None:
            raise ParameterError("collect() before a forward pass")
        self.weight.grad, self.bias.grad = self._vars[0].grad, self._vars[1].grad
        self._vars = None


class Linear(_Weighted):
    """``x @ W + b``; ``W`` ``(d, k)`` and ``b`` ``(k,)`` secret-shared."""

    def __init__(self, weight: SharedTensor, bias: SharedTensor) -> None:
        if weight.ndim != 2 or bias.shape != (weight.shape[1],):
            raise ParameterError(f"Linear needs weight (d, k) and bias (k,), got {weight.shape} and {bias.shape}")
        self.weight, self.bias = Parameter(weight), Parameter(bias)

    def forward(self, x: Var) -> Var:
        w, b = self._leaves(x.tape)
        return x @ w + b

    def export(self, w: Any, b: Any) -> Dense:
        return Dense(np.asarray(w), np.asarray(b))


class Conv2d(_Weighted):
    """2-D convolution as PyTorch's; weight ``(O, C, kh, kw)`` and bias ``(O,)`` secret-shared."""

    def __init__(self, weight: SharedTensor, bias: SharedTensor, stride: int = 1, padding: int = 0) -> None:
        if weight.ndim != 4 or bias.shape != (weight.shape[0],) or stride < 1 or padding < 0:
            raise ParameterError(f"Conv2d needs weight (O, C, kh, kw), bias (O,), stride >= 1 and padding >= 0, "
                                 f"got {weight.shape}, {bias.shape}, {stride}, {padding}")
        self.weight, self.bias = Parameter(weight), Parameter(bias)
        self.stride, self.padding = stride, padding

    def forward(self, x: Var) -> Var:
        w, b = self._leaves(x.tape)
        return conv2d(x, w, b, self.stride, self.padding)

    def export(self, w: Any, b: Any) -> InferenceConv2d:
        return InferenceConv2d(np.asarray(w), np.asarray(b), self.stride, self.padding)


class ReLU:
    def forward(self, x: Var) -> Var:
        return x.relu()

    def export(self) -> Activation:
        return Activation("relu")


class Sigmoid:
    def forward(self, x: Var) -> Var:
        return x.sigmoid()

    def export(self) -> Activation:
        return Activation("sigmoid")


class Flatten:
    """``(B, ...) -> (B, prod)``, as between a convolution and a Linear layer."""

    def forward(self, x: Var) -> Var:
        return x.reshape(x.shape[0], -1)

    def export(self) -> InferenceFlatten:
        return InferenceFlatten()


Layer = Union[Linear, Conv2d, ReLU, Sigmoid, Flatten]


class Sequential:
    """Layers applied in order; the architecture is public, the parameters shared.

    ``input_shape``: one example's shape; by default ``(d,)`` of a first Linear layer.
    """

    def __init__(self, layers: Sequence[Layer], input_shape: tuple[int, ...] | None = None) -> None:
        self.layers = list(layers)
        if input_shape is None:
            if not isinstance(self.layers[0], Linear):
                raise ParameterError("give input_shape when the first layer is not Linear")
            input_shape = (self.layers[0].weight.value.shape[0],)
        self.input_shape = tuple(input_shape)

    @classmethod
    def mlp(cls, party: Party, sizes: Sequence[int], activation: str = "relu", *, seed: int = 0) -> "Sequential":
        """An MLP ``sizes[0] -> ... -> sizes[-1]`` from the public seeded initialization."""
        if activation not in ACTIVATIONS:
            raise ParameterError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if len(sizes) < 2 or min(sizes) < 1:
            raise ParameterError(f"an MLP needs at least two layer sizes >= 1, got {list(sizes)}")
        layers: list[Layer] = []
        for i, (w, b) in enumerate(public_init(sizes, seed)):
            if i:
                layers.append(ReLU() if activation == "relu" else Sigmoid())
            layers.append(Linear(public_tensor(party, w), public_tensor(party, b)))
        return cls(layers)

    def _weighted(self) -> list[_Weighted]:
        return [layer for layer in self.layers if isinstance(layer, _Weighted)]

    def parameters(self) -> list[Parameter]:
        return [p for layer in self._weighted() for p in layer.parameters()]

    def forward(self, x: Var) -> Var:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def collect(self) -> None:
        for layer in self._weighted():
            layer.collect()

    def __call__(self, x: SharedTensor) -> SharedTensor:
        """Scores of a shared batch, without recording a tape (evaluation)."""
        return self.forward(Tape().leaf(x, requires_grad=False)).value

    # -- handing the model on --------------------------------------------------------------------
    def inference_weights(self) -> list[tuple[SharedTensor, SharedTensor, float] | None]:
        """The shares as :func:`ml.inference.secure.forward` takes them (nothing opened).

        Each layer's gain bound is ``fan_in * max|w|`` from the public bounds the
        weights carry (rounded up to 3 significant bits); a convolution's kernel
        as the ``(C kh kw, O)`` matrix of its im2col rows.
        """
        out: list[tuple[SharedTensor, SharedTensor, float] | None] = []
        for layer in self.layers:
            if isinstance(layer, _Weighted):
                w = layer.weight.value
                if w.ndim == 4:
                    w = w.reshape(w.shape[0], -1).T
                out.append((w, layer.bias.value, coarse(w.bound * w.shape[0], w.frac_bits)))
            else:
                out.append(None)
        return out

    def _network(self, weights: Sequence[tuple[Any, Any]], name: str) -> Network:
        it = iter(weights)
        layers = [layer.export(*next(it)) if isinstance(layer, _Weighted) else layer.export()
                  for layer in self.layers]
        return Network(self.input_shape, tuple(layers), "softmax", name)

    def skeleton(self) -> Network:
        """The public architecture as a :class:`Network` with zero weights (for ``forward``)."""
        return self._network([(np.zeros(layer.weight.value.shape), np.zeros(layer.bias.value.shape))
                              for layer in self._weighted()], "trained-model")

    def network(self, to: int | Sequence[int] | None = None) -> Network | None:
        """Open the weights (to ``to``, default every party) as a plaintext :class:`Network`.

        One opening of all parameters at once.
        """
        params = self.parameters()
        flat = _join([p.value for p in params]).reveal(to)
        if flat is None:
            return None
        pieces, pos = [], 0
        for p in params:
            pieces.append(np.asarray(flat)[pos:pos + p.value.size].reshape(p.value.shape))
            pos += p.value.size
        return self._network(list(zip(pieces[::2], pieces[1::2])), "trained-model")


class SGD:
    """Stochastic gradient descent with momentum (PyTorch's form) on shares.

    ``v <- momentum * v + g``; ``w <- w - lr * v`` (``v = g`` at the first
    step). With ``weight_bound`` set, every ``clip_every``-th step the weights are clipped to
    ``[-weight_bound, weight_bound]`` by an exact secure comparison (one
    batched comparison for all parameters, ``L + 8`` rounds) if their
    public bound has grown beyond it: the public bounds stay within
    ``weight_bound + clip_every * lr * max|v|`` over training, so no product
    can overflow however long it runs (:func:`ml.training.plan.plan` checks
    the worst case before the first step). ``clip_every > 1`` trades that
    larger bound for fewer comparisons.
    """

    def __init__(self, params: Sequence[Parameter], lr: float, momentum: float = 0.0,
                 weight_bound: float | None = None, clip_every: int = 1) -> None:
        if not lr > 0 or not 0 <= momentum < 1:
            raise ParameterError(f"need lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={momentum}")
        if weight_bound is not None and not weight_bound > 0:
            raise ParameterError(f"weight_bound must be positive, got {weight_bound}")
        self.params = list(params)
        if clip_every < 1:
            raise ParameterError(f"clip_every must be at least 1, got {clip_every}")
        self.lr, self.momentum, self.weight_bound = float(lr), float(momentum), weight_bound
        self.clip_every, self.steps = int(clip_every), 0

    def step(self) -> None:
        for p in self.params:
            if p.grad is None:
                raise ParameterError("SGD.step() without gradients: run a backward pass first")
        grads = [p.grad for p in self.params]
        flat = _join([g for g in grads if g is not None])
        if self.momentum and self.params[0].velocity is not None:
            flat = _join([p.velocity for p in self.params if p.velocity is not None]) * self.momentum + flat
        if self.momentum:
            for p, v in zip(self.params, _split(flat, self.params)):
                p.velocity = v
        update = _split(flat * self.lr, self.params)   # one truncation round for every parameter
        new = [p.value - u for p, u in zip(self.params, update)]
        self.steps += 1
        due = self.steps % self.clip_every == 0      # a public schedule; the float reference clips alike
        if self.weight_bound is not None and due and any(t.bound > self.weight_bound for t in new):
            f = new[0].frac_bits   # the limit on the fixed-point grid, so the encoded limit is within the bound
            c = math.floor(float(self.weight_bound) * 2.0 ** f) / 2.0 ** f
            new = _split(_join(new).clip(-c, c), self.params)
        for p, t in zip(self.params, new):
            p.value, p.grad = t, None


def _join(tensors: Sequence[SharedTensor]) -> SharedTensor:
    """One flat tensor of all parameters (bound: the largest), to batch their rounds."""
    first = tensors[0]
    share = np.concatenate([t.share.reshape(-1) for t in tensors])
    return SharedTensor(first.party, share, first.frac_bits, max(t.bound for t in tensors))


def _split(flat: SharedTensor, params: Sequence[Parameter]) -> list[SharedTensor]:
    out, pos = [], 0
    for p in params:
        n = p.value.size
        out.append(SharedTensor(flat.party, flat.share[pos:pos + n].reshape(p.value.shape), flat.frac_bits,
                                flat.bound))
        pos += n
    return out
