"""Half-gates garbling and evaluation, batched by circuit layer (layer: mpc core, pure).

Labels are 128-bit blocks held as ``uint64[..., 2]`` (low word first); the
point-and-permute bit of a label is the lowest bit of its low word. Every
function takes a *batch* of ``B`` independent instances of one circuit (wire
labels ``uint64[n_wires, B, 2]``) and runs the whole batch one circuit layer
at a time: every AND gate of a layer, in every instance, goes through one
fixed-key AES call (:class:`~mpc.ot.crhash.FixedKeyHash`), never a Python loop
per gate.

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
        ``uint64[n_and, B, 2, 2]`` garbled tables ``(TG, TE)`` in AND-gate order.
    output_zero:
        ``uint64[n_outputs, B, 2]`` zero-labels of the output wires (their lsbs decode).
    """
    delta = np.asarray(delta, np.uint64)
    if delta.shape != (2,) or not int(delta[0]) & 1:
        raise ParameterError("Delta must be uint64[2] with its lowest bit set")
    batch = _check_labels(zero_labels, circuit, "zero_labels")
    h = hasher or FixedKeyHash()
    inst = _instances(first_instance, batch)
    w = np.empty((circuit.n_wires, batch, 2), np.uint64)
    w[: circuit.n_inputs] = zero_labels
    tables = np.empty((circuit.n_and, batch, 2, 2), np.uint64)
    for layer in circuit.layers:
        if layer.and_ is not None:
            a, b, o = layer.and_
            g = layer.and_index
            k = a.size
            x = np.empty((4, k, batch, 2), np.uint64)
            x[0] = w[a]
            np.bitwise_xor(x[0], delta, out=x[1])
            x[2] = w[b]
            np.bitwise_xor(x[2], delta, out=x[3])
            lo = np.empty((4, k, 1), np.uint64)
            lo[:2, :, 0] = 2 * g.astype(np.uint64)
            lo[2:, :, 0] = 2 * g.astype(np.uint64) + np.uint64(1)
            hx = h(x, lo, inst)
            a0 = x[0]
            pa = _mask(a0[..., 0] & np.uint64(1))
            pb = _mask(x[2][..., 0] & np.uint64(1))
            t = tables[g[0]: g[-1] + 1]
            tg = t[:, :, 0]
            te = t[:, :, 1]
            np.bitwise_xor(hx[0], hx[1], out=tg)
            tg ^= pb & delta
            np.bitwise_xor(hx[2], hx[3], out=te)
            te ^= a0
            out = hx[0] ^ (pa & tg)            # WG0
            out ^= hx[2]                        # WE0 = H(B0) ^ pb (TE ^ A0)
            out ^= pb & (te ^ a0)
            w[o] = out
        _linear(layer, w, delta)
    return tables, w[circuit.output_wires]


def _linear(layer, w: np.ndarray, delta: np.ndarray | None) -> None:
    """XOR / INV / EQW / EQ gates of a layer; ``delta`` is None for the evaluator."""
    if layer.xor is not None:
        a, b, o = layer.xor
        w[o] = w[a] ^ w[b]
    if layer.inv is not None:
        a, o = layer.inv
        w[o] = w[a] ^ delta if delta is not None else w[a]
    if layer.eqw is not None:
        a, o = layer.eqw
        w[o] = w[a]
    if layer.eq is not None:
        c, o = layer.eq
        if delta is not None:
            w[o] = (_mask(c.astype(np.uint64)) & delta)[:, None, :]
        else:
            w[o] = 0


def evaluate(circuit: Circuit, tables: np.ndarray, labels: np.ndarray,
             first_instance: int = 0, hasher: FixedKeyHash | None = None) -> np.ndarray:
    """Evaluate ``B`` garbled instances on active input ``labels`` (``uint64[n_inputs, B, 2]``).

    Returns the active output labels ``uint64[n_outputs, B, 2]`` (decode with :func:`decode`).
    """
    batch = _check_labels(labels, circuit, "labels")
    if tables.dtype != np.uint64 or tables.shape != (circuit.n_and, batch, 2, 2):
        raise EncodingError(f"garbled tables must be uint64[{circuit.n_and}, {batch}, 2, 2], "
                            f"got {tables.dtype}{list(tables.shape)}")
    h = hasher or FixedKeyHash()
    inst = _instances(first_instance, batch)
    w = np.empty((circuit.n_wires, batch, 2), np.uint64)
    w[: circuit.n_inputs] = labels
    for layer in circuit.layers:
        if layer.and_ is not None:
            a, b, o = layer.and_
            g = layer.and_index
            k = a.size
            x = np.empty((2, k, batch, 2), np.uint64)
            x[0] = w[a]
            x[1] = w[b]
            lo = np.empty((2, k, 1), np.uint64)
            lo[0, :, 0] = 2 * g.astype(np.uint64)
            lo[1, :, 0] = lo[0, :, 0] + np.uint64(1)
            hx = h(x, lo, inst)
            t = tables[g[0]: g[-1] + 1]
            sa = _mask(x[0][..., 0] & np.uint64(1))
            sb = _mask(x[1][..., 0] & np.uint64(1))
            out = hx[0] ^ hx[1]
            out ^= sa & t[:, :, 0]
            out ^= sb & (t[:, :, 1] ^ x[0])
            w[o] = out
        _linear(layer, w, None)
    return w[circuit.output_wires]


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
