"""Round.server_stream: messages folded chunk by chunk give the server_step result."""

from __future__ import annotations

import numpy as np

from mpc.rand import PRG
from protocols.secagg.client import Client
from protocols.secagg.config import make_config
from protocols.secagg.rounds import ROUNDS
from protocols.secagg.server import Server


def test_a_client_in_two_chunks_is_folded_once():
    # A masked input delivered twice (two chunks, e.g. a retried call) used to be added twice
    # into the sum and listed twice among the survivors.
    n, dim = 4, 3
    config = make_config(n, dim, bits=32)
    values = [np.arange(dim, dtype=config.dtype) + 10 * u for u in range(n)]
    clients = [Client(u, config, values[u]) for u in range(n)]
    server = Server(config, PRG(b"\x02" * 16))
    replies: dict[int, tuple] = {u: () for u in range(n)}
    for rnd in ROUNDS:
        up = {u: rnd.client_step(clients[u], replies[u]) for u in replies}
        chunks = [{u: up[u] for u in (0, 1) if u in up}, {u: up[u] for u in (1, 2, 3) if u in up}]
        replies = rnd.server_stream(server, iter(chunks))
    np.testing.assert_array_equal(replies, np.sum(values, axis=0, dtype=config.dtype))
    assert server.survivors == [0, 1, 2, 3]
