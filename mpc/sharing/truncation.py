"""Exact probabilistic truncation of fixed-point shares with a dealer pair (layer: mpc core).

After a product of two fixed-point values the result carries ``2f``
fractional bits and must be divided by ``2^f``. Local truncation of shares
(SecureML, CrypTen) fails with probability about ``|x| / 2^63`` per element, by
``2^(64-f)``. We use a preprocessed pair instead, in the style of Escudero et
al. (CRYPTO 2020) and Dalskov-Escudero-Keller (PETS 2020):

Protocol
--------
Given shares of ``x`` with ``|x| < 2^62`` and shares of a uniform ``r``, of
``r >> f`` and of ``msb(r) = r >> 63``:

1. Locally shift ``x' = x + 2^62``, so ``0 <= x' < 2^63``.
2. Open ``c = x' + r mod 2^64`` (one round; ``c`` is uniform: it reveals
   nothing about ``x``).
3. The addition wrapped iff ``msb(r) = 1`` and ``msb(c) = 0``, so the wrap bit
   ``w = msb(r) * (1 - msb(c))`` is linear in the shares of ``msb(r)``.
4. ``x' >> f = (c >> f) - (r >> f) + w * 2^(64 - f) - carry`` where ``carry``
   is the borrow from the low ``f`` bits; dropping it gives
   ``floor(x'/2^f) + b`` with ``P[b = 1] = frac(x'/2^f)``: stochastic,
   unbiased rounding.
5. Shift back by ``2^(62 - f)``.

Error and failure
-----------------
The result is ``x / 2^f`` rounded down or up (error below one unit in the last
place, ``2^-f``, and zero on average); there is no failure probability as long
as ``|x| < 2^62``, i.e. a product of reals with ``|x*y| < 2^(62-2f)``. Beyond
that bound the result is wrong (as any ring overflow is): the fixed-point
range is documented in :mod:`mpc.arith.fixed`.

Cost: 1 round; each party sends ``8 * size`` bytes to each of the n-1 others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ParameterError

if TYPE_CHECKING:
    from ..party import Party
    from ..preprocessing.base import Preprocessing

_SHIFT = np.uint64(1 << 62)
_ONE = np.uint64(1)


def _need(party: Party) -> Preprocessing:
    if party.preprocessing is None:
        raise ParameterError("a fixed-point product (also by a public real such as 0.5) truncates, "
                             "which needs a preprocessing source: run with preprocessing='dealer' "
                             "or another source, or multiply by integers only")
    return party.preprocessing


def _mask(party: Party, share: np.ndarray, frac_bits: int) -> tuple[np.ndarray, tuple]:
    """Step 1-2 (local part): the masked ``x + 2^62 + r`` and the pair it used."""
    pair = _need(party).trunc_pair(share.shape, frac_bits)
    masked = share + pair[0]
    if party.id == 0:
        masked += _SHIFT
    return masked, pair


def _finish(party: Party, opened: np.ndarray, pair: tuple, frac_bits: int) -> np.ndarray:
    """Steps 3-5 from the opened ``c``."""
    _, r_hi, r_msb = pair
    # w = msb(r) * (1 - msb(c)): c's top bit is public.
    not_top = _ONE - (opened >> np.uint64(63))
    out = r_msb * not_top
    out <<= np.uint64(64 - frac_bits)
    out -= r_hi
    if party.id == 0:
        out += opened >> np.uint64(frac_bits)
        out -= np.uint64(1 << (62 - frac_bits))
    return out


def _open(party: Party, masked: np.ndarray) -> np.ndarray:
    tag = party.fresh("trunc")
    opened = masked
    for arrays in party.exchange(tag, masked, strict=True).values():
        opened = opened + arrays[0]
    return opened


def truncate(party: Party, share: np.ndarray, frac_bits: int) -> np.ndarray:
    """Shares of ``x >> frac_bits`` (signed, stochastically rounded) from shares of ``x``."""
    if frac_bits == 0:
        return share
    if share.ndim == 0:  # numpy scalars warn on wrap-around; work on a 1-element array
        return truncate(party, share.reshape(1), frac_bits).reshape(())
    _need(party)
    masked, pair = _mask(party, share, frac_bits)
    return _finish(party, _open(party, masked), pair, frac_bits)


def truncate_each(party: Party, share: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shares of ``x >> shifts`` with a shift per element (``shifts`` broadcasts to ``share``), in 1 round.

    Elements are grouped by shift; each group uses its own pairs, and the
    masked values of all groups are opened in one message.
    """
    shifts = np.broadcast_to(np.asarray(shifts, dtype=np.int64), share.shape)
    distinct = [int(s) for s in np.unique(shifts) if s != 0]
    if len(distinct) == 0:
        return share
    if len(distinct) == 1 and np.all(shifts == distinct[0]):
        return truncate(party, share, distinct[0])
    _need(party)
    flat, flat_shifts = share.reshape(-1), shifts.reshape(-1)
    groups = [np.flatnonzero(flat_shifts == s) for s in distinct]
    parts = [_mask(party, flat[idx], s) for idx, s in zip(groups, distinct)]
    opened = _open(party, np.concatenate([m for m, _ in parts]))
    out, pos = flat.copy(), 0
    for idx, s, (_, pair) in zip(groups, distinct, parts):
        out[idx] = _finish(party, opened[pos:pos + idx.size], pair, s)
        pos += idx.size
    return out.reshape(share.shape)
