"""Secure comparisons, sign, ReLU, multiplexers and max/argmax on shared tensors (layer: mpc core).

Every comparison reduces to the sign of a difference: ``x < y`` iff the top
bit of ``x - y`` in Z_2^64 is set, which holds exactly when
``|x - y| < 2^63`` in the ring, i.e. for any two fixed-point values in the
encodable range (``|x| < 2^(62-f)``) and any two integers whose difference
fits in a signed 64-bit word. Within that range comparisons are **exact**:
no probabilistic failure, no rounding.

Protocol (for ``b = [d < 0]``, optionally with products ``b * y``)
------------------------------------------------------------------
1. Bit-decompose only the top bit of ``d`` (:func:`mpc.sharing.convert.msb`:
   carry-save reduction of the n additive shares, then a halving
   parallel-prefix tree for the carry into bit 63).
2. Inject the bit into the arithmetic domain with a daBit
   (:func:`mpc.sharing.convert.inject`), computing ``b * y`` for the
   multiplexer operands ``y`` in the same round.

ReLU is ``x - [x<0]*x``, ``|x| = x - 2[x<0]*x``, ``max(a, b) = a + [a<b](b - a)``:
the product with the comparison bit costs no extra round. ``==`` is
``1 - [x<y] - [y<x]`` with both comparisons batched. ``max``/``argmax`` reduce
an axis by a tree of pairwise comparisons of adjacent elements, so ties go to
the lowest index (as numpy).

Security: semi-honest, any n-1 colluding parties, given correct
preprocessing (binary triples, daBits, Beaver triples). Nothing is opened but
uniformly masked words and bits; outputs are shared. What leaks: shapes only.

Cost (n parties, m elements, ``L`` = 0, 1, 2, 3 carry-save layers for
n = 2, 3, 4, 5; bytes sent by each party to each other party):

=============================  =========================  ==============================
operation                      rounds                     bytes per peer
=============================  =========================  ==============================
``<  <=  >  >=``               L + 8                      about 16 L m + 47 m + m/8
``==``, ``!=``, ``sign``       L + 8                      twice that
``relu``, ``abs``              L + 8                      that + 16 m
``where`` (shared condition)   1                          16 m
``max``/``min`` over k         ceil(log2 k) (L + 8)       per level as relu on k/2
``argmax`` over k              ceil(log2 k) (L + 8)       per level that + 8 per pair
``argmax_pairwise`` over k     L + 8 + ceil(log2(k - 1))  k (k - 1) / 2 comparisons
``clip``                       L + 8                      twice relu
=============================  =========================  ==============================

References: Knott et al., "CrypTen", NeurIPS 2021 (comparison by A2B and a
Kogge-Stone adder); Mohassel, Rindal, "ABY3", CCS 2018; Escudero et al.,
CRYPTO 2020 (daBits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import ParameterError
from . import bounds
from .beaver import beaver_product
from .convert import inject, msb
from .tensor import SharedTensor, _negate_public

if TYPE_CHECKING:
    from ..party import Party

_ONE = np.uint64(1)


def ltz_shares(party: Party, d: np.ndarray,
               factors: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Additive shares of ``[d < 0]`` (signed ring elements) and of ``[d < 0] * y`` per factor.

    Works on raw uint64 share arrays of one shape; L + 8 rounds.
    """
    d = np.asarray(d, dtype=np.uint64)
    flat = d.reshape(-1)
    bits, prods = inject(party, msb(party, flat), flat.size, [np.asarray(f).reshape(-1) for f in factors])
    return bits.reshape(d.shape), [p.reshape(d.shape) for p in prods]


def _check_public(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iufb":
        raise ParameterError(f"cannot compare a shared tensor with {type(value).__name__}")
    return arr


def _lift(x: SharedTensor) -> SharedTensor:
    """An integer tensor as fixed point with the party's fractional bits."""
    f = x.party.fixed.frac_bits
    if x.frac_bits >= f:
        return x
    bounds.check("integer to fixed point", x.bound, f)
    return SharedTensor(x.party, x.share << np.uint64(f - x.frac_bits), f, x.bound)


def _bound_of(value: Any, frac_bits: int) -> float:
    """The public bound of an operand: its own if shared, ``max|value|`` as encoded if public."""
    return value.bound if isinstance(value, SharedTensor) else bounds.public_peak(value, frac_bits)


def _diff(x: Any, y: Any) -> SharedTensor:
    """``x - y`` as a shared tensor; at least one operand is shared.

    The difference only feeds a sign test or a multiplexer, so it may reach
    ``2^63`` in the ring (any two values of the fixed-point range compare).
    """
    if isinstance(x, SharedTensor) and isinstance(y, SharedTensor):
        return x._add(-y, "comparison", bounds.WRAP_BITS)
    if isinstance(x, SharedTensor):
        pub = _check_public(y)
        if x.frac_bits == 0 and pub.dtype.kind == "f" and not np.all(pub == np.round(pub)):
            x = _lift(x)
        return x._add(_negate_public(pub), "comparison", bounds.WRAP_BITS)
    if isinstance(y, SharedTensor):
        return -_diff(y, x)
    raise ParameterError("a secure comparison needs at least one shared operand")


def _cmp_diff(x: Any, y: Any) -> SharedTensor:
    """A shared tensor with the sign of ``x - y`` (zero iff equal), for the comparisons.

    An integer tensor compared with non-integer public reals is not lifted to
    fixed point (which would overflow beyond ``2^(62-f)``): a non-integer ``y``
    is replaced by ``floor(y) + 1/2``, which orders every integer the same
    way, and both sides are doubled: exact for ``|x| < 2^62``.
    """
    if isinstance(x, SharedTensor) and not isinstance(y, SharedTensor) and x.frac_bits == 0:
        pub = _check_public(y)
        if pub.dtype.kind == "f" and not np.all(pub == np.round(pub)):
            if not np.all(np.isfinite(pub)):
                raise ParameterError("cannot compare with NaN or infinite values")
            whole = np.floor(pub)
            twice = np.where(pub == whole, 2 * whole, 2 * whole + 1)
            if np.any(np.abs(twice) >= 2.0**62):
                raise ParameterError("a public value beyond 2^61 cannot be compared exactly")
            doubled = SharedTensor(x.party, x.share << np.uint64(1), 0, 2 * x.bound)
            return doubled._add(-twice.astype(np.int64), "comparison", bounds.WRAP_BITS)
        return _diff(x, y)
    if isinstance(y, SharedTensor) and not isinstance(x, SharedTensor) and y.frac_bits == 0:
        return -_cmp_diff(y, x)
    return _diff(x, y)


def _bits(like: SharedTensor, share: np.ndarray) -> SharedTensor:
    return SharedTensor(like.party, share, 0, 1.0)


def _one_minus(party: Party, bits: np.ndarray) -> np.ndarray:
    out = np.uint64(0) - bits
    if party.id == 0:
        out += _ONE
    return out


def less(x: Any, y: Any) -> SharedTensor:
    """Shared 0/1 integers ``[x < y]`` (exact while ``|x - y| < 2^63`` in the ring)."""
    d = _cmp_diff(x, y)
    return _bits(d, ltz_shares(d.party, d.share)[0])


def greater(x: Any, y: Any) -> SharedTensor:
    """Shared 0/1 integers ``[x > y]``."""
    return less(y, x)


def less_equal(x: Any, y: Any) -> SharedTensor:
    """Shared 0/1 integers ``[x <= y] = 1 - [y < x]``."""
    d = _cmp_diff(y, x)
    return _bits(d, _one_minus(d.party, ltz_shares(d.party, d.share)[0]))


def greater_equal(x: Any, y: Any) -> SharedTensor:
    """Shared 0/1 integers ``[x >= y]``."""
    return less_equal(y, x)


def _both_ltz(d: SharedTensor) -> tuple[np.ndarray, np.ndarray]:
    """Shares of ``[d < 0]`` and ``[d > 0]``, batched in one comparison."""
    both = np.stack([d.share, np.uint64(0) - d.share])
    bits, _ = ltz_shares(d.party, both)
    return bits[0], bits[1]


def equal(x: Any, y: Any) -> SharedTensor:
    """Shared 0/1 integers ``[x == y] = 1 - [x < y] - [x > y]`` (one batched comparison)."""
    d = _cmp_diff(x, y)
    lt, gt = _both_ltz(d)
    with np.errstate(over="ignore"):          # ring addition of 0-d shares wraps by design
        return _bits(d, _one_minus(d.party, lt + gt))


def not_equal(x: Any, y: Any) -> SharedTensor:
    """Shared 0/1 integers ``[x != y]``."""
    d = _cmp_diff(x, y)
    lt, gt = _both_ltz(d)
    with np.errstate(over="ignore"):
        return _bits(d, lt + gt)


def sign(x: SharedTensor) -> SharedTensor:
    """Shared integers -1, 0, 1 (as ``numpy.sign``)."""
    lt, gt = _both_ltz(x)
    return _bits(x, gt - lt)


def absolute(x: SharedTensor) -> SharedTensor:
    """``|x|`` with the encoding of ``x`` (L + 8 rounds)."""
    b, (bx,) = ltz_shares(x.party, x.share, [x.share])
    return SharedTensor(x.party, x.share - (bx << _ONE), x.frac_bits, x.bound)


def relu(x: SharedTensor) -> SharedTensor:
    """``max(x, 0)`` with the encoding of ``x`` (L + 8 rounds)."""
    b, (bx,) = ltz_shares(x.party, x.share, [x.share])
    return SharedTensor(x.party, x.share - bx, x.frac_bits, x.bound)


def where(cond: Any, a: Any, b: Any) -> SharedTensor:
    """Elementwise ``a if cond else b`` for a shared 0/1 integer ``cond`` (or a public boolean one).

    ``b + cond * (a - b)``: one Beaver round when ``a - b`` is shared, none
    when it is public.
    """
    if not isinstance(cond, SharedTensor):
        c = _check_public(cond)
        if not np.all((c == 0) | (c == 1)):
            raise ParameterError("a public condition must be boolean or 0/1")
        if not isinstance(a, SharedTensor) and not isinstance(b, SharedTensor):
            raise ParameterError("where needs a shared condition or a shared operand")
        d = _diff(a, b)
        shape = np.broadcast_shapes(d.shape, c.shape)
        picked = SharedTensor(d.party, np.broadcast_to(d.share, shape) * c.astype(np.uint64), d.frac_bits, d.bound)
        return _mux_result(picked._add(b, "where", bounds.MODULAR), a, b)
    if cond.frac_bits != 0:
        raise ParameterError("the condition of where must be a shared 0/1 integer tensor "
                             "(the result of a comparison)")
    party = cond.party
    if not isinstance(a, SharedTensor) and not isinstance(b, SharedTensor):
        diff = np.asarray(_check_public(a), dtype=np.float64) - _check_public(b)
        if np.all(diff == np.round(diff)) and np.all(np.round(np.asarray(b)) == np.asarray(b)):
            prod = SharedTensor(party, cond.share * diff.astype(np.int64).view(np.uint64), 0,
                                bounds.public_peak(diff))
            return _mux_result(prod._add(np.asarray(b).astype(np.int64), "where", bounds.MODULAR), a, b)
        f = party.fixed.frac_bits
        prod = SharedTensor(party, cond.share * party.fixed.encode(diff), f, bounds.public_peak(diff, f))
        return _mux_result(prod._add(np.asarray(b, dtype=np.float64), "where", bounds.MODULAR), a, b)
    d = _diff(a, b)
    cond._check_same_session(d)
    cond._broadcast_check(d.shape)
    shape = np.broadcast_shapes(cond.shape, d.shape)
    prod_share = beaver_product(party, np.broadcast_to(cond.share, shape).copy(),
                                np.broadcast_to(d.share, shape).copy(), "mul")
    out = SharedTensor(party, prod_share, d.frac_bits, d.bound)
    return _mux_result(out._add(b, "where", bounds.MODULAR), a, b)


def _mux_result(out: SharedTensor, a: Any, b: Any) -> SharedTensor:
    """A multiplexer's result is ``a`` or ``b``: its bound is the larger of theirs."""
    out.bound = bounds.check("where", max(_bound_of(a, out.frac_bits), _bound_of(b, out.frac_bits)), out.frac_bits)
    return out


def _axis_last(x: SharedTensor, axis: int | None) -> tuple[np.ndarray, int | None]:
    if axis is None:
        return x.share.reshape(-1), None
    if not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ParameterError(f"axis {axis!r} out of range for a tensor of {x.ndim} dimensions")
    ax = int(axis) % x.ndim
    return np.moveaxis(x.share, ax, -1), ax


def _tree_max(x: SharedTensor, axis: int | None, index: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Shares of the max (and its first index) along ``axis`` by pairwise tournament."""
    party = x.party
    s, _ = _axis_last(x, axis)
    k = s.shape[-1] if s.ndim else 1
    if s.ndim == 0 or k == 0:
        raise ParameterError("max/argmax of an empty tensor or along an empty axis")
    idx = None
    if index:
        ar = np.broadcast_to(np.arange(k, dtype=np.uint64), s.shape)
        idx = ar.copy() if party.id == 0 else np.zeros(s.shape, np.uint64)
    while s.shape[-1] > 1:
        pairs = s.shape[-1] // 2
        a, b = s[..., 0:2 * pairs:2], s[..., 1:2 * pairs:2]
        factors = [b - a]
        if idx is not None:
            factors.append(idx[..., 1:2 * pairs:2] - idx[..., 0:2 * pairs:2])
        _, prods = ltz_shares(party, a - b, factors)  # a < b: take b; ties keep a (lower index)
        s = np.concatenate([a + prods[0], s[..., 2 * pairs:]], axis=-1)
        if idx is not None:
            idx = np.concatenate([idx[..., 0:2 * pairs:2] + prods[1], idx[..., 2 * pairs:]], axis=-1)
    return s[..., 0], (idx[..., 0] if idx is not None else None)


def _keep(share: np.ndarray, axis: int | None, ndim: int, keepdims: bool) -> np.ndarray:
    if not keepdims:
        return share
    if axis is None:
        return share.reshape((1,) * ndim)
    return np.expand_dims(share, int(axis) % ndim)


def reduce_max(x: SharedTensor, axis: int | None = None, keepdims: bool = False) -> SharedTensor:
    """Maximum along ``axis`` (all elements when None), by a tree of ceil(log2 k) comparisons."""
    m, _ = _tree_max(x, axis, False)
    return SharedTensor(x.party, _keep(np.asarray(m), axis, x.ndim, keepdims), x.frac_bits, x.bound)


def reduce_min(x: SharedTensor, axis: int | None = None, keepdims: bool = False) -> SharedTensor:
    """Minimum along ``axis``: ``-max(-x)``."""
    return -reduce_max(-x, axis, keepdims)


def argmax(x: SharedTensor, axis: int | None = None, keepdims: bool = False) -> SharedTensor:
    """Shared integer index of the first maximum along ``axis`` (flattened index when None)."""
    _, idx = _tree_max(x, axis, True)
    k = x.size if axis is None else x.shape[int(axis) % x.ndim]
    return SharedTensor(x.party, _keep(np.asarray(idx), axis, x.ndim, keepdims), 0, float(max(k - 1, 0)))


def argmin(x: SharedTensor, axis: int | None = None, keepdims: bool = False) -> SharedTensor:
    """Shared integer index of the first minimum along ``axis``."""
    return argmax(-x, axis, keepdims)


def argmax_pairwise(x: SharedTensor) -> SharedTensor:
    """Shared index of the first maximum along the last axis, in few rounds.

    All ``k (k - 1) / 2`` comparisons ``[x_i < x_j]`` (i < j) run in one batch;
    ``x_i`` wins against ``x_j`` if ``x_i >= x_j`` for ``j > i`` and
    ``x_i > x_j`` for ``j < i`` (ties go to the lowest index, as numpy), and
    the one-hot ``win_i = prod_j wins(i, j)`` takes a tree of Beaver products
    of 0/1 integers; the label is ``sum_i i win_i`` (local).

    Cost: ``L + 8 + ceil(log2(k - 1))`` rounds (12 for k = 10 and two
    parties, against ``ceil(log2 k) (L + 8)`` = 32 for the tournament of
    :func:`argmax`), for ``k (k - 1) / 2`` comparisons per row
    instead of ``k - 1``, and ``k (k - 2)`` products.
    """
    party, k = x.party, x.shape[-1]
    if k < 2:
        raise ParameterError("argmax_pairwise needs at least two scores")
    first, second = np.triu_indices(k, 1)
    bits, _ = ltz_shares(party, x.share[..., first] - x.share[..., second])  # [x_i < x_j], i < j
    pair = {(int(i), int(j)): n for n, (i, j) in enumerate(zip(first, second))}
    take = np.array([[pair[(min(i, j), max(i, j))] for j in range(k) if j != i] for i in range(k)])
    keep = np.array([[j < i for j in range(k) if j != i] for i in range(k)])  # j < i: x_j < x_i wins
    factors = np.where(keep, bits[..., take], _one_minus(party, bits[..., take]))  # (..., k, k - 1)
    while factors.shape[-1] > 1:
        m = factors.shape[-1] // 2
        prod = beaver_product(party, np.ascontiguousarray(factors[..., :m]),
                              np.ascontiguousarray(factors[..., m:2 * m]), "mul")
        factors = np.concatenate([prod, factors[..., 2 * m:]], axis=-1)
    label = (factors[..., 0] * np.arange(k, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)
    return SharedTensor(party, label, 0, float(k - 1))


def clip(x: SharedTensor, lo: Any = None, hi: Any = None) -> SharedTensor:
    """``min(max(x, lo), hi)`` for public or shared bounds (None: no bound); one comparison round.

    Both bound tests run in one batched comparison, and their multiplexers in
    its last round. Public bounds must satisfy ``lo <= hi``; with shared
    bounds that is the caller's promise (where ``lo > hi`` the result is
    ``lo + hi - x``, not an error: checking would reveal the comparison).
    """
    if lo is None and hi is None:
        raise ParameterError("clip needs at least one of lo and hi")
    if lo is not None and hi is not None and not isinstance(lo, SharedTensor) \
            and not isinstance(hi, SharedTensor) and np.any(_check_public(lo) > _check_public(hi)):
        raise ParameterError("clip needs lo <= hi")
    diffs = []  # d_j = bound_j - x, selected where the test is true
    tests = []  # t_j < 0 means x is beyond bound j
    if lo is not None:
        d = _diff(lo, x)  # lo - x; x < lo iff x - lo < 0
        diffs.append(d)
        tests.append(-d)
    if hi is not None:
        d = _diff(hi, x)  # hi - x; x > hi iff hi - x < 0
        diffs.append(d)
        tests.append(d)
    f = max(t.frac_bits for t in diffs)
    base = x if x.frac_bits == f else _lift(x)
    shape = np.broadcast_shapes(*(t.shape for t in diffs))
    test = np.stack([np.broadcast_to(_lift(t).share if t.frac_bits < f else t.share, shape) for t in tests])
    fac = np.stack([np.broadcast_to(_lift(t).share if t.frac_bits < f else t.share, shape) for t in diffs])
    _, (prods,) = ltz_shares(x.party, test, [fac])
    out = np.broadcast_to(base.share, shape) + prods.sum(axis=0, dtype=np.uint64)
    if lo is not None and hi is not None:    # the result lies in [lo, hi]
        bound = max(_bound_of(lo, f), _bound_of(hi, f))
    else:
        bound = max(x.bound, _bound_of(lo if lo is not None else hi, f))
    return SharedTensor(x.party, out, f, bounds.check("clip", bound, f))
