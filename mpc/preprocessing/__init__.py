"""Preprocessing: correlated randomness (Beaver triples, truncation pairs) behind one interface (layer: mpc core)."""

from .base import Preprocessing
from .dealer import DealerSource, TrustedDealer

__all__ = ["DealerSource", "Preprocessing", "TrustedDealer"]
