"""The one-process SecAgg simulator: n client states and one server state driven by the table of rounds (layer: protocols).

:func:`simulate` runs :data:`.rounds.ROUNDS` over one :class:`~.server.Server`
and n :class:`~.client.Client` states: the same messages (tuples of numpy
arrays) as over the network, with a dropout schedule and an optional tamper
hook, and measures each role's time and every message's bytes. No thread per
client. What only a simulation may do lives here and not in the client: the
X25519 values of a pair computed once for both ends (:class:`SharedAgreements`)
and the benchmark shortcut for large complete graphs (:class:`_Pads`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mpc.arith.field import VandermondeCache
from mpc.backend import Ray, peak_mb, resolve
from mpc.errors import MalformedPeerData, ParameterError, ProtocolAbort
from mpc.rand import PRG, derive_seed, random_seed

from .client import Client, compute_masked, store_shares, x25519
from .config import SecAggConfig
from .cost import SecAggCost
from .crypto import agree
from .rounds import MASKED, ROUNDS, Round
from .server import Server

Tamper = Callable[[int, int, tuple], tuple]
"""``tamper(round, client, message) -> message``: test hook altering what a client sends."""


@dataclass
class SimulationResult:
    """The ring sum, who survived, why others dropped, the cost, and the server's final state.

    ``memory``: peak resident memory in MB of this process (``driver_mb``)
    and, on Ray, of the largest client actor (``worker_mb``).
    """

    total: np.ndarray
    survivors: list[int]
    dropped: dict[int, str]
    cost: SecAggCost
    server: Server
    memory: dict[str, float] = field(default_factory=dict)


class SharedAgreements:
    """X25519 values shared by simulated clients: each pair's is computed once (both ends agree).

    An :data:`~.client.Agreement` for many clients in one process; never on a
    real deployment, where it would hold secrets of several clients.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, int, int], bytes] = {}

    def __call__(self, kind: str, u: int, v: int, secret: bytes, peer_public: bytes) -> bytes:
        key = (kind, min(u, v), max(u, v))
        shared = self._values.get(key)
        if shared is None:
            shared = self._values[key] = agree(secret, peer_public)
        return shared


def dropout_schedule(n: int, rate: float, rounds: Sequence[int] = (0, 1, 2, 3),
                     seed: int = 0) -> dict[int, int]:
    """``{client: round}`` for ``round(rate * n)`` clients spread evenly over ``rounds``.

    A client scheduled at round r sends nothing from round r on. Which clients
    drop is simulation data (drawn from a PRG seeded by ``seed``), not a secret.
    """
    if not 0 <= rate < 1:
        raise ParameterError(f"the dropout rate must be in [0, 1), got {rate}")
    if not rounds or any(r not in range(4) for r in rounds):
        raise ParameterError("dropout rounds must be among 0, 1, 2, 3")
    count = int(round(rate * n))
    prg = PRG(derive_seed(b"concilium/secagg/dropouts", "schedule", seed))
    order = np.argsort(prg.uint64(n), kind="stable")[:count]
    return {int(c): int(rounds[i % len(rounds)]) for i, c in enumerate(order)}


def _nbytes(message: Any) -> int:
    """Payload bytes of a message (what a tampered, malformed one holds in arrays)."""
    if not isinstance(message, (tuple, list)):
        return 0
    return int(sum(a.nbytes for a in message if isinstance(a, np.ndarray)))


class _Pads:
    """Simulation-only pads ``r_i - r_{i+1}`` (cyclic over ``ids``): they sum to zero.

    ``r_i`` is expanded on demand from a fresh random seed, so the pads are
    uniform and no two runs share them.
    """

    def __init__(self, ids: list[int], dim: int, dtype: np.dtype) -> None:
        self._pos = {u: i for i, u in enumerate(ids)}
        self._seed = random_seed()
        self._words = -(-dim * np.dtype(dtype).itemsize // 8)
        self._dim, self._dtype = dim, np.dtype(dtype)

    def __contains__(self, u: int) -> bool:
        return u in self._pos

    def _r(self, i: int) -> np.ndarray:
        return PRG(self._seed, i % len(self._pos)).uint64(self._words).view(self._dtype)[:self._dim]

    def __getitem__(self, u: int) -> np.ndarray:
        i = self._pos[u]
        return self._r(i) - self._r(i + 1)


class _Shortcut:
    """The masked round of the benchmark shortcut (``simulate(shortcut=True)``).

    Clients predicted to survive mask with the dropped peers only and add pads
    that sum to zero in place of the masks of surviving pairs; a timed client
    also runs the exact masking, whose time it reports instead.
    """

    def __init__(self, server: Server, active: set[int], drops: Mapping[int, int],
                 config: SecAggConfig) -> None:
        live = sorted(u for u in active if drops.get(u, 4) > MASKED.index)
        self.pads = _Pads(live, config.dim, config.dtype)
        self.gone = np.setdiff1d(server.u2, np.array(live, dtype=np.int64))

    def step(self, client: Client, message: tuple, timed: bool) -> tuple[tuple, float, float]:
        """The client's masked input and the (wall, CPU) seconds it would take without the shortcut."""
        t0, c0 = time.perf_counter(), time.thread_time()
        checked, what = MASKED.accept(client, message)
        store_shares(client, checked, what)
        frm = checked[0]
        t1, c1 = time.perf_counter(), time.thread_time()
        y = compute_masked(client, frm[np.isin(frm, self.gone)], self.pads[client.id])
        t2, c2 = time.perf_counter(), time.thread_time()
        wall, cpu = t2 - t0, c2 - c0
        if timed:
            compute_masked(client, client.u2)  # the exact masking a real client does
            wall += (time.perf_counter() - t2) - (t2 - t1)
            cpu += (time.thread_time() - c2) - (c2 - c1)
        return (y,), wall, cpu


def _client_step(rnd: Round, client: Client, message: tuple, shortcut: _Shortcut | None,
                 timed: bool) -> tuple[tuple, float, float]:
    if shortcut is not None and client.id in shortcut.pads:
        return shortcut.step(client, message, timed)
    t0, c0 = time.perf_counter(), time.thread_time()
    out = rnd.client_step(client, message)
    return out, time.perf_counter() - t0, time.thread_time() - c0


def _on_ray(config: SecAggConfig, values: Any, drops: dict[int, int], options: Ray,
            tamper: Tamper | None, server_prg: PRG | None, progress: Callable[[int], None] | None,
            timed: int | None, shortcut: bool) -> SimulationResult:
    """:func:`simulate` with the clients in Ray actors (:mod:`.on_ray`)."""
    if timed is not None or shortcut:
        raise ParameterError("simulate(backend='ray') times every client and runs no shortcut: "
                             "leave timed and shortcut unset")
    if not callable(values) and len(values) != config.n:
        raise ParameterError(f"{len(values)} inputs for {config.n} clients")
    from .on_ray import simulate_on_ray
    return simulate_on_ray(config, values, drops, options, tamper=tamper,
                           server_prg=server_prg, progress=progress)


def simulate(config: SecAggConfig,
             values: Sequence[np.ndarray] | np.ndarray | Callable[[int], np.ndarray],
             dropouts: Mapping[int, int] | None = None, *, tamper: Tamper | None = None,
             timed: int | None = None, shortcut: bool = False, server_prg: PRG | None = None,
             progress: Callable[[int], None] | None = None,
             backend: str | Ray = "local") -> SimulationResult:
    """Run one session in this process; return the sum in Z_2^k of the survivors' inputs.

    Parameters
    ----------
    config:
        Session parameters (:func:`make_config`).
    values:
        n input vectors of ``config.dim`` integers in [0, 2^k), or a function
        ``u -> vector`` (on Ray, called by client u's actor).
    dropouts:
        ``{client: round}``: the client sends nothing from that round (0..3) on.
    tamper:
        Test hook replacing a client's message before the server sees it.
    timed:
        Measure client time on this many clients, run without the simulation's
        shared caches (default: all clients, with caches).
    shortcut:
        Benchmark device for large complete graphs: clients that survive round 2
        add the pairwise masks of the dropped peers only, plus pads that sum to
        zero in place of the masks of surviving pairs (which cancel in the real
        protocol). The server runs unchanged and sees identically distributed
        inputs; ``timed`` clients also run the exact masking, which is what they
        report. Tests run without it.
    progress:
        Called as ``progress(1)`` after each client's step of each round (at
        most 4n calls; a tqdm bar's ``update`` fits).

    Raises
    ------
    ProtocolAbort
        Fewer than t clients left at some round.
    """
    n = config.n
    drops = dict(dropouts or {})
    options = resolve(backend)
    if options is not None:
        return _on_ray(config, values, drops, options, tamper, server_prg, progress, timed, shortcut)
    if callable(values):
        values = [values(u) for u in range(n)]
    if len(values) != n:
        raise ParameterError(f"{len(values)} inputs for {n} clients")
    timed_ids = set(range(n)) if timed is None else set(
        [u for u in range(n) if u not in drops][:max(timed, 0)])
    vcache, shared = VandermondeCache(), SharedAgreements()
    alone = set() if timed is None else timed_ids  # timed clients run without the caches
    clients = [Client(u, config, values[u], vandermonde=None if u in alone else vcache,
                      agreement=x25519 if u in alone else shared) for u in range(n)]
    server = Server(config, PRG.fresh() if server_prg is None else server_prg)
    cost = SecAggCost()
    tally = np.zeros((4, n))  # wall seconds, CPU seconds, bytes sent, bytes received
    active, replies = set(range(n)), {u: () for u in range(n)}
    total = np.zeros(config.dim, dtype=config.dtype)
    for rnd in ROUNDS:
        short = _Shortcut(server, active, drops, config) if shortcut and rnd is MASKED else None
        up: dict[int, tuple] = {}
        for u in sorted(active):
            if drops.get(u, 4) <= rnd.index:
                active.discard(u)
                continue
            try:
                out, wall, cpu = _client_step(rnd, clients[u], replies[u], short, u in timed_ids)
            except MalformedPeerData:  # a malformed server message is an error, not a dropout
                raise
            except ProtocolAbort:
                active.discard(u)
                continue
            tally[0, u] += wall
            tally[1, u] += cpu
            if u in timed_ids:
                cost.client_round_seconds[rnd.name] = cost.client_round_seconds.get(rnd.name, 0.0) + wall
            up[u] = out if tamper is None else tamper(rnd.index, u, out)
            tally[2, u] += _nbytes(up[u])
            if progress is not None:
                progress(1)
        cost.round_bytes[rnd.name] = sum(_nbytes(m) for m in up.values())
        cost.server_bytes_received += cost.round_bytes[rnd.name]
        result = rnd.server_step(server, up)
        if rnd.reply_tag is None:
            total = result
            break
        replies = result
        for u in list(active):
            if u not in replies:
                active.discard(u)
            else:
                tally[3, u] += _nbytes(replies[u])
        down = sum(_nbytes(m) for m in replies.values())
        cost.round_bytes[rnd.name] += down
        cost.server_bytes_sent += down
    _finish(cost, server, tally, timed_ids)
    return SimulationResult(total=total, survivors=server.survivors, dropped=dict(server.dropped),
                            cost=cost, server=server, memory={"driver_mb": peak_mb()})


def _finish(cost: SecAggCost, server: Server, tally: np.ndarray, timed_ids: set[int]) -> None:
    """Fill the totals, the server's times and the per-client means of ``cost``."""
    finished = server.u4.tolist()
    cost.total_bytes = cost.server_bytes_received + cost.server_bytes_sent
    cost.add_server(server)
    measured = [u for u in finished if u in timed_ids] or finished
    cost.add_clients(tally[0, measured], tally[1, measured], tally[2, finished], tally[3, finished])
    timed_done = [u for u in finished if u in timed_ids]
    for name in cost.client_round_seconds:  # mean over the timed clients (those that finished)
        cost.client_round_seconds[name] /= max(len(timed_done) or len(timed_ids), 1)
