"""SecAgg as party code for the Party runtime: the table of rounds over messages between parties (layer: protocols).

:func:`party_program` runs :data:`.rounds.ROUNDS` under :func:`mpc.run`:
party 0 is the server, party i the client i - 1; the runner's Cost and
transcript then record every message. A client's message in a round carries
the round's name as its tag, the server's reply the round's ``reply_tag``. A
client that drops sends an empty message (or nothing: the server waits for
each round until one deadline, ``party.timeout`` after the round began, for
all its clients together) and stops; a frame that fails to decode or carries
another tag also drops its sender; the server answers every client it dropped
(late, silent or malformed alike) with an empty message so that it stops too.
A client waits up to twice ``party.timeout`` for the server's answer (the
server's round deadline, then its work).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from mpc.errors import (EncodingError, MalformedPeerData, ParameterError, ProtocolAbort, ProtocolError,
                        TransportError)

from .client import Client
from .config import SecAggConfig
from .cost import SecAggCost
from .rounds import ROUNDS
from .server import Server

if TYPE_CHECKING:
    from mpc.party import Party


def party_program(party: Party, value: np.ndarray | None, config: SecAggConfig,
                  drops: Mapping[int, int] | None = None, *, report: bool = False) -> Any:
    """SecAgg as party code for :func:`mpc.run`: party 0 serves, party i is client i - 1.

    Returns, on the server, ``(sum in Z_2^k, survivors, server_seconds)``; on a
    client, its seconds in its round steps (None if it dropped). The seconds
    are those of :class:`~.cost.SecAggCost` (the time inside the round steps,
    the same definition as :func:`~.simulation.simulate`). With ``report=True``
    the server adds a fourth element, ``{"round_seconds": ..., "cpu_seconds":
    ...}``, and a client returns ``(seconds, cpu_seconds, {round: seconds})``:
    what :func:`party_cost` needs to fill a :class:`~.cost.SecAggCost`.
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
    """The :class:`~.cost.SecAggCost` of a :func:`mpc.run` of ``party_program(..., report=True)``.

    Bytes come from the runner's record (payload bytes, as the simulator
    counts them), times from the parties' own clocks around their round steps.
    """
    cost = SecAggCost()
    _, _, seconds, detail = run.outputs[0]
    cost.server_seconds = float(seconds)
    cost.server_round_seconds = dict(detail["round_seconds"])
    cost.server_cpu_seconds = float(detail["cpu_seconds"])
    sent, received = run.cost.bytes_sent, run.cost.bytes_received
    cost.server_bytes_sent, cost.server_bytes_received = int(sent[0]), int(received[0])
    cost.total_bytes = cost.server_bytes_sent + cost.server_bytes_received
    names = [rnd.name for rnd in ROUNDS]
    cost.round_bytes = {name: int(sum(phase.bytes_sent.values()))
                        for name, phase in run.cost.phases().items() if name in names}
    finished = [p for p, out in enumerate(run.outputs[1:], 1) if out is not None]
    cost.add_clients([run.outputs[p][0] for p in finished], [run.outputs[p][1] for p in finished],
                     [sent[p] for p in finished], [received[p] for p in finished])
    for name in names:
        times = [run.outputs[p][2][name] for p in finished if name in run.outputs[p][2]]
        if times:
            cost.client_round_seconds[name] = float(np.mean(times))
    return cost


def _serve(party: Party, config: SecAggConfig) -> tuple[np.ndarray, list[int], Server]:
    server = Server(config)
    alive = list(range(config.n))
    for rnd in ROUNDS:
        with party.phase(rnd.name):
            msgs = {}
            deadline = time.monotonic() + party.timeout   # one deadline for all clients
            for u in alive:
                try:
                    m = party.recv(u + 1, rnd.name, timeout=max(deadline - time.monotonic(), 1e-3))
                except (TransportError, EncodingError, ProtocolError):  # silent, gone, garbled, off-protocol
                    server.drop(u, f"no valid frame in round {rnd.name!r}")
                    continue
                if len(m):
                    msgs[u] = m   # (an empty message: the client announced it is leaving)
            out = rnd.server_step(server, msgs)
            if rnd.reply_tag is None:
                party.publish("sum", out)
                return out, server.survivors, server
            for u in alive:
                if u in out:
                    party.send(u + 1, rnd.reply_tag, *out[u])
                    continue
                try:  # dropped (also late or silent ones): tell the client to stop
                    party.send(u + 1, rnd.reply_tag)
                except TransportError:
                    pass  # its connection is gone
            alive = sorted(out)
    raise AssertionError("unreachable: the last round returns the sum")


def _attend(party: Party, value: np.ndarray | None, config: SecAggConfig,
            drop_round: int) -> tuple[float, float, dict[str, float]] | None:
    client = Client(party.id - 1, config, np.asarray(value))
    seconds = cpu = 0.0
    per_round: dict[str, float] = {}
    reply: tuple = ()
    for rnd in ROUNDS:
        with party.phase(rnd.name):
            if rnd.index >= drop_round:
                party.send(0, rnd.name)
                return None
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                out = rnd.client_step(client, reply)
            except MalformedPeerData:  # a malformed server message is an error, not a dropout
                raise
            except ProtocolAbort:
                party.send(0, rnd.name)
                return None
            per_round[rnd.name] = time.perf_counter() - t0
            seconds += per_round[rnd.name]
            cpu += time.thread_time() - c0
            party.send(0, rnd.name, *out)
            if rnd.reply_tag is None:
                break
            reply = party.recv(0, rnd.reply_tag, timeout=2 * party.timeout)
            if not reply:
                return None
    return seconds, cpu, per_round
