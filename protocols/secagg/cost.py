"""The measured cost of a SecAgg session, one definition for every driver (layer: protocols)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .server import Server


@dataclass
class SecAggCost:
    """Measured cost of one session, the same figures from both drivers.

    Times (one definition for :func:`.simulate` and :func:`.party_program`):
    ``server_seconds`` is the wall-clock time the server spends inside its four
    round steps (:data:`.rounds.ROUNDS`, ``collect_keys`` ... ``unmask``: checking,
    routing, adding, rebuilding and removing masks); waiting for clients and
    moving messages (encoding, transport) are not included, in either driver.
    ``server_round_seconds`` splits it by round; ``server_cpu_seconds`` is the
    same span in CPU time of the server's thread, which neither a busy machine
    nor the client threads of the Party runtime inflate. A client's time is
    likewise the time inside its four round steps: ``client_seconds`` the
    mean over the clients that finished (the timed ones, for
    ``simulate(timed=...)``), ``client_seconds_max`` the largest,
    ``client_cpu_seconds`` the mean in CPU time.

    Bytes are payload bytes (the arrays of each message, no framing):
    ``bytes_per_client`` the mean a finished client sent plus received,
    ``bytes_per_client_max`` the largest, ``bytes_sent_per_client`` the mean
    it sent; ``server_bytes_received`` / ``server_bytes_sent`` everything the
    server received from / sent to clients (dropped ones included);
    ``total_bytes`` their sum (every message goes through the server);
    ``round_bytes`` that total per round. ``rounds`` counts round trips (4);
    the Party runtime's ``Cost.rounds`` counts message rounds (7).
    """

    server_seconds: float = 0.0
    client_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    client_seconds_max: float = 0.0
    bytes_per_client: float = 0.0
    bytes_per_client_max: float = 0.0
    bytes_sent_per_client: float = 0.0
    server_bytes_received: int = 0
    server_bytes_sent: int = 0
    total_bytes: int = 0
    rounds: int = 4
    server_round_seconds: dict[str, float] = field(default_factory=dict)
    client_round_seconds: dict[str, float] = field(default_factory=dict)
    round_bytes: dict[str, int] = field(default_factory=dict)

    def add_server(self, server: Server) -> None:
        """Set the server's times from its round steps' clocks (both drivers)."""
        self.server_round_seconds = dict(server.seconds)
        self.server_seconds = float(sum(server.seconds.values()))
        self.server_cpu_seconds = float(sum(server.cpu_seconds.values()))

    def add_clients(self, seconds: Sequence[float] | np.ndarray, cpu_seconds: Sequence[float] | np.ndarray,
                    sent: Sequence[float] | np.ndarray, received: Sequence[float] | np.ndarray) -> None:
        """Set the per-client means and maxima from the clients that finished."""
        if len(seconds):
            self.client_seconds = float(np.mean(seconds))
            self.client_seconds_max = float(np.max(seconds))
            self.client_cpu_seconds = float(np.mean(cpu_seconds))
        if len(sent):
            moved = np.asarray(sent, dtype=float) + np.asarray(received, dtype=float)
            self.bytes_per_client = float(np.mean(moved))
            self.bytes_per_client_max = float(np.max(moved))
            self.bytes_sent_per_client = float(np.mean(sent))
