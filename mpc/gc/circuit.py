"""Boolean circuits as arrays, their gate schedule and plaintext evaluation (layer: mpc core, pure).

A :class:`Circuit` holds its gates as parallel numpy arrays (``op``, ``a``,
``b``, ``out``) with Bristol Fashion semantics: wires are numbered inputs
first, outputs last; each wire is written by exactly one gate, after the wires
it reads. Ops: ``XOR``, ``AND``, ``INV``, ``EQW`` (copy), ``EQ`` (constant,
``a`` holds 0 or 1); Bristol's ``MAND`` is expanded into ``AND`` gates.

:attr:`Circuit.plan` is the one gate schedule (:class:`Plan`): step ``L``
runs, in one batch, every AND gate whose longest path holds ``L`` AND gates,
then the XOR gates of that level by their depth inside it; INV, EQW and EQ
gates are folded into complemented slots, so they cost nothing, and the
outputs of each step sit in contiguous slots. Garbling, evaluation and the
plaintext evaluator all run it step by step on whole arrays, so a circuit
with AND-depth ``d`` costs ``d`` hash batches whatever its width.
"""

from __future__ import annotations

import hashlib

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import ParameterError

XOR, AND, INV, EQ, EQW = 0, 1, 2, 3, 4
OP_NAMES = {"XOR": XOR, "AND": AND, "INV": INV, "EQ": EQ, "EQW": EQW}


class Circuit:
    """A Boolean circuit in Bristol Fashion semantics.

    Parameters
    ----------
    n_wires:
        Number of wires.
    inputs, outputs:
        Widths of the input and output groups (wires ``0..sum(inputs)-1`` are
        inputs, the last ``sum(outputs)`` wires are outputs).
    op, a, b, out:
        One entry per gate, in a valid topological order (checked).
    name:
        For messages.
    """

    def __init__(self, n_wires: int, inputs: tuple[int, ...], outputs: tuple[int, ...],
                 op: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray,
                 name: str = "circuit") -> None:
        self.n_wires = int(n_wires)
        self.inputs = tuple(int(w) for w in inputs)
        self.outputs = tuple(int(w) for w in outputs)
        self.op = np.asarray(op, np.int8)
        self.a = np.asarray(a, np.int64)
        self.b = np.asarray(b, np.int64)
        self.out = np.asarray(out, np.int64)
        self.name = name
        self._validate()

    # -- shape ------------------------------------------------------------------
    def fingerprint(self) -> bytes:
        """SHA-256 of the wiring (not the name): two parties compare it before garbling."""
        h = hashlib.sha256(b"concilium-circuit-v1")
        h.update(np.array([self.n_wires, len(self.inputs), len(self.outputs)], np.int64).tobytes())
        h.update(np.array(self.inputs + self.outputs, np.int64).tobytes())
        for arr in (self.op.astype(np.int8), self.a, self.b, self.out):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.digest()

    @property
    def n_inputs(self) -> int:
        return sum(self.inputs)

    @property
    def n_outputs(self) -> int:
        return sum(self.outputs)

    @property
    def n_gates(self) -> int:
        return int(self.op.size)

    @property
    def n_and(self) -> int:
        return int(np.count_nonzero(self.op == AND))

    @property
    def output_wires(self) -> np.ndarray:
        return np.arange(self.n_wires - self.n_outputs, self.n_wires, dtype=np.int64)

    def input_slice(self, group: int) -> slice:
        """Wire range of input group ``group``."""
        if not 0 <= group < len(self.inputs):
            raise ParameterError(f"{self.name} has {len(self.inputs)} input groups, not {group + 1}")
        start = sum(self.inputs[:group])
        return slice(start, start + self.inputs[group])

    def counts(self) -> dict[str, int]:
        """Number of gates of each op."""
        return {name: int(np.count_nonzero(self.op == code)) for name, code in OP_NAMES.items()}

    def __repr__(self) -> str:
        c = self.counts()
        return (f"Circuit({self.name!r}, inputs={self.inputs}, outputs={self.outputs}, "
                f"wires={self.n_wires}, AND={c['AND']}, XOR={c['XOR']}, INV={c['INV']})")

    # -- checks -----------------------------------------------------------------
    def _validate(self) -> None:
        n, ng = self.n_wires, self.op.size
        if any(w <= 0 for w in self.inputs + self.outputs) or not self.outputs:
            raise ParameterError(f"{self.name}: input and output widths must be positive")
        if not (self.a.size == self.b.size == self.out.size == ng):
            raise ParameterError(f"{self.name}: gate arrays of different lengths")
        if self.n_inputs + self.n_outputs > n:
            raise ParameterError(f"{self.name}: {n} wires cannot hold the inputs and outputs")
        if ng and (self.out.min() < self.n_inputs or self.out.max() >= n):
            raise ParameterError(f"{self.name}: a gate writes an input wire or a wire >= {n}")
        if np.unique(self.out).size != ng:
            raise ParameterError(f"{self.name}: a wire is written by two gates")
        # topological order: every wire read is an input or written by an earlier gate
        when = np.full(n, -1, np.int64)
        when[: self.n_inputs] = -2
        when[self.out] = np.arange(ng)
        reads_a = self.op != EQ
        reads_b = (self.op == XOR) | (self.op == AND)
        for reads, src in ((reads_a, self.a), (reads_b, self.b)):
            idx = np.flatnonzero(reads)
            if idx.size and (src[idx].min() < 0 or src[idx].max() >= n):
                raise ParameterError(f"{self.name}: a gate reads a wire outside [0, {n})")
            bad = idx[(when[src[idx]] == -1) | (when[src[idx]] >= idx)]
            if bad.size:
                raise ParameterError(f"{self.name}: gate {int(bad[0])} reads wire "
                                     f"{int(src[bad[0]])} before it is written")
        if np.any((self.op == EQ) & ((self.a < 0) | (self.a > 1))):
            raise ParameterError(f"{self.name}: EQ constant must be 0 or 1")
        outs = self.output_wires
        if np.any(when[outs] == -1):
            raise ParameterError(f"{self.name}: an output wire is never written")

    # -- schedule ---------------------------------------------------------------
    @cached_property
    def plan(self) -> "Plan":
        """The garbling schedule: INV/EQW/EQ folded away, each step's outputs in contiguous slots."""
        return compile_plan(self)

    # -- plaintext --------------------------------------------------------------
    def evaluate_plain(self, bits: np.ndarray) -> np.ndarray:
        """Evaluate on input bits ``uint8[batch, n_inputs]``; returns ``uint8[batch, n_outputs]``.

        The batch is bit-sliced into bytes, so this is also the plaintext baseline
        of the benchmarks.
        """
        x = np.asarray(bits)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ParameterError(f"{self.name} takes {self.n_inputs} input bits per instance, "
                                 f"got shape {x.shape}")
        batch = x.shape[0]
        packed = np.packbits(x.astype(np.uint8).T, axis=1, bitorder="little")  # [n_in, ceil(batch/8)]
        plan = self.plan
        s = np.zeros((plan.n_slots, packed.shape[1]), np.uint8)  # the constant slot stays 0
        s[: self.n_inputs] = packed
        for step in plan.steps:
            va, vb = s[step.a], s[step.b]
            if step.is_and:
                if step.flip_a is not None:
                    va[step.flip_a] ^= 0xFF  # a folded INV: the wire is the complement
                if step.flip_b is not None:
                    vb[step.flip_b] ^= 0xFF
                s[step.start: step.start + step.a.size] = va & vb
            else:  # the complements of XOR inputs cancel into the output's flip
                s[step.start: step.start + step.a.size] = va ^ vb
        out = s[plan.out_slot] ^ (np.uint8(0) - plan.out_flip)[:, None]
        return np.unpackbits(out, axis=1, count=batch, bitorder="little").T.copy()


@dataclass(frozen=True)
class Step:
    """One batch of garbling work: all AND gates or all XOR gates of one level.

    Inputs are read from label slots ``a`` and ``b``; outputs go to slots
    ``start .. start + len(a) - 1``. For AND steps, ``flip_a`` / ``flip_b`` list
    the positions whose input is the *complement* of its slot (an INV was folded
    into it) and ``first_and`` numbers the gates (their hash tweaks).
    """

    is_and: bool
    a: np.ndarray
    b: np.ndarray
    start: int
    flip_a: np.ndarray | None = None
    flip_b: np.ndarray | None = None
    first_and: int = 0


@dataclass(frozen=True)
class Plan:
    """A circuit compiled for garbling.

    Every wire lives in a label *slot*, possibly complemented: the garbler's
    zero-label of wire ``w`` is ``slot[w] xor flip[w] Delta``, and the
    evaluator's active label is ``slot[w]`` whatever ``flip[w]``. So INV and
    EQW gates cost nothing for either party, and an EQ constant is the public
    all-zero slot ``n_inputs`` complemented or not. Slots ``0 .. n_inputs - 1``
    are the inputs.
    """

    n_slots: int
    const_slot: int
    steps: tuple[Step, ...]
    out_slot: np.ndarray
    out_flip: np.ndarray


def compile_plan(c: Circuit) -> Plan:
    """Fold INV/EQW/EQ into slot aliases and group AND / XOR gates by level (see :class:`Plan`)."""
    n_in = c.n_inputs
    const = n_in
    slot = np.full(c.n_wires, -1, np.int64)
    slot[:n_in] = np.arange(n_in)
    flip = np.zeros(c.n_wires, np.uint8)
    al = [0] * c.n_wires  # AND depth of each wire
    xl = [0] * c.n_wires  # XOR depth within its AND level
    ops, aa, bb, oo = c.op.tolist(), c.a.tolist(), c.b.tolist(), c.out.tolist()
    slot_l, flip_l = slot.tolist(), flip.tolist()
    keys: list[int] = []  # sort key of each slot-producing gate: its step
    idx: list[int] = []
    big = c.n_wires + 2
    for g in range(c.op.size):  # one pass at construction, not on the hot path
        o, w = ops[g], oo[g]
        if o == INV or o == EQW:
            s_ = aa[g]
            slot_l[w], flip_l[w] = slot_l[s_], flip_l[s_] ^ (o == INV)
            al[w], xl[w] = al[s_], xl[s_]
        elif o == EQ:
            slot_l[w], flip_l[w] = const, aa[g]
        elif o == AND:
            al[w] = max(al[aa[g]], al[bb[g]]) + 1
            xl[w] = 0
            keys.append(al[w] * big * 2)
            idx.append(g)
        else:  # XOR
            la = max(al[aa[g]], al[bb[g]])
            al[w] = la
            xl[w] = 1 + max(xl[s_] if al[s_] == la else 0 for s_ in (aa[g], bb[g]))
            flip_l[w] = flip_l[aa[g]] ^ flip_l[bb[g]]
            keys.append(la * big * 2 + 1 + xl[w])
            idx.append(g)
    key_arr = np.asarray(keys, np.int64)
    idx_arr = np.asarray(idx, np.int64)
    order = np.argsort(key_arr, kind="stable")
    key_sorted, g_sorted = key_arr[order], idx_arr[order]
    # slots of gate outputs in step order: contiguous per step
    nxt = n_in + 1
    out_w = c.out[g_sorted]
    slot_of_out = np.arange(nxt, nxt + g_sorted.size, dtype=np.int64)
    for w, s_ in zip(out_w.tolist(), slot_of_out.tolist()):
        slot_l[w] = s_
    # propagate aliases again now that producing gates have slots (INV/EQW of gate outputs)
    for g in range(c.op.size):
        o, w = ops[g], oo[g]
        if o == INV or o == EQW:
            slot_l[w] = slot_l[aa[g]]
    slot = np.asarray(slot_l, np.int64)
    flip = np.asarray(flip_l, np.uint8)
    uniq, starts = np.unique(key_sorted, return_index=True)
    bounds = list(starts) + [g_sorted.size]
    steps = []
    and_count = 0
    for i in range(uniq.size):
        gs = g_sorted[bounds[i]: bounds[i + 1]]
        a, b = c.a[gs], c.b[gs]
        start = n_in + 1 + int(bounds[i])
        if c.op[gs[0]] == AND:
            fa, fb = np.flatnonzero(flip[a]), np.flatnonzero(flip[b])
            steps.append(Step(True, slot[a], slot[b], start, fa if fa.size else None,
                              fb if fb.size else None, and_count))
            and_count += gs.size
        else:
            steps.append(Step(False, slot[a], slot[b], start))
    outs = c.output_wires
    return Plan(n_in + 1 + g_sorted.size, const, tuple(steps), slot[outs], flip[outs])
