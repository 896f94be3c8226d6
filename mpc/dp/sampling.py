"""Exact samplers for differential-privacy noise, driven by the CSPRNG (layer: mpc core).

Every draw comes from :class:`mpc.rand.PRG` (AES-CTR keyed from the OS
CSPRNG); ``numpy.random`` is never used. All samplers are vectorised: a batch
of candidates is drawn at once and only the rejected ones are redrawn, so the
number of Python-level iterations grows with the logarithm of the batch size,
not with it.

* :func:`uniform_below` -- exact uniform integers below per-element bounds;
* :func:`bernoulli_exp` -- exact Bernoulli(exp(-num/den)) with integer
  arithmetic only (Canonne, Kamath and Steinke 2020, Algorithm 1);
* :func:`discrete_laplace` -- exact discrete Laplace of integer scale t
  (ibid., Algorithm 2);
* :func:`discrete_gaussian` -- exact discrete Gaussian N_Z(0, sigma^2) for a
  rational sigma^2 (ibid., Algorithm 3);
* :func:`uniform01` and :func:`gaussian` -- floating-point uniform and normal
  samples (Box-Muller) for the central Gaussian mechanism. Floating-point noise
  is the usual DP-FedAvg practice; its known side channel (Mironov, CCS 2012)
  is why the distributed mechanism uses the exact integer sampler instead.

References
----------
C. Canonne, G. Kamath, T. Steinke. "The Discrete Gaussian for Differential
Privacy." NeurIPS 2020 (arXiv:2004.00010).
"""

from __future__ import annotations

from fractions import Fraction
from math import isqrt

import numpy as np

from ..errors import ParameterError
from ..rand import PRG

_INT_LIMIT = 1 << 62  # every bound handled in int64 stays below this
_DEN_LIMIT = 1 << 56  # denominators leave 6 bits for the factor K of Algorithm 1


def _bitmask(bounds: np.ndarray) -> np.ndarray:
    """Smallest all-ones mask covering ``bounds - 1`` (per element)."""
    m = (bounds - 1).astype(np.uint64)
    for s in (1, 2, 4, 8, 16, 32):
        m |= m >> np.uint64(s)
    return m


def uniform_below(prg: PRG, bounds: np.ndarray | int, size: int | None = None) -> np.ndarray:
    """Exact uniform integers in ``[0, bounds[i])`` by per-element rejection.

    Parameters
    ----------
    prg:
        The randomness source.
    bounds:
        Positive integers below 2^62, an array or a scalar (then ``size`` gives
        the count).

    Returns
    -------
    numpy.ndarray of int64 with the shape of ``bounds``.
    """
    b = np.asarray(bounds, dtype=np.int64)
    if size is not None:
        b = np.broadcast_to(b, (size,))
    b = np.ascontiguousarray(b).reshape(-1)
    if b.size and (b.min() < 1 or b.max() >= _INT_LIMIT):
        raise ParameterError("uniform_below needs bounds in [1, 2^62)")
    out = np.empty(b.size, dtype=np.int64)
    mask = _bitmask(b)
    todo = np.arange(b.size)
    while todo.size:
        cand = (prg.uint64(todo.size) & mask[todo]).astype(np.int64)
        ok = cand < b[todo]  # acceptance >= 1/2 per element
        out[todo[ok]] = cand[ok]
        todo = todo[~ok]
    return out


def bernoulli_ratio(prg: PRG, num: np.ndarray, den: np.ndarray | int) -> np.ndarray:
    """Exact Bernoulli(num/den) for integers 0 <= num <= den < 2^62 (bool array)."""
    num = np.asarray(num, dtype=np.int64).reshape(-1)
    den_arr = np.broadcast_to(np.asarray(den, dtype=np.int64), num.shape)
    return uniform_below(prg, den_arr) < num


def _bernoulli_exp_unit(prg: PRG, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Bernoulli(exp(-num/den)) for 0 <= num/den <= 1 (CKS20 Algorithm 1).

    K = 1; while Bernoulli(gamma / K): K += 1; return K odd.
    """
    k = np.ones(num.size, dtype=np.int64)
    active = np.arange(num.size)
    while active.size:
        kk = k[active]
        if int(den[active].max()) * int(kk.max()) >= _INT_LIMIT:
            raise ParameterError("denominator too large for the exact sampler")
        a = bernoulli_ratio(prg, num[active], den[active] * kk)
        k[active[a]] += 1
        active = active[a]
    return (k % 2) == 1


def bernoulli_exp(prg: PRG, num: np.ndarray | int, den: np.ndarray | int,
                  size: int | None = None) -> np.ndarray:
    """Exact Bernoulli(exp(-num/den)) for integers num >= 0, 0 < den < 2^56.

    For gamma > 1 it multiplies floor(gamma) draws of Bernoulli(exp(-1)) by one
    of Bernoulli(exp(-(gamma - floor(gamma)))), stopping an element at its first
    failure (CKS20 Algorithm 1, second part). ``num`` may be as large as 2^62.
    """
    n = np.asarray(num, dtype=np.int64)
    if size is not None:
        n = np.broadcast_to(n, (size,))
    n = np.ascontiguousarray(n).reshape(-1)
    d = np.ascontiguousarray(np.broadcast_to(np.asarray(den, dtype=np.int64), n.shape))
    if n.size and (n.min() < 0 or d.min() < 1 or d.max() >= _DEN_LIMIT):
        raise ParameterError("bernoulli_exp needs num >= 0 and 0 < den < 2^56")
    q, r = np.divmod(n, d)
    return _bernoulli_exp_qr(prg, q, r, d)


def _bernoulli_exp_qr(prg: PRG, q: np.ndarray, r: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Bernoulli(exp(-(q + r/d))) for integer q >= 0 and 0 <= r < d.

    exp(-q) is the probability that the first q of a run of Bernoulli(exp(-1))
    draws all succeed, i.e. that the geometric count of :func:`_geometric_exp1`
    reaches q.
    """
    alive = np.ones(q.size, dtype=bool)
    pending = np.flatnonzero(q > 0)
    if pending.size:
        alive[pending] = _geometric_exp1(prg, pending.size, q[pending]) >= q[pending]
    idx = np.flatnonzero(alive)
    if idx.size:
        alive[idx] = _bernoulli_exp_unit(prg, r[idx], d[idx])
    return alive


_RUN = 3  # Bernoulli(exp(-1)) draws per element per iteration of the geometric sampler


def _geometric_exp1(prg: PRG, size: int, stop: np.ndarray | None = None) -> np.ndarray:
    """Count of Bernoulli(exp(-1)) successes before the first failure.

    Draws runs of ``_RUN`` per element at once (a run survives with probability
    e^-3). With ``stop``, counting may stop once an element reaches its value
    (the result is then only meaningful as ``>= stop``).
    """
    v = np.zeros(size, dtype=np.int64)
    active = np.arange(size)
    ones = np.ones(1, dtype=np.int64)
    while active.size:
        n = active.size * _RUN
        b = _bernoulli_exp_unit(prg, np.broadcast_to(ones, (n,)).copy(),
                                np.broadcast_to(ones, (n,)).copy()).reshape(-1, _RUN)
        full = b.all(axis=1)
        v[active] += np.where(full, _RUN, np.argmin(b, axis=1))
        active = active[full]
        if stop is not None and active.size:
            active = active[v[active] < stop[active]]
    return v


def discrete_laplace(prg: PRG, t: int, size: int) -> np.ndarray:
    """Exact samples of the discrete Laplace with scale ``t`` (CKS20 Algorithm 2).

    P[X = x] is proportional to exp(-|x| / t), x in Z.
    """
    if not isinstance(t, (int, np.integer)) or not 1 <= t < _DEN_LIMIT:
        raise ParameterError("discrete Laplace scale t must be an integer in [1, 2^56)")
    if not isinstance(size, (int, np.integer)) or size < 0:
        raise ParameterError(f"size must be a non-negative integer, got {size!r}")
    t = int(t)
    out = np.empty(size, dtype=np.int64)
    todo = np.arange(size)
    while todo.size:
        m = todo.size * 7 // 4 + 32                # oversample: acceptance is about 0.63
        u = uniform_below(prg, t, size=m)
        d = bernoulli_exp(prg, u, t)               # accept U with prob exp(-U/t)
        v = _geometric_exp1(prg, m)
        x = u + t * v
        y = prg.bits(m).astype(bool)
        ok = np.flatnonzero(d & ~(y & (x == 0)))[: todo.size]  # drop the second zero
        out[todo[: ok.size]] = np.where(y[ok], -x[ok], x[ok])
        todo = todo[ok.size:]
    return out


def rational_variance(sigma2: float | Fraction) -> Fraction:
    """The rational sigma^2 that :func:`discrete_gaussian` will use for ``sigma2``.

    The denominator is the largest that keeps every intermediate below 2^56, so
    the relative change is below 2^-20 for sigma up to about 10^3; sigma^2 is
    refused above 2^26 (sigma about 8192).
    """
    s = Fraction(sigma2)
    if s <= 0:
        raise ParameterError("sigma^2 must be positive")
    # den = 2 a b t^2 ~ 2 s^2 b^2 must stay below 2^56 (with room).
    max_b = int(2 ** 26 / max(float(s), 1.0))
    if max_b < 1:
        raise ParameterError(
            f"sigma^2 = {float(s):.4g} is too large for the exact sampler (at most about "
            f"{2 ** 26:.3g}); use a coarser quantization scale")
    out = s.limit_denominator(max_b) if s.denominator > max_b else s
    if out == 0:
        raise ParameterError(f"sigma^2 = {float(s):.4g} is too small for the exact sampler "
                             f"(at least about {2.0 ** -27:.3g})")
    return out


def discrete_gaussian(prg: PRG, sigma2: float | Fraction, size: int) -> np.ndarray:
    """Exact samples of the discrete Gaussian N_Z(0, sigma^2) (CKS20 Algorithm 3).

    P[X = x] is proportional to exp(-x^2 / (2 sigma^2)), x in Z. The variance
    parameter is first made rational by :func:`rational_variance`.

    Protocol
    --------
    1. t = floor(sigma) + 1.
    2. Draw Y from the discrete Laplace of scale t.
    3. Accept Y with probability exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)),
       computed exactly as Bernoulli(exp(-num/den)) with num = (|Y| b t - a)^2
       and den = 2 a b t^2 for sigma^2 = a/b; otherwise go to 2.

    Returns
    -------
    numpy.ndarray of int64, shape ``(size,)``.
    """
    if size < 0:
        raise ParameterError("size must be non-negative")
    s = rational_variance(sigma2)
    a, b = s.numerator, s.denominator
    t = isqrt(a // b) + 1
    den = 2 * a * b * t * t
    if den >= _DEN_LIMIT:
        raise ParameterError("sigma^2 too large for the exact sampler; use a coarser scale")
    out = np.empty(size, dtype=np.int64)
    todo = np.arange(size)
    while todo.size:
        m = todo.size * 7 // 4 + 32                # oversample (acceptance >= 0.63)
        y = discrete_laplace(prg, t, m)
        # Exact integers: numerators can exceed 2^63, so compute them as Python ints.
        num = (np.abs(y).astype(object) * (b * t) - a) ** 2
        q = num // den
        r = (num - q * den).astype(np.int64)
        # q >= 2^62 would need 2^62 successes of Bernoulli(1/e): capping is exact in effect.
        q = np.minimum(q, _INT_LIMIT).astype(np.int64)
        c = np.flatnonzero(_bernoulli_exp_qr(prg, q, r, np.full(m, den, dtype=np.int64)))
        c = c[: todo.size]                         # the first accepted, in order
        out[todo[: c.size]] = y[c]
        todo = todo[c.size:]
    return out


def uniform01(prg: PRG, shape: int | tuple[int, ...]) -> np.ndarray:
    """Uniform float64 in the open interval (0, 1), 53 random bits each."""
    u = prg.uint64(shape) >> np.uint64(11)
    return (u.astype(np.float64) + 0.5) * (2.0 ** -53)


def gaussian(prg: PRG, shape: int | tuple[int, ...], std: float = 1.0) -> np.ndarray:
    """Normal samples N(0, std^2) by the Box-Muller transform of :func:`uniform01`."""
    if not std >= 0:
        raise ParameterError("std must be non-negative")
    n = int(np.prod(shape, dtype=np.int64))
    half = (n + 1) // 2
    u1, u2 = uniform01(prg, half), uniform01(prg, half)
    rad = np.sqrt(-2.0 * np.log(u1))
    z = np.concatenate([rad * np.cos(2 * np.pi * u2), rad * np.sin(2 * np.pi * u2)])[:n]
    return (std * z).reshape(shape)


def _cdt_table(sigma2: float) -> tuple[np.ndarray, int]:
    """Cumulative table floor(2^64 P[X <= k]) of N_Z(0, sigma2), k = -K..K-1, and K."""
    from decimal import Decimal, localcontext

    sigma = float(sigma2) ** 0.5
    # P[|X| > K] < 2^-70 for K >= sigma * sqrt(2 * 70 ln 2) + 1.
    k_max = int(sigma * (2 * 70 * 0.6931471805599453) ** 0.5) + 2
    with localcontext() as ctx:
        ctx.prec = 50
        two_s2 = 2 * Decimal(repr(float(sigma2)))
        w = [(-Decimal(k * k) / two_s2).exp() for k in range(k_max + 1)]
        total = w[0] + 2 * sum(w[1:])
        scale = Decimal(2) ** 64 / total
        acc = Decimal(0)
        table = []
        for k in range(-k_max, k_max):
            acc += w[abs(k)]
            table.append(min(int(acc * scale), (1 << 64) - 1))
    return np.array(table, dtype=np.uint64), k_max


def discrete_gaussian_cdt(prg: PRG, sigma2: float, size: int) -> np.ndarray:
    """N_Z(0, sigma^2) by inversion of a 64-bit cumulative table (one PRG word per sample).

    Not exact like :func:`discrete_gaussian`, but within statistical distance
    ``(2K + 1) 2^-64 + 2^-70`` of it (K about 10 sigma): far below any delta
    used in practice, and about a hundred times faster (one table search per
    sample). Supports sigma^2 up to 10^8 (the table holds about 20 sigma
    entries).
    """
    if size < 0:
        raise ParameterError("size must be non-negative")
    if not 0.01 <= float(sigma2) <= 1e8:
        raise ParameterError(f"sigma^2 must be in [0.01, 1e8] for the table sampler, got {sigma2}")
    table, k_max = _cdt_table(float(sigma2))
    u = prg.uint64(size)
    return np.searchsorted(table, u, side="right").astype(np.int64) - k_max
