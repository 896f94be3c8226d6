"""Fixed-point planning of a training run: every public bound, worst case, checked before step one (layer: ml).

Shared tensors carry public magnitude bounds and refuse an operation whose
result could leave the ring (:mod:`mpc.sharing.bounds`, :class:`mpc.RangeError`).
Training multiplies those bounds step after step: a weight's bound grows by
``lr * |velocity|`` each step, an activation's by the weights' and the
layer's width, a gradient by the batch. :func:`plan` replays that bound
arithmetic for the whole schedule (the same formulas the tensors apply, from
public values only) and raises :class:`~mpc.errors.RangeError` naming the
hyperparameter to change, *before* anything is shared, instead of failing in
epoch 7. It also refuses settings that would silently lose the training to
fixed-point underflow (a loss gradient ``1/B`` or an update ``lr * 2^-f``
below the resolution).

Bounds of one step (``x``: input bound, ``w``: weight bound, ``d_i``: layer
widths, ``B``: batch size, ``f``: fractional bits):

* forward, layer ``i``: ``a_i = h_{i-1} w d_{i-1} + w`` (each product
  checked before its truncation: ``bound 2^(2f) < 2^62``); ``relu`` keeps it,
  ``sigmoid`` gives 1;
* loss gradient ``g_L = (1 + 1e-3) / B + 2^-f``;
* backward, layer ``i``: ``dW_i = h_{i-1} g_i B``, ``g_{i-1} = g_i w d_i``
  (times 1/4 through a sigmoid);
* SGD: ``v = momentum v + G`` (``G``: the largest gradient bound),
  ``w <- w + lr v``, then clipped back to ``weight_bound`` if given, every
  ``clip_every`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from mpc.errors import ParameterError, RangeError
from mpc.sharing.bounds import TRUNC_BITS

SIGMOID_SLOPE = 0.25 + 1e-3


@dataclass
class Plan:
    """The worst-case public bounds of a training run (real units)."""

    steps: int
    weight: float                  # largest weight bound reached (before a clip)
    activation: float              # largest pre-activation bound
    gradient: float                # largest gradient bound
    product: float                 # largest product bound before truncation, as a fraction of the limit
    per_step_weights: list[float] = field(default_factory=list)


def _limit(frac_bits: int) -> float:
    return 2.0 ** (TRUNC_BITS - 2 * frac_bits)    # a product of two f-bit values, before truncation


def plan(sizes: Sequence[int], *, activation: str, input_bound: float, init_bound: float, lr: float,
         momentum: float, batch_size: int, steps: int, frac_bits: int,
         weight_bound: float | None, clip_every: int = 1) -> Plan:
    """Replay the bounds of ``steps`` SGD steps; RangeError naming the cause if one overflows.

    ``init_bound``: the largest initial weight (public). Returns the peaks.
    """
    f = frac_bits
    if batch_size < 1 or steps < 0:
        raise ParameterError(f"need batch_size >= 1 and steps >= 0, got {batch_size} and {steps}")
    if batch_size > 2.0 ** (f - 4):
        raise RangeError(f"batch size {batch_size}: the loss gradient 1/{batch_size} is below 16 units of "
                         f"2^-{f} and training would lose it to rounding; use batch_size <= {2 ** (f - 4)} "
                         "or more fractional bits (frac_bits=)")
    if lr * 2.0 ** f < 1.0:
        raise RangeError(f"learning rate {lr:g}: lr * 2^-{f} rounds to zero, so updates of small gradients "
                         "vanish; raise lr or use more fractional bits (frac_bits=)")
    if weight_bound is not None and init_bound > weight_bound:
        raise ParameterError(f"the initial weights reach {init_bound:.3g}, beyond weight_bound={weight_bound}")
    limit = _limit(f)
    w, v = init_bound, 0.0
    peaks = Plan(steps, w, 0.0, 0.0, 0.0)

    def product(value: float, what: str, step: int) -> float:
        if not value < limit:
            cause = (f"learning rate {lr:g} (momentum {momentum:g}) over {step} steps grows the weight bound to "
                     f"{w:.3g}; set weight_bound= (clipped weights) or lower lr"
                     if weight_bound is None and step else
                     f"weight bound {w:.3g} (weight_bound={weight_bound}, clip_every={clip_every}, lr {lr:g}, "
                     f"batch size {batch_size}); lower lr, clip_every, weight_bound, input_bound or frac_bits")
            raise RangeError(f"training step {step + 1}: {what} may reach {value:.3g}, beyond the "
                             f"{limit:.3g} a product allows at {f} fractional bits: {cause}")
        peaks.product = max(peaks.product, value / limit)
        return value

    for step in range(max(steps, 1)):
        hs = [float(input_bound)]
        for i, (d, _) in enumerate(zip(sizes[:-1], sizes[1:])):
            a = product(hs[-1] * w * d, f"layer {i + 1}'s product", step) + w + 2.0 ** -f
            peaks.activation = max(peaks.activation, a)
            last = i == len(sizes) - 2
            hs.append(a if last or activation == "relu" else 1.0 + 2.0 ** -10)
        g = (1.0 + 1e-3) / batch_size + 2.0 ** -f
        grad = 0.0
        for i in range(len(sizes) - 2, -1, -1):
            grad = max(grad, product(hs[i] * g * batch_size, f"layer {i + 1}'s weight gradient", step))
            if i:
                g = product(g * w * sizes[i + 1], f"the gradient into layer {i + 1}", step) + 2.0 ** -f
                if activation == "sigmoid":
                    g = product(g * SIGMOID_SLOPE, "a sigmoid's gradient", step) + 2.0 ** -f
        peaks.gradient = max(peaks.gradient, grad)
        if steps == 0:
            break
        v = momentum * v + grad if momentum else grad
        w = w + lr * v + 2.0 ** -f
        peaks.weight = max(peaks.weight, w)
        if weight_bound is not None and w > weight_bound and (step + 1) % clip_every == 0:
            w = weight_bound
        peaks.per_step_weights.append(w)
    return peaks
