"""Garbled circuits (layer: mpc core): Bristol circuits, a circuit builder, half-gates garbling, Yao's protocol.

* :mod:`mpc.gc.circuit`: :class:`Circuit` (gates as arrays), its layer schedule, plaintext evaluation;
* :mod:`mpc.gc.bristol`: Bristol Fashion reader/writer, :func:`load` for the shipped circuits;
* :mod:`mpc.gc.builder`: n-bit comparison, equality, adder, multiplexer, maximum;
* :mod:`mpc.gc.garble`: half-gates garbling, evaluation and decoding (pure, batched by layer);
* :mod:`mpc.gc.yao`: the two-party protocol (garbler, evaluator, inputs by OT).
"""

from .bristol import BristolFormatError, load, parse, read
from .circuit import Circuit
from .yao import Role, bits_to_int, int_to_bits, run_yao

__all__ = ["BristolFormatError", "Circuit", "Role", "bits_to_int", "int_to_bits", "load", "parse",
           "read", "run_yao"]
