"""Transports, the wire format and cost accounting (layer: mpc core)."""

from .memory import MemoryNetwork
from .stats import Cost, MessageRecord
from .wire import Frame, decode_frame, encode_frame

__all__ = ["Cost", "Frame", "MemoryNetwork", "MessageRecord", "decode_frame", "encode_frame"]
