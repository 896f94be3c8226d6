"""Secret sharing: additive over Z_2^64, the shared tensor, Beaver products and truncation (layer: mpc core)."""

from .additive import reconstruct, split
from .tensor import SharedTensor, reveal, share, share_all

__all__ = ["SharedTensor", "reconstruct", "reveal", "share", "share_all", "split"]
