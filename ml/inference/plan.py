"""Compile a network for CKKS: affine maps, squares and polynomials, depth and parameters (layer: ml).

:func:`compile_network` turns a :class:`~ml.inference.layers.Network` into an
:class:`HEPlan` that :mod:`ml.inference.ckks` evaluates on ciphertexts:

1. consecutive linear layers (dense, convolution, average pooling, flatten,
   identity and degree-1 activations) merge into one affine map ``A x + c``
   (a convolution or a pooling becomes its matrix on the flattened input);
2. a degree-2 activation ``a z^2 + b z + c0 = a (z + b/2a)^2 + (c0 - b^2/4a)``
   becomes one square (one level): the shift goes into the previous bias,
   scale and offset into the next map; higher degrees use ``polyval``
   (``d.bit_length()`` levels); ``relu``, ``sigmoid``, ``tanh`` need a
   polynomial stand-in (:func:`fit_polynomial`) and ``MaxPool2d`` is refused;
3. the depth fixes the parameters: the smallest ring whose
   HomomorphicEncryption.org 128-bit bound holds ``[s + 14, s x depth, s + 14]``
   with a scale ``2^s``, ``36 <= s <= 40`` (depth 3: N = 8192, 218 bits);
4. for the vector layout (one input per ciphertext) every vector carries a
   constant slot equal to 1, so each map is one ``(out+1, in+1)`` matrix, and
   the vector is repeated along the slots (period ``in+1``); each matrix
   becomes its ``in+1`` generalised diagonals (:func:`vector_diagonals`),
   evaluated baby-step giant-step, whose output comes out repeated as far as
   the next map reads it: no extra rotation, no mask, one level per map. The
   client lays its input out in blocks (:func:`vector_input`) so that the first
   map packs many diagonals into each plaintext product.

Pure numpy: no keys, no ciphertexts. :meth:`HEPlan.forward_plain` evaluates
the plan in float64, which tests compare with the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

import numpy as np

from mpc.errors import ParameterError
from mpc.he import CKKSParams
from mpc.he.ckks import Diagonals
from mpc.he.params import MAX_COEFF_MODULUS_BITS

from .layers import Activation, AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Network, Polynomial, \
    UnsupportedModelError

INTEGER_BITS = 13  # decrypted values and the last level's values stay below 2^13 in magnitude
MIN_SCALE_BITS = 36  # below, errors reach 1e-3 on values near 1 (measured at 2^31)


# -- planning ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Affine:
    """``y = A @ x + c`` on one example's flattened values."""

    matrix: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class Square:
    """Elementwise ``x * x`` (one level)."""


@dataclass(frozen=True)
class PolyEval:
    """Elementwise polynomial (``d.bit_length()`` levels)."""

    coefficients: tuple[float, ...]


Stage = Union[Affine, Square, PolyEval]
LAYOUTS = ("vector", "batch")


@dataclass(frozen=True)
class HERequirements:
    """What the client needs to know: public, no weights."""

    params: CKKSParams
    layout: str
    input_length: int  # features per input
    max_length: int  # vector layout: longest stage input with its constant slot
    n_scores: int
    head: str
    depth: int
    architecture: tuple[str, ...] = ()
    rotation_steps: tuple[int, ...] = ()  # vector layout: the EncryptedVector.rotate steps (Galois keys)
    input_blocks: int = 1  # vector layout: how the client lays out its input (vector_input)
    input_bound: tuple[float, ...] | None = None  # |x_j| <= input_bound[j] per feature (client checks)


@dataclass(frozen=True)
class HEPlan:
    """The server's compiled network."""

    stages: tuple[Stage, ...]
    requirements: HERequirements
    reference: Network = field(repr=False)
    matrices: tuple[np.ndarray | None, ...] = field(default=(), repr=False)  # vector layout, per stage
    diagonals: tuple[Diagonals | None, ...] = field(default=(), repr=False)  # vector layout, per stage
    value_bound: float | None = None  # worst case |value| over all stages, for inputs within input_bound

    def forward_plain(self, X: np.ndarray) -> np.ndarray:
        """The plan evaluated in float64 on a batch (what CKKS approximates)."""
        return self._stages_plain(X)[-1]

    def peak_value(self, X: np.ndarray) -> tuple[float, int]:
        """The largest ``|value|`` the plan computes on the batch ``X``, and the stage (-1: input)."""
        values = self._stages_plain(X)
        peaks = [float(np.max(np.abs(v), initial=0.0)) for v in values]
        k = int(np.argmax(peaks))
        return peaks[k], k - 1

    def _stages_plain(self, X: np.ndarray) -> list[np.ndarray]:
        h = self.reference._check_input(np.asarray(X)).reshape(len(X), -1)
        out = [h]
        for st in self.stages:
            if isinstance(st, Affine):
                h = h @ st.matrix.T + st.bias
            elif isinstance(st, Square):
                h = h * h
            else:
                h = np.polynomial.polynomial.polyval(h, np.asarray(st.coefficients))
            out.append(h)
        return out


def fit_polynomial(name: str, degree: int, bound: float, points: int = 512) -> Polynomial:
    """Least-squares polynomial of ``degree`` for ``relu``, ``sigmoid`` or ``tanh`` on ``[-bound, bound]``.

    Chebyshev nodes weight the interval ends; outside the interval the
    polynomial diverges, so ``bound`` must cover the pre-activations.
    """
    fns: dict[str, Any] = {"relu": lambda z: np.maximum(z, 0.0), "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),
           "tanh": np.tanh}
    if name not in fns:
        raise UnsupportedModelError(f"no polynomial fit for activation {name!r}; choose from {', '.join(fns)}")
    if degree < 1 or not bound > 0:
        raise ParameterError("fit_polynomial needs degree >= 1 and bound > 0")
    z = bound * np.cos(np.pi * (np.arange(points) + 0.5) / points)
    coeffs = np.polynomial.polynomial.polyfit(z, fns[name](z), degree)
    return Polynomial(tuple(float(c) for c in coeffs), name)


def _linear_matrix(layer, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(A, c)`` with ``layer(x).ravel() = A @ x.ravel() + c`` for one example."""
    if isinstance(layer, Dense):
        return layer.weight.T, layer.bias
    n = int(np.prod(in_shape))
    if isinstance(layer, Flatten):
        return np.eye(n), np.zeros(n)
    basis = np.eye(n).reshape(n, *in_shape)
    c = layer.forward(np.zeros((1, *in_shape))).reshape(-1)
    return (layer.forward(basis).reshape(n, -1) - c).T, c


def _polynomial_of(layer: Activation, approximate: Mapping[str, Polynomial]) -> Polynomial | None:
    """The polynomial an activation is evaluated as, or None for the identity."""
    f = layer.function
    if isinstance(f, Polynomial):
        return f
    if f == "identity":
        return None
    if f == "square":
        return Polynomial((0.0, 0.0, 1.0), "square")
    if f in approximate:
        poly = approximate[f]
        if not isinstance(poly, Polynomial):
            raise ParameterError(f"approximate[{f!r}] must be a Polynomial (see fit_polynomial)")
        return poly
    raise UnsupportedModelError(
        f"CKKS cannot evaluate activation {f!r}: it evaluates only additions and products. Train "
        f"with 'square' (or a polynomial), or pass approximate={{{f!r}: fit_polynomial({f!r}, 2, bound)}} "
        "with a bound covering the pre-activations")


def _params_for(depth: int) -> CKKSParams:
    """The smallest ring whose 128-bit bound fits ``depth`` levels at a scale of at least 2^36.

    Primes ``[s + 14, s x depth, s + 14]``: results below 2^13 in magnitude.
    """
    for n in (8192, 16384, 32768):
        bound = MAX_COEFF_MODULUS_BITS[n]
        scale = min(40, (bound - 2 * (INTEGER_BITS + 1)) // (depth + 2))
        if scale >= MIN_SCALE_BITS:
            first = scale + INTEGER_BITS + 1
            return CKKSParams(n, (first,) + (scale,) * depth + (first,), scale)
    raise ParameterError(f"a CKKS circuit of depth {depth} does not fit the 128-bit table at "
                         f"N <= 32768 with a scale of 2^{MIN_SCALE_BITS}; use fewer or lower-degree layers")


def _items(network: Network, approximate: Mapping[str, Polynomial]) -> list:
    """Affine maps ``(A, c)`` (consecutive linear layers merged) and polynomials, alternating."""
    items: list = []
    for layer, shape in zip(network.layers, network.shapes):
        n = int(np.prod(shape))
        if isinstance(layer, MaxPool2d):
            raise UnsupportedModelError(
                "CKKS cannot evaluate layer MaxPool2d (a maximum needs comparisons, CKKS only adds and "
                "multiplies); use AvgPool2d, or secret sharing (ml.inference.secure)")
        if isinstance(layer, (Dense, Conv2d, AvgPool2d, Flatten)):
            A, c = _linear_matrix(layer, shape)
        else:
            poly = _polynomial_of(layer, approximate)
            if poly is None:
                continue
            if poly.degree >= 2:
                if not items or not isinstance(items[-1], tuple):
                    items.append((np.eye(n), np.zeros(n)))
                items.append(poly)
                continue
            c0, c1 = (tuple(poly.coefficients) + (0.0, 0.0))[:2]  # affine: merge
            A, c = c1 * np.eye(n), np.full(n, c0)
        if items and isinstance(items[-1], tuple):
            A0, c0v = items[-1]
            A, c = A @ A0, A @ c0v + c
            items[-1] = (A, c)
        else:
            items.append((A, c))
    if not isinstance(items[-1], tuple):
        n = int(np.prod(network.shapes[-1]))
        items.append((np.eye(n), np.zeros(n)))
    return items


def _stages(items: list) -> list[Stage]:
    """Degree-2 polynomials ``a z^2 + b z + c0 = a (z + b/2a)^2 + (c0 - b^2/4a)`` as one square:
    the shift goes into the previous bias, scale and offset into the next map."""
    stages: list[Stage] = []
    pending: tuple[float, float] | None = None  # the next map sees a * u + t
    for item in items:
        if isinstance(item, tuple):
            A, c = item
            if pending is not None:
                a, t = pending
                A, c = a * A, A @ np.full(A.shape[1], t) + c
                pending = None
            stages.append(Affine(A, c))
        elif item.degree == 2:
            c0, b, a = (tuple(item.coefficients) + (0.0,) * 3)[:3]
            prev = stages[-1]
            stages[-1] = Affine(prev.matrix, prev.bias + b / (2.0 * a))  # type: ignore[union-attr]
            stages.append(Square())
            pending = (a, c0 - b * b / (4.0 * a))
        else:
            stages.append(PolyEval(tuple(float(x) for x in item.coefficients[:item.degree + 1])))
    return stages


def _levels(stage: Stage) -> int:
    """Levels a stage uses: 1 for a matrix product or a square, ``d.bit_length()`` for ``polyval``."""
    if isinstance(stage, PolyEval):
        return Polynomial(stage.coefficients).degree.bit_length()
    return 1


def _constant_input(coefficients: tuple[float, ...]) -> float:
    """A value k for the constant slot with |p(k)| well away from 0 (the next map divides by it)."""
    cands = np.array([1.0, 0.5, 2.0, -1.0, -0.5, 1.5])
    vals = np.abs(np.polynomial.polynomial.polyval(cands, coefficients))
    best = int(np.argmax(vals))
    if vals[best] < 1e-3:
        raise ParameterError(f"polynomial {coefficients} is almost zero near 1; cannot carry the bias slot")
    return float(cands[best])


def _vector_matrices(stages: list[Stage]) -> list[np.ndarray | None]:
    """Vector layout: every vector carries a constant slot, so each map is one ``(out+1, in+1)`` matrix.

    The constant slot enters an activation as ``k`` and leaves as ``p(k)``
    (1 for a square); the next matrix divides its constant column by that.
    """
    out: list[np.ndarray | None] = []
    carried = out_const = 1.0
    for i, st in enumerate(stages):
        if not isinstance(st, Affine):
            out.append(None)
            if isinstance(st, PolyEval):
                carried = float(np.polynomial.polynomial.polyval(out_const, st.coefficients))
            continue
        nxt = stages[i + 1] if i + 1 < len(stages) else None
        out_const = _constant_input(nxt.coefficients) if isinstance(nxt, PolyEval) else 1.0
        A, c = st.matrix, st.bias
        M = np.zeros((A.shape[0] + 1, A.shape[1] + 1))
        M[:-1, :-1] = A
        M[:-1, -1] = c / carried
        M[-1, -1] = out_const / carried
        out.append(M)
        carried = 1.0
    return out


def vector_input(x: np.ndarray, slots: int, blocks: int = 1) -> np.ndarray:
    """The client's slot vector for one input ``x`` (with its constant slot) of the vector layout:
    ``blocks`` blocks of ``slots / blocks`` slots, block ``p`` holding ``x`` rotated left by
    ``p`` and repeated (``blocks = 1``: ``x`` repeated along all the slots)."""
    x = np.asarray(x, dtype=np.float64)
    width = slots // blocks
    return np.concatenate([np.resize(np.roll(x, -p), width) for p in range(blocks)])


def _blocks(n: int, reach: int, slots: int) -> int:
    """Input blocks for a first map of ``n`` inputs whose blocks need ``reach`` slots each."""
    blocks = 1
    while 2 * blocks <= n and slots // (2 * blocks) >= reach:
        blocks *= 2
    return blocks


def _diagonal_rows(M: np.ndarray, R: int) -> np.ndarray:
    """``D[i, j] = M[j mod m, (j + i) mod n]`` for ``j < R``: the generalised diagonals."""
    m, n = M.shape
    j = np.arange(R)
    return M[(j % m)[None, :], (j[None, :] + np.arange(n)[:, None]) % n]


def _first_map(M: np.ndarray, R: int, slots: int, blocks: int) -> Diagonals:
    """The first map on the client's block layout: ``d_{Pq+p}`` in block ``p`` of the ``q``-th
    plaintext, rotation by ``Pq``, then a fold of the blocks (every block gets the output)."""
    D = _diagonal_rows(M, R)
    width = slots // blocks
    packed: dict[int, np.ndarray] = {}
    for i in range(M.shape[1]):
        q, p = divmod(i, blocks)
        packed.setdefault(blocks * q, np.zeros(slots))[p * width:p * width + R] = D[i]
    return Diagonals(packed, slots, fold=width if blocks > 1 else 0)


def vector_diagonals(matrices: list[np.ndarray | None],
                     slots: int) -> tuple[list[Diagonals | None], int]:
    """Each ``(m, n)`` matrix as slot diagonals for a vector repeated along the slots, and the
    number of input blocks the client lays out (:func:`vector_input`).

    With the input ``x`` repeated (``z[j] = x[j mod n]`` for ``j < R + n - 1``),
    ``d_i[j] = M[j mod m, (j + i) mod n]`` for ``j < R`` (0 beyond) gives
    ``sum_i d_i * roll(z, -i) = (M x)[j mod m]`` for ``j < R``: the output comes
    out repeated over the ``R`` slots the next map reads (``R = m`` for the
    last map, else the next map's ``R + n - 1``), and zero past them.

    The first map reads the client's layout, which is free to arrange: ``P``
    blocks of ``B = slots / P >= R + n - 1`` slots, block ``p`` holding ``x``
    rotated by ``p``; one product then serves ``P`` diagonals (``d_{Pq+p}`` in
    block ``p``, rotation by ``Pq``), and a fold adds the blocks
    (``log2 P`` rotations): ``ceil(n / P)`` products instead of ``n``.

    The last map's diagonals are zero past its ``m`` outputs, so the
    decrypted reply holds the scores and the constant slot (repeated in every
    block if the first map is the last), zeros (CKKS noise) elsewhere: the
    client learns nothing else of the model. (A last
    map as rows in blocks plus a window sum would save rotations but leave
    partial sums of weights times hidden values in the other slots.)
    """
    out: list[Diagonals | None] = [None] * len(matrices)
    aff = [k for k, M in enumerate(matrices) if M is not None]
    reach, blocks = None, 1
    for k in reversed(aff):
        M = matrices[k]
        m, n = M.shape  # type: ignore[union-attr]
        R = m if reach is None else reach
        reach = R + n - 1
        if reach > slots:
            raise ParameterError(f"the vector layout needs {reach} slots for a map of {n} inputs; a ciphertext "
                                 f"has {slots}: use layout='batch'")
        if k == aff[0]:
            blocks = _blocks(n, reach, slots)
            out[k] = _first_map(M, R, slots, blocks)  # type: ignore[arg-type]
        else:
            full = np.zeros((n, slots))
            full[:, :R] = _diagonal_rows(M, R)  # type: ignore[arg-type]
            out[k] = Diagonals({i: full[i] for i in range(n) if np.any(full[i])}, slots)
    return out, blocks


def value_bound(stages: list[Stage] | tuple[Stage, ...], input_bound: Any) -> tuple[float, int]:
    """Worst-case ``|value|`` over every stage for inputs with ``|x_j| <= input_bound[j]`` (a
    scalar bounds every feature), and the stage reaching it (interval arithmetic: ``|A| b + |c|``,
    ``b^2``, ``sum |c_i| b^i``)."""
    b: np.ndarray | None = None
    bound = np.asarray(input_bound, dtype=np.float64)
    worst, where = float(np.max(bound)), -1
    for i, st in enumerate(stages):
        if isinstance(st, Affine):
            b = np.abs(st.matrix) @ (np.broadcast_to(bound, (st.matrix.shape[1],)) if b is None else b)
            b = b + np.abs(st.bias)
        elif isinstance(st, Square):
            b = b * b  # type: ignore[operator]
        else:
            b = np.polynomial.polynomial.polyval(b, np.abs(np.asarray(st.coefficients)))  # type: ignore[arg-type]  # b is set: a plan starts with an affine stage
        peak = float(np.max(b))  # type: ignore[arg-type]
        if peak > worst:
            worst, where = peak, i
    return worst, where


def compile_network(network: Network, approximate: Mapping[str, Polynomial] | None = None,
                    layout: str = "vector", input_bound: Any = None) -> HEPlan:
    """Compile ``network`` for CKKS (see the module docstring); refuses what CKKS cannot evaluate.

    ``layout="vector"``: one input per ciphertext (repeated along the slots),
    matrices by the diagonal method, baby-step giant-step (about
    ``2 sqrt(n)`` rotations for ``n`` inputs). ``layout="batch"``: one *feature* per ciphertext, inputs in the
    slots (up to N/2 per ciphertext, more are split), matrices as sums of
    ciphertext-times-scalar products; no rotation keys.

    ``input_bound``: if given (one bound for every feature, or one per
    feature), the worst case of every intermediate value for
    inputs with ``|x| <= input_bound`` is bounded by interval arithmetic, and
    a plan whose values could reach ``params.max_abs_value`` (2^13: beyond it
    CKKS results decrypt to garbage, silently) is refused, naming the stage.
    The bound is conservative (it assumes every weight's worst sign).
    """
    if layout not in LAYOUTS:
        raise ParameterError(f"unknown CKKS layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    stages = _stages(_items(network, dict(approximate or {})))
    depth = sum(_levels(s) for s in stages)
    params = _params_for(depth)
    matrices: list[np.ndarray | None] = []
    diagonals: list[Diagonals | None] = []
    steps: set[int] = set()
    max_length, blocks = 0, 1
    if layout == "vector":
        matrices = _vector_matrices(stages)
        max_length = max(m.shape[1] for m in matrices if m is not None)
        if max_length > params.slots:
            raise ParameterError(f"a layer input of {max_length} values does not fit one ciphertext of "
                                 f"{params.slots} slots; use layout='batch'")
        diagonals, blocks = vector_diagonals(matrices, params.slots)
        steps = {k for d in diagonals if d is not None for k in d.steps}
    bound = None
    features = int(np.prod(network.input_shape))
    per_feature: tuple[float, ...] | None = None
    if input_bound is not None:
        arr = np.asarray(input_bound, dtype=np.float64)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.size != features) or not np.all(arr >= 0) \
                or not np.all(np.isfinite(arr)) or not np.any(arr > 0):
            raise ParameterError(f"input_bound must be positive and finite, one value or one per "
                                 f"feature ({features}), got {input_bound!r}")
        per_feature = tuple(float(v) for v in np.broadcast_to(arr, (features,)))
        bound, at = value_bound(stages, np.asarray(per_feature))
        if bound >= params.max_abs_value:
            kind = type(stages[at]).__name__
            raise ParameterError(
                f"CKKS values could reach {bound:.3g} at stage {at} ({kind}) for inputs within "
                f"±{float(np.max(per_feature)):g}, beyond the {params.max_abs_value:g} these parameters decrypt "
                "correctly; scale the inputs or the weights down")
    req = HERequirements(params, layout, int(np.prod(network.input_shape)), max_length, network.shapes[-1][0],
                         network.head, depth, tuple(network.architecture()), tuple(sorted(steps)),
                         blocks, per_feature)
    return HEPlan(tuple(stages), req, network, tuple(matrices), diagonals=tuple(diagonals), value_bound=bound)
