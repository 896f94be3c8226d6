"""The four SecAgg rounds as one table: name, message schemas, client step, server step (layer: protocols).

Every driver reads this table and nothing else to run a session: the
one-process simulator (:mod:`.simulation`), the party program over the Party
runtime (:mod:`.parties`) and, through them, :func:`protocols.secagg.aggregate`
and the aggregators of :mod:`ml.aggregators`. A networked server holds one
:class:`~.server.Server` state, a client one :class:`~.client.Client` state,
and each calls its side of a round when that round's message arrives::

    reply = ROUNDS[r].client_step(client, message)        # on client u
    replies = ROUNDS[r].server_step(server, {u: reply})   # on the server

==========  ===========  =================  ===================  ==================
round       reply tag    client step        server step          client -> server
==========  ===========  =================  ===================  ==================
advertise   keys         advertise_keys     collect_keys         (2, 32) keys
share       shares       share_keys         route_shares         ids, ciphertexts
masked      request      masked_input       collect_masked       y (d,)
unmask      (the sum)    unmask             unmask               seed, key shares
==========  ===========  =================  ===================  ==================

A client's message in round r is its answer to the server's reply of round
r - 1 (round 0 answers nothing, the empty message). Schemas are in
:mod:`.messages`; a step checks the incoming message against them before it
runs and refuses to run out of order (:class:`~mpc.errors.ProtocolError`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from mpc.errors import ProtocolError
from mpc.schema import check_arrays

from . import client as cl
from . import messages as msg
from . import server as sv
from .config import SecAggConfig


@dataclass(frozen=True)
class Round:
    """One SecAgg round: what flows each way and who does what.

    Attributes
    ----------
    index, name:
        Position (0..3) and name; the name is also the tag of the clients'
        messages in this round and the phase of the Party runtime's cost.
    reply_tag:
        Tag of the server's replies (None in the last round: it outputs the sum).
    down:
        Schema of the server's message a client answers in this round.
    up:
        Schema of a client's message, given the session's configuration.
    on_client, on_server:
        The step functions of :mod:`.client` and :mod:`.server`; call them
        through :meth:`client_step` and :meth:`server_step`.
    fold, finish:
        For a round whose server step only adds messages up (masked): the two
        halves of ``on_server``, so that :meth:`server_stream` can fold the
        messages in chunk by chunk and keep none of them.
    """

    index: int
    name: str
    reply_tag: str | None
    down: msg.Spec
    up: Callable[[SecAggConfig], msg.Spec]
    on_client: Callable[[cl.Client, tuple, str], tuple]
    on_server: Callable[[sv.Server, sv.Messages], Any]
    fold: Callable[[sv.Server, sv.Messages], np.ndarray] | None = None
    finish: Callable[[sv.Server, np.ndarray], Any] | None = None

    def client_step(self, client: cl.Client, message: tuple = ()) -> tuple[np.ndarray, ...]:
        """The client's reply to ``message`` (the server's reply of the previous round)."""
        return self.on_client(client, *self.accept(client, message))

    def accept(self, client: cl.Client, message: tuple) -> tuple[tuple[np.ndarray, ...], str]:
        """Enter this round on ``client``: refuse it out of order, check ``message`` against
        :attr:`down`; return the checked message and the label its errors carry."""
        if client.stage != self.index:
            raise ProtocolError(f"client {client.id}: asked for round {self.name!r} while at "
                                f"{_name(client.stage)!r}")
        client.stage += 1
        what = f"client {client.id}, round {self.name!r}"
        if self.index:
            what += f": the server's {ROUNDS[self.index - 1].reply_tag!r} message"
        return check_arrays(message, self.down, what, peer="server", round=self.index), what

    def server_step(self, server: sv.Server, msgs: sv.Messages) -> Any:
        """The server's replies ``{client: message}`` to this round's messages (round 3: the sum).

        Clients expected in this round that sent nothing, and senders whose
        message fails the round's schema, are dropped first; clients not
        expected are ignored (unknown ids are recorded as dropped).
        """
        expected = self._enter(server)
        with _clock(server, self.name):
            for u in expected.tolist():
                if u not in msgs:
                    server.drop(u, f"no message in round {self.name!r}")
            return self.on_server(server, self._valid(server, msgs, set(expected.tolist())))

    def server_stream(self, server: sv.Server, chunks: Iterable[sv.Messages]) -> Any:
        """:meth:`server_step` over messages that arrive in chunks (the same result).

        A round with :attr:`fold` adds each chunk in as it comes and keeps none of
        its messages; the others gather the chunks first. Only the server's own
        work is timed, not the wait for the chunks.
        """
        if self.fold is None or self.finish is None:
            msgs: sv.Messages = {}
            for chunk in chunks:
                msgs.update(chunk)
            return self.server_step(server, msgs)
        expected = self._enter(server)
        wanted, seen, kept = set(expected.tolist()), set[int](), []
        for chunk in chunks:
            with _clock(server, self.name):
                fresh = {u: m for u, m in chunk.items() if u not in seen}   # a repeat is not added twice
                seen.update(chunk)
                kept.append(self.fold(server, self._valid(server, fresh, wanted)))
        with _clock(server, self.name):
            for u in expected.tolist():
                if u not in seen:
                    server.drop(u, f"no message in round {self.name!r}")
            return self.finish(server, np.concatenate([np.zeros(0, np.int64), *kept]))

    def _enter(self, server: sv.Server) -> np.ndarray:
        """Refuse the step out of order; move the server on; the clients it waits for."""
        if server.stage != self.index:
            raise ProtocolError(f"server: round {self.name!r} called out of order "
                                f"(at {_name(server.stage)!r})")
        expected = server.expected()
        server.stage += 1
        return expected

    def _valid(self, server: sv.Server, msgs: sv.Messages, wanted: set[int]) -> sv.Messages:
        """The messages of expected senders that pass the round's schema; drop the others."""
        n, spec = server.config.n, self.up(server.config)
        valid = {}
        for u in sorted(msgs):
            if not 0 <= u < n:
                server.drop(u, f"unknown client id (clients are 0 .. {n - 1})")
            elif u in wanted:
                try:
                    valid[u] = check_arrays(msgs[u], spec, f"client {u}, round {self.name!r}",
                                            peer=u, round=self.index)
                except msg.MalformedMessage as exc:
                    server.drop(u, str(exc))
        return valid


@contextmanager
def _clock(server: sv.Server, name: str) -> Iterator[None]:
    """Add the wall-clock and CPU time of the block to the server's clocks of round ``name``."""
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        server.seconds[name] = server.seconds.get(name, 0.0) + time.perf_counter() - t0
        server.cpu_seconds[name] = server.cpu_seconds.get(name, 0.0) + time.thread_time() - c0


def _fixed(spec: msg.Spec) -> Callable[[SecAggConfig], msg.Spec]:
    return lambda config: spec


def _name(stage: int) -> str:
    return ROUNDS[stage].name if stage < len(ROUNDS) else "done"


ADVERTISE = Round(0, "advertise", "keys", [], _fixed(msg.ADVERTISE_UP),
                  cl.advertise_keys, sv.collect_keys)
SHARE = Round(1, "share", "shares", msg.ADVERTISE_DOWN, _fixed(msg.SHARE_UP),
              cl.share_keys, sv.route_shares)
MASKED = Round(2, "masked", "request", msg.SHARE_DOWN,
               lambda config: msg.masked_spec(config.dtype, config.dim),
               cl.masked_input, sv.collect_masked, fold=sv.fold_masked, finish=sv.request_shares)
UNMASK = Round(3, "unmask", None, msg.REQUEST_DOWN, _fixed(msg.UNMASK_UP), cl.unmask, sv.unmask)

ROUNDS: tuple[Round, ...] = (ADVERTISE, SHARE, MASKED, UNMASK)
"""The session, in order."""
