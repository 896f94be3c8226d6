"""A small Boolean circuit builder and the circuits protocols need (layer: mpc core, pure).

:class:`Builder` records XOR/AND/INV gates on integer wire handles and
:meth:`Builder.build` turns them into a :class:`~mpc.gc.circuit.Circuit` in
Bristol Fashion order (inputs first, outputs last). The ready circuits all take
two ``n``-bit input groups ``a`` (group 0) and ``b`` (group 1), least
significant bit first, and are AND-optimal for their kind:

=====================  ===========  ==============  =====================
circuit                outputs      AND gates       AND depth
=====================  ===========  ==============  =====================
``less_than(n)``       ``a < b``    ``n``           ``n``
``greater_than(n)``    ``a > b``    ``n``           ``n``
``compare(n)``         ``a > b, a < b``  ``2n``     ``n``
``equal(n)``           ``a == b``   ``n - 1``       ``ceil(log2 n)``
``adder(n)``           ``a + b mod 2^n``  ``n - 1`` ``n - 1``
``mux(n)``             ``s ? b : a`` (groups s, a, b)  ``n``  ``1``
``maximum(n)``         ``max(a, b)``  ``2n``        ``n + 1``
=====================  ===========  ==============  =====================

``signed=True`` reads ``a`` and ``b`` as two's complement (the comparison flips
both sign bits, which is free). The comparison is the carry chain of
``a + not(b) + 1`` with one AND per bit, ``c' = c xor ((a xor c) and (not b xor c))``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from .circuit import AND, EQW, INV, XOR, Circuit

MAX_BITS = 4096


class Builder:
    """Record gates on wire handles; :meth:`build` numbers them in Bristol order."""

    def __init__(self, inputs: tuple[int, ...] | list[int], name: str = "circuit") -> None:
        if not inputs or any(int(w) <= 0 for w in inputs):
            raise ParameterError("a circuit needs at least one input group of positive width")
        self.inputs = tuple(int(w) for w in inputs)
        self.name = name
        self._next = sum(self.inputs)
        self._gates: list[tuple[int, int, int, int]] = []  # (op, a, b, out)

    def input(self, group: int) -> list[int]:
        """Wire handles of input group ``group``, least significant bit first."""
        if not 0 <= group < len(self.inputs):
            raise ParameterError(f"{self.name} has {len(self.inputs)} input groups")
        start = sum(self.inputs[:group])
        return list(range(start, start + self.inputs[group]))

    def _gate(self, op: int, a: int, b: int = -1) -> int:
        out = self._next
        self._next += 1
        self._gates.append((op, a, b, out))
        return out

    def xor(self, a: int, b: int) -> int:
        return self._gate(XOR, a, b)

    def and_(self, a: int, b: int) -> int:
        return self._gate(AND, a, b)

    def inv(self, a: int) -> int:
        return self._gate(INV, a)

    def build(self, outputs: list[list[int]]) -> Circuit:
        """The circuit whose output groups are ``outputs`` (lists of wire handles)."""
        if not outputs or any(not g for g in outputs):
            raise ParameterError("a circuit needs at least one non-empty output group")
        gates = list(self._gates)
        n_in = sum(self.inputs)
        flat = [w for g in outputs for w in g]
        produced = {g[3] for g in gates}
        seen: set[int] = set()
        final_out = []
        nxt = self._next
        for w in flat:  # an input or a repeated wire becomes an output through a copy
            if w not in produced or w in seen:
                gates.append((EQW, w, -1, nxt))
                w = nxt
                nxt += 1
            seen.add(w)
            final_out.append(w)
        internal = [g[3] for g in gates if g[3] not in seen]
        n_wires = n_in + len(internal) + len(final_out)
        remap = np.full(nxt, -1, np.int64)
        remap[:n_in] = np.arange(n_in)
        remap[internal] = np.arange(n_in, n_in + len(internal))
        remap[final_out] = np.arange(n_wires - len(final_out), n_wires)
        arr = np.array(gates, np.int64).reshape(-1, 4)
        b = np.where(arr[:, 2] >= 0, remap[np.maximum(arr[:, 2], 0)], -1)
        return Circuit(n_wires, self.inputs, tuple(len(g) for g in outputs), arr[:, 0],
                       remap[arr[:, 1]], b, remap[arr[:, 3]], name=self.name)

    # -- building blocks on wire lists -------------------------------------------------
    def geq_chain(self, a: list[int], b: list[int], signed: bool = False) -> int:
        """Wire of ``a >= b`` (carry out of ``a + not(b) + 1``): ``len(a)`` AND gates."""
        if signed:
            a = a[:-1] + [self.inv(a[-1])]
            b = b[:-1] + [self.inv(b[-1])]
        if not a:
            raise ParameterError("geq_chain compares words of at least one bit")
        carry: int | None = None  # carry-in 1, kept implicit
        for ai, bi in zip(a, b):
            nb = self.inv(bi)
            if carry is None:  # c = 1: c' = 1 xor ((a xor 1) and (not b xor 1)) = a or not b
                t = self.and_(self.inv(ai), bi)
                carry = self.inv(t)
            else:
                t = self.and_(self.xor(ai, carry), self.xor(nb, carry))
                carry = self.xor(carry, t)
        assert carry is not None  # a is not empty
        return carry

    def equal_tree(self, a: list[int], b: list[int]) -> int:
        """Wire of ``a == b``: XNOR per bit then a balanced AND tree (``len(a) - 1`` ANDs)."""
        level = [self.inv(self.xor(x, y)) for x, y in zip(a, b)]
        while len(level) > 1:
            nxt = [self.and_(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return level[0]

    def mux_bits(self, s: int, a: list[int], b: list[int]) -> list[int]:
        """``s ? b : a`` bitwise: ``a xor (s and (a xor b))``, one AND per bit."""
        return [self.xor(x, self.and_(s, self.xor(x, y))) for x, y in zip(a, b)]

    def add_bits(self, a: list[int], b: list[int]) -> list[int]:
        """``a + b mod 2^n`` by ripple carry, ``n - 1`` AND gates."""
        out = [self.xor(a[0], b[0])]
        if len(a) == 1:
            return out
        carry = self.and_(a[0], b[0])
        for i in range(1, len(a)):
            out.append(self.xor(self.xor(a[i], b[i]), carry))
            if i < len(a) - 1:
                t = self.and_(self.xor(a[i], carry), self.xor(b[i], carry))
                carry = self.xor(carry, t)
        return out


def _check_bits(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_BITS:
        raise ParameterError(f"bit width must be an integer in [1, {MAX_BITS}], got {n!r}")
    return int(n)


def _two(n: int, name: str) -> tuple[Builder, list[int], list[int]]:
    n = _check_bits(n)
    bld = Builder((n, n), name=name)
    return bld, bld.input(0), bld.input(1)


def less_than(n: int, signed: bool = False) -> Circuit:
    """``a < b`` for ``n``-bit ``a`` (group 0) and ``b`` (group 1): ``n`` AND gates."""
    bld, a, b = _two(n, f"lt{n}{'s' if signed else ''}")
    return bld.build([[bld.inv(bld.geq_chain(a, b, signed))]])


def greater_than(n: int, signed: bool = False) -> Circuit:
    """``a > b``: ``n`` AND gates."""
    bld, a, b = _two(n, f"gt{n}{'s' if signed else ''}")
    return bld.build([[bld.inv(bld.geq_chain(b, a, signed))]])


def compare(n: int, signed: bool = False) -> Circuit:
    """Two output bits ``(a > b, a < b)``, both zero when equal: ``2n`` AND gates."""
    bld, a, b = _two(n, f"cmp{n}{'s' if signed else ''}")
    gt = bld.inv(bld.geq_chain(b, a, signed))
    lt = bld.inv(bld.geq_chain(a, b, signed))
    return bld.build([[gt, lt]])


def equal(n: int) -> Circuit:
    """``a == b``: ``n - 1`` AND gates, depth ``ceil(log2 n)``."""
    bld, a, b = _two(n, f"eq{n}")
    return bld.build([[bld.equal_tree(a, b)]])


def adder(n: int) -> Circuit:
    """``a + b mod 2^n``: ``n - 1`` AND gates."""
    bld, a, b = _two(n, f"add{n}")
    return bld.build([bld.add_bits(a, b)])


def mux(n: int) -> Circuit:
    """Inputs ``(s: 1 bit, a: n, b: n)``; output ``b`` if ``s`` else ``a``: ``n`` AND gates."""
    n = _check_bits(n)
    bld = Builder((1, n, n), name=f"mux{n}")
    (s,) = bld.input(0)
    return bld.build([bld.mux_bits(s, bld.input(1), bld.input(2))])


def maximum(n: int, signed: bool = False) -> Circuit:
    """``max(a, b)``: a comparison then a multiplexer, ``2n`` AND gates."""
    bld, a, b = _two(n, f"max{n}{'s' if signed else ''}")
    a_lt_b = bld.inv(bld.geq_chain(a, b, signed))
    return bld.build([bld.mux_bits(a_lt_b, a, b)])
