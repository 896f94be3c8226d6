"""n-party additive secret sharing over Z_2^64: pure functions, no I/O (layer: mpc core).

``x = x_0 + x_1 + ... + x_{n-1} (mod 2^64)``. Any n-1 shares are uniformly
random and independent of ``x`` (perfect privacy against n-1 colluders).
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..rand import PRG


def split(x: np.ndarray, n: int, prg: PRG | None = None) -> list[np.ndarray]:
    """Split ring elements ``x`` into ``n`` additive shares.

    Shares 1..n-1 are uniform PRG output; share 0 is ``x`` minus their sum.
    """
    if n < 1:
        raise ParameterError(f"cannot split into {n} shares")
    x = np.asarray(x, dtype=np.uint64)
    prg = prg or PRG.fresh()
    rest = [prg.uint64(x.shape) for _ in range(n - 1)]
    first = x.copy()
    for r in rest:
        first -= r
    return [first, *rest]


def reconstruct(shares: list[np.ndarray]) -> np.ndarray:
    """Sum of the shares mod 2^64."""
    if not shares:
        raise ParameterError("no shares to reconstruct from")
    total = np.array(shares[0], dtype=np.uint64, copy=True)
    for s in shares[1:]:
        total += np.asarray(s, dtype=np.uint64)
    return total
