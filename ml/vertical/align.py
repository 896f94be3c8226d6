"""Alignment of the parties' rows: the common IDs by DH-PSI, in one agreed order (layer: ml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mpc.errors import ParameterError, ProtocolError
from protocols.psi import psi

if TYPE_CHECKING:
    from mpc.party import Party


def _row_index(ids: Any) -> tuple[Any, Any]:
    """(sorted distinct ids, function mapping a sorted subset to row numbers); ids must be distinct."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ParameterError(f"ids must be 1-D, got shape {ids.shape}")
        order = np.argsort(ids, kind="stable")
        if len(ids) and np.any(ids[order][1:] == ids[order][:-1]):
            raise ParameterError("ids must be distinct: one row per ID")

        def rows(common: Any) -> np.ndarray:
            common = np.asarray(common, dtype=ids.dtype)
            return order[np.searchsorted(ids[order], common)].astype(np.int64)
        return ids, rows
    ids = [bytes(v) if isinstance(v, (bytearray, memoryview)) else v for v in ids]  # hashable
    where = {v: k for k, v in enumerate(ids)}
    if len(where) != len(ids):
        raise ParameterError("ids must be distinct: one row per ID")
    return ids, lambda common: np.array([where[v] for v in common], dtype=np.int64)


def align(party: Party, ids: Any, *, label_party: int = 0,
          workers: int | None = None) -> tuple[Any, np.ndarray]:
    """Find the IDs all parties hold; return (common IDs, sorted; this party's row of each).

    Every party of the session calls it. ``ids`` are this party's row IDs
    (distinct): a 1-D integer array, or a list of ints, str or bytes.

    Protocol: the label party ``L`` runs DH-PSI (both parties learn the
    result) with each other party in turn, each time with the set that is
    left; then it tells the earlier parties, by positions, which of their
    common IDs survived. Cost: ``k - 1`` PSIs on the shrinking set, plus
    ``k - 2`` messages of ``8 |common|`` bytes.
    """
    if not 0 <= label_party < party.n:
        raise ParameterError(f"label_party {label_party!r} is not a party (0..{party.n - 1})")
    ids, rows_of = _row_index(ids)
    hosts = [p for p in range(party.n) if p != label_party]
    with party.scope(party.fresh("align")), party.phase("vertical/align"):
        if party.id == label_party:
            chain = []
            current = ids
            for h in hosts:
                current = psi(party, current, peer=h, receiver=label_party, both=True,
                              workers=workers)
                chain.append(current)
            for h, seen in zip(hosts[:-1], chain[:-1]):
                _, pos_in = _row_index(seen)
                party.send(h, "survivors", pos_in(current))
            return current, rows_of(current)
        common = psi(party, ids, peer=label_party, receiver=label_party, both=True, workers=workers)
        if party.id != hosts[-1]:
            (pos,) = party.recv(label_party, "survivors")
            if (pos.dtype != np.int64 or pos.ndim != 1 or len(pos) > len(common)
                    or (len(pos) and (pos.min() < 0 or pos.max() >= len(common)
                                      or np.any(np.diff(pos) <= 0)))):
                raise ProtocolError(f"party {party.id}: malformed survivor positions from "
                                    f"party {label_party}")
            common = common[pos] if isinstance(common, np.ndarray) else [common[k] for k in pos]
        return common, rows_of(common)
