"""Secret-shared inference: a model owner's weights and a data owner's inputs, both shared (layer: ml).

Party code :func:`private_predict` runs a :class:`~ml.inference.layers.Network`
on additive shares (:class:`mpc.SharedTensor`, fixed point in Z_2^64);
:func:`secure_predict` runs it for 2 or more parties in this process with
:func:`mpc.run`.

Protocol
--------
1. The model owner secret-shares all weights as one flat vector (one seed
   per other party); the data owner secret-shares its batch of inputs.
2. Layer by layer, on shares:

   * ``Dense``: ``H @ W + b``, a Beaver matrix triple (one round) and one
     truncation (one round);
   * ``Conv2d``: im2col on each party's share (local: copies and zero
     padding), then the same matrix product with the kernel as a matrix;
   * ``AvgPool2d``: window sums (local), times the public ``1/k^2`` (one
     truncation round); ``MaxPool2d``: windows (local), then a tournament
     of exact comparisons, ``ceil(log2 k^2)`` levels;
   * ``relu`` (exact comparison), ``sigmoid``/``tanh`` (approximations of
     :mod:`mpc.sharing.approx`, error < 5e-5), ``square`` (one product),
     polynomials (products with public coefficients).

3. The head: ``argmax`` over the scores (tournament of exact comparisons) or
   ``score > 0``; or ``softmax``/``sigmoid`` probabilities; or the scores.
4. Only the result is opened, to the data owner by default.

Inputs are processed ``batch_size`` rows at a time; every batch reuses the
weight shares.

Security
--------
Semi-honest, any ``n - 1`` parties colluding (dishonest majority), given the
preprocessing source (the trusted dealer by default: it knows every triple
and mask, a trusted third party that must not collude). Every message a party
receives is a seed, a share or a value masked by fresh preprocessing, so the
model owner's view is independent of the inputs and the data owner's view of
the weights, apart from the opened result and the weight norms below (tested
in ``tests/ml/inference/test_inference_views.py``). Public: the architecture (layer kinds,
shapes, activations, head), the number of inputs and the batch size (message
shapes and rounds show both), and the bounds that keep every layer in the
fixed-point range: ``input_bound`` (declared) and, announced by the model
owner, ``max |w|`` and per layer the largest absolute column sum of ``W`` and
``max |b|``, each rounded up to 3 significant bits (known within 25%). The data owner learns
the label (or what ``output`` asks for), which, over many queries, is what
model-extraction attacks use; returning labels only limits that.

Cost
----
Per batch of ``B`` rows, ``n`` parties, 8-byte elements, ``L`` = 0, 1, 2, 3
carry-save layers for n = 2..5; bytes sent by each party to each other party:

* ``Dense d -> k``: 2 rounds, ``8 (B d + d k) + 8 B k``;
* ``relu`` on ``m`` values: ``L + 8`` rounds, about ``(16 L + 63) m``;
* ``argmax`` over ``k`` scores: ``ceil(log2 k) (L + 8)`` rounds (tournament),
  or ``L + 8 + ceil(log2(k - 1))`` (``argmax="pairwise"``, more bytes);
* ``sigmoid``/``tanh``: ``L + 40`` rounds; ``softmax``: see ``docs/nonlinear.md``.

For the 64-32-10 ReLU MLP with two parties: 2 + 2 + 8 + 2 + 4 * 8 = 46
rounds per batch plus sharing and the output (47 measured); 27 with the
pairwise argmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

import mpc
from mpc.errors import ParameterError
from mpc.sharing.bounds import coarse, is_coarse
from mpc.sharing.compare import argmax_pairwise
from mpc.sharing.tensor import SharedTensor, concatenate

from .convert import to_network
from .layers import (Activation, AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Network, Polynomial,
                     im2col)

if TYPE_CHECKING:
    from mpc.party import Party

OUTPUTS = ("label", "scores", "proba")
ARGMAX = ("tournament", "pairwise")


def skeleton(network: Network) -> Network:
    """The public part of ``network``: same layers and shapes, every weight zero.

    Parties other than the model owner run :func:`private_predict` with it.
    """
    layers = []
    for layer in network.layers:
        if isinstance(layer, Dense):
            layer = Dense(np.zeros_like(layer.weight), np.zeros_like(layer.bias))
        elif isinstance(layer, Conv2d):
            layer = Conv2d(np.zeros_like(layer.weight), np.zeros_like(layer.bias), layer.stride, layer.padding)
        layers.append(layer)
    return Network(network.input_shape, tuple(layers), network.head, network.name)


def _flat_weights(network: Network) -> np.ndarray:
    parts = [np.concatenate([layer.weight.reshape(-1), layer.bias]) for layer in network.layers
             if isinstance(layer, (Dense, Conv2d))]
    return np.concatenate(parts) if parts else np.zeros(0)


def _weight_bounds(network: Network, frac_bits: int) -> np.ndarray:
    """The public bounds the model owner announces, each rounded up to 3 significant bits:
    ``max |w|`` over all weights, then per layer with weights its gain (the largest
    absolute column sum of its matrix: ``|h @ W| <= max|h| * gain``) and ``max |b|``."""
    flat = _flat_weights(network)
    out = [coarse(float(np.max(np.abs(flat), initial=0.0)), frac_bits)]
    for layer in network.layers:
        if isinstance(layer, (Dense, Conv2d)):
            w = layer.weight if isinstance(layer, Dense) else layer.weight.reshape(layer.weight.shape[0], -1).T
            out.append(coarse(float(np.max(np.abs(w).sum(axis=0), initial=0.0)), frac_bits))
            out.append(coarse(float(np.max(np.abs(layer.bias), initial=0.0)), frac_bits))
    return np.asarray(out, dtype=np.float64)


def _received_weight_bounds(party: Party, owner: int, arrays: tuple[np.ndarray, ...], count: int) -> np.ndarray:
    ok = len(arrays) == 1 and arrays[0].dtype == np.float64 and arrays[0].shape == (count,)
    if not ok or not all(is_coarse(float(v)) for v in arrays[0]):
        raise ParameterError(f"party {party.id}: malformed weight bounds from the model owner {owner}")
    return arrays[0]


def share_weights(party: Party, network: Network, owner: int) -> list[tuple[SharedTensor, SharedTensor, float] | None]:
    """Every party's shares of the weights (``None`` for layers without any), one round.

    Each entry is ``(W, b, gain)``. The model owner also announces public
    bounds, each rounded up to 3 significant bits (so they reveal these
    norms within 25%, nothing else): ``max |w|``, and per layer the gain
    ``max_j sum_i |W_ij|`` and ``max |b|``. They let every party bound each layer's output
    (``|h @ W + b| <= max|h| gain + max|b|``) and refuse an overflow before it
    happens (:class:`mpc.RangeError`).
    """
    count = 1 + 2 * sum(isinstance(layer, (Dense, Conv2d)) for layer in network.layers)
    tag = party.fresh("weights/bounds")
    if party.id == owner:
        announced = _weight_bounds(network, party.fixed.frac_bits)
        party.send_many(list(party.peers), tag, announced)
    else:
        announced = _received_weight_bounds(party, owner, party.recv(owner, tag), count)
    flat = mpc.share(party, _flat_weights(network) if party.id == owner else None, owner,
                     bound=float(announced[0]))
    if flat.shape != (network.n_params,):
        raise ParameterError(f"party {party.id}: the model owner shared {flat.shape} weights; the "
                             f"architecture has {network.n_params}")
    out: list[tuple[SharedTensor, SharedTensor, float] | None] = []
    pos, k = 0, 1
    for layer in network.layers:
        if isinstance(layer, (Dense, Conv2d)):
            w_size, b_size = layer.weight.size, layer.bias.size
            shape = layer.weight.shape if isinstance(layer, Dense) else (layer.weight.shape[0], -1)
            w = flat[pos:pos + w_size].reshape(shape)
            if isinstance(layer, Conv2d):
                w = w.T  # (C kh kw, O), as Conv2d.matrix
            b = flat[pos + w_size:pos + w_size + b_size].assume_bound(float(announced[k + 1]))
            pos += w_size + b_size
            out.append((w, b, float(announced[k])))
            k += 2
        else:
            out.append(None)
    return out


def _polynomial(x: SharedTensor, poly: Polynomial) -> SharedTensor:
    """``sum c_i x^i`` with public coefficients: powers by products, then a public combination."""
    coeffs = np.asarray(poly.coefficients, dtype=np.float64)
    out = None
    power = None
    for i in range(1, poly.degree + 1):
        power = x if power is None else power * x
        if coeffs[i] != 0.0:
            term = power * float(coeffs[i])
            out = term if out is None else out + term
    if out is None:  # a constant
        return x * 0 + float(coeffs[0])
    return out + float(coeffs[0])


def _activation(x: SharedTensor, layer: Activation) -> SharedTensor:
    f = layer.function
    if isinstance(f, Polynomial):
        return _polynomial(x, f)
    if f == "relu":
        return x.relu()
    if f == "sigmoid":
        return x.sigmoid()
    if f == "tanh":
        return x.tanh()
    if f == "square":
        return x * x
    return x


def forward(network: Network, weights: Sequence[tuple[SharedTensor, SharedTensor, float] | None],
            x: SharedTensor) -> SharedTensor:
    """Shared scores of the shared batch ``x`` of shape ``(B, *input_shape)``.

    Each layer's output bound is ``max|h| * gain + max|b|`` from the model
    owner's announced bounds (see :func:`share_weights`).
    """
    h = x
    for layer, wb in zip(network.layers, weights):
        if isinstance(layer, Dense):
            w, b, gain = wb  # type: ignore[misc]
            h = h.dot(w, bound=h.bound * gain) + b
        elif isinstance(layer, Conv2d):
            w, b, gain = wb  # type: ignore[misc]
            o, _, kh, kw = layer.weight.shape
            _, oh, ow = layer.out_shape(h.shape[1:])
            cols = SharedTensor(h.party, im2col(h.share, kh, kw, layer.stride, layer.padding), h.frac_bits,
                                h.bound)
            h = (cols.dot(w, bound=h.bound * gain) + b).reshape(h.shape[0], oh, ow, o).transpose(0, 3, 1, 2)
        elif isinstance(layer, AvgPool2d):
            h = SharedTensor(h.party, layer.window_sum(h.share), h.frac_bits,
                             h.bound * layer.size ** 2) * (1.0 / layer.size ** 2)
        elif isinstance(layer, MaxPool2d):
            _, oh, ow = layer.out_shape(h.shape[1:])
            win = SharedTensor(h.party, layer.windows(h.share), h.frac_bits, h.bound)
            h = win.max(axis=1).reshape(h.shape[0], h.shape[1], oh, ow)
        elif isinstance(layer, Flatten):
            h = h.reshape(h.shape[0], -1)
        else:
            h = _activation(h, layer)
    return h


def _head(scores: SharedTensor, head: str, output: str, argmax: str) -> SharedTensor:
    if output == "scores":
        return scores
    if head == "sigmoid":
        return scores[:, 0] > 0 if output == "label" else scores[:, 0].sigmoid()
    if output == "proba":
        return scores.softmax(axis=-1)
    return argmax_pairwise(scores) if argmax == "pairwise" else scores.argmax(axis=1)


def private_predict(party: Party, network: Network, X: np.ndarray | None = None, *,
                    model_owner: int = 0, data_owner: int = 1, output: str = "label",
                    reveal_to: int | Sequence[int] | None = None,
                    batch_size: int = 256, argmax: str = "tournament",
                    input_bound: float | str | None = None) -> np.ndarray | None:
    """Party code: predictions on the data owner's ``X`` with the model owner's ``network``.

    Every party calls it; the model owner passes its network, the others its
    :func:`skeleton`; the data owner passes ``X``, the others None. Returns
    the opened ``output`` (``"label"``, ``"scores"`` or ``"proba"``) at the
    parties in ``reveal_to`` (default: the data owner), None elsewhere.
    ``argmax``: ``"tournament"`` (fewest comparisons: throughput) or
    ``"pairwise"`` (fewest rounds: latency), see
    :func:`mpc.sharing.compare.argmax_pairwise`.
    ``input_bound``: the public bound of ``|X|`` (as :func:`mpc.share`; every
    party passes the same; None: the session's input bound). A layer whose
    output bound could overflow is refused with :class:`mpc.RangeError`.
    """
    if output not in OUTPUTS:
        raise ParameterError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
    if argmax not in ARGMAX:
        raise ParameterError(f"unknown argmax {argmax!r}; choose one of {', '.join(ARGMAX)}")
    if model_owner == data_owner:
        raise ParameterError("the model owner and the data owner must be different parties")
    for role, pid in (("model owner", model_owner), ("data owner", data_owner)):
        if not 0 <= pid < party.n:
            raise ParameterError(f"{role} {pid} out of range: parties are 0..{party.n - 1}")
    if batch_size < 1:
        raise ParameterError("batch_size must be at least 1")
    with party.scope("inference"):
        weights = share_weights(party, network, model_owner)
        data = None
        if party.id == data_owner:
            if X is None:
                raise ParameterError(f"party {party.id} is the data owner but passed no inputs")
            data = network._check_input(np.asarray(X))
            # A sanity bound: with weights |w| <= 1 any larger input overflows a product (the
            # weights are secret here; larger ones lower the true limit).
            limit = 2.0 ** (62 - 2 * party.fixed.frac_bits)
            peak = float(np.max(np.abs(data), initial=0.0))
            if peak >= limit:
                raise ParameterError(f"party {party.id}: an input reaches {peak:.3g}; products of shared "
                                     f"values must stay below 2^{62 - 2 * party.fixed.frac_bits} "
                                     f"(frac_bits={party.fixed.frac_bits}), so this overflows even for "
                                     "weights of 1: scale the inputs as the model expects")
        xs = mpc.share(party, data, data_owner, bound=input_bound)
        if xs.shape[1:] != network.input_shape or xs.shape[0] < 1:
            raise ParameterError(f"party {party.id}: shared inputs of shape {xs.shape} do not fit the "
                                 f"network's input shape {network.input_shape}")
        outs = [_head(forward(network, weights, xs[s:s + batch_size]), network.head, output, argmax)
                for s in range(0, xs.shape[0], batch_size)]
        result = outs[0] if len(outs) == 1 else concatenate(outs)
        return result.reveal(to=data_owner if reveal_to is None else reveal_to)


@dataclass
class SecureInference:
    """What :func:`secure_predict` returns: the data owner's outputs and the measured cost."""

    outputs: np.ndarray
    cost: mpc.Cost
    parties: int

    @property
    def seconds(self) -> float:
        return self.cost.seconds


def secure_predict(network: Network | Any, X: np.ndarray, *, parties: int = 2, model_owner: int = 0,
                   data_owner: int = 1, output: str = "label", batch_size: int = 256,
                   frac_bits: int = 16, latency: float = 0.0, timeout: float = 120.0,
                   argmax: str = "tournament", input_bound: float | str | None = None,
                   preprocessing: Any = "dealer") -> SecureInference:
    """Run :func:`private_predict` for ``parties`` parties in this process.

    ``preprocessing``: as :func:`mpc.run` (``"dealer"``, the trusted dealer, by
    default; ``"ot"`` or ``"he"`` dealer-free for two parties).

    ``network``: a :class:`Network` or any model :func:`~ml.inference.convert.to_network` accepts.

    Parties other than the two owners are helpers without inputs (e.g. a
    third server of an outsourced deployment); each holds only shares.
    """
    network = to_network(network)  # a Network as is; supported sklearn / ml.models models converted
    public = skeleton(network)
    nets = [network if i == model_owner else public for i in range(parties)]
    res = mpc.run(_program, parties, inputs=list(zip(nets, [X if i == data_owner else None
                                                             for i in range(parties)])),
                  kwargs={"model_owner": model_owner, "data_owner": data_owner, "output": output,
                          "batch_size": batch_size, "argmax": argmax, "input_bound": input_bound},
                  frac_bits=frac_bits, latency=latency, timeout=timeout, preprocessing=preprocessing)
    return SecureInference(res.outputs[data_owner], res.cost, parties)


def _program(party: Party, given: tuple[Network, np.ndarray | None], **kwargs: Any) -> np.ndarray | None:
    network, X = given
    return private_predict(party, network, X, **kwargs)
