"""Rings, fields and encodings: Z_2^64 on numpy.uint64, prime fields (:mod:`.field`) and fixed-point reals (layer: mpc core)."""

from .fixed import FixedPoint
from .ring import RING_BITS, from_signed, ring_matmul, to_ring, to_signed

__all__ = ["FixedPoint", "RING_BITS", "from_signed", "ring_matmul", "to_ring", "to_signed"]
