"""Offline/online split: sealing a source, saving produced items to a file, serving them back (layer: mpc core).

The offline phase fills a source's store with :meth:`Preprocessing.prefetch`
(in bulk for the dealer-free sources). Then either

* :meth:`SealableMixin.seal` the source: later requests are served from the
  store only, and one that is not there raises :class:`PreprocessingExhausted`
  saying how many items of that kind and shape the program needed; or
* :func:`save` this party's store to a file (numpy ``.npz`` with a JSON
  manifest, never pickle) and later build a :class:`StoredSource` from it with
  :func:`load`, in another process or session.

Each party saves and loads its own file: it holds only that party's shares.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections import defaultdict, deque
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConciliumError, EncodingError, ParameterError, PreprocessingExhausted
from ..fileio import private_file
from .base import Preprocessing, Shares, triple_shapes

if TYPE_CHECKING:
    from ..party import Party

_FORMAT = "concilium-preprocessing/1"


def _describe(key: tuple[Any, ...]) -> str:
    kind, *args = key
    if kind in ("mul", "matmul"):
        return f"{kind} triples of shapes {args[0]} and {args[1]}"
    if kind == "trunc":
        return f"truncation pairs of shape {args[0]} (frac_bits {args[1]})"
    if kind == "binary":
        return f"binary triples of shape {args[0]}"
    return f"{kind} items of shape {args[0]}"


def offline(party: Party) -> AbstractContextManager[Any]:
    """``party.phase("offline")`` unless already inside it (nested phases of one name count twice)."""
    if party.current_phase == "offline":
        return nullcontext()
    return party.phase("offline")


class SealableMixin:
    """Adds :meth:`seal`: after it, only stored items are served (a strict online phase)."""

    _sealed = False
    _used: dict[tuple[Any, ...], int]

    def seal(self) -> None:
        """Serve only what the offline phase produced; running out raises :class:`PreprocessingExhausted`."""
        self._sealed = True

    def _check_stored(self, key: tuple[Any, ...], count: int) -> None:
        """A sealed source's ``prefetch``: make nothing, only check ``count`` items are waiting."""
        have = len(self._store.get(key, ()))  # type: ignore[attr-defined]
        if have < count:
            raise PreprocessingExhausted(
                f"preprocessing exhausted: {count} {_describe(key)} were asked for after the offline "
                f"phase ended, but only {have} are stored; produce them before sealing")

    def _prefetch_args(self, kind: str, args: tuple[Any, ...],
                       count: Any) -> tuple[Any, ...] | None:
        """The normalised ``args`` of a ``prefetch`` that must produce items, else None.

        Checks ``count``; a sealed source only checks that ``count`` items are waiting.
        """
        if not isinstance(count, (int, np.integer)) or count < 0:
            raise ParameterError("count must be a non-negative integer")
        norm = tuple(tuple(a) if isinstance(a, (list, tuple)) else a for a in args)
        if self._sealed:
            self._check_stored((kind, *norm), int(count))
            return None
        return norm if count else None

    def _take(self, key: tuple[Any, ...], make: Any) -> Shares:
        if not hasattr(self, "_used"):
            self._used = defaultdict(int)
        self._used[key] += 1
        stored = self._store.get(key)  # type: ignore[attr-defined]
        if stored:
            return stored.popleft()
        if self._sealed:
            needed = self._used[key]
            raise PreprocessingExhausted(
                f"preprocessing exhausted: the program needed at least {needed} {_describe(key)} "
                f"but the offline phase provided {needed - 1}; produce at least {needed} offline: "
                f"prefetch({key[0]!r}, {', '.join(map(repr, key[1:]))}, count={needed})")
        return super()._take(key, make)  # type: ignore[misc]


class StoredSource(SealableMixin, Preprocessing):
    """Serves items saved by :func:`save`; it cannot make new ones (always sealed)."""

    def __init__(self, items: dict[tuple[Any, ...], list[Shares]]) -> None:
        super().__init__()
        self._sealed = True
        for key, values in items.items():
            self._store[key] = deque(values)

    def remaining(self) -> dict[tuple[Any, ...], int]:
        """Items left, by request key."""
        return {k: len(v) for k, v in self._store.items() if v}

    def _triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> Shares:
        raise PreprocessingExhausted("a stored source makes no new triples")

    def _trunc_pair(self, shape: tuple[int, ...], frac_bits: int) -> Shares:
        raise PreprocessingExhausted("a stored source makes no new truncation pairs")

    def _binary_triple(self, shape: tuple[int, ...]) -> Shares:
        raise PreprocessingExhausted("a stored source makes no new binary triples")

    def prefetch(self, kind: str, *args: Any, count: int = 1) -> None:
        """Make nothing: check that ``count`` items of this kind and shape are stored."""
        norm = tuple(tuple(a) if isinstance(a, (list, tuple)) else a for a in args)
        self._check_stored((kind, *norm), count)


def _json_key(key: tuple[Any, ...]) -> list[Any]:
    return [list(a) if isinstance(a, tuple) else a for a in key]


def _tuple_key(raw: list[Any]) -> tuple[Any, ...]:
    return tuple(tuple(int(v) for v in a) if isinstance(a, list) else a for a in raw)


def save(source: Preprocessing, path: str | os.PathLike[str], *, party: Party | None = None,
         party_id: int | None = None) -> int:
    """Move the items waiting in ``source``'s store to ``path`` (``.npz``); return how many.

    The items leave ``source`` (so that they cannot also serve this session).
    The file is written with mode 0600 under a temporary name, then renamed
    over ``path`` (a link planted there is replaced, never followed).
    The file holds only this party's shares; with ``party`` it also records
    the party's id and the offline session, which :func:`load` checks.
    """
    if party is not None:
        party_id = party.id
    arrays: dict[str, np.ndarray] = {}
    manifest: dict[str, Any] = {"format": _FORMAT, "party": party_id, "groups": [],
                                "batch": None if party is None else bytes(party.session).hex(),
                                "parties": None if party is None else party.n}
    total = 0
    for g, (key, items) in enumerate(source._store.items()):
        if not items:
            continue
        width = len(items[0])
        for j in range(width):
            arrays[f"g{g}_{j}"] = np.stack([np.asarray(it[j], dtype=np.uint64) for it in items])
        manifest["groups"].append({"key": _json_key(key), "count": len(items), "width": width, "id": g})
        total += len(items)
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    with private_file(path, replace=True) as fh:  # 0600, never through a planted link
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stubs: **kwds are the named arrays
    for items in source._store.values():
        items.clear()
    return total


def _item_shapes(key: tuple[Any, ...]) -> list[tuple[int, ...]]:
    """The shapes of the arrays of one stored item of request ``key``."""
    kind, *args = key
    if kind in ("mul", "matmul"):
        return [args[0], args[1], triple_shapes(kind, args[0], args[1])]
    shape = args[0]
    if kind == "dabit":
        return [((int(np.prod(shape, dtype=np.int64)) + 63) // 64,), shape]
    if kind in ("trunc", "binary"):
        return [shape] * 3
    raise EncodingError(f"unknown preprocessing kind {kind!r}")


def load(path: str | os.PathLike[str], *, party: Party | None = None, party_id: int | None = None,
         consume: bool = True) -> StoredSource:
    """A :class:`StoredSource` serving the items :func:`save` wrote to ``path``.

    ``consume`` (default) renames the file to ``<path>.used`` once it is
    checked: a second load fails, since serving the same triples twice would
    let the other parties subtract two openings and learn the difference of
    two secrets. A refused file is left as it was.
    With ``party`` (inside a party's ``preprocessing=`` factory) the parties
    also compare the offline sessions their files come from (one exchange),
    and refuse a mix.
    """
    name = os.fspath(path)
    if party is not None:
        party_id = party.id
    used = name + ".used"
    if consume and not os.path.exists(name) and os.path.exists(used):
        raise ParameterError(f"{name!r} was already loaded once (it is now {used!r}): "
                             "preprocessing material must never serve two runs")
    try:
        items, manifest = _read(name, party_id)
    except ConciliumError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, IndexError,
            NotImplementedError, RuntimeError, zlib.error,  # RuntimeError: "encrypted" member
            zipfile.BadZipFile) as exc:  # a damaged zip, npy header or manifest
        raise EncodingError(f"cannot read preprocessing file {name!r}: {type(exc).__name__}: "
                            f"{str(exc)[:200]}") from None
    if party is not None:
        _same_batch(party, manifest, name)
    if consume:  # claim the file only once it is known good (the rename is atomic)
        try:
            os.rename(name, used)
        except FileNotFoundError:
            raise ParameterError(f"{name!r} was loaded by someone else meanwhile: preprocessing "
                                 "material must never serve two runs") from None
    return StoredSource(items)


def _read(name: str, party_id: int | None) -> tuple[dict[tuple[Any, ...], list[Shares]], dict[str, Any]]:
    """The items and manifest of the file ``name``, checked against each other."""
    data = np.load(name, allow_pickle=False)
    with data:
        if "manifest" not in data.files:
            raise EncodingError(f"{name!r} is not a preprocessing file (no manifest)")
        manifest = json.loads(bytes(data["manifest"]).decode())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("groups"), list):
            raise EncodingError(f"{name!r}: the manifest is not a preprocessing manifest")
        if manifest.get("format") != _FORMAT:
            raise EncodingError(f"{name!r} has format {manifest.get('format')!r}, expected {_FORMAT!r}")
        if party_id is not None and manifest.get("party") not in (None, party_id):
            raise ParameterError(f"{name!r} holds party {manifest['party']}'s shares, "
                                 f"not party {party_id}'s")
        items: dict[tuple[Any, ...], list[Shares]] = {}
        for grp in manifest["groups"]:
            key = _tuple_key(grp["key"])
            shapes = _item_shapes(key)
            cols = [data[f"g{grp['id']}_{j}"] for j in range(grp["width"])]
            if len(cols) != len(shapes) or any(
                    c.shape != (grp["count"], *shape) or c.dtype != np.uint64
                    for c, shape in zip(cols, shapes)):
                raise EncodingError(f"{name!r}: group {grp['id']} ({_describe(key)}) does not match "
                                    "its manifest")
            items[key] = [tuple(c[i] for c in cols) for i in range(grp["count"])]
    return items, manifest


def _same_batch(party: Party, manifest: dict[str, Any], name: str) -> None:
    """One exchange: every party's file must come from the same offline session."""
    batch = manifest.get("batch")
    if batch is None or manifest.get("parties") != party.n:
        raise ParameterError(f"{name!r} was saved without its party (save(..., party=party)) or for "
                             f"{manifest.get('parties')} parties, not {party.n}: cannot check it")
    mine = np.frombuffer(bytes.fromhex(batch), np.uint8)
    with offline(party):
        theirs = party.exchange("store/batch", mine, strict=True)
    for q, (other,) in theirs.items():
        if not np.array_equal(other, mine):
            raise ParameterError(f"party {party.id}: {name!r} comes from another offline session "
                                 f"than party {q}'s file; load files saved together")
