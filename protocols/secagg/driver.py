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

from mpc.errors import (EncodingError, ParameterError, ProtocolAbort, ProtocolError,
                        TransportError)
from mpc.rand import PRG, derive_seed, random_seed

from .client import Client
from .config import SecAggConfig
from . import messages as msg
from .messages import ROUNDS
from .server import Server
from .sharing import VandermondeCache

Tamper = Callable[[int, int, tuple], tuple]
"""``tamper(round, client, message) -> message``: test hook altering what a client sends."""


@dataclass
class SecAggCost:
    """Measured cost of one session.

    ``client_seconds`` is the mean total time of one client over its rounds
    (on the timed clients); the ``*_cpu_seconds`` fields are the same in CPU
    time of the thread, which a busy machine does not inflate; ``bytes_per_client`` the mean payload bytes a client
    that finished sent plus received; ``round_bytes`` the payload bytes per
    round in both directions, all clients together.
    """

    server_seconds: float = 0.0
    client_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    bytes_per_client: float = 0.0
    bytes_sent_per_client: float = 0.0
    rounds: int = 4
    server_round_seconds: dict[str, float] = field(default_factory=dict)
    client_round_seconds: dict[str, float] = field(default_factory=dict)
    round_bytes: dict[str, int] = field(default_factory=dict)


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
             server_prg: PRG | None = None) -> SimulationResult:
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
        cost.round_bytes[name] = sum(_nbytes(m) for m in up.values())
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
        cost.round_bytes[name] += sum(_nbytes(m) for m in replies.values())
    finished = server.u4.tolist()
    cost.server_round_seconds = dict(server.seconds)
    cost.server_seconds = float(sum(server.seconds.values()))
    measured = [u for u in finished if u in timed_ids] or finished
    cost.server_cpu_seconds = float(sum(server.cpu_seconds.values()))
    cost.client_seconds = float(np.mean(client_time[measured])) if measured else 0.0
    cost.client_cpu_seconds = float(np.mean(client_cpu[measured])) if measured else 0.0
    if finished:
        cost.bytes_per_client = float(np.mean(sent[finished] + received[finished]))
        cost.bytes_sent_per_client = float(np.mean(sent[finished]))
    timed_done = [u for u in finished if u in timed_ids]
    for name in cost.client_round_seconds:  # mean over the timed clients (those that finished)
        cost.client_round_seconds[name] /= max(len(timed_done) or len(timed_ids), 1)
    return SimulationResult(total=total, survivors=server.survivors, dropped=dict(server.dropped),
                            cost=cost, server=server)


# -- over the Party runtime ------------------------------------------------------------
_DOWN = {"advertise": "keys", "share": "shares", "masked": "request"}
_DOWN_SPEC = {"advertise": msg.ADVERTISE_DOWN, "share": msg.SHARE_DOWN, "masked": msg.REQUEST_DOWN}


def party_program(party: Any, value: np.ndarray | None, config: SecAggConfig,
                  drops: Mapping[int, int] | None = None) -> Any:
    """SecAgg as party code for :func:`mpc.run`: party 0 serves, party i is client i - 1.

    Returns, on the server, ``(sum in Z_2^k, survivors, server seconds)``; on a
    client, its seconds spent computing (None if it dropped).
    """
    if party.n != config.n + 1:
        raise ParameterError(f"SecAgg over {config.n} clients runs with {config.n + 1} parties, "
                             f"not {party.n}")
    with party.scope("secagg"):
        if party.id == 0:
            return _serve(party, config)
        return _attend(party, value, config, dict(drops or {}).get(party.id - 1, 4))


def _serve(party: Any, config: SecAggConfig) -> tuple[np.ndarray, list[int], float]:
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
                return out, server.survivors, float(sum(server.seconds.values()))
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


def _attend(party: Any, value: np.ndarray | None, config: SecAggConfig, drop_round: int) -> float | None:
    client = Client(party.id - 1, config, np.asarray(value))
    seconds = 0.0
    reply: tuple = ()
    for r, name in enumerate(ROUNDS):
        with party.phase(name):
            if r >= drop_round:
                party.send(0, name)
                return None
            t0 = time.perf_counter()
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
            seconds += time.perf_counter() - t0
            party.send(0, name, *out)
            if r == 3:
                return seconds
            reply = party.recv(0, _DOWN[name], timeout=2 * party.timeout)
            if not reply:
                return None
            # the count, dtypes and ranks of the server's arrays (a wrong count was a TypeError)
            reply = msg.check(reply, _DOWN_SPEC[name], f"client {party.id - 1}: the server's "
                              f"{_DOWN[name]!r} message")
    return seconds
