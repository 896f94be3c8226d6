"""Schemas of peer messages: what each array of a message must be, checked before use (layer: mpc core).

A message is a tuple of numpy arrays. A schema is a sequence of
:class:`ArraySpec` (or ``(dtype, shape)`` pairs): per array a dtype, a shape
whose ``None`` entries are free, an optional cap on the size of a free axis
and an optional inclusive range of the values. :func:`mismatch` says what is
wrong (or ``None``); :func:`check_arrays` raises
:class:`~mpc.errors.MalformedPeerData` naming the message; the party's
:meth:`~mpc.Party.recv_checked` receives and checks in one call. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np

from .errors import MalformedPeerData


@dataclass(frozen=True)
class ArraySpec:
    """One array of a message.

    ``dtype`` ``None``: any dtype; ``shape`` ``None``: any shape, else one entry
    per axis (``None``: any length, at most ``max_len``); ``low``/``high``:
    inclusive bounds on every value; ``field``: a name for errors.
    """

    dtype: Any = None
    shape: tuple[int | None, ...] | None = None
    low: int | None = None
    high: int | None = None
    max_len: int | None = None
    field: str = ""

    @classmethod
    def like(cls, arr: np.ndarray) -> "ArraySpec":
        """Exactly the dtype and shape of ``arr``."""
        return cls(arr.dtype, tuple(arr.shape))

    def describe(self) -> str:
        if self.dtype is None and self.shape is None:
            return "any array"
        dt = "any" if self.dtype is None else str(np.dtype(self.dtype))
        shape = "[...]" if self.shape is None else "[" + ", ".join("n" if s is None else str(s)
                                                                  for s in self.shape) + "]"
        return dt + shape


SpecLike = Union[ArraySpec, tuple]
Schema = Sequence[SpecLike]


def spec(entry: SpecLike) -> ArraySpec:
    """``entry`` as an :class:`ArraySpec` (a ``(dtype, shape)`` pair is accepted)."""
    return entry if isinstance(entry, ArraySpec) else ArraySpec(*entry)


def describe(arrays: Sequence[Any]) -> str:
    """``uint64[2, 3], uint8[16]``: dtypes and shapes, never values."""
    return ", ".join(f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
                     for a in arrays) or "nothing"


def mismatch(arrays: Any, schema: Schema) -> tuple[int | None, str] | None:
    """``None`` if ``arrays`` fit ``schema``; else ``(index or None for the count, what is wrong)``."""
    if not isinstance(arrays, (tuple, list)):
        return None, f"expected a tuple of arrays, got {type(arrays).__name__}"
    if len(arrays) != len(schema):
        return None, f"expected {len(schema)} arrays, got {len(arrays)}"
    for i, (arr, entry) in enumerate(zip(arrays, schema)):
        s = spec(entry)
        if not isinstance(arr, np.ndarray):
            return i, f"array {i} is a {type(arr).__name__}, not an array"
        if s.dtype is not None and arr.dtype != np.dtype(s.dtype):
            return i, f"array {i} has dtype {arr.dtype}, expected {np.dtype(s.dtype)}"
        if s.shape is not None and (arr.ndim != len(s.shape) or any(
                w is not None and w != a for w, a in zip(s.shape, arr.shape))):
            return i, f"array {i} has shape {arr.shape}, expected {s.shape}"
        if s.max_len is not None and s.shape is not None and any(
                w is None and a > s.max_len for w, a in zip(s.shape, arr.shape)):
            return i, f"array {i} has shape {arr.shape}, more than {s.max_len} along a free axis"
        if arr.size and ((s.low is not None and arr.min() < s.low)
                         or (s.high is not None and arr.max() > s.high)):
            return i, f"array {i} has values outside [{s.low}, {s.high}]"
    return None


def check_arrays(arrays: Any, schema: Schema, what: str, *, peer: int | str | None = None,
                 round: int | None = None, tag: str | None = None) -> tuple[np.ndarray, ...]:
    """``arrays`` as a tuple if they fit ``schema``, else :class:`MalformedPeerData`
    ``"{what}: array 1 has shape (3,), expected (4,)"``."""
    bad = mismatch(arrays, schema)
    if bad is not None:
        i, why = bad
        field = None if i is None else (spec(schema[i]).field or f"array {i}")
        raise MalformedPeerData(f"{what}: {why}", peer=peer, round=round, tag=tag, field=field)
    return tuple(arrays)
