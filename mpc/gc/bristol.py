"""Reader and writer of Bristol Fashion circuit files (layer: mpc core, pure).

Format (https://nigelsmart.github.io/MPC.html)::

    <gates> <wires>
    <n_inputs> <width_1> ... <width_n>
    <n_outputs> <width_1> ... <width_m>
    <blank line>
    <in_count> <out_count> <in wires...> <out wires...> <OP>     (one gate a line)

with OP in XOR, AND, INV, EQ (input is a constant 0/1), EQW (copy) and MAND
(``2k k`` ANDs in one line). Every problem in a file raises
:class:`BristolFormatError` naming the file and the line, before anything is
built. The circuits shipped with Concilium (``mpc/gc/circuits/``, from the
SCALE-MAMBA collection) are opened with :func:`load`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import EncodingError
from .circuit import AND, EQ, EQW, INV, XOR, Circuit

_ARITY = {"XOR": (2, 1), "AND": (2, 1), "INV": (1, 1), "EQ": (1, 1), "EQW": (1, 1)}
_CODE = {"XOR": XOR, "AND": AND, "INV": INV, "EQ": EQ, "EQW": EQW}
_NAMES = {v: k for k, v in _CODE.items()}
MAX_WIRES = 1 << 26


class BristolFormatError(EncodingError):
    """A circuit file is malformed; the message names the file and line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}, line {line}: {message}")
        self.source = source
        self.line = line


def _ints(tokens: list[str], source: str, line: int, what: str) -> list[int]:
    if any(t.startswith("-") and t[1:].isascii() and t[1:].isdigit() for t in tokens):
        raise BristolFormatError(source, line, f"{what}: negative number")
    if not all(t.isascii() and t.isdigit() for t in tokens):   # int() would take "1_0" or "١"
        raise BristolFormatError(source, line, f"{what}: expected integers, got {' '.join(tokens)!r}")
    vals = list(map(int, tokens))
    if vals and min(vals) < 0:
        raise BristolFormatError(source, line, f"{what}: negative number")
    return vals


def _header_group(line_text: str, source: str, line: int, what: str) -> tuple[int, ...]:
    vals = _ints(line_text.split(), source, line, what)
    if not vals or vals[0] != len(vals) - 1:
        raise BristolFormatError(source, line, f"{what}: first number must count the widths that follow")
    if vals[0] == 0 or any(w == 0 for w in vals[1:]):
        raise BristolFormatError(source, line, f"{what}: needs at least one group, each of positive width")
    return tuple(vals[1:])


def parse(text: str, source: str = "<string>") -> Circuit:
    """Parse Bristol Fashion ``text``; ``source`` names it in error messages."""
    lines = text.split("\n")
    if len(lines) < 3:
        raise BristolFormatError(source, len(lines), "file ends before the three header lines")
    head = _ints(lines[0].split(), source, 1, "header")
    if len(head) != 2:
        raise BristolFormatError(source, 1, "header must be '<gates> <wires>'")
    n_gates, n_wires = head
    if n_wires > MAX_WIRES:
        raise BristolFormatError(source, 1, f"{n_wires} wires exceeds the limit {MAX_WIRES}")
    inputs = _header_group(lines[1], source, 2, "input widths")
    outputs = _header_group(lines[2], source, 3, "output widths")
    n_in = sum(inputs)
    if n_in + sum(outputs) > n_wires:
        raise BristolFormatError(source, 2, f"inputs and outputs need more than the {n_wires} wires declared")
    written = bytearray(n_wires)  # plain Python containers: numpy scalars are slow per line
    written[:n_in] = b"\x01" * n_in
    ops: list[int] = []
    aa: list[int] = []
    bb: list[int] = []
    oo: list[int] = []
    count = 0  # gate lines (a MAND line is one gate line for several AND gates)
    for lineno, raw in enumerate(lines[3:], start=4):
        tok = raw.split()
        if not tok:
            continue
        count += 1
        if count > n_gates:
            raise BristolFormatError(source, lineno, f"more gates than the {n_gates} declared")
        if len(tok) < 4:
            raise BristolFormatError(source, lineno, f"gate line too short: {raw.strip()!r}")
        name = tok[-1]
        nums = _ints(tok[:-1], source, lineno, "gate")
        nin, nout = nums[0], nums[1]
        if name == "MAND":
            if nin != 2 * nout or nout == 0:
                raise BristolFormatError(source, lineno, "MAND needs 2k inputs and k outputs")
        elif name in _ARITY:
            if (nin, nout) != _ARITY[name]:
                raise BristolFormatError(source, lineno, f"{name} takes {_ARITY[name][0]} input(s) and "
                                         f"{_ARITY[name][1]} output, got {nin} and {nout}")
        else:
            raise BristolFormatError(source, lineno, f"unknown gate {name!r}")
        if len(tok) != 3 + nin + nout:
            raise BristolFormatError(source, lineno, f"expected {nin} input and {nout} output wires, "
                                     f"got {len(tok) - 3} numbers")
        ins, outs = nums[2:2 + nin], nums[2 + nin:]
        if name == "EQ":
            if ins[0] > 1:
                raise BristolFormatError(source, lineno, "EQ constant must be 0 or 1")
        else:
            for w in ins:
                if w >= n_wires:
                    raise BristolFormatError(source, lineno, f"wire {w} out of range (wires: {n_wires})")
                if not written[w]:
                    raise BristolFormatError(source, lineno, f"wire {w} is read before it is written")
        for w in outs:
            if w >= n_wires:
                raise BristolFormatError(source, lineno, f"wire {w} out of range (wires: {n_wires})")
            if written[w]:
                raise BristolFormatError(source, lineno, f"wire {w} is written twice (or is an input)")
            written[w] = 1
        if name == "MAND":
            k = nout
            ops.extend([AND] * k)
            aa.extend(ins[:k])
            bb.extend(ins[k:])
            oo.extend(outs)
        else:
            ops.append(_CODE[name])
            aa.append(ins[0])
            bb.append(ins[1] if nin == 2 else -1)
            oo.append(outs[0])
    if count != n_gates:
        raise BristolFormatError(source, len(lines), f"{count} gate lines, header declares {n_gates}")
    missing = np.flatnonzero(np.frombuffer(bytes(written[n_wires - sum(outputs):]), np.uint8) == 0)
    if missing.size:
        raise BristolFormatError(source, len(lines), f"output wire {n_wires - sum(outputs) + int(missing[0])} "
                                 "is never written")
    return Circuit(n_wires, inputs, outputs, np.array(ops, np.int8), np.array(aa, np.int64),
                   np.array(bb, np.int64), np.array(oo, np.int64), name=source)


def read(path: str | Path) -> Circuit:
    """Read a Bristol Fashion file."""
    p = Path(path)
    raw = p.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise BristolFormatError(p.name, line, "not ASCII text (a Bristol file holds only ASCII "
                                 "digits, gate names and spaces)") from None
    return parse(text, source=p.name)


def load(name: str) -> Circuit:
    """Load a circuit shipped with Concilium, e.g. ``load("aes_128")`` (see ``circuits/README.md``)."""
    if not name.replace("_", "").isalnum():
        raise EncodingError(f"bad circuit name {name!r}")
    ref = resources.files("mpc.gc").joinpath("circuits").joinpath(f"{name}.txt")
    if not ref.is_file():
        shipped = sorted(p.name[:-4] for p in resources.files("mpc.gc").joinpath("circuits").iterdir()
                         if p.name.endswith(".txt") and p.name != "License.txt")
        raise EncodingError(f"no shipped circuit {name!r}; available: {', '.join(shipped)}")
    return parse(ref.read_text(encoding="ascii"), source=f"{name}.txt")


def dumps(circuit: Circuit) -> str:
    """Write ``circuit`` in Bristol Fashion (one line per gate, no MAND)."""
    lines = [f"{circuit.n_gates} {circuit.n_wires}",
             " ".join(map(str, (len(circuit.inputs), *circuit.inputs))),
             " ".join(map(str, (len(circuit.outputs), *circuit.outputs))), ""]
    for op, a, b, o in zip(circuit.op.tolist(), circuit.a.tolist(), circuit.b.tolist(),
                           circuit.out.tolist()):
        if op in (XOR, AND):
            lines.append(f"2 1 {a} {b} {o} {_NAMES[op]}")
        else:
            lines.append(f"1 1 {a} {o} {_NAMES[op]}")
    return "\n".join(lines) + "\n"
