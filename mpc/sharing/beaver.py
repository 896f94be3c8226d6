"""Products of additive shares with Beaver triples (layer: mpc core).

Protocol (Beaver, CRYPTO 1991), for ``z = x * y`` or ``z = x @ y``:

1. Take shares of a triple ``(a, b, c = a op b)`` from preprocessing.
2. Open ``e = x - a`` and ``d = y - b`` (one round; both are uniformly masked).
3. ``z_i = c_i + e op b_i + a_i op d``, and party 0 adds ``e op d``; computed
   by party 0 as ``e op (b_0 + d) + a_0 op d + c_0`` to save a product.

Security: semi-honest, any n-1 colluding parties, given a correct triple
source. ``e`` and ``d`` are uniform and independent of ``x`` and ``y``.

Cost: 1 round; each party sends ``8 * (|x| + |y|)`` bytes to each of the
n-1 others; consumes one triple.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..arith.ring import ring_matmul
from ..errors import ParameterError

if TYPE_CHECKING:
    from ..party import Party

_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"mul": np.multiply, "matmul": ring_matmul}


def beaver_product(party: Party, x: np.ndarray, y: np.ndarray, op: str = "mul") -> np.ndarray:
    """This party's share of ``x op y`` from its shares ``x`` and ``y``."""
    if op not in _OPS:
        raise ParameterError(f"unknown product {op!r}")
    if party.preprocessing is None:
        raise ParameterError("secret-secret products need a preprocessing source "
                             "(run with preprocessing='dealer' or another source)")
    if op == "mul" and (x.ndim == 0 or y.ndim == 0):
        # numpy scalars warn on wrap-around: compute on 1-element arrays
        shape = np.broadcast_shapes(x.shape, y.shape)
        return beaver_product(party, x.reshape(x.shape or (1,)), y.reshape(y.shape or (1,)),
                              op).reshape(shape)
    fn = _OPS[op]
    a, b, c = party.preprocessing.triple(op, x.shape, y.shape)
    e = x - a
    d = y - b
    for ej, dj in party.exchange(party.fresh(op), e, d, strict=True).values():
        e += ej
        d += dj
    if party.id == 0:
        b = b + d
    z = fn(e, b)
    z += fn(a, d)
    z += c
    return z
