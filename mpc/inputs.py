"""A party's private input read from its own file, for ``mpc run --input`` (layer: mpc core).

:func:`load_input` reads one file into the value the program receives as its
first argument after ``party`` (as ``mpc.run(..., inputs=[...])`` gives it):

=========  ==============================================================
``.npy``   the array (numeric dtypes only; pickled objects are refused)
``.npz``   a file saved with one unnamed array (``np.savez(f, x)``) gives
           that array; named arrays (``np.savez(f, age=a, bp=b)``) give a
           dict ``{name: array}``, even when there is only one
``.csv``   a float array: 1-D for one column or one row, else 2-D (rows
           as read); a first line none of whose fields is a number is a
           header, skipped (a first row with a gap is an error, not a header)
``.json``  numbers stay numbers, lists of numbers (nested: rectangular)
           become numpy arrays, objects become dicts of those
=========  ==============================================================

Errors are :class:`~mpc.errors.ParameterError` naming the party and the file
(a missing, unreadable, malformed or non-numeric file), never its contents.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ParameterError

FORMATS = (".npy", ".npz", ".csv", ".json")
"""File extensions :func:`load_input` reads."""


def load_input(path: str | os.PathLike[str], party: int | None = None) -> Any:
    """The input stored in ``path`` (format by extension, see the module docstring)."""
    who = f"party {party}'s input file" if party is not None else "input file"
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in FORMATS:
        raise ParameterError(f"{who} {str(p)!r}: unknown format {ext or '(no extension)'!r}; "
                             f"use {', '.join(FORMATS)}")
    if not p.is_file():
        raise ParameterError(f"{who} {str(p)!r} not found")
    try:
        magic = {".npy": b"\x93NUMPY", ".npz": b"PK"}.get(ext)
        if magic is not None:
            with open(p, "rb") as f:
                if f.read(len(magic)) != magic:
                    raise ParameterError(f"{who} {str(p)!r}: not a valid {ext} file")
        if ext == ".npy":
            with open(p, "rb") as f:
                _check_npy_size(f, p.stat().st_size, who, p)
            return _numeric(np.load(p, allow_pickle=False), who, p)
        if ext == ".npz":
            with zipfile.ZipFile(p) as z:
                for info in z.infolist():
                    with z.open(info) as f:
                        _check_npy_size(f, info.file_size, who, p)
            with np.load(p, allow_pickle=False) as data:
                names = list(data.files)
                if names == ["arr_0"]:
                    return _numeric(data["arr_0"], who, p)
                return {name: _numeric(data[name], who, p) for name in names}
        if ext == ".csv":
            return _csv(p.read_text(encoding="utf-8-sig"), who, p)     # -sig: Excel's BOM
        return _from_json(json.loads(p.read_text(encoding="utf-8-sig")), who, p)
    except ParameterError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"cannot read {who} {str(p)!r}: {type(exc).__name__}") from None
    except (ValueError, zipfile.BadZipFile, EOFError, RecursionError) as exc:   # malformed content
        kind = "pickled objects are refused" if "pickle" in str(exc) else f"not a valid {ext} file"
        raise ParameterError(f"{who} {str(p)!r}: {kind}") from None


def _check_npy_size(f: Any, size: int, who: str, p: Path) -> None:
    """Refuse a .npy (or .npz member) whose header announces more data than it holds, before
    numpy allocates that much (a truncated or doctored file would otherwise raise MemoryError)."""
    if f.read(6) != b"\x93NUMPY":
        return                                # not an array: np.load / _numeric refuse it
    f.seek(0)
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):       # 3.0 is only for structured dtypes: not numbers
        raise ParameterError(f"{who} {str(p)!r}: not a valid {p.suffix.lower()} file "
                             f"(.npy format version {version})")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if not dtype.hasobject and need > size - f.tell():
        raise ParameterError(f"{who} {str(p)!r}: not a valid {p.suffix.lower()} file "
                             f"(its header announces shape {tuple(shape)}, more data than it holds)")


def _numeric(arr: np.ndarray, who: str, p: Path) -> np.ndarray:
    if not isinstance(arr, np.ndarray):   # an .npz member that is not a .npy file comes as bytes
        raise ParameterError(f"{who} {str(p)!r}: not a valid {p.suffix.lower()} file "
                             "(a member is not a numpy array)")
    if arr.dtype.kind not in "iuf":
        raise ParameterError(f"{who} {str(p)!r} holds {arr.dtype} values, not numbers")
    return arr


def _csv(text: str, who: str, p: Path) -> np.ndarray:
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    if rows and not any(_all_numbers([f]) for f in rows[0]):
        rows = rows[1:]   # a header: no field is a number ("1,,3" or "1,NA,3" is a data row with a gap)
    if not rows:
        raise ParameterError(f"{who} {str(p)!r} has no numeric rows")
    try:
        arr = np.array(rows, dtype=np.float64)   # parses each field as float() does
    except ValueError:
        for k, row in enumerate(rows):           # say which row is wrong
            if not _all_numbers(row):
                raise ParameterError(f"{who} {str(p)!r}: row {k + 1} is not all numbers") from None
            if len(row) != len(rows[0]):
                raise ParameterError(f"{who} {str(p)!r}: row {k + 1} has {len(row)} fields, "
                                     f"the first has {len(rows[0])}") from None
        raise
    return arr.reshape(-1) if 1 in arr.shape else arr


def _all_numbers(fields: list[str]) -> bool:
    try:
        for f in fields:
            float(f)
    except ValueError:
        return False
    return True


def _from_json(value: Any, who: str, p: Path) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise ParameterError(f"{who} {str(p)!r} holds a {type(value).__name__}, not numbers")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, dict):
        return {k: _from_json(v, who, p) for k, v in value.items()}
    if isinstance(value, list):
        if any(isinstance(v, dict) for v in value):
            return [_from_json(v, who, p) for v in value]
        try:
            arr = np.array(value)
        except ValueError:
            raise ParameterError(f"{who} {str(p)!r}: a list is not rectangular") from None
        if arr.dtype.kind not in "iuf" or _has_bool(value):   # numpy would turn [1, true] into [1, 1]
            raise ParameterError(f"{who} {str(p)!r}: a list holds values that are not numbers")
        return arr
    raise ParameterError(f"{who} {str(p)!r}: unexpected JSON value")  # pragma: no cover


def _has_bool(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_bool(v) for v in value)
    return isinstance(value, bool)
