"""Public operands of a shared tensor: which ones are numbers, and how much they grow a bound (layer: mpc core).

Helpers of :class:`~mpc.sharing.tensor.SharedTensor` (and of
:mod:`mpc.sharing.compare`) for the plaintext side of an operation; they hold
no secrets.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def _is_integer_like(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind in "iub"

def _is_numeric(value: Any) -> bool:
    """A public operand of a comparison: a number or a numeric array."""
    if isinstance(value, (numbers.Number, np.generic)):
        return not isinstance(value, complex)
    return isinstance(value, (np.ndarray, list, tuple)) and np.asarray(value).dtype.kind in "iufb"

def _public_gain(c: np.ndarray, op: str, left: bool) -> float:
    """How much a public factor can grow a magnitude: ``max|c|``, or for ``@`` the largest
    absolute row sum (``c @ x``, ``left``) or column sum (``x @ c``)."""
    mag = np.abs(np.asarray(c, dtype=np.float64))
    if op == "mul" or mag.size == 0:
        return float(np.max(mag, initial=0.0))
    if mag.ndim == 1:
        return float(mag.sum())
    return float(np.max(mag.sum(axis=-1 if left else -2), initial=0.0))

def _negate_public(value: Any) -> Any:
    arr = np.asarray(value)
    if arr.dtype == np.uint64:
        return (np.uint64(0) - arr)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    return -arr
