"""Drivers: run a SecAgg session in one process (simulation) or over the Party runtime (layer: protocols).

:func:`simulate` drives one :class:`Server` and n :class:`Client` objects round
by round: the same messages (tuples of numpy arrays) as over the network, with
a dropout schedule and an optional tamper hook, and measures each role's time
and every message's bytes. No thread per client.

:func:`party_program` is the same protocol as party code for :func:`mpc.run`:
party 0 is the server, party i the client i - 1; the runner's Cost and
transcript then record every message. A client that drops sends an empty
message (or nothing: the server waits for each round until one deadline,
``party.timeout`` after the round began, for all its clients together) and
stops; a frame that fails to decode or carries another tag also drops its
sender; the server answers every client it dropped (late, silent or
malformed alike) with an empty message so that it stops too. A client waits up to twice ``party.timeout`` for the server's
answer (the server's round deadline, then its work).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mpc.arith.field import VandermondeCache
from mpc.errors import (EncodingError, ParameterError, ProtocolAbort, ProtocolError,
                        TransportError)
from mpc.rand import PRG, derive_seed, random_seed

from .client import Client
from .config import SecAggConfig
from . import messages as msg
from .messages import ROUNDS
from .server import Server

Tamper = Callable[[int, int, tuple], tuple]
"""``tamper(round, client, message) -> message``: test hook altering what a client sends."""


@dataclass
class SecAggCost:
    """Measured cost of one session, the same figures from both drivers.

    Times (one definition for :func:`simulate` and :func:`party_program`):
    ``server_seconds`` is the wall-clock time the server spends inside its four
    round methods (:class:`Server` ``collect_keys`` ... ``unmask``: checking,
    routing, adding, rebuilding and removing masks); waiting for clients and
    moving messages (encoding, transport) are not included, in either driver.
    ``server_round_seconds`` splits it by round; ``server_cpu_seconds`` is the
    same span in CPU time of the server's thread, which neither a busy machine
    nor the client threads of the Party runtime inflate. A client's time is
    likewise the time inside its four round methods: ``client_seconds`` the
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
        """Set the server's times from its round methods' clocks (both drivers)."""
        self.server_round_seconds = dict(server.seconds)
        self.server_seconds = float(sum(server.seconds.values()))
        self.server_cpu_seconds = float(sum(server.cpu_seconds.values()))

    def add_clients(self, seconds: Sequence[float], cpu_seconds: Sequence[float],
                    sent: Sequence[float], received: Sequence[float]) -> None:
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


@dataclass
class SimulationResult:
    """The ring sum, who survived, why others dropped, and the cost."""

    total: np.ndarray
    survivors: list[int]
    dropped: dict[int, str]
    cost: SecAggCost
    server: Server


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


def simulate(config: SecAggConfig, values: Sequence[np.ndarray] | np.ndarray,
             dropouts: Mapping[int, int] | None = None, *, tamper: Tamper | None = None,
             timed: int | None = None, shortcut: bool = False,
             server_prg: PRG | None = None,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Run one session in this process; return the sum in Z_2^k of the survivors' inputs.

    Parameters
    ----------
    config:
        Session parameters (:func:`make_config`).
    values:
        n input vectors of ``config.dim`` integers in [0, 2^k).
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
    if len(values) != n:
        raise ParameterError(f"{len(values)} inputs for {n} clients")
    drops = dict(dropouts or {})
    vcache, dh = VandermondeCache(), {}
    timed_ids = set(range(n)) if timed is None else set(
        [u for u in range(n) if u not in drops][:max(timed, 0)])
    clients = [Client(u, config, values[u],
                      vandermonde=None if (timed is not None and u in timed_ids) else vcache,
                      dh_cache=None if (timed is not None and u in timed_ids) else dh)
               for u in range(n)]
    server = Server(config, server_prg)
    cost = SecAggCost()
    client_time = np.zeros(n)
    client_cpu = np.zeros(n)
    sent = np.zeros(n)
    received = np.zeros(n)
    active = set(range(n))
    stages: list[tuple[str, Callable[..., Any]]] = [
        ("advertise", server.collect_keys), ("share", server.route_shares),
        ("masked", server.collect_masked), ("unmask", server.unmask)]
    replies: dict[int, tuple] = {u: () for u in range(n)}
    total = np.zeros(config.dim, dtype=config.dtype)
    for r, (name, handler) in enumerate(stages):
        up: dict[int, tuple] = {}
        pads = _Pads([], config.dim, config.dtype)
        if shortcut and name == "masked":
            pred_live = sorted(u for u in active if drops.get(u, 4) > 2)
            pads = _Pads(pred_live, config.dim, config.dtype)
            pred_gone = np.setdiff1d(server.u2, np.array(pred_live, dtype=np.int64))
        for u in sorted(active):
            if drops.get(u, 4) <= r:
                active.discard(u)
                continue
            client = clients[u]
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                if name == "advertise":
                    out = client.advertise_keys()
                elif name == "share":
                    out = client.share_keys(*replies[u])
                elif name == "masked":
                    if shortcut and u in pads:
                        frm = replies[u][0]
                        out = client.masked_input(*replies[u], sim_peers=frm[np.isin(frm, pred_gone)],
                                                  sim_pad=pads[u])
                    else:
                        out = client.masked_input(*replies[u])
                else:
                    out = client.unmask(*replies[u])
            except ProtocolAbort:
                active.discard(u)
                continue
            elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
            if shortcut and name == "masked" and u in pads and u in timed_ids:
                short_wall, short_cpu = client.mask_seconds, client.mask_cpu_seconds
                t1, c1 = time.perf_counter(), time.thread_time()
                client.compute_masked(client.u2, None)  # the exact masking a real client does
                elapsed += (time.perf_counter() - t1) - short_wall
                cpu += (time.thread_time() - c1) - short_cpu
            client_time[u] += elapsed
            client_cpu[u] += cpu
            if u in timed_ids:
                cost.client_round_seconds[name] = cost.client_round_seconds.get(name, 0.0) + elapsed
            if tamper is not None:
                out = tamper(r, u, out)
            up[u] = out
            sent[u] += _nbytes(out)
            if progress is not None:
                progress(1)
        cost.round_bytes[name] = sum(_nbytes(m) for m in up.values())
        cost.server_bytes_received += cost.round_bytes[name]
        result = handler(up)
        if name == "unmask":
            total = result
            break
        replies = result
        for u in list(active):
            if u not in replies:
                active.discard(u)
            else:
                received[u] += _nbytes(replies[u])
        down = sum(_nbytes(m) for m in replies.values())
        cost.round_bytes[name] += down
        cost.server_bytes_sent += down
    finished = server.u4.tolist()
    cost.total_bytes = cost.server_bytes_received + cost.server_bytes_sent
    cost.add_server(server)
    measured = [u for u in finished if u in timed_ids] or finished
    cost.add_clients(client_time[measured], client_cpu[measured], sent[finished],
                     received[finished])
    timed_done = [u for u in finished if u in timed_ids]
    for name in cost.client_round_seconds:  # mean over the timed clients (those that finished)
        cost.client_round_seconds[name] /= max(len(timed_done) or len(timed_ids), 1)
    return SimulationResult(total=total, survivors=server.survivors, dropped=dict(server.dropped),
                            cost=cost, server=server)


# -- over the Party runtime ------------------------------------------------------------
_DOWN = {"advertise": "keys", "share": "shares", "masked": "request"}
_DOWN_SPEC = {"advertise": msg.ADVERTISE_DOWN, "share": msg.SHARE_DOWN, "masked": msg.REQUEST_DOWN}


def party_program(party: Any, value: np.ndarray | None, config: SecAggConfig,
                  drops: Mapping[int, int] | None = None, *, report: bool = False) -> Any:
    """SecAgg as party code for :func:`mpc.run`: party 0 serves, party i is client i - 1.

    Returns, on the server, ``(sum in Z_2^k, survivors, server_seconds)``; on a
    client, its seconds in its round methods (None if it dropped). The seconds
    are those of :class:`SecAggCost` (the time inside the round methods, the
    same definition as :func:`simulate`). With ``report=True`` the server adds a
    fourth element, ``{"round_seconds": ..., "cpu_seconds": ...}``, and a
    client returns ``(seconds, cpu_seconds, {round: seconds})``: what
    :func:`party_cost` needs to fill a :class:`SecAggCost`.
    """
    if party.n != config.n + 1:
        raise ParameterError(f"SecAgg over {config.n} clients runs with {config.n + 1} parties, "
                             f"not {party.n}")
    with party.scope("secagg"):
        if party.id == 0:
            total, survivors, server = _serve(party, config)
            timing = SecAggCost()
            timing.add_server(server)
            if report:
                return total, survivors, timing.server_seconds, {
                    "round_seconds": timing.server_round_seconds,
                    "cpu_seconds": timing.server_cpu_seconds}
            return total, survivors, timing.server_seconds
        out = _attend(party, value, config, dict(drops or {}).get(party.id - 1, 4))
        return out if report or out is None else out[0]


def party_cost(run: Any) -> SecAggCost:
    """The :class:`SecAggCost` of a :func:`mpc.run` of ``party_program(..., report=True)``.

    Bytes come from the runner's record (payload bytes, as :func:`simulate`
    counts them), times from the parties' own clocks around their round methods.
    """
    cost = SecAggCost()
    _, _, seconds, detail = run.outputs[0]
    cost.server_seconds = float(seconds)
    cost.server_round_seconds = dict(detail["round_seconds"])
    cost.server_cpu_seconds = float(detail["cpu_seconds"])
    sent, received = run.cost.bytes_sent, run.cost.bytes_received
    cost.server_bytes_sent, cost.server_bytes_received = int(sent[0]), int(received[0])
    cost.total_bytes = cost.server_bytes_sent + cost.server_bytes_received
    cost.round_bytes = {name: int(sum(phase.bytes_sent.values()))
                        for name, phase in run.cost.phases().items() if name in ROUNDS}
    finished = [p for p, out in enumerate(run.outputs[1:], 1) if out is not None]
    cost.add_clients([run.outputs[p][0] for p in finished], [run.outputs[p][1] for p in finished],
                     [sent[p] for p in finished], [received[p] for p in finished])
    for name in ROUNDS:
        times = [run.outputs[p][2][name] for p in finished if name in run.outputs[p][2]]
        if times:
            cost.client_round_seconds[name] = float(np.mean(times))
    return cost


def _serve(party: Any, config: SecAggConfig) -> tuple[np.ndarray, list[int], Server]:
    server = Server(config)
    alive = list(range(config.n))
    handlers = [server.collect_keys, server.route_shares, server.collect_masked, server.unmask]
    for name, handler in zip(ROUNDS, handlers):
        with party.phase(name):
            msgs = {}
            deadline = time.monotonic() + party.timeout   # one deadline for all clients
            for u in alive:
                try:
                    m = party.recv(u + 1, name, timeout=max(deadline - time.monotonic(), 1e-3))
                except (TransportError, EncodingError, ProtocolError):  # silent, gone, garbled, off-protocol
                    server.dropped.setdefault(u, f"no valid frame in round {name!r}")
                    continue
                if len(m):
                    msgs[u] = m   # (an empty message: the client announced it is leaving)
            out = handler(msgs)
            if name == "unmask":
                party.publish("sum", out)
                return out, server.survivors, server
            for u in alive:
                if u in out:
                    party.send(u + 1, _DOWN[name], *out[u])
                    continue
                try:  # dropped (also late or silent ones): tell the client to stop
                    party.send(u + 1, _DOWN[name])
                except TransportError:
                    pass  # its connection is gone
            alive = sorted(out)
    raise AssertionError("unreachable")


def _attend(party: Any, value: np.ndarray | None, config: SecAggConfig,
            drop_round: int) -> tuple[float, float, dict[str, float]] | None:
    client = Client(party.id - 1, config, np.asarray(value))
    seconds = cpu = 0.0
    per_round: dict[str, float] = {}
    reply: tuple = ()
    for r, name in enumerate(ROUNDS):
        with party.phase(name):
            if r >= drop_round:
                party.send(0, name)
                return None
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                if r == 0:
                    out = client.advertise_keys()
                elif r == 1:
                    out = client.share_keys(*reply)
                elif r == 2:
                    out = client.masked_input(*reply)
                else:
                    out = client.unmask(*reply)
            except ProtocolAbort:
                party.send(0, name)
                return None
            per_round[name] = time.perf_counter() - t0
            seconds += per_round[name]
            cpu += time.thread_time() - c0
            party.send(0, name, *out)
            if r == 3:
                return seconds, cpu, per_round
            reply = party.recv(0, _DOWN[name], timeout=2 * party.timeout)
            if not reply:
                return None
            # the count, dtypes and ranks of the server's arrays (a wrong count was a TypeError)
            reply = msg.check(reply, _DOWN_SPEC[name], f"client {party.id - 1}: the server's "
                              f"{_DOWN[name]!r} message")
    return seconds, cpu, per_round
