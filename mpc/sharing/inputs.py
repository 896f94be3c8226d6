"""Secret-sharing inputs: :func:`share`, :func:`share_all` and their encoding and bound checks (layer: mpc core).

The owner encodes its input (fixed point or integer), checks it against the
public bound (declared, the session's ``input_bound``, or ``"auto"``) before
sending anything, and sends each other party a seed whose PRG expansion is
that party's share (see :mod:`mpc.sharing.seeded`).

This module is imported by :mod:`mpc.sharing.tensor` once ``SharedTensor``
exists, and its names are re-exported from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EncodingError, MalformedPeerData, ParameterError
from ..rand import PRG, random_seed
from ..schema import ArraySpec
from . import bounds
from .seeded import read_seed_message
from .tensor import SharedTensor

if TYPE_CHECKING:
    from ..party import Party


def _encode_input(party: Party, value: Any, integer: bool, call: str = "share", tag: str = ""
                  ) -> tuple[np.ndarray, int]:
    if value is None:
        raise ParameterError(f"party {party.id} owns this input but passed None")
    if integer:
        arr = np.asarray(value)
        if arr.dtype.kind not in "iub":
            raise ParameterError("integer=True needs an integer array")
        return arr.astype(np.int64).view(np.uint64), 0
    try:
        return party.fixed.encode(value), party.fixed.frac_bits
    except EncodingError as exc:   # say whose input, never its value
        shape = np.shape(value)
        raise EncodingError(f"party {party.id}'s input to mpc.{call} (argument 'value', shape {shape}, "
                            f"tag {tag!r}): {exc}") from None


def _seed_message(shape: tuple[int, ...], frac_bits: int) -> tuple[bytes, tuple[np.ndarray, ...]]:
    seed = random_seed()
    return seed, (np.frombuffer(seed, np.uint8), np.asarray(shape, dtype=np.uint64).reshape(-1),
                  np.asarray([frac_bits], dtype=np.uint8))


def _from_seed_message(party: Party, owner: int, tag: str, arrays: tuple[np.ndarray, ...]) -> SharedTensor:
    seed, shape, frac = read_seed_message(party, owner, tag, arrays, frac_bits=True)
    return SharedTensor(party, PRG(seed).uint64(shape), frac)


def _declared_bound(party: Party, bound: Any, frac: int) -> float:
    """A numeric or default bound (public: every party computes the same)."""
    if bound is None:
        session = getattr(party, "input_bound", None)
        if session is None:
            return bounds.default_input_bound(frac)
        return bounds.validate(session, frac, "input_bound")
    return bounds.validate(bound, frac)


def _owner_bound(party: Party, enc: np.ndarray, frac: int, bound: Any, call: str, tag: str) -> float:
    """The owner's bound for its encoded input, checked against the input locally."""
    if isinstance(bound, str):
        if bound != "auto":
            raise ParameterError(f"bound must be a positive number, 'auto' or None, not {bound!r}")
        return min(bounds.auto_bound(enc, frac), bounds.largest(frac))
    value = _declared_bound(party, bound, frac)
    where = f" to mpc.{call} (argument 'value', shape {enc.shape}, tag {tag!r})"
    bounds.owner_check(party.id, enc, frac, value, where)
    return value


def _bound_message(value: float) -> tuple[np.ndarray, ...]:
    """The arrays announcing an 'auto' bound: one float64 (read by :func:`_received_bound`)."""
    return (np.asarray([value], dtype=np.float64),)


def _received_bound(party: Party, owner: int, bound_tag: str, frac: int) -> float:
    """An 'auto' bound announced by ``owner``: a power of two (or the largest bound) within range.

    Anything else is :class:`~mpc.errors.MalformedPeerData` naming ``owner``.
    """
    (arr,) = party.recv_checked(owner, bound_tag, [ArraySpec(np.float64, (1,), field="input bound")])
    value = float(arr[0])
    ok = np.isfinite(value) and value > 0 and (
        value == bounds.largest(frac) or (np.frexp(value)[0] == 0.5 and value < bounds.limit(frac)))
    if not ok:
        tag = party.tag(bound_tag)
        raise MalformedPeerData(f"party {party.id}: party {owner} announced an input bound under "
                                f"{tag!r} that is not a power of two below {bounds.limit(frac):g} "
                                f"(round {party.last_round})", peer=owner, round=party.last_round,
                                tag=tag, field="input bound")
    return value


def _is_auto(bound: Any) -> bool:
    return isinstance(bound, str) and bound == "auto"


def _deal(party: Party, enc: np.ndarray, frac: int, declared: float, tag: str,
          bound_tag: str | None) -> np.ndarray:
    """The owner's side: a fresh seed to each peer (and an 'auto' bound); returns its own share."""
    mine = enc.copy()
    for p in party.peers:
        seed, msg = _seed_message(enc.shape, frac)
        mine -= PRG(seed).uint64(enc.shape)
        party.send(p, tag, *msg)
        if bound_tag:
            party.send(p, bound_tag, *_bound_message(declared))
    return mine


def share(party: Party, value: Any = None, owner: int = 0, *, integer: bool = False,
          bound: float | str | None = None) -> SharedTensor:
    """Secret-share ``value`` held by ``owner``; every party calls it (others pass None).

    The owner sends each other party a fresh 128-bit seed; that party's share
    is the seed's PRG expansion, and the owner keeps ``x`` minus their sum.

    ``bound`` is the input's public magnitude bound (``|x| <= bound``, see
    :class:`SharedTensor`): a number, which every party passes alike (it is
    part of the program, like the shape); ``None`` for the session's
    ``input_bound`` (by default the largest value below ``2^(31 - f)``, so
    that a product of two inputs fits); or ``"auto"``: the owner's largest
    ``|x|`` rounded up to a power of two, sent with the share, which **reveals
    the input's order of magnitude**. The owner checks its input against the
    bound before sending anything and refuses with
    :class:`~mpc.errors.RangeError`.

    Cost: 1 round, ``17 + 8*ndim`` bytes to each other party (seed, shape,
    encoding), plus 8 bytes for ``"auto"``.
    """
    if not 0 <= owner < party.n:
        raise ParameterError(f"owner {owner} out of range: parties are 0..{party.n - 1}")
    tag = party.fresh("share")
    bound_tag = party.fresh("share/bound") if _is_auto(bound) else None
    if party.id != owner:
        out = _from_seed_message(party, owner, tag, party.recv(owner, tag))
        out.bound = (_received_bound(party, owner, bound_tag, out.frac_bits)
                     if bound_tag else _declared_bound(party, bound, out.frac_bits))
        return out
    enc, frac = _encode_input(party, value, integer, "share", tag)
    declared = _owner_bound(party, enc, frac, bound, "share", tag)
    return SharedTensor(party, _deal(party, enc, frac, declared, tag, bound_tag), frac, declared)


def share_all(party: Party, value: Any, *, integer: bool = False,
              bound: float | str | None = None) -> list[SharedTensor]:
    """Every party shares its own ``value`` at once (one round); returns them by owner.

    ``bound`` as in :func:`share`, for every party's input.
    """
    tag = party.fresh("share_all")
    bound_tag = party.fresh("share_all/bound") if _is_auto(bound) else None
    enc, frac = _encode_input(party, value, integer, "share_all", tag)
    declared = _owner_bound(party, enc, frac, bound, "share_all", tag)
    mine = _deal(party, enc, frac, declared, tag, bound_tag)
    out: list[SharedTensor] = []
    for owner in range(party.n):
        if owner == party.id:
            out.append(SharedTensor(party, mine, frac, declared))
        else:
            t = _from_seed_message(party, owner, tag, party.recv(owner, tag))
            t.bound = (_received_bound(party, owner, bound_tag, t.frac_bits)
                       if bound_tag else _declared_bound(party, bound, t.frac_bits))
            out.append(t)
    return out
