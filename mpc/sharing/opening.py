"""Opening a shared tensor: reveal to every party or to some (layer: mpc core).

Cost: 1 round; each party sends ``8 * size`` bytes to each receiver. An opened
value is public by design: a transcript may show it beside its messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..arith.fixed import FixedPoint
from ..errors import ParameterError

if TYPE_CHECKING:
    from ..party import Party
    from .tensor import SharedTensor


def _targets(party: Party, to: int | Sequence[int] | None) -> tuple[int, ...]:
    if to is None:
        return tuple(range(party.n))
    targets = (to,) if isinstance(to, (int, np.integer)) else tuple(to)
    for t in targets:
        if not 0 <= t < party.n:
            raise ParameterError(f"cannot reveal to party {t}: parties are 0..{party.n - 1}")
    if not targets:
        raise ParameterError("reveal needs at least one receiving party")
    return tuple(sorted(set(targets)))


def open_words(party: Party, share: np.ndarray, to: int | Sequence[int] | None, name: str,
               xor: bool = False) -> tuple[str, np.ndarray | None]:
    """Send ``share`` to the receivers and, at a receiver, combine every party's words
    (sum mod 2^64, or XOR for binary shares); returns the tag and the opened words (None elsewhere)."""
    targets = _targets(party, to)
    tag = party.fresh(name)
    receivers = [t for t in targets if t != party.id]
    if receivers:
        party.send_many(receivers, tag, share)
    if party.id not in targets:
        return tag, None
    total = share.copy()
    for p in party.peers:
        if xor:
            total ^= party.recv_like(p, tag, share)[0]
        else:
            total += party.recv_like(p, tag, share)[0]
    return tag, total


def _open(x: SharedTensor, to: int | Sequence[int] | None) -> np.ndarray | None:
    party = x.party
    tag, total = open_words(party, x.share, to, "open")
    if total is None:
        return None
    # An opened value is public by design: a transcript may show it beside its messages.
    party.publish(tag, total.view(np.int64) if x.frac_bits == 0
                  else total.view(np.int64) / float(1 << x.frac_bits))
    return total


def reveal(x: SharedTensor, to: int | Sequence[int] | None = None) -> np.ndarray | None:
    """Open ``x`` to ``to`` (default: everyone), decoded to float64 (or int64 for integers).

    Cost: 1 round; each party sends ``8 * size`` bytes to each receiver.
    """
    opened = _open(x, to)
    if opened is None:
        return None
    if x.frac_bits == 0:
        return opened.view(np.int64)

    return FixedPoint(x.frac_bits).decode(opened)
