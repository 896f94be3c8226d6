"""Program outputs as JSON, for results that cross from a party process to its launcher (layer: mpc core).

:func:`encode_value` turns numbers, strings, lists, tuples, dicts and numpy
arrays (dtype + shape + base64 of the raw bytes) into JSON values;
:func:`decode_value` turns them back. Nothing is unpickled or evaluated:
unknown objects travel as their ``repr`` and come back as that string.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from ..errors import EncodingError
from .wire import DTYPES

_DTYPE_CODES = frozenset(dt.str for dt in DTYPES)


def encode_value(value: Any) -> Any:
    """A JSON-ready form of a program output: numbers, strings, lists, dicts, numpy arrays."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if np.isfinite(f) else {"$float": repr(f)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value).reshape(value.shape)   # ascontiguousarray makes 0-d 1-d
        if arr.dtype.newbyteorder("<") not in DTYPES:
            raise EncodingError(f"cannot return an array of dtype {arr.dtype}")
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        return {"$array": arr.dtype.str, "shape": list(arr.shape),
                "data": base64.b64encode(arr.tobytes()).decode("ascii")}
    if isinstance(value, (list, tuple)):
        items = [encode_value(v) for v in value]
        return items if isinstance(value, list) else {"$tuple": items}
    if isinstance(value, dict):
        return {"$dict": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if hasattr(value, "reveal"):
        raise EncodingError("a program returned a secret-shared value; return value.reveal() instead")
    return {"$repr": repr(value)[:1000]}


def decode_value(data: Any) -> Any:
    """Inverse of :func:`encode_value` (unknown objects come back as their repr string).

    Anything that is not such a value raises :class:`EncodingError`.
    """
    try:
        return _decode(data)
    except EncodingError:
        raise
    except (TypeError, ValueError, KeyError, binascii.Error, RecursionError) as exc:
        raise EncodingError(f"malformed result value ({type(exc).__name__}: {str(exc)[:200]})") from None


def _decode(data: Any) -> Any:
    if isinstance(data, list):
        return [_decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$float" in data:
        return float(data["$float"])
    if "$array" in data:
        if data["$array"] not in _DTYPE_CODES:   # before numpy parses any string as a dtype
            raise EncodingError(f"unexpected dtype {str(data['$array'])[:40]!r} in a result")
        dt = np.dtype(data["$array"])
        shape = tuple(int(s) for s in data["shape"])
        if any(s < 0 for s in shape) or len(shape) > 32:
            raise EncodingError(f"array shape {shape[:8]} in a result is not a shape")
        raw = base64.b64decode(data["data"], validate=True)
        if len(raw) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise EncodingError("array data does not match its shape")
        return np.frombuffer(raw, dt).reshape(shape).copy()
    if "$tuple" in data:
        return tuple(_decode(v) for v in data["$tuple"])
    if "$dict" in data:
        out = {}
        for k, v in data["$dict"]:
            k = _decode(k)
            out[tuple(k) if isinstance(k, list) else k] = _decode(v)
        return out
    if "$repr" in data:
        return str(data["$repr"])
    raise EncodingError(f"unknown value encoding {sorted(data)}")
