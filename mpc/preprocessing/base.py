"""The preprocessing interface every triple source implements (layer: mpc core).

A source hands each party its shares of correlated randomness:

* ``triple("mul", sa, sb)``: additive shares of ``a``, ``b`` and ``c = a * b``
  (numpy broadcasting of shapes ``sa`` and ``sb``) over Z_2^64;
* ``triple("matmul", sa, sb)``: the same with ``c = a @ b``;
* ``trunc_pair(shape, f)``: shares of a uniform ``r``, of ``r >> f`` and of
  the top bit ``r >> 63``, for exact probabilistic truncation;
* ``binary_triple(shape)``: XOR shares of uint64 words ``a``, ``b``, ``a & b``;
* ``dabit(shape)``: random bits ``r`` shared in both domains (daBits): XOR
  shares of ``r`` packed as a bit stream (:func:`mpc.sharing.binary.pack_bits`
  order, ``ceil(size/64)`` words) and additive shares of ``r`` (``shape``).
  Optional: a source without it raises ``NotImplementedError``.

Every party must ask for the same items in the same order (SPMD code does).
``prefetch`` produces items ahead of time (the offline phase); later requests
with the same arguments are served from that store first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict, deque
from typing import Any, Callable

import numpy as np

from ..errors import ParameterError

Shares = tuple[np.ndarray, ...]
KINDS = ("mul", "matmul")


def triple_shapes(op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of ``c`` for a triple of kind ``op``; raise on incompatible shapes."""
    if op == "mul":
        try:
            return tuple(np.broadcast_shapes(tuple(sa), tuple(sb)))
        except ValueError:
            raise ParameterError(f"shapes {tuple(sa)} and {tuple(sb)} do not broadcast") from None
    if op == "matmul":
        return matmul_shape(sa, sb)
    raise ParameterError(f"unknown triple kind {op!r}; expected one of {KINDS}")


def matmul_shape(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of ``a @ b`` under numpy's matmul rules, without computing it."""
    sa, sb = tuple(sa), tuple(sb)
    if not sa or not sb:
        raise ParameterError("matmul needs operands of at least one dimension")
    a2 = (1,) + sa if len(sa) == 1 else sa
    b2 = sb + (1,) if len(sb) == 1 else sb
    if a2[-1] != b2[-2]:
        raise ParameterError(f"shapes {sa} @ {sb} do not match for matmul")
    try:
        batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    except ValueError:
        raise ParameterError(f"batch shapes of {sa} @ {sb} do not broadcast") from None
    out = batch + ((a2[-2],) if len(sa) > 1 else ()) + ((b2[-1],) if len(sb) > 1 else ())
    return out


class Preprocessing(ABC):
    """A source of correlated randomness for one party."""

    def __init__(self) -> None:
        self._store: dict[tuple[Any, ...], deque[Shares]] = defaultdict(deque)
        self.produced: dict[str, int] = defaultdict(int)

    # Subclasses produce items; the public methods add the prefetch store.
    @abstractmethod
    def _triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> Shares: ...

    @abstractmethod
    def _trunc_pair(self, shape: tuple[int, ...], frac_bits: int) -> Shares: ...

    @abstractmethod
    def _binary_triple(self, shape: tuple[int, ...]) -> Shares: ...

    def _dabit(self, shape: tuple[int, ...]) -> Shares:
        raise NotImplementedError(f"{type(self).__name__} does not provide daBits")

    def _take(self, key: tuple[Any, ...], make: Any) -> Shares:
        stored = self._store.get(key)
        if stored:
            return stored.popleft()
        self.produced[key[0]] += 1
        return make()

    def triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> Shares:
        """This party's shares ``(a, b, c)`` of a Beaver triple."""
        sa, sb = tuple(sa), tuple(sb)
        triple_shapes(op, sa, sb)
        return self._take((op, sa, sb), lambda: self._triple(op, sa, sb))

    def trunc_pair(self, shape: tuple[int, ...], frac_bits: int) -> Shares:
        """This party's shares ``(r, r >> f, r >> 63)``."""
        shape = tuple(shape)
        return self._take(("trunc", shape, frac_bits), lambda: self._trunc_pair(shape, frac_bits))

    def binary_triple(self, shape: tuple[int, ...]) -> Shares:
        """This party's XOR shares ``(a, b, a & b)`` of uint64 words."""
        shape = tuple(shape)
        return self._take(("binary", shape), lambda: self._binary_triple(shape))

    def dabit(self, shape: tuple[int, ...]) -> Shares:
        """This party's shares ``(packed XOR shares of r, additive shares of r)`` of random bits."""
        shape = tuple(shape)
        return self._take(("dabit", shape), lambda: self._dabit(shape))

    def prefetch(self, kind: str, *args: Any, count: int = 1) -> None:
        """Produce ``count`` items now (offline) for later requests with the same arguments."""
        if count < 0:
            raise ParameterError("count must be non-negative")
        makers: dict[str, Callable[..., Any]] = {"mul": self._triple, "matmul": self._triple,
                  "trunc": self._trunc_pair, "binary": self._binary_triple, "dabit": self._dabit}
        if kind not in makers:
            raise ParameterError(f"unknown preprocessing kind {kind!r}; expected {sorted(makers)}")
        norm = tuple(tuple(a) if isinstance(a, (list, tuple)) else a for a in args)
        key = (kind, *norm)
        for _ in range(count):
            self.produced[kind] += 1
            item = makers[kind](kind, *norm) if kind in KINDS else makers[kind](*norm)
            self._store[key].append(item)
