"""The SecAgg simulator with its clients on Ray: shards of clients in actors, the server here (layer: protocols).

:func:`simulate_on_ray` runs the same table of rounds (:data:`.rounds.ROUNDS`)
as :func:`.simulation.simulate`, with the same dropout schedule and server,
so the sum, the survivors and the dropped clients are identical for the same
inputs and server PRG. What moves: each :class:`ClientShard` actor builds its
clients (X25519 key pairs, self-mask seeds and Shamir shares are drawn inside
it and never leave it) and answers, chunk by chunk, the server's messages to
them; the driver runs the server and folds the masked inputs into the sum as
each chunk arrives (:meth:`.rounds.Round.server_stream`), so it never holds
more than one chunk of them. A worker that dies takes its clients with it:
they are dropped, as clients that stop answering, and the protocol recovers
while at least t clients are left.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from mpc.arith.field import VandermondeCache
from mpc.backend import Pool, Ray, chunks, connect, peak_mb
from mpc.errors import MalformedPeerData, ProtocolAbort
from mpc.rand import PRG

from .client import Client
from .config import SecAggConfig
from .cost import SecAggCost
from .rounds import ROUNDS
from .server import Messages, Server

Values = Sequence[np.ndarray] | np.ndarray | Callable[[int], np.ndarray]
"""The inputs: one vector per client, or ``values(u)`` called inside client u's actor."""

Fault = Callable[[int, int], None]
"""``fault(round, client)``: test hook called in the actor before each client's step."""


class ClientShard:
    """The clients ``ids`` of one session, built and kept inside one Ray actor."""

    def __init__(self, config: SecAggConfig, ids: list[int], values: Values | list[np.ndarray],
                 drops: Mapping[int, int], fault: Fault | None = None) -> None:
        from .simulation import SharedAgreements
        vcache, shared = VandermondeCache(), SharedAgreements()
        own = [values(u) for u in ids] if callable(values) else values
        self.clients = {u: Client(u, config, x, vandermonde=vcache, agreement=shared)
                        for u, x in zip(ids, own)}
        self.drops, self.fault = dict(drops), fault

    def step(self, index: int, replies: Messages) -> tuple[Messages, dict[int, tuple[float, float]]]:
        """Round ``index`` for the clients that have a reply: their messages and (wall, CPU) seconds."""
        rnd, out, times = ROUNDS[index], {}, {}
        for u in sorted(replies):
            if self.drops.get(u, 4) <= index:
                continue
            if self.fault is not None:
                self.fault(index, u)
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                out[u] = rnd.client_step(self.clients[u], replies[u])
            except MalformedPeerData:  # a malformed server message is an error, not a dropout
                raise
            except ProtocolAbort:
                continue
            times[u] = (time.perf_counter() - t0, time.thread_time() - c0)
        return out, times

    def peak_mb(self) -> float:
        """The actor's peak resident memory in MB."""
        return peak_mb()


def _nbytes(message: tuple) -> int:
    return int(sum(a.nbytes for a in message if isinstance(a, np.ndarray)))


def simulate_on_ray(config: SecAggConfig, values: Values, dropouts: Mapping[int, int],
                    options: Ray, *, tamper: Callable[[int, int, tuple], tuple] | None = None,
                    server_prg: PRG | None = None, progress: Callable[[int], None] | None = None,
                    fault: Fault | None = None):
    """One session with the clients on Ray; a :class:`~.simulation.SimulationResult`.

    ``values`` may be a function ``u -> vector`` called inside the actors, so
    the inputs never pass through this process. ``fault`` is a test hook run
    in the actor before each client's step (e.g. to kill the worker).
    """
    from .simulation import SimulationResult, _finish
    n = config.n
    ray, actors, each = connect(options, "protocols.secagg.simulate(backend='ray')")
    blocks = [b.tolist() for b in np.array_split(np.arange(n), min(actors, n)) if b.size]
    args = [(config, ids, values if callable(values) else [values[u] for u in ids], dropouts, fault)
            for ids in blocks]
    pool = Pool(ray, ClientShard, args, each)
    server = Server(config, PRG.fresh() if server_prg is None else server_prg)
    cost, tally = SecAggCost(), np.zeros((4, n))
    replies: Messages = {u: () for u in range(n)}
    total = np.zeros(config.dim, dtype=config.dtype)
    try:
        for rnd in ROUNDS:
            calls = [(a, "step", (rnd.index, {u: replies[u] for u in part if u in replies}))
                     for a, ids in enumerate(blocks) for part in chunks(ids, options.chunk)]
            replies = {}  # released before the clients' messages come in
            received = [0]

            def arriving(rnd=rnd, calls=calls, received=received) -> Iterator[Messages]:
                for _, _, result in pool.run(calls):
                    if result is None:  # the worker died: its clients are missing
                        continue
                    out, times = result
                    for u, (wall, cpu) in times.items():
                        tally[0, u] += wall
                        tally[1, u] += cpu
                        cost.client_round_seconds[rnd.name] = (
                            cost.client_round_seconds.get(rnd.name, 0.0) + wall)
                    if tamper is not None:
                        out = {u: tamper(rnd.index, u, m) for u, m in out.items()}
                    for u, m in out.items():
                        tally[2, u] += _nbytes(m)
                        received[0] += _nbytes(m)
                    if progress is not None and out:
                        progress(len(out))
                    yield out

            result = rnd.server_stream(server, arriving())
            cost.round_bytes[rnd.name] = received[0]
            cost.server_bytes_received += received[0]
            if rnd.reply_tag is None:
                total = result
                break
            replies = result
            down = 0
            for u, m in replies.items():
                tally[3, u] += _nbytes(m)
                down += _nbytes(m)
            cost.round_bytes[rnd.name] += down
            cost.server_bytes_sent += down
        live = [a for a in range(len(blocks)) if a not in pool.dead]
        worker_peak = max((r for _, _, r in pool.run([(a, "peak_mb", ()) for a in live])
                           if r is not None), default=0.0)
    finally:
        pool.close()
    _finish(cost, server, tally, set(range(n)))
    return SimulationResult(total=total, survivors=server.survivors, dropped=dict(server.dropped),
                            cost=cost, server=server,
                            memory={"driver_mb": peak_mb(), "worker_mb": float(worker_peak)})


__all__ = ["ClientShard", "simulate_on_ray"]
