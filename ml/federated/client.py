"""A federated client as its own process: :func:`run_client` (layer: ml).

The client dials the server named in the config (pinned TLS 1.3,
:func:`mpc.transport.star.dial`) and then answers the server's instructions
until it says the run is over:

* ``fl/<r>/fit`` (global weights, the client's index in the round, SecAgg
  parameters): set the weights, ``fit``, and turn the result into this
  client's upload with :func:`~.rounds.local_updates`, the very code
  :func:`~ml.federated.train` runs in process (clipping, weighting by the
  example count over the public cap, DP); then send it: plaintext, as
  ``fl/<r>/update``; SecAgg/SecAgg+, quantized into the ring and masked
  through the four rounds of :func:`protocols.secagg.network.attend`.
* CKKS/Paillier (:mod:`.he_network`): ``fl/<r>/he/deal``, ``he/key`` and
  ``he/decrypt``: deal the run's key to other clients, receive it, decrypt
  the encrypted sum; the upload is this client's signed ciphertext.
* ``fl/done``: close the link and return.

Any framework plugs in through the client interface of :mod:`ml.clients`.
Every wait has a deadline: ``idle_timeout`` for the next instruction, the
server's round deadlines plus ``round_timeout`` for a reply; a server that
goes away or falls silent is a clear :class:`~mpc.errors.TransportError`.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mpc.errors import EncodingError, ParameterError, ProtocolAbort
from mpc.transport.mesh import Node
from mpc.transport.star import dial
from mpc.transport.wire import decode_frame

from ..aggregators import SecAggAggregator
from ..clients.base import Client, flatten
from . import network as net
from .plan import Plan, make_plan
from .rounds import RunState, local_updates


@dataclass
class ClientReport:
    """What a client did: the rounds it was asked to fit, and those it finished."""

    fitted: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """CKKS/Paillier: the server requests this client refused, and why."""


class _ServerLink:
    """The client's link to the server, as :mod:`protocols.secagg.network` wants it."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint

    def send(self, tag: str, arrays: tuple[np.ndarray, ...]) -> None:
        net.send(self.endpoint, 0, tag, arrays)

    def recv(self, tag: str, timeout: float) -> tuple[np.ndarray, ...]:
        return net.recv(self.endpoint, 0, tag, timeout, skip_older=False)


def _fault(spec: tuple[int, str, str] | None, r: int, stall: float) -> Any:
    """``before_send`` for a fault injected at (round, step, "kill" | "stall"), for tests and demos:
    kill this process, or sleep ``stall`` seconds before sending."""
    def before_send(step: str) -> None:
        if spec is None or (spec[0], spec[1]) != (r, step):
            return
        if spec[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if spec[2] == "stall":
            time.sleep(stall)
    return before_send


def _secagg_round(plan: Plan, config: net.FLConfig, link: _ServerLink, r: int, u: int,
                  vector: np.ndarray, params: tuple[np.ndarray, ...], fault: Any) -> bool:
    from protocols.secagg import Client as SecAggClient
    from protocols.secagg import Quantizer
    from protocols.secagg.network import attend, config_from_arrays

    session = config_from_arrays(*params)
    agg = plan.aggregator
    if not isinstance(agg, SecAggAggregator):
        raise ParameterError(f"a SecAgg round needs the secagg aggregator, not {type(agg).__name__}")
    if session.variant != agg.variant or session.dim != agg.dim or not 0 <= u < session.n:
        raise ProtocolAbort(f"round {r}: the server's SecAgg session ({session.variant}, "
                            f"{session.dim} values, index {u} of {session.n}) is not this "
                            f"config's ({agg.variant}, {agg.dim} values)")
    quant = Quantizer(agg.value_bound, agg.frac_bits)
    quant.check_bits(session.n, session.bits)   # the ring must hold the sum without wrapping
    ring, _ = quant.encode(vector, session.bits)
    return attend(SecAggClient(u, session, ring), link,
                  timeout=config.fit_timeout + 2 * config.round_timeout,
                  prefix=f"fl/{r}/secagg", before_send=fault)


def _fit_round(plan: Plan, config: net.FLConfig, state: RunState, link: _ServerLink,
               client_id: int, arrays: tuple[np.ndarray, ...], fault_spec: Any,
               he: Any = None) -> tuple[int, bool]:
    """Answer one ``fit`` instruction; (round, whether this client finished it)."""
    if len(arrays) < 2 or arrays[1].shape != (2,) or arrays[0].shape != state.weights.shape \
            or arrays[0].dtype.kind != "f" or not np.all(np.isfinite(arrays[0])):
        raise EncodingError(f"client {client_id}: the server's fit message is malformed (it needs "
                            f"{state.weights.size} finite weights and the round)")
    r, u = (int(x) for x in arrays[1])
    state.weights = arrays[0].astype(np.float64)
    vectors, _, _ = local_updates(plan, state, [client_id], set(), r)
    # a stall outlasts the step's deadline: the first message's is fit_timeout, the others' a round
    fault = _fault(fault_spec, r, config.fit_timeout + config.round_timeout + 1)
    if plan.aggregator.name == "plaintext" or he is not None:
        fault("update")
        action = fault_spec[2] if fault_spec and fault_spec[:2] == (r, "update") else ""
        upload = (vectors[client_id],) if he is None else he.upload(r, vectors[client_id], action)
        try:
            link.send(f"fl/{r}/update", upload)
        except net.LINK_ERRORS:
            return r, False   # as below: the next instruction tells why
        return r, bool(upload)
    try:
        return r, _secagg_round(plan, config, link, r, u, vectors[client_id], arrays[2:], fault)
    except ProtocolAbort:
        return r, False   # refused an unsafe request: it left this round, as the protocol says
    except net.LINK_ERRORS:
        # too late: the server closed the link (it may have ended the run); the next
        # instruction (queued before, or the link's error) tells which
        return r, False


_HE_STEPS = {"deal": "keys", "key": "keyok", "decrypt": "sum"}   # request -> reply


def _he_client(plan: Plan, config: net.FLConfig, client_id: int, cert: Path, key: str | None) -> Any:
    """The client's CKKS/Paillier state (:mod:`.he_network`), None for other aggregators."""
    if plan.aggregator.name not in ("ckks", "paillier"):
        return None
    from .he_network import HEClient
    return HEClient.load(plan.aggregator, client_id, config.digest,
                         {k: der for k, (_, der) in config.clients.items()}, net.key_for(cert, key))


def _he_step(he: Any, link: _ServerLink, r: int, step: str, arrays: tuple[np.ndarray, ...],
             report: ClientReport, fault: Any) -> None:
    """Answer a key deal, a key delivery or a decryption request (an empty reply if refused)."""
    handler = {"deal": he.deal, "key": he.receive_key, "decrypt": he.decrypt}[step]
    before = len(he.refused)
    reply = handler(r, arrays)
    report.refused += he.refused[before:]
    fault(step)
    try:
        link.send(f"fl/{r}/he/{_HE_STEPS[step]}", reply)
    except net.LINK_ERRORS:
        pass   # the next instruction (or the link's error) tells why


def run_client(config: net.FLConfig | str | Path, client_id: int, client: Client, *,
               key: str | None = None, certificate: str | None = None,
               fault: tuple[int, str, str] | None = None) -> ClientReport:
    """Take part as client ``client_id`` of ``config`` until the server ends the run.

    ``certificate`` and ``key`` default to the config's certificate of this
    client and the key beside it. ``fault=(round, step, "kill" | "stall")``
    makes this process SIGKILL itself, or stall past the deadline, just
    before it sends its message of that step (``"masked"``, ``"update"``; with
    CKKS/Paillier also ``"deal"``, ``"key"``, ``"decrypt"``): fault injection for
    tests and demonstrations. With CKKS/Paillier, step ``"update"`` also takes
    ``"replay"`` (send the previous round's upload again), ``"garble"`` (a
    corrupted ciphertext, correctly signed) and ``"oversize"``. The key it signs
    with is its TLS key (the ``key`` file).
    """
    if not isinstance(config, net.FLConfig):
        config = net.load(config)
    if client_id not in config.clients:
        raise ParameterError(f"client id {client_id} is not in the config (0..{config.n_clients - 1})")
    start = client.get_weights()
    weights = flatten(start)
    s = config.settings
    plan = make_plan(s, [getattr(client, "n_examples", None) if k == client_id else s.weight_cap
                         for k in range(config.n_clients)], weights.size, config.aggregator,
                     config.aggregator_options, None, keys=False)
    state = RunState(weights, [tuple(np.shape(w)) for w in start], {client_id: client},  # type: ignore[arg-type]
                     client, None)
    cert = Path(certificate) if certificate else config.clients[client_id][0]
    endpoint = dial(client_id + 1, Node(0, config.host, config.port, config.server_der),
                    cert=str(cert), key=net.key_for(cert, key), session=config.session,
                    digest=config.digest, timeout=config.connect_timeout,
                    name=f"client {client_id}")
    link, report = _ServerLink(endpoint), ClientReport()
    he = _he_client(plan, config, client_id, cert, key)
    try:
        while True:
            frame = decode_frame(endpoint.recv_frame(0, config.idle_timeout,
                                                     "the server's next instruction"))
            if frame.tag == "fl/done":
                break
            parts = frame.tag.split("/")
            arrays = tuple(np.array(a) for a in frame.arrays)
            if he is not None and len(parts) == 4 and parts[:1] + parts[2:3] == ["fl", "he"] \
                    and parts[1].isdigit() and parts[3] in _HE_STEPS:
                # a stall outlasts the step's deadline (a fresh key's deal waits fit_timeout)
                stall = config.round_timeout + 1 + (config.fit_timeout if parts[3] == "deal" else 0)
                _he_step(he, link, int(parts[1]), parts[3], arrays, report,
                         _fault(fault, int(parts[1]), stall))
                continue
            if len(parts) != 3 or parts[0] != "fl" or parts[2] != "fit":
                continue   # a late reply of a round this client already left
            r, done = _fit_round(plan, config, state, link, client_id, arrays, fault, he)
            report.fitted.append(r)
            if done:
                report.finished.append(r)
    except BaseException:
        endpoint.abort(f"client {client_id} failed")
        raise
    endpoint.close()
    return report


__all__ = ["ClientReport", "run_client"]
