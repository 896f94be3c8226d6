"""Half-gates garbling and evaluation, batched by circuit layer (layer: mpc core, pure).

Labels are 128-bit blocks held as ``uint64[..., 2]`` (low word first); the
point-and-permute bit of a label is the lowest bit of its low word. Every
function takes a *batch* of ``B`` independent instances of one circuit (label
slots ``uint64[slots, B, 2]``, see :class:`~mpc.gc.circuit.Plan`) and runs the
whole batch one circuit layer (plan step) at a time: every AND gate of a layer,
in every instance, goes through one fixed-key AES call
(:class:`~mpc.ot.crhash.FixedKeyHash`), every XOR gate of a layer through one
numpy XOR; never a Python loop per gate.

Scheme (Zahur, Rosulek, Evans 2015, with free-XOR and point-and-permute)
------
* A global offset ``Delta`` with ``lsb(Delta) = 1``; a wire with zero-label
  ``W0`` has one-label ``W0 xor Delta``. XOR gates: ``C0 = A0 xor B0`` (free);
  INV: ``C0 = A0 xor Delta`` for the garbler, the evaluator copies the label.
  EQ (a public constant ``c``): the active label is the public all-zero block,
  so ``C0 = c Delta``.
* AND gate ``g`` (tweaks ``j = 2g``, ``j' = 2g + 1`` in the low word, the
  instance number in the high word), ``pa = lsb(A0)``, ``pb = lsb(B0)``::

      TG = H(A0, j) ^ H(A1, j) ^ pb Delta          WG0 = H(A0, j) ^ pa TG
      TE = H(B0, j') ^ H(B1, j') ^ A0              WE0 = H(B0, j') ^ pb (TE ^ A0)
      C0 = WG0 ^ WE0,   garbled table (TG, TE)

  Evaluation with active labels ``A``, ``B`` (``sa``, ``sb`` their lsbs):
  ``C = H(A, j) ^ sa TG ^ H(B, j') ^ sb (TE ^ A)``.
* Output decoding: ``d = lsb(C0)`` of each output wire; value ``= lsb(C) ^ d``.

Security
--------
Semi-honest garbler and evaluator, with ``H`` the tweakable circular
correlation-robust hash of Guo-Katz-Wang-Yu (fixed-key AES); tweaks are never
reused under one ``Delta`` as long as every batch garbled with that ``Delta``
gets its own ``first_instance`` range (the caller's job; :mod:`mpc.gc.yao` does
it). Garbled tables and labels are uniformly random to the evaluator.

Cost
----
Per AND gate: 32 bytes of table, 4 hash blocks to garble, 2 to evaluate; XOR,
INV, EQ, EQW gates: no table, no hash.

References
----------
S. Zahur, M. Rosulek, D. Evans, "Two Halves Make a Whole", EUROCRYPT 2015.
V. Kolesnikov, T. Schneider, "Improved Garbled Circuit: Free XOR Gates and
Applications", ICALP 2008. C. Guo, J. Katz, X. Wang, Y. Yu, IEEE S&P 2020.
"""

from __future__ import annotations

import numpy as np

from ..errors import EncodingError, ParameterError
from ..ot.crhash import FixedKeyHash
from .circuit import Circuit

MAX_INSTANCE = 1 << 62
"""Instance numbers (tweak high words) stay below this; OT extension uses bit 63."""


def _mask(bits: np.ndarray) -> np.ndarray:
    """0/1 ``uint64`` -> all-zero / all-one words, with a trailing axis for the 2 words."""
    return np.negative(bits)[..., None]


def _workspace(plan, blocks: int, batch: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Scratch reused by every AND layer: hash inputs (``blocks`` per gate) and the
    hash's own scratch, sized for the widest layer (no allocation per layer)."""
    widest = max((st.a.size for st in plan.steps if st.is_and), default=0)
    words = blocks * widest * batch * 2
    return np.empty(words, np.uint64), np.empty(2 * words + 2, np.uint64), widest


def _instances(first: int, batch: int) -> np.ndarray:
    if not (0 <= first and first + batch <= MAX_INSTANCE):
        raise ParameterError(f"instance numbers must stay in [0, 2^62), got {first}+{batch}")
    return np.arange(first, first + batch, dtype=np.uint64)


def _check_labels(labels: np.ndarray, circuit: Circuit, what: str) -> int:
    if labels.dtype != np.uint64 or labels.ndim != 3 or labels.shape[0] != circuit.n_inputs \
            or labels.shape[2] != 2:
        raise ParameterError(f"{what} must be uint64[{circuit.n_inputs}, batch, 2], "
                             f"got {labels.dtype}{list(labels.shape)}")
    return labels.shape[1]


def new_delta(prg_bytes: bytes) -> np.ndarray:
    """The free-XOR offset from 16 random bytes: ``uint64[2]`` with its lowest bit set."""
    if len(prg_bytes) != 16:
        raise ParameterError("Delta needs 16 random bytes")
    d = np.frombuffer(prg_bytes, np.uint64).copy()
    d[0] |= np.uint64(1)
    return d


def garble(circuit: Circuit, delta: np.ndarray, zero_labels: np.ndarray,
           first_instance: int = 0, hasher: FixedKeyHash | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Garble ``B`` instances of ``circuit``.

    Parameters
    ----------
    delta:
        ``uint64[2]`` free-XOR offset with lowest bit 1 (:func:`new_delta`).
    zero_labels:
        ``uint64[n_inputs, B, 2]``: the zero-label of every input wire of every instance.
    first_instance:
        Instances get tweak numbers ``first_instance .. first_instance + B - 1``.

    Returns
    -------
    tables:
        ``uint64[n_and, 2, B, 2]`` garbled tables: ``TG`` then ``TE`` of each AND gate, in gate order.
    output_zero:
        ``uint64[n_outputs, B, 2]`` zero-labels of the output wires (their lsbs decode).
    """
    delta = np.asarray(delta, np.uint64)
    if delta.shape != (2,) or not int(delta[0]) & 1:
        raise ParameterError("Delta must be uint64[2] with its lowest bit set")
    batch = _check_labels(zero_labels, circuit, "zero_labels")
    h = hasher or FixedKeyHash()
    inst = _instances(first_instance, batch)
    plan = circuit.plan
    s = np.empty((plan.n_slots, batch, 2), np.uint64)  # slot labels (Plan: zero-label ^ flip Delta)
    s[: circuit.n_inputs] = zero_labels
    s[plan.const_slot] = 0
    tables = np.empty((circuit.n_and, 2, batch, 2), np.uint64)
    one = np.uint64(1)
    xs, work, _ = _workspace(plan, 4, batch)
    for st in plan.steps:
        k = st.a.size
        out = s[st.start: st.start + k]
        if not st.is_and:
            np.bitwise_xor(s[st.a], s[st.b], out=out)
            continue
        x = xs[: 4 * k * batch * 2].reshape(4, k, batch, 2)
        np.take(s, st.a, axis=0, out=x[0])
        np.take(s, st.b, axis=0, out=x[2])
        if st.flip_a is not None:
            x[0][st.flip_a] ^= delta
        if st.flip_b is not None:
            x[2][st.flip_b] ^= delta
        np.bitwise_xor(x[0], delta, out=x[1])
        np.bitwise_xor(x[2], delta, out=x[3])
        g = np.arange(st.first_and, st.first_and + k, dtype=np.uint64) << one
        lo = np.empty((4, k, 1), np.uint64)
        lo[:2, :, 0] = g
        lo[2:, :, 0] = g | one
        hx = h(x, lo, inst, work=work)
        a0 = x[0]
        pa = _mask(a0[..., 0] & one)
        pb = _mask(x[2][..., 0] & one)
        t = tables[st.first_and: st.first_and + k]
        tg = t[:, 0]
        te = t[:, 1]
        np.bitwise_xor(hx[0], hx[1], out=tg)
        tg ^= pb & delta
        np.bitwise_xor(hx[2], hx[3], out=hx[3])   # H(B0) ^ H(B1) = TE ^ A0
        np.bitwise_xor(hx[3], a0, out=te)
        # C0 = WG0 ^ WE0 = H(A0) ^ pa TG ^ H(B0) ^ pb (TE ^ A0)
        np.bitwise_and(pa, tg, out=out)
        out ^= hx[0]
        out ^= hx[2]
        hx[3] &= pb
        out ^= hx[3]
    out_zero = s[plan.out_slot]
    out_zero ^= _mask(plan.out_flip.astype(np.uint64))[:, None] & delta
    return tables, out_zero


def evaluate(circuit: Circuit, tables: np.ndarray, labels: np.ndarray,
             first_instance: int = 0, hasher: FixedKeyHash | None = None) -> np.ndarray:
    """Evaluate ``B`` garbled instances on active input ``labels`` (``uint64[n_inputs, B, 2]``).

    Returns the active output labels ``uint64[n_outputs, B, 2]`` (decode with :func:`decode`).
    """
    batch = _check_labels(labels, circuit, "labels")
    if tables.dtype != np.uint64 or tables.shape != (circuit.n_and, 2, batch, 2):
        raise EncodingError(f"garbled tables must be uint64[{circuit.n_and}, 2, {batch}, 2], "
                            f"got {tables.dtype}{list(tables.shape)}")
    h = hasher or FixedKeyHash()
    inst = _instances(first_instance, batch)
    plan = circuit.plan
    s = np.empty((plan.n_slots, batch, 2), np.uint64)
    s[: circuit.n_inputs] = labels
    s[plan.const_slot] = 0
    one = np.uint64(1)
    xs, work, _ = _workspace(plan, 2, batch)
    for st in plan.steps:
        k = st.a.size
        out = s[st.start: st.start + k]
        if not st.is_and:
            np.bitwise_xor(s[st.a], s[st.b], out=out)
            continue
        x = xs[: 2 * k * batch * 2].reshape(2, k, batch, 2)
        np.take(s, st.a, axis=0, out=x[0])
        np.take(s, st.b, axis=0, out=x[1])
        g = np.arange(st.first_and, st.first_and + k, dtype=np.uint64) << one
        lo = np.empty((2, k, 1), np.uint64)
        lo[0, :, 0] = g
        lo[1, :, 0] = g | one
        hx = h(x, lo, inst, work=work)
        t = tables[st.first_and: st.first_and + k]
        sa = _mask(x[0][..., 0] & one)
        sb = _mask(x[1][..., 0] & one)
        # C = H(A) ^ sa TG ^ H(B) ^ sb (TE ^ A)
        np.bitwise_and(sa, t[:, 0], out=out)
        out ^= hx[0]
        out ^= hx[1]
        np.bitwise_xor(t[:, 1], x[0], out=hx[0])
        hx[0] &= sb
        out ^= hx[0]
    return s[plan.out_slot]


def decode_bits(output_zero: np.ndarray) -> np.ndarray:
    """The decoding bits ``lsb(C0)`` of output zero-labels, ``uint8[n_outputs, B]``."""
    return (output_zero[..., 0] & np.uint64(1)).astype(np.uint8)


def decode(active: np.ndarray, decoding: np.ndarray) -> np.ndarray:
    """Output bits ``uint8[B, n_outputs]`` from active labels and decoding bits."""
    if decoding.shape != active.shape[:2]:
        raise EncodingError(f"decoding bits of shape {decoding.shape} for outputs {active.shape[:2]}")
    return ((active[..., 0] & np.uint64(1)).astype(np.uint8) ^ decoding).T.copy()


def active_labels(zero_labels: np.ndarray, bits: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``W0 xor b Delta`` for bits ``uint8[n, B]`` and zero-labels ``uint64[n, B, 2]``."""
    return zero_labels ^ (_mask(bits.astype(np.uint64)) & delta)
