"""SecAgg over a network of separate processes: the table of rounds behind two small links (layer: protocols).

A deployed server and its clients run :data:`.rounds.ROUNDS` exactly as the
other drivers do; only how a message travels differs. The server reaches its
clients through a :class:`ServerLink` (send to one client, receive one
client's message for a round until a deadline), a client reaches the server
through a :class:`ClientLink`; :mod:`ml.federated` implements both over its
TLS connections. Clients talk only to the server (Bonawitz et al. 2017): the
shares a client sends to another travel encrypted under their pairwise key,
and the server only routes them.

Deadlines and dropouts: each round has one deadline for all clients
(``round_timeout`` after it began; ``first_timeout`` for round 0, when the
clients may still be training). A client that sends nothing valid by then, or
whose link failed, is dropped exactly as the protocol says: the server's step
recovers its masks from the others' shares (or never needed them), or raises
:class:`~mpc.errors.ProtocolAbort` when fewer than t clients are left; every
client still listed then gets an empty reply and stops. A message arriving
after its deadline is never read as the next round's (tags carry the round).

The session's public parameters travel in the first server message of a run
(:func:`config_arrays`, :func:`config_from_arrays`); a client rebuilds them
into a :class:`~.config.SecAggConfig`, whose checks (the threshold is a strict
majority of the shareholders) run before it takes part.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

import numpy as np

from mpc.errors import ParameterError, ProtocolAbort

from .client import Client
from .config import VARIANTS, SecAggConfig
from .rounds import ROUNDS
from .server import Server

View = list[tuple[int, str, tuple[np.ndarray, ...]]]
"""What the server received: ``(client, round name, message)`` in arrival order."""


class ServerLink(Protocol):
    """How the server reaches client ``u`` of the session."""

    def send(self, u: int, tag: str, arrays: tuple[np.ndarray, ...]) -> None: ...

    def recv(self, u: int, tag: str, timeout: float) -> tuple[np.ndarray, ...] | None:
        """Client u's message under ``tag`` (older tags skipped); None if gone or late."""


class ClientLink(Protocol):
    """How a client reaches the server."""

    def send(self, tag: str, arrays: tuple[np.ndarray, ...]) -> None: ...

    def recv(self, tag: str, timeout: float) -> tuple[np.ndarray, ...]: ...


def config_arrays(config: SecAggConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The public parameters of a session as three arrays (ints, floats, session id)."""
    ints = np.array([config.n, config.dim, config.bits, config.threshold, config.degree,
                     VARIANTS.index(config.variant)], dtype=np.int64)
    floats = np.array([config.dropout, config.corruption, config.privacy_failure,
                       config.correctness_failure], dtype=np.float64)
    return ints, floats, np.frombuffer(config.session, np.uint8).copy()


def config_from_arrays(ints: np.ndarray, floats: np.ndarray, session: np.ndarray) -> SecAggConfig:
    """Rebuild and check what :func:`config_arrays` sent (ParameterError if malformed or unsafe)."""
    if ints.shape != (6,) or floats.shape != (4,) or session.shape != (16,) \
            or ints.dtype.kind != "i" or floats.dtype.kind != "f" or session.dtype != np.uint8:
        raise ParameterError("the server's SecAgg parameters are malformed")
    n, dim, bits, t, k, v = (int(x) for x in ints)
    if not 0 <= v < len(VARIANTS) or not 2 <= n or not 1 <= dim or not 1 <= bits <= 64:
        raise ParameterError(f"the server's SecAgg parameters are out of range (n={n}, dim={dim}, "
                             f"bits={bits}, variant code {v})")
    return SecAggConfig(n=n, dim=dim, bits=bits, threshold=t, degree=k, variant=VARIANTS[v],
                        session=session.tobytes(), dropout=float(floats[0]),
                        corruption=float(floats[1]), privacy_failure=float(floats[2]),
                        correctness_failure=float(floats[3]))


def serve(config: SecAggConfig, link: ServerLink, *, round_timeout: float,
          first_timeout: float | None = None, prefix: str = "secagg",
          view: View | None = None, min_survivors: int = 0) -> tuple[np.ndarray, list[int], Server]:
    """Run the server's side of one session with clients ``0 .. n-1`` over ``link``.

    Returns (ring sum of the survivors, survivors, the server's final state);
    raises :class:`~mpc.errors.ProtocolAbort` when fewer than t clients are
    left at some round (every client still in the session is told to stop).
    ``view`` collects every message received, as received. ``min_survivors``:
    abort (before any client is asked for unmasking shares) when fewer clients
    are left after a round, e.g. fewer than a DP noise is planned for.
    """
    server = Server(config)
    alive = list(range(config.n))
    for rnd in ROUNDS:
        limit = first_timeout if rnd.index == 0 and first_timeout is not None else round_timeout
        deadline = time.monotonic() + limit   # one deadline for all clients of the round
        msgs = {}
        for u in alive:
            m = link.recv(u, f"{prefix}/{rnd.name}", max(deadline - time.monotonic(), 1e-3))
            if m is None:
                server.drop(u, f"no message by the deadline of round {rnd.name!r}")
                continue
            if view is not None:
                view.append((u, rnd.name, m))
            if len(m):
                msgs[u] = m   # (an empty message: the client announced it is leaving)
        try:
            out = rnd.server_step(server, msgs)
        except ProtocolAbort:
            _stop(link, alive, f"{prefix}/{rnd.reply_tag or 'abort'}")
            raise
        if rnd.reply_tag is None:
            return out, server.survivors, server
        if len(out) < min_survivors:   # before the unmask round: the sum is never formed
            _stop(link, alive, f"{prefix}/{rnd.reply_tag}")
            raise ProtocolAbort(f"SecAgg aborted after round {rnd.name!r}: {len(out)} clients left, "
                                f"fewer than the {min_survivors} required")
        for u in alive:   # dropped clients (late, silent, malformed) get an empty reply: stop
            _send(link, u, f"{prefix}/{rnd.reply_tag}", out.get(u, ()))
        alive = sorted(out)
    raise AssertionError("unreachable: the last round returns the sum")


def _send(link: ServerLink, u: int, tag: str, arrays: tuple) -> None:
    try:
        link.send(u, tag, tuple(arrays))
    except Exception:  # noqa: BLE001 - a client whose link is gone is dropped next round
        pass


def _stop(link: ServerLink, alive: list[int], tag: str) -> None:
    for u in alive:
        _send(link, u, tag, ())


def attend(client: Client, link: ClientLink, *, timeout: float, prefix: str = "secagg",
           before_send: Callable[[str], None] | None = None) -> bool:
    """Run ``client``'s side of a session over ``link``; True if it answered every round.

    ``timeout`` bounds each wait for the server's reply. A client that finds a
    server message malformed or unsafe (:class:`~mpc.errors.ProtocolAbort`)
    sends an empty message and leaves; an empty reply from the server means it
    was dropped (or the session aborted). ``before_send(round name)`` runs
    before each message leaves (fault injection in tests and demos).
    """
    reply: tuple = ()
    for rnd in ROUNDS:
        try:
            out = rnd.client_step(client, reply)
        except ProtocolAbort:
            link.send(f"{prefix}/{rnd.name}", ())
            raise
        if before_send is not None:
            before_send(rnd.name)
        link.send(f"{prefix}/{rnd.name}", out)
        if rnd.reply_tag is None:
            return True
        reply = link.recv(f"{prefix}/{rnd.reply_tag}", timeout)
        if not reply:
            return False
    return True


__all__ = ["ClientLink", "ServerLink", "View", "attend", "config_arrays", "config_from_arrays",
           "serve"]
