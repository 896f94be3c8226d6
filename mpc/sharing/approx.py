"""Approximations of real functions on shared fixed-point tensors (layer: mpc core).

exp, log, reciprocal and division, sqrt and rsqrt, sigmoid, tanh and softmax,
each with a stated input range and accuracy. They are built from three parts:

* **exact comparisons** (:mod:`mpc.sharing.compare`), batched: clamping to
  the valid range and finding the binary exponent ``e`` of ``x`` (``x`` in
  ``[2^e, 2^(e+1))``) cost one comparison's rounds whatever their number;
  the products ``[x >= 2^e] * x`` come out of the same rounds, so the
  normalised ``t = x / 2^e`` in ``[1, 2)`` is linear in them and exact;
* **polynomials and Newton iterations** on the normalised value, computed at
  ``P = 30`` fractional bits (values below 2, so every product stays below
  the ``2^62`` truncation bound of :mod:`mpc.sharing.truncation`);
* **exact probabilistic truncation** after every product (no failure
  probability for values below ``2^62``; see below).

Methods
-------
exp
    Clamp ``x`` to ``[-64, 20]`` (one batched comparison), then
    ``exp(x) = T4(x / 2^n)^(2^n)`` with the degree-4 Taylor polynomial and
    ``n = 8`` squarings, the precision of each squaring chosen from the bound
    of its operand (30 bits while values stay below 2, down to 16 near
    ``e^20``). For ``x <= 0`` (softmax, sigmoid) the whole chain runs at 30 bits.
reciprocal
    Find the exponent of ``|x|`` among ``2^-8 .. 2^11`` (one batched
    comparison, 20 tests), normalise to ``t`` in ``[1, 2)``, start Newton at
    ``24/17 - 8/17 t`` (relative error 1/17) and run 3 iterations
    ``y <- y (2 - t y)`` (error 1/17 -> 3.5e-3 -> 1.2e-5 -> 1.5e-10), then
    scale back by ``2^-e``. The result keeps ``f + 10`` fractional bits so
    that ``1/1000`` has about 16 significant bits.
log
    Exponent of ``x`` among ``2^-16 .. 2^23`` as above, then
    ``log x = e ln 2 + p(t - 1.5)`` with a degree-8 Chebyshev fit ``p`` of
    ``ln(1.5 + z)`` on ``[-0.5, 0.5]`` (fit error 3.4e-8).
rsqrt, sqrt
    Even exponent of ``x`` among ``2^-16 .. 2^22``, ``t`` in ``[1, 4)``,
    Newton ``y <- y (3 - t y^2) / 2`` from ``1.066 - 0.152 t`` (error 0.087),
    3 iterations (-> 6e-8); ``sqrt(t) = t * rsqrt(t)``; scale by ``2^(-e/2)``
    or ``2^(e/2)``. rsqrt keeps ``f + 8`` fractional bits.
sigmoid, tanh
    ``s = 1 / (1 + exp(-|x|))`` with ``|x|`` clamped to 64 and the
    reciprocal of a value in ``(1, 2]`` by 3 Newton steps (no exponent
    search needed), then ``sigmoid(x) = s + [x < 0] (1 - 2 s)``; the sign
    test, ``|x|`` and the clamp come from one batched comparison.
    ``tanh(x) = 2 sigmoid(2x) - 1``.
softmax
    ``exp(x - max(x))`` (max by a tree of comparisons, differences clamped at
    -64), summed along the axis, times the reciprocal of the sum (exponent
    search over ``[1, k]`` for ``k`` elements).

Accuracy (measured with ``python -m bench approx``, 3 parties, f = 16;
absolute error against numpy on the encoded input, the fixed-point
resolution ``2^-16 = 1.5e-5`` included). See docs/nonlinear.md for the table.

==========  ======================  ==================================================
function    range                   accuracy
==========  ======================  ==================================================
exp         [-64, 20], clamped      abs. error < 5e-5 for x <= 0, rel. < 5e-5 above
log         [2^-16, 2^24)           absolute error < 3e-5
reciprocal  |x| in [2^-8, 2^12)     rel. error < 2e-4 (< 2e-5 on [1e-2, 1e3]), f + 10 bits
divide      divisor as reciprocal   needs |a / b| < 2^(62 - 2f - 10) (2^20 for f = 16)
rsqrt       [2^-16, 2^24)           rel. error < 3e-5 below 2^16, abs. < 2^-24 above
sqrt        [0, 2^24)               exact at 0; abs. error < 2e-5 + 1e-7 sqrt(x)
sigmoid     any (|x| clamped at 64) absolute error < 5e-5
tanh        any                     absolute error < 5e-5
softmax     any (x - max >= -64)    absolute error < 5e-5
==========  ======================  ==================================================

Outside its range a function returns an unspecified finite value (never an
exception and never a leak: the computation is the same whatever the input).

Truncation near the range limits: every product here is followed by the
exact probabilistic truncation of :mod:`mpc.sharing.truncation`, which is
correct (error below one unit in the last place, unbiased) for any value
below ``2^62`` in the ring; there is no failure probability to trade
against, unlike local share truncation. The precision schedules above keep
every intermediate below ``2^62``.

Security: semi-honest, any n-1 colluding parties, given correct
preprocessing: only comparisons, Beaver products and truncations, whose
openings are uniformly masked. The control flow depends on shapes only.

Cost: see the module functions and the table in docs/nonlinear.md (rounds
and bytes per element, measured).

References: Knott et al., "CrypTen", NeurIPS 2021 (limit approximation of
exp, Newton reciprocal, softmax with max subtraction); Catrina, Saxena,
"Secure computation with fixed-point numbers", FC 2010 (normalisation before
Newton iterations); Aly, Smart, "Benchmarking privacy preserving scientific
operations", ACNS 2019.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import ParameterError
from . import bounds
from .beaver import beaver_product
from .compare import _lift, ltz_shares, reduce_max
from .tensor import SharedTensor
from .truncation import truncate

if TYPE_CHECKING:
    from ..party import Party

P = 30  # internal precision (fractional bits) for values below 2
EXP_LOW, EXP_HIGH, EXP_SQUARINGS = -64.0, 20.0, 8
NONPOS_SQUARINGS = 6  # exp on [-64, 0]: u = x / 64 in [-1, 0]
SIGMOID_CLAMP = 64.0
RECIP_RANGE = (-8, 11)  # exponents e of |x| in [2^e, 2^(e+1)) for reciprocal
LOG_RANGE = (-16, 23)
RSQRT_RANGE = (-16, 22)  # even exponents, t in [1, 4)
RECIP_EXTRA_BITS = 10
RSQRT_EXTRA_BITS = 8
NEWTON_STEPS = 3
# ln(1.5 + z) on [-0.5, 0.5], degree-8 Chebyshev fit in the power basis (max error 3.4e-8)
_LOG_COEFFS = (0.4054651037918612, 0.6666661659415649, -0.22222136804599885, 0.0987917563225919,
               -0.049409622680619124, 0.025967284540231013, -0.014338309628512489,
               0.01024394855744414, -0.006151545052926934)
_TAYLOR4 = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24)
# Public output bounds (inputs in each function's documented range, errors included):
UNIT_BOUND = 1.0 + 2.0**-10          # sigmoid, softmax in [0, 1]; tanh in [-1, 1]
RECIP_BOUND = 2.0**8 * (1 + 2.0**-8)  # |1/x| for |x| >= 2^-8
RSQRT_BOUND = 2.0**8 * (1 + 2.0**-8)  # 1/sqrt(x) for x >= 2^-16
LOG_BOUND = 17.0                      # |ln x| for x in [2^-16, 2^24)


# -- raw share arithmetic (uint64 arrays with an explicit number of fractional bits) --------
def _enc(value: Any, bits: int) -> np.ndarray:
    """A public real as a ring element with ``bits`` fractional bits."""
    return np.rint(np.asarray(value, dtype=np.float64) * 2.0**bits).astype(np.int64).view(np.uint64)


def _pub(party: Party, value: np.ndarray) -> np.ndarray:
    """This party's additive share of a public ring array."""
    value = np.asarray(value, dtype=np.uint64)
    return value.copy() if party.id == 0 else np.zeros_like(value)


def _rescale(party: Party, z: np.ndarray, have: int, want: int) -> np.ndarray:
    if have > want:
        return truncate(party, z, have - want)
    if have < want:
        return z << np.uint64(want - have)
    return z


def _mul_many(party: Party, pairs: list[tuple[np.ndarray, np.ndarray]], have: int, want: int) -> list[np.ndarray]:
    """Products of several pairs of shares in one Beaver round and one truncation round."""
    xs = [np.asarray(a, np.uint64).reshape(-1) for a, _ in pairs]
    ys = [np.broadcast_to(np.asarray(b, np.uint64), np.shape(a)).reshape(-1) for a, b in pairs]
    z = _rescale(party, beaver_product(party, np.concatenate(xs), np.concatenate(ys), "mul"), have, want)
    out, pos = [], 0
    for (a, _), x in zip(pairs, xs):
        out.append(z[pos:pos + x.size].reshape(np.shape(a)))
        pos += x.size
    return out


def _mul(party: Party, a: np.ndarray, b: np.ndarray, have: int, want: int) -> np.ndarray:
    return _mul_many(party, [(a, b)], have, want)[0]


def _mul_public(party: Party, a: np.ndarray, c: float, fa: int, want: int, g: int = 24) -> np.ndarray:
    """``a * c`` for a public real ``c`` encoded with ``g`` bits; one truncation round."""
    return _rescale(party, a * _enc(c, g), fa + g, want)


def _tests(party: Party, rows: list[np.ndarray], factors: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Shares of ``[row < 0]`` for each row and of ``[row < 0] * factor``: one batched comparison."""
    d = np.stack(rows)
    fac = [np.broadcast_to(f, d.shape).copy() for f in factors]
    return ltz_shares(party, d, fac)


# -- building blocks -------------------------------------------------------------------------
def _exp_chain(party: Party, x: np.ndarray, fx: int, x_max: float, squarings: int, want: int) -> np.ndarray:
    """``exp(x)`` for ``x`` already clamped to ``[-2^squarings, x_max]``: Taylor-4 base, then squarings.

    Rounds: 5 + 2 * squarings. Squaring j runs at the largest precision that
    keeps its product below ``2^62`` for the bound ``exp(x_max 2^(j-n))``.
    """
    n = squarings
    bounds = [math.exp(max(x_max, 0.0) * 2.0**(j - n)) for j in range(n + 1)]
    prec = [min(P, math.floor(31 - math.log2(b) - 0.1)) for b in bounds]
    prec[n] = want
    p0 = prec[0]
    u = _rescale(party, x, fx + n, p0)  # u = x / 2^n, exact (a shift) when fx + n <= p0
    (u2,) = _mul_many(party, [(u, u)], 2 * p0, p0)
    u3, u4 = _mul_many(party, [(u2, u), (u2, u2)], 2 * p0, p0)
    g = 24
    acc = _pub(party, _enc(1.0, p0 + g))
    for k, term in enumerate((u, u2, u3, u4), start=1):
        acc = acc + term * _enc(_TAYLOR4[k], g)
    v = _rescale(party, acc, p0 + g, p0)
    for j in range(n):
        v = _mul(party, v, v, 2 * prec[j], prec[j + 1])
    return v


def _recip_1_2(party: Party, t: np.ndarray) -> np.ndarray:
    """``1 / t`` for ``t`` in ``[1, 2]`` at P bits: linear start (error 1/17) and 3 Newton steps.

    Rounds: 1 + 4 * 3 = 13.
    """
    y = _pub(party, _enc(24 / 17, P)) - _mul_public(party, t, 8 / 17, P, P)
    two = _pub(party, _enc(2.0, P))
    for _ in range(NEWTON_STEPS):
        w = _mul(party, t, y, 2 * P, P)
        y = _mul(party, y, two - w, 2 * P, P)
    return y


def _normalize(party: Party, x: np.ndarray, fx: int, lo: int, hi: int, step: int,
               extra: Sequence[np.ndarray] = ()) -> tuple[list[np.ndarray], np.ndarray, list[list[np.ndarray]]]:
    """Exponent search for positive ``x``: indicators of ``x`` in ``[2^e, 2^(e+step))``.

    ``e`` runs over ``lo, lo + step, ..., hi``; the first interval extends down
    to 0 and the last one up. Returns the indicator shares (one per ``e``),
    ``t = x / 2^e`` at ``fx + hi`` fractional bits (in ``[1, 2^step)``, exact),
    and for each ``extra`` factor the shares of ``indicator_e * factor``.
    One batched comparison: L + 8 rounds.
    """
    exps = list(range(lo, hi + 1, step))
    if hi != exps[-1]:
        raise ParameterError("exponent range must be a whole number of steps")
    m = x.shape
    ones = _pub(party, np.ones(m, np.uint64))
    if len(exps) == 1:
        return [ones], x.copy(), [[f] for f in extra]
    # c_e = [x >= 2^e] = 1 - [x - 2^e < 0] for e = lo + step .. hi
    rows = [x - _pub(party, np.full(m, _enc(2.0**e, fx), np.uint64)) for e in exps[1:]]
    bits, prods = _tests(party, rows, [x, *extra])
    c = [ones - b for b in bits]
    cx = [x - p for p in prods[0]]  # c_e * x = x - [x < 2^e] x
    c_extra = [[f - p for p in pe] for f, pe in zip(extra, prods[1:])]
    ind: list[np.ndarray] = []
    ind_x: list[np.ndarray] = []
    ind_extra: list[list[np.ndarray]] = [[] for _ in extra]
    for k, e in enumerate(exps):
        upper = c[k] if k < len(c) else None  # c for the next exponent: index k in c is exps[k+1]
        lower = ones if k == 0 else c[k - 1]
        lower_x = x if k == 0 else cx[k - 1]
        ind.append(lower - upper if upper is not None else lower)
        ind_x.append(lower_x - cx[k] if upper is not None else lower_x)
        for i, f in enumerate(extra):
            lower_f = f if k == 0 else c_extra[i][k - 1]
            ind_extra[i].append(lower_f - c_extra[i][k] if upper is not None else lower_f)
    t = np.zeros(m, np.uint64)
    for e, ix in zip(exps, ind_x):
        t += ix << np.uint64(hi - e)
    return ind, t, ind_extra


def _check(x: Any, name: str) -> SharedTensor:
    if not isinstance(x, SharedTensor):
        raise ParameterError(f"{name} needs a SharedTensor, got {type(x).__name__}")
    return _lift(x)


def _out(x: SharedTensor, share: np.ndarray, frac_bits: int, bound: float) -> SharedTensor:
    return SharedTensor(x.party, share.reshape(x.shape), frac_bits, bounds.check("approximation", bound, frac_bits))


# -- public functions --------------------------------------------------------------------------
def exp(x: SharedTensor) -> SharedTensor:
    """``e^x`` for ``x`` in ``[-64, 20]`` (abs. error < 5e-5 below 0, relative above); clamps outside.

    Rounds: L + 8 (clamp) + 5 + 16 (8 squarings).
    """
    x = _check(x, "exp")
    party, f = x.party, x.frac_bits
    s = x.share.reshape(-1)
    lo, hi = _enc(EXP_LOW, f), _enc(EXP_HIGH, f)
    (b_lo, b_hi), ((p_lo, p_hi),) = _tests(party, [s - _pub(party, lo), _pub(party, hi) - s], [s])
    xc = s - p_lo - p_hi + b_lo * lo + b_hi * hi
    top = math.exp(min(x.bound, EXP_HIGH)) * (1 + 1e-4) + 2.0**-f
    return _out(x, _exp_chain(party, xc, f, EXP_HIGH, EXP_SQUARINGS, f), f, top)


def _sigmoid_raw(party: Party, s: np.ndarray, f: int) -> np.ndarray:
    """sigmoid of the flat shares ``s`` (f bits) at P bits."""
    clamp = _enc(SIGMOID_CLAMP, f)
    rows = [s, s + _pub(party, clamp), _pub(party, clamp) - s]  # x < 0, x < -B, x > B
    (b0, b1, b2), ((p0, p1, p2),) = _tests(party, rows, [s])
    # |x| clamped at B: x - 2[x<0]x, then [x<-B](x + B) and [x>B](B - x) move it back to B
    absx = s - (p0 << np.uint64(1)) + p1 - p2 + (b1 + b2) * clamp
    e = _exp_chain(party, np.uint64(0) - absx, f, 0.0, NONPOS_SQUARINGS, P)  # exp(-|x|) in (0, 1]
    sig = _recip_1_2(party, _pub(party, _enc(1.0, P)) + e)  # 1 / (1 + e) in [1/2, 1)
    flip = beaver_product(party, b0, _pub(party, _enc(1.0, P)) - (sig << np.uint64(1)), "mul")
    return sig + flip


def sigmoid(x: SharedTensor) -> SharedTensor:
    """``1 / (1 + e^-x)`` for any ``x`` (absolute error < 5e-5).

    Rounds: L + 8 + 17 (exp) + 13 (reciprocal) + 1 + 1.
    """
    x = _check(x, "sigmoid")
    party, f = x.party, x.frac_bits
    return _out(x, _rescale(party, _sigmoid_raw(party, x.share.reshape(-1), f), P, f), f, UNIT_BOUND)


def tanh(x: SharedTensor) -> SharedTensor:
    """``tanh(x) = 2 sigmoid(2x) - 1`` for any ``x`` (absolute error < 5e-5); rounds as sigmoid."""
    x = _check(x, "tanh")
    party, f = x.party, x.frac_bits
    sig = _sigmoid_raw(party, x.share.reshape(-1) << np.uint64(1), f)
    return _out(x, _rescale(party, (sig << np.uint64(1)) - _pub(party, _enc(1.0, P)), P, f), f, UNIT_BOUND)


def _reciprocal_raw(party: Party, s: np.ndarray, f: int, lo: int, hi: int, want: int,
                    sign: np.ndarray | None = None) -> np.ndarray:
    """``1 / x`` for positive flat shares (``sign``: shares of +-1 to apply) at ``want`` bits."""
    extra = [sign] if sign is not None else []
    ind, t, ind_extra = _normalize(party, s, f, lo, hi, 1, extra)
    y = _recip_1_2(party, _rescale(party, t, f + hi, P))
    scale = np.zeros_like(s)  # sum_e ind_e 2^(hi - e) (times the sign): 1/x = y * scale / 2^hi
    for k, e in enumerate(range(lo, hi + 1)):
        scale += (ind_extra[0][k] if sign is not None else ind[k]) << np.uint64(hi - e)
    return _mul(party, y, scale, P + hi, want)


def reciprocal(x: SharedTensor, *, positive: bool = False, frac_bits: int | None = None) -> SharedTensor:
    """``1 / x`` for ``|x|`` in ``[2^-8, 2^12)`` (relative error < 2e-4), with ``f + 10`` fractional bits.

    ``positive=True`` skips the sign test when ``x > 0`` is known; ``frac_bits``
    chooses fewer (at least f) fractional bits for the result.
    Rounds: (L + 8 for the sign) + L + 8 + 15.
    """
    x = _check(x, "reciprocal")
    party, f = x.party, x.frac_bits
    want = min(30, f + RECIP_EXTRA_BITS)
    if frac_bits is not None:
        want = max(f, min(want, int(frac_bits)))
    s = x.share.reshape(-1)
    sign = None
    if not positive:
        (b,), ((bx,),) = _tests(party, [s], [s])
        s = s - (bx << np.uint64(1))
        sign = _pub(party, np.ones_like(s)) - (b << np.uint64(1))
    return _out(x, _reciprocal_raw(party, s, f, *RECIP_RANGE, want, sign), want, RECIP_BOUND)


def divide(a: Any, b: Any) -> SharedTensor:
    """``a / b``: a product with ``1 / b`` (see :func:`reciprocal` for the divisor's range).

    A public divisor costs one public product; a shared one a reciprocal and
    a product, which needs ``|a / b| < 2^(62 - 2f - 10)`` (2^20 for f = 16).
    """
    if isinstance(b, SharedTensor):
        # The quotient's product needs |a| * 2^8 * 2^(f_a + bits) < 2^62: with a large bound
        # on ``a`` the reciprocal keeps fewer than f + 10 bits (at least f; beyond, RangeError).
        fa = a.frac_bits if isinstance(a, SharedTensor) else b.party.fixed.frac_bits
        peak = a.bound if isinstance(a, SharedTensor) else bounds.public_peak(a)
        room = 61 - fa - math.log2(max(peak * RECIP_BOUND, 2.0**-60))
        return a * reciprocal(b, frac_bits=math.floor(room))
    arr = np.asarray(b)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise ParameterError(f"cannot divide a shared tensor by {type(b).__name__}")
    arr = arr.astype(np.float64)
    if np.any(arr == 0):
        raise ParameterError("division by a public zero")
    return a * (1.0 / arr)


def log(x: SharedTensor) -> SharedTensor:
    """Natural logarithm for ``x`` in ``[2^-16, 2^24)`` (absolute error < 3e-5).

    Rounds: L + 8 + 1 + 6 + 1.
    """
    x = _check(x, "log")
    party, f = x.party, x.frac_bits
    lo, hi = LOG_RANGE
    ind, t, _ = _normalize(party, x.share.reshape(-1), f, lo, hi, 1)
    z = _rescale(party, t, f + hi, P) - _pub(party, _enc(1.5, P))
    (z2,) = _mul_many(party, [(z, z)], 2 * P, P)
    z3, z4 = _mul_many(party, [(z2, z), (z2, z2)], 2 * P, P)
    z5, z6, z7, z8 = _mul_many(party, [(z4, z), (z4, z2), (z4, z3), (z4, z4)], 2 * P, P)
    g = 24
    acc = _pub(party, _enc(_LOG_COEFFS[0], P + g))
    for c, zk in zip(_LOG_COEFFS[1:], (z, z2, z3, z4, z5, z6, z7, z8)):
        acc = acc + zk * _enc(c, g)
    for k, e in enumerate(range(lo, hi + 1)):
        acc = acc + ind[k] * _enc(e * math.log(2.0), P + g)
    return _out(x, _rescale(party, acc, P + g, f), f, LOG_BOUND)


def _rsqrt_parts(party: Party, s: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Normalised ``t`` in [1, 4) at P bits, ``1/sqrt(t)`` at P bits, and the indicators."""
    lo, hi = RSQRT_RANGE
    ind, t, _ = _normalize(party, s, f, lo, hi, 2)
    t = _rescale(party, t, f + hi, P)
    y = _pub(party, _enc(1.066, P)) - _mul_public(party, t, 0.152, P, P)
    three_halves = _pub(party, _enc(1.5, P))
    for _ in range(NEWTON_STEPS):  # y <- y (1.5 - t y^2 / 2)
        y2 = _mul(party, y, y, 2 * P, P)
        half_ty2 = _mul(party, t, y2, 2 * P, P - 1)  # t y^2 at P-1 bits = (t y^2 / 2) at P bits
        y = _mul(party, y, three_halves - half_ty2, 2 * P, P)
    return t, y, ind


def rsqrt(x: SharedTensor) -> SharedTensor:
    """``1 / sqrt(x)`` for ``x`` in ``[2^-16, 2^24)`` (rel. error < 3e-5 below 2^16), ``f + 8`` fractional bits.

    Rounds: L + 8 + 2 + 18 + 2 (exponent search, normalise and start, 3 Newton steps, scale).
    """
    x = _check(x, "rsqrt")
    party, f = x.party, x.frac_bits
    want = min(30, f + RSQRT_EXTRA_BITS)
    lo, hi = RSQRT_RANGE
    _, y, ind = _rsqrt_parts(party, x.share.reshape(-1), f)
    scale = np.zeros_like(y)  # 2^(-e/2) = scale / 2^(hi/2)
    for k, e in enumerate(range(lo, hi + 1, 2)):
        scale += ind[k] << np.uint64((hi - e) // 2)
    return _out(x, _mul(party, y, scale, P + hi // 2, want), want, RSQRT_BOUND)


def sqrt(x: SharedTensor) -> SharedTensor:
    """``sqrt(x)`` for ``x`` in ``[0, 2^24)`` (exact at 0; absolute error < 2e-5 + 1e-7 sqrt(x)).

    Rounds: L + 8 + 2 + 18 + 2 + 2 (as rsqrt, plus ``t * rsqrt(t)``).
    """
    x = _check(x, "sqrt")
    party, f = x.party, x.frac_bits
    lo, hi = RSQRT_RANGE
    t, y, ind = _rsqrt_parts(party, x.share.reshape(-1), f)
    root_t = _mul(party, t, y, 2 * P, P)  # sqrt(t) in [1, 2)
    scale = np.zeros_like(y)  # 2^(e/2) = scale * 2^(lo/2)
    for k, e in enumerate(range(lo, hi + 1, 2)):
        scale += ind[k] << np.uint64((e - lo) // 2)
    return _out(x, _mul(party, root_t, scale, P - lo // 2, f), f,
                math.sqrt(x.bound) * (1 + 1e-4) + 2.0**-f)


def softmax(x: SharedTensor, axis: int = -1) -> SharedTensor:
    """``exp(x) / sum(exp(x))`` along ``axis``, with max subtraction (absolute error < 5e-5).

    Rounds: ceil(log2 k) (L + 8) (max) + L + 8 (clamp) + 17 (exp) +
    L + 8 + 16 (reciprocal of the sum) + 2, i.e. (ceil(log2 k) + 2)(L + 8) + 35;
    for k = 1 the sum needs no exponent search: L + 41.
    """
    x = _check(x, "softmax")
    party, f = x.party, x.frac_bits
    if x.ndim == 0:
        raise ParameterError("softmax needs at least one dimension")
    if not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ParameterError(f"axis {axis!r} out of range for a tensor of {x.ndim} dimensions")
    ax = int(axis) % x.ndim
    k = x.shape[ax]
    if k == 0 or x.size == 0:
        raise ParameterError("softmax along an empty axis")
    d = (x - reduce_max(x, ax, keepdims=True)).share  # <= 0
    flat = d.reshape(-1)
    low = _enc(EXP_LOW, f)
    (b,), ((bd,),) = _tests(party, [flat - _pub(party, low)], [flat])
    clamped = flat - bd + b * low
    e = _exp_chain(party, clamped, f, 0.0, NONPOS_SQUARINGS, P).reshape(d.shape)
    total = e.sum(axis=ax, keepdims=True, dtype=np.uint64)  # in [1, k] at P bits
    hi = max(0, math.floor(math.log2(k)))
    recip = _reciprocal_raw(party, total.reshape(-1), P, 0, hi, P).reshape(total.shape)
    out = _mul(party, e, np.broadcast_to(recip, e.shape).copy(), 2 * P, f)
    return SharedTensor(party, out, f, UNIT_BOUND)
