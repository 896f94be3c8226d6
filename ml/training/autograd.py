"""Reverse-mode automatic differentiation on secret shares: a tape of secure operations (layer: ml).

A :class:`Tape` records, in order, every operation of a forward pass on
:class:`Var` objects (a :class:`~mpc.SharedTensor` value plus its gradient);
:meth:`Tape.backward` walks the record in reverse and applies each
operation's backward rule on shares. The tape is an explicit object (no
global state): one per training step, made by the party code.

Backward rules (``g``: the shared gradient of the output; every rule is
secure arithmetic on shares, nothing is opened):

===============  =========================================  =====================================
operation        forward                                    backward
===============  =========================================  =====================================
``a + b``        local                                      ``g`` (summed over broadcast axes)
``a - b``        local                                      ``g``, ``-g``
``a * b``        one Beaver product (+ truncation)          ``g * b``, ``g * a``: two Beaver
                                                            products (each + truncation)
``a * c``        ``c`` public                               ``g * c``
``a @ b``        Beaver matrix triple + truncation          ``g @ b.T``, ``a.T @ g``
``sum``/``mean`` local (mean: public ``1/n``)               broadcast of ``g`` (times ``1/n``)
``reshape``      local                                      reshape back
``patches``      im2col, local (convolution: with ``@``)    col2im (scatter-add), local
``transpose``    local                                      inverse permutation
``relu``         one comparison ``b = [x < 0]``             ``g * (1 - b)``: the forward's bit is
                 and ``x - b x`` in the same rounds         kept, one Beaver round, no truncation
``sigmoid``      :func:`mpc.sharing.approx.sigmoid`         ``g * s (1 - s)``: two products
``softmax_cross  :func:`mpc.sharing.approx.softmax` (k = 2:   ``(p - y) / B``: one public product
_entropy``       a sigmoid of ``z0 - z1``); the loss value
                 optional (log-sum-exp)
===============  =========================================  =====================================

Approximation error of the softmax cross-entropy gradient: the softmax
of :mod:`mpc.sharing.approx` is within 5e-5 of the exact one per element
(measured, ``python -m bench approx``), so each element of ``(p - y) / B``
is within ``5e-5 / B + 2^-f`` of the float gradient (the second term the
truncation of the product by ``1 / B``). ReLU and its gradient are exact (an
exact comparison); sigmoid is within 5e-5 and its derivative within
``1.5e-4``; every truncated product adds at most ``2^-f`` per output element
(stochastic rounding, unbiased).

Security: whatever :class:`~mpc.SharedTensor` gives (semi-honest, n - 1 of n
colluding with a trusted dealer or dealer-free preprocessing): the tape only
calls its operations; control flow depends on shapes and public bounds only.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from mpc.errors import ParameterError
from mpc.sharing.compare import ltz_shares
from mpc.sharing.tensor import SharedTensor, concatenate

from ..inference.layers import conv_output_size, im2col

Rule = Callable[[SharedTensor], None]


class Var:
    """A value on a tape: a shared tensor, and after :meth:`Tape.backward` its gradient ``grad``.

    Parameters and data are *leaves* (made by :meth:`Tape.leaf`); every
    operation on a :class:`Var` returns a new one recorded on the same tape.
    ``requires_grad=False`` leaves (the data) get no gradient.
    """

    __slots__ = ("value", "grad", "tape", "requires_grad", "aux")

    def __init__(self, value: SharedTensor, tape: "Tape", requires_grad: bool = True) -> None:
        self.value = value
        self.grad: SharedTensor | None = None
        self.tape = tape
        self.requires_grad = requires_grad
        self.aux: SharedTensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def __bool__(self) -> bool:
        raise TypeError("a secret-shared value has no truth value")

    def _accumulate(self, g: SharedTensor) -> None:
        if not self.requires_grad:
            return
        g = _unbroadcast(g, self.shape)
        self.grad = g if self.grad is None else self.grad + g

    # operators, as the module functions
    def __add__(self, other: "Var") -> "Var":
        return add(self, other)

    def __sub__(self, other: "Var") -> "Var":
        return sub(self, other)

    def __mul__(self, other: Any) -> "Var":
        return mul(self, other)

    def __matmul__(self, other: "Var") -> "Var":
        return matmul(self, other)

    def sum(self, axis: int | None = None) -> "Var":
        return reduce_sum(self, axis)

    def mean(self, axis: int | None = None) -> "Var":
        return mean(self, axis)

    def reshape(self, *shape: int) -> "Var":
        return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape)

    @property
    def T(self) -> "Var":
        return transpose(self)

    def relu(self) -> "Var":
        return relu(self)

    def sigmoid(self) -> "Var":
        return sigmoid(self)


class Tape:
    """The record of one forward pass: ``(output, rule)`` pairs in execution order."""

    def __init__(self) -> None:
        self._ops: list[tuple[Var, Rule]] = []
        self.losses: set[int] = set()

    def leaf(self, value: SharedTensor, requires_grad: bool = True) -> Var:
        if not isinstance(value, SharedTensor):
            raise ParameterError(f"a tape leaf must be a SharedTensor, got {type(value).__name__}")
        return Var(value, self, requires_grad)

    def record(self, out: SharedTensor, rule: Rule, *inputs: Var) -> Var:
        tape = inputs[0].tape
        for v in inputs[1:]:
            if v.tape is not tape:
                raise ParameterError("cannot combine values of different tapes")
        var = Var(out, self, any(v.requires_grad for v in inputs))
        if var.requires_grad:
            self._ops.append((var, rule))
        return var

    def backward(self, out: Var, grad: SharedTensor | None = None) -> None:
        """Propagate ``grad`` (d loss / d out, shared, the shape of ``out``) to every leaf.

        ``grad`` may be omitted for a loss node (:func:`softmax_cross_entropy`):
        its gradient is 1. The record is cleared: a tape serves one backward pass.
        """
        if grad is None:
            if id(out) not in self.losses:
                raise ParameterError("backward without an output gradient needs a loss node")
        elif grad.shape != out.shape:
            raise ParameterError(f"the output gradient has shape {grad.shape}, the output {out.shape}")
        out.grad = grad
        for var, rule in reversed(self._ops):
            if var is out or var.grad is not None:
                rule(var.grad)   # type: ignore[arg-type]
        self._ops.clear()
        self.losses.clear()


def _unbroadcast(g: SharedTensor, shape: tuple[int, ...]) -> SharedTensor:
    """Sum ``g`` over the axes a broadcast to its shape added or stretched from ``shape``."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape) if n == 1 and g.shape[extra + i] != 1)
    return g.sum(axis=axes).reshape(shape) if axes else g.reshape(shape)


# -- linear operations ------------------------------------------------------------------
def add(a: Var, b: Var) -> Var:
    def rule(g: SharedTensor) -> None:
        a._accumulate(g)
        b._accumulate(g)
    return a.tape.record(a.value + b.value, rule, a, b)


def sub(a: Var, b: Var) -> Var:
    def rule(g: SharedTensor) -> None:
        a._accumulate(g)
        b._accumulate(-g)
    return a.tape.record(a.value - b.value, rule, a, b)


def mul(a: Var, b: Any) -> Var:
    """``a * b``: ``b`` a :class:`Var` (a Beaver product) or a public number/array."""
    if isinstance(b, Var):
        def rule(g: SharedTensor) -> None:
            if a.requires_grad:
                a._accumulate(g * b.value)
            if b.requires_grad:
                b._accumulate(g * a.value)
        return a.tape.record(a.value * b.value, rule, a, b)
    c = np.asarray(b, dtype=np.float64)

    def public_rule(g: SharedTensor) -> None:
        a._accumulate(g * c)
    return a.tape.record(a.value * c, public_rule, a)


def matmul(a: Var, b: Var) -> Var:
    """``a @ b`` for 2-D shared matrices: backward ``g @ b.T`` and ``a.T @ g``."""
    if a.value.ndim != 2 or b.value.ndim != 2:
        raise ParameterError(f"matmul on the tape takes 2-D operands, got {a.shape} and {b.shape}")

    def rule(g: SharedTensor) -> None:
        if a.requires_grad:
            a._accumulate(g @ b.value.T)
        if b.requires_grad:
            b._accumulate(a.value.T @ g)
    return a.tape.record(a.value @ b.value, rule, a, b)


def reduce_sum(a: Var, axis: int | None = None) -> Var:
    def rule(g: SharedTensor) -> None:
        kept = g if axis is None else g.reshape(_kept_shape(a.shape, axis))
        a._accumulate(kept.broadcast_to(a.shape))
    return a.tape.record(a.value.sum(axis=axis), rule, a)


def mean(a: Var, axis: int | None = None) -> Var:
    count = a.value.size if axis is None else a.shape[axis]
    return mul(reduce_sum(a, axis), 1.0 / count)


def _kept_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    ax = axis % len(shape)
    return shape[:ax] + (1,) + shape[ax + 1:]


def reshape(a: Var, shape: tuple[int, ...]) -> Var:
    def rule(g: SharedTensor) -> None:
        a._accumulate(g.reshape(a.shape))
    return a.tape.record(a.value.reshape(shape), rule, a)


def transpose(a: Var, axes: tuple[int, ...] | None = None) -> Var:
    perm = tuple(reversed(range(a.value.ndim))) if axes is None else tuple(axes)
    inverse = tuple(np.argsort(perm))

    def rule(g: SharedTensor) -> None:
        a._accumulate(g.transpose(*inverse))
    return a.tape.record(a.value.transpose(*perm), rule, a)


def col2im(cols: np.ndarray, shape: tuple[int, ...], kh: int, kw: int, stride: int = 1,
           padding: int = 0) -> np.ndarray:
    """The adjoint of :func:`~ml.inference.layers.im2col`: patch rows added back to their pixels.

    Additions only (mod 2^64 on ring shares), so it maps each party's share of
    a gradient to its share of the input gradient.
    """
    b, c, h, w = shape
    hp, wp = h + 2 * padding, w + 2 * padding
    oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    index = np.arange(b * c * hp * wp).reshape(b, c, hp, wp)
    taps = im2col(index, kh, kw, stride, padding=0)            # the flat pixel of every patch entry
    out = np.zeros(b * c * hp * wp, dtype=cols.dtype)
    np.add.at(out, taps.reshape(-1), cols.reshape(b * oh * ow, c * kh * kw).reshape(-1))
    out = out.reshape(b, c, hp, wp)
    return out[:, :, padding:padding + h, padding:padding + w] if padding else out


def patches(a: Var, kh: int, kw: int, stride: int = 1, padding: int = 0) -> Var:
    """im2col of a shared ``(B, C, H, W)`` batch: rows of patches, ``(B H' W', C kh kw)``.

    With :func:`matmul`, :func:`reshape` and :func:`transpose` it makes a
    convolution; its backward rule is :func:`col2im` (local).
    """
    x = a.value
    if x.ndim != 4:
        raise ParameterError(f"patches need a (B, C, H, W) batch, got shape {x.shape}")
    cols = SharedTensor(x.party, im2col(x.share, kh, kw, stride, padding), x.frac_bits, x.bound)

    def rule(g: SharedTensor) -> None:
        a._accumulate(SharedTensor(g.party, col2im(g.share, x.shape, kh, kw, stride, padding), g.frac_bits,
                                   g.bound * kh * kw))
    return a.tape.record(cols, rule, a)


def conv2d(x: Var, weight: Var, bias: Var, stride: int = 1, padding: int = 0) -> Var:
    """Cross-correlation as PyTorch's ``conv2d``: ``x`` ``(B, C, H, W)``, ``weight`` ``(O, C, kh, kw)``, ``bias`` ``(O,)``."""
    o, c, kh, kw = weight.shape
    b, _, h, w = x.shape
    oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    out = patches(x, kh, kw, stride, padding) @ transpose(reshape(weight, (o, c * kh * kw))) + bias
    return transpose(reshape(out, (b, oh, ow, o)), (0, 3, 1, 2))


# -- nonlinear operations ------------------------------------------------------------------
def relu(a: Var) -> Var:
    """``max(a, 0)``; the comparison bit ``[a < 0]`` of the forward pass is kept for backward."""
    x = a.value
    party = x.party
    neg, (neg_x,) = ltz_shares(party, x.share, [x.share])
    out = SharedTensor(party, x.share - neg_x, x.frac_bits, x.bound)
    keep = np.uint64(0) - neg
    if party.id == 0:
        keep += np.uint64(1)
    positive = SharedTensor(party, keep, 0, 1.0)          # shared 0/1 integers: [a >= 0]

    def rule(g: SharedTensor) -> None:
        a._accumulate(g * positive)                       # integer factor: no truncation
    return a.tape.record(out, rule, a)


def sigmoid(a: Var) -> Var:
    """``1 / (1 + e^-a)`` (error < 5e-5); backward ``g * s * (1 - s)``."""
    s = a.value.sigmoid()

    def rule(g: SharedTensor) -> None:
        slope = (s * (1.0 - s)).assume_bound(0.25 + 1e-3)  # s (1 - s) <= 1/4, plus the approximation error
        a._accumulate(g * slope)
    return a.tape.record(s, rule, a)


def _softmax(z: SharedTensor) -> SharedTensor:
    """Softmax over the last axis; for two classes ``[sigmoid(z0 - z1), 1 - sigmoid(z0 - z1)]``
    (the same function, error < 5e-5 as well; about 2/3 of the rounds: no max, no exponent search)."""
    if z.shape[-1] != 2:
        return z.softmax(axis=-1)
    s = (z[:, 0:1] - z[:, 1:2]).sigmoid()
    return concatenate([s, (1.0 - s).assume_bound(s.bound)], axis=1)


def softmax_cross_entropy(logits: Var, onehot: SharedTensor, *, with_loss: bool = False) -> Var:
    """Mean softmax cross-entropy of a batch of logits ``(B, k)`` against shared one-hot labels.

    Returns the loss node: :meth:`Tape.backward` on it (no output gradient)
    gives the logits ``(p - y) / B``, one public product; its ``value`` is the
    loss ``-mean(sum(y log p))`` if ``with_loss`` (as log-sum-exp: one ``max``, ``exp``
    and ``log`` more; error below ``3e-5 + 5e-5 k``), else the
    probabilities ``p``. The probabilities are in :attr:`Var.aux`.
    """
    if logits.value.ndim != 2 or onehot.shape != logits.shape:
        raise ParameterError(f"softmax cross-entropy needs logits and one-hot labels of one (B, k) shape, "
                             f"got {logits.shape} and {onehot.shape}")
    p = _softmax(logits.value)
    value = p
    if with_loss:   # log-sum-exp form: -log p_y = max + log(sum exp(z - max)) - z_y, no log of a tiny p
        z = logits.value
        top = z.max(axis=1, keepdims=True)
        total = (z - top).exp().sum(axis=1)                  # in [1, k]
        picked = (z * onehot).sum(axis=1)                     # z_y (one-hot: exact, no truncation of note)
        value = (total.log() + top.reshape(-1) - picked).sum() * (1.0 / logits.shape[0])
    batch = logits.shape[0]

    def rule(g: SharedTensor | None) -> None:
        if g is not None:   # this rule is d loss / d logits itself: an incoming gradient would be dropped
            raise ParameterError("the softmax cross-entropy node must be the output of Tape.backward "
                                 "(no output gradient), not an input of further operations")
        diff = (p - onehot).assume_bound(1.0 + 1e-3)   # p in [0, 1] within 5e-5, y in {0, 1}
        logits._accumulate(diff * (1.0 / batch))
    node = logits.tape.record(value, rule, logits)   # type: ignore[arg-type]
    node.aux = p
    logits.tape.losses.add(id(node))
    return node
