"""DH-PSI, the interactive part: :func:`psi` between two parties of a session (layer: protocols)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mpc.errors import MalformedPeerData, ParameterError, ProtocolError
from mpc.schema import ArraySpec

from . import oprf
from .blinding import _check_workers, blind, generate_key, hash_and_blind
from .hashing import (
    _KIND_BYTES,
    _KIND_NAMES,
    _KIND_STR,
    DEFAULT_DST,
    POINT_BYTES,
    TAG_BYTES,
    canonical_items,
)

if TYPE_CHECKING:
    from mpc.party import Party

_MODES = {"intersection": 0, "size": 1}
_VERSION = 1


def _rows(a: np.ndarray) -> np.ndarray:
    """View rows of a uint8 (n, k) array as single void scalars, for set operations."""
    a = np.ascontiguousarray(a)
    return a.view(np.dtype((np.void, a.shape[1]))).ravel()


def _select(values: Any, mask: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return values[mask]
    return [v for v, keep in zip(values, mask.tolist()) if keep]


def psi(party: Party, items: Any, *, peer: int | None = None, receiver: int | None = None,
        output: Literal["intersection", "size"] = "intersection", both: bool = False,
        workers: int | None = None, dst: bytes = DEFAULT_DST,
        max_peer_items: int | None = None, protocol: Literal["dh", "oprf"] = "dh") -> Any:
    """Run PSI with ``peer``; both parties call it (SPMD).

    Parameters
    ----------
    party:
        This party's :class:`mpc.Party`.
    items:
        This party's set: a 1-D integer array, or a sequence of ints, str or bytes
        (both parties the same kind). Duplicates are removed.
    peer:
        The other party; defaults to the only peer of a 2-party session.
    receiver:
        Who learns the result; defaults to the smaller of the two ids.
    output:
        ``"intersection"`` (the common items) or ``"size"`` (their number only).
    both:
        The receiver also tells the sender the result (the sender trusts it).
    workers:
        Threads for this party's scalar multiplications; ``None``: one per core.
    max_peer_items:
        Refuse (``ProtocolError``) a peer set larger than this, before any
        curve work on it; ``None``: no limit.
    protocol:
        ``"dh"`` (Diffie-Hellman on Curve25519, this package's docstring: least
        traffic, best for small sets and for ``output="size"``) or ``"oprf"``
        (KKRT16 OPRF from OT extension, :mod:`protocols.psi.oprf`: symmetric
        crypto per item, for large sets; ``workers`` and ``dst`` do not apply).
        Both parties must choose the same.

    Returns
    -------
    For a party that learns the result: the intersection, sorted (an int64
    array for integer items, else a list), or its size (int). Otherwise None.
    """
    if max_peer_items is not None and (not isinstance(max_peer_items, (int, np.integer))
                                       or max_peer_items < 0):
        raise ParameterError(f"max_peer_items must be a non-negative integer, got {max_peer_items!r}")
    if peer is None:
        if party.n != 2:
            raise ParameterError(f"party {party.id}: peer is required in a {party.n}-party session")
        peer = party.peers[0]
    if peer == party.id or not 0 <= peer < party.n:
        raise ParameterError(f"party {party.id}: {peer!r} is not a peer")
    if receiver is None:
        receiver = min(party.id, peer)
    if receiver not in (party.id, peer):
        raise ParameterError(f"receiver {receiver!r} must be one of the two parties {party.id}, {peer}")
    if output not in _MODES:
        raise ParameterError(f"output must be 'intersection' or 'size', not {output!r}")
    if protocol not in ("dh", "oprf"):
        raise ParameterError(f"protocol must be 'dh' or 'oprf', not {protocol!r}")
    workers = _check_workers(workers)
    if not isinstance(dst, bytes) or not 0 < len(dst) <= 255:
        raise ParameterError("the domain separation tag must be 1 to 255 bytes")
    if protocol == "oprf":
        with party.scope(party.fresh(f"psi{min(party.id, peer)}-{max(party.id, peer)}")):
            return oprf.run(party, peer, party.id == receiver, items, output == "size", both,
                            max_peer_items)
    kind, values, enc = canonical_items(items)
    header = np.concatenate([
        np.array([_VERSION, kind, _MODES[output], int(bool(both))], dtype=np.uint8),
        np.frombuffer(hashlib.sha256(dst).digest()[:8], dtype=np.uint8)])
    key = generate_key()
    # One counter per pair of parties, so that several PSIs between different pairs
    # of one session keep matching tags.
    with party.scope(party.fresh(f"psi{min(party.id, peer)}-{max(party.id, peer)}")):
        if party.id == receiver:
            return _receiver(party, peer, header, values, enc, key, workers, dst, max_peer_items)
        return _sender(party, peer, header, values, enc, key, workers, dst, max_peer_items)


def _check_header(party: Party, mine: np.ndarray, theirs: np.ndarray, peer: int) -> None:
    """Both parties must agree on version, output, ``both``, ``dst`` and item kind
    (``theirs`` already has the dtype and shape of ``mine``)."""
    if theirs[0] != mine[0] or theirs[2] != mine[2] or theirs[3] != mine[3]:
        raise ParameterError(f"party {party.id}: PSI settings differ from party {peer}'s "
                             f"(version, output, both): {mine[[0, 2, 3]].tolist()} vs "
                             f"{theirs[[0, 2, 3]].tolist()}")
    if not np.array_equal(theirs[4:], mine[4:]):
        raise ParameterError(f"party {party.id}: party {peer} hashes with a different "
                             "domain separation tag (dst)")
    k1, k2 = int(mine[1]), int(theirs[1])
    if k1 and k2 and k1 != k2:
        raise ParameterError(f"party {party.id} holds {_KIND_NAMES.get(k1, k1)} but party "
                             f"{peer} holds {_KIND_NAMES.get(k2, k2)}")


def _empty_like_peer(values: Any, theirs: np.ndarray) -> Any:
    """An empty set takes the type of the peer's items (a list for str or bytes)."""
    if len(values) == 0 and int(theirs[1]) in (_KIND_STR, _KIND_BYTES):
        return []
    return values


def _check_size(party: Party, theirs: np.ndarray, limit: int | None, peer: int) -> None:
    if limit is not None and len(theirs) > limit:
        raise ProtocolError(f"party {party.id}: party {peer} sent {len(theirs)} items, more than "
                            f"max_peer_items = {limit}")


def _reblind_peer(party: Party, peer: int, header: np.ndarray, values: Any, key: bytes, workers: int,
                  limit: int | None, tag: str, role: str) -> tuple[Any, np.ndarray]:
    """Receive the peer's header and blinded set, check them, and re-blind the set with our
    key (the first TAG_BYTES of each point). Returns (our values, typed as the peer's if
    ours are empty, the doubly blinded tags)."""
    their_header, theirs = party.recv_checked(peer, tag, [
        ArraySpec(np.uint8, header.shape, field="header"),
        ArraySpec(np.uint8, (None, POINT_BYTES), field=f"{role}'s blinded set")])
    _check_header(party, header, their_header, peer)
    values = _empty_like_peer(values, their_header)
    _check_size(party, theirs, limit, peer)
    with party.phase("psi/reblind"):
        return values, blind(theirs, key, workers)[:, :TAG_BYTES]


def _receiver(party: Party, peer: int, header: np.ndarray, values: Any, enc: list[bytes],
              key: bytes, workers: int, dst: bytes, limit: int | None) -> Any:
    size_only, both = bool(header[2]), bool(header[3])
    with party.phase("psi/blind"):
        mine = hash_and_blind(enc, key, workers, dst)                 # step 1: a·H(x_i)
    party.send(peer, "blinded-r", header, mine)
    values, double_theirs = _reblind_peer(party, peer, header, values, key, workers, limit,
                                          "blinded-s", "sender")      # step 2: a·b·H(y_j)
    (double_mine,) = party.recv_checked(peer, "double-r", [
        ArraySpec(np.uint8, (len(enc), TAG_BYTES), field="re-blinded set")])
    hit = np.isin(_rows(double_mine), _rows(double_theirs))          # step 3
    if size_only:
        count = int(hit.sum())
        if both:
            party.send(peer, "result", np.array([count], dtype=np.int64), public=True)
        return count
    if both:
        positions = np.flatnonzero(np.isin(_rows(double_theirs), _rows(double_mine)))
        party.send(peer, "result", positions.astype(np.int64), public=True)
    return _select(values, hit)


def _sender(party: Party, peer: int, header: np.ndarray, values: Any, enc: list[bytes],
            key: bytes, workers: int, dst: bytes, limit: int | None) -> Any:
    size_only, both = bool(header[2]), bool(header[3])
    order = np.argsort(party.prg.uint64(len(enc)), kind="stable")   # random order of Y
    with party.phase("psi/blind"):
        mine = hash_and_blind([enc[k] for k in order], key, workers, dst)  # step 1: b·H(y_j)
    party.send(peer, "blinded-s", header, mine)
    values, double = _reblind_peer(party, peer, header, values, key, workers, limit,
                                   "blinded-r", "receiver")          # step 2: b·a·H(x_i)
    if size_only:
        double = double[np.argsort(party.prg.uint64(len(double)), kind="stable")]
    party.send(peer, "double-r", double)
    if not both:
        return None
    most = min(len(enc), len(double))
    if size_only:
        (result,) = party.recv_checked(peer, "result", [
            ArraySpec(np.int64, (1,), low=0, high=most, field="intersection size")])
        return int(result[0])
    (result,) = party.recv_checked(peer, "result", [
        ArraySpec(np.int64, (None,), low=0, high=len(enc) - 1, max_len=most,
                  field="intersection positions")])
    if len(np.unique(result)) != len(result):
        raise MalformedPeerData(f"party {party.id}: party {peer} sent repeated intersection "
                                f"positions under {party.tag('result')!r}", peer=peer,
                                round=party.last_round, tag=party.tag("result"),
                                field="intersection positions")
    mask = np.zeros(len(enc), dtype=bool)
    mask[order[result]] = True
    return _select(values, mask)
