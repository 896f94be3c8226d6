"""The federated server as its own process: :func:`serve` (layer: ml).

The server listens for its clients (pinned TLS 1.3, :mod:`mpc.transport.star`),
waits up to ``connect_timeout`` for them, then runs the rounds of
:mod:`.rounds` with the network in place of the in-process clients:

1. **Sample** as :func:`~.rounds.sample` does (same seed, same clients); the
   round runs with the sampled clients it reaches (connected now; a client
   may join late, leave, and come back).
2. **Fit**: each reached client gets ``fl/<r>/fit``: the global weights, its
   index in the round and, for SecAgg, the session's public parameters.
3. **Aggregate**: plaintext, each client's upload under ``fl/<r>/update``
   by the ``fit_timeout`` deadline; SecAgg/SecAgg+, the four rounds of
   :func:`protocols.secagg.network.serve`, one deadline per round (round 0
   waits ``fit_timeout``: the clients train first); CKKS/Paillier, the signed
   ciphertext uploads, their homomorphic sum and its decryption by a client
   (:mod:`.he_network`, which also delivers the clients' key). Missing or
   refused clients are dropouts; too few survivors skip the round (the model
   stays).
4. **Update and evaluate** with :func:`~.rounds.apply_result` and
   :func:`~.rounds.round_metrics`: the same code as :func:`~ml.federated.train`.

Every message the server receives is recorded in :attr:`ServeResult.views`,
so tests check what it saw: with SecAgg, keys, encrypted shares, masked
vectors and unmasking shares, never a client's update.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mpc.dp import PrivacyAccountant
from mpc.errors import ParameterError, ProtocolAbort, TransportError
from mpc.transport.star import Hub

from ..aggregators import AggregationResult, SecAggAggregator, ServerMessage
from ..clients.base import Client, flatten, unflatten
from . import network as net
from .history import History, RoundMetrics
from .plan import Plan, make_plan
from .rounds import RunState, apply_result, evaluate, round_metrics, sample

View = list[tuple[int, str, tuple[np.ndarray, ...]]]
"""What the server received in a round: ``(client id, tag, arrays)`` in arrival order."""


@dataclass
class ServeResult:
    """A finished run: the history, and per round what the server received and summed."""

    history: History
    views: dict[int, View] = field(default_factory=dict)
    totals: dict[int, np.ndarray] = field(default_factory=dict)
    survivors: dict[int, list[int]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


class _Link:
    """The server's link to the clients of one round (session index u -> client ids[u])."""

    def __init__(self, hub: Hub, ids: list[int], view: View) -> None:
        self.hub, self.ids, self.view = hub, ids, view
        self.bytes = dict.fromkeys(ids, 0)   # payload bytes both ways, per client
        self.up = dict.fromkeys(ids, 0)      # of which the client sent

    def send(self, u: int, tag: str, arrays: tuple[np.ndarray, ...]) -> None:
        k = self.ids[u]
        ep = self.hub.endpoint(k + 1)
        if ep is None:
            raise TransportError(f"client {k} is not connected")
        self.bytes[k] += net.send(ep, k + 1, tag, arrays)

    def recv(self, u: int, tag: str, timeout: float) -> tuple[np.ndarray, ...] | None:
        k = self.ids[u]
        ep = self.hub.endpoint(k + 1)
        if ep is None:
            return None
        try:
            arrays = net.recv(ep, k + 1, tag, timeout)
        except net.LINK_ERRORS:
            return None
        nbytes = sum(a.nbytes for a in arrays)
        self.bytes[k] += nbytes
        self.up[k] += nbytes
        self.view.append((k, tag, arrays))
        return arrays

    def result(self, total: np.ndarray, survivors: list[int], seconds: float) -> AggregationResult:
        transcript = [ServerMessage(k, tag.rsplit("/", 1)[-1],
                                    arrays[0] if len(arrays) == 1 else np.concatenate(
                                        [np.ascontiguousarray(a).view(np.uint8).reshape(-1)
                                         for a in arrays] or [np.zeros(0, np.uint8)]),
                                    int(sum(a.nbytes for a in arrays)))
                      for k, tag, arrays in self.view]
        per_client = float(np.mean(list(self.bytes.values()))) if self.bytes else 0.0
        return AggregationResult(total, survivors, per_client, seconds, 0.0, transcript,
                                 {"total": total, "bytes_up": dict(self.up)})


def _secagg_params(plan: Plan, m: int) -> tuple[Any, Any]:
    """The session config and quantizer of a SecAgg round of ``m`` clients (as in process)."""
    from protocols.secagg import Quantizer, make_config

    agg = plan.aggregator
    if not isinstance(agg, SecAggAggregator):
        raise ParameterError(f"a SecAgg round needs the secagg aggregator, not {type(agg).__name__}")
    quant = Quantizer(agg.value_bound, agg.frac_bits)
    bits = quant.bits_needed(m)
    quant.check_bits(m, bits)
    config = make_config(m, agg.dim, variant=agg.variant, bits=bits, dropout=agg.dropout_bound,
                         corruption=agg.corruption)
    return config, quant


def _he_round(he: Any, config: net.FLConfig, link: _Link, weights: np.ndarray, r: int,
              ids: list[int]) -> tuple[AggregationResult | None, str]:
    """A CKKS or Paillier round (:func:`.he_network.run_he_round`)."""
    from .he_network import run_he_round

    def send_fit() -> None:
        for u in range(len(ids)):
            try:
                link.send(u, f"fl/{r}/fit", (weights, np.array([r, u], np.int64)))
            except net.LINK_ERRORS:
                pass  # gone since it was reached: a dropout of this round

    t0 = time.perf_counter()
    total, survivors, notes = run_he_round(he, link, r, ids, send_fit, config.fit_timeout,
                                           config.round_timeout)
    text = "; ".join(notes)
    if total is None:
        return None, "round skipped: " + (text or "no decrypted sum")
    res = link.result(total, survivors, time.perf_counter() - t0)
    res.server_state.update(public_key=he.pub, notes=notes)
    return res, text


def aggregate_round(plan: Plan, config: net.FLConfig, hub: Hub, weights: np.ndarray, r: int,
                    ids: list[int], view: View, he: Any = None) -> tuple[AggregationResult | None, str]:
    """One round's fit and aggregation over the network with the reached clients ``ids``.

    ``he`` is the run's :class:`~.he_network.HEServer` for CKKS and Paillier."""
    agg = plan.aggregator
    if len(ids) < agg.min_survivors:
        return None, f"round skipped: {len(ids)} sampled client(s) reachable, {agg.name} needs " \
                     f"{agg.min_survivors}"
    link = _Link(hub, ids, view)
    if he is not None:
        return _he_round(he, config, link, weights, r, ids)
    extra: tuple = ()
    if agg.name != "plaintext":
        try:
            session, quant = _secagg_params(plan, len(ids))
        except ParameterError as exc:
            return None, f"round skipped: {exc}"
        from protocols.secagg.network import config_arrays
        extra = config_arrays(session)
    for u in range(len(ids)):
        try:
            link.send(u, f"fl/{r}/fit", (weights, np.array([r, u], np.int64), *extra))
        except net.LINK_ERRORS:
            pass  # gone since it was reached: a dropout of this round
    t0 = time.perf_counter()
    if agg.name == "plaintext":
        deadline = time.monotonic() + config.fit_timeout
        got = {}
        for u, k in enumerate(ids):
            m = link.recv(u, f"fl/{r}/update", max(deadline - time.monotonic(), 1e-3))
            # the in-process aggregator's checks: one finite vector within the public bound
            if m and len(m) == 1 and m[0].shape == (agg.dim,) and m[0].dtype.kind == "f" \
                    and np.all(np.isfinite(m[0])) and np.abs(m[0]).max() <= agg.value_bound:
                got[k] = m[0].astype(np.float64)
        if not got:
            return None, "round skipped: no client sent its update by the deadline"
        total = np.sum([got[k] for k in sorted(got)], axis=0)
        return link.result(total, sorted(got), time.perf_counter() - t0), ""
    from protocols.secagg.network import serve as serve_session
    try:
        # distributed DP: fewer survivors than the noise is planned for stop the session before
        # the unmask round, so the server never forms an under-noised sum (as in process)
        ring, survivors, _ = serve_session(session, link, round_timeout=config.round_timeout,
                                           first_timeout=config.fit_timeout,
                                           prefix=f"fl/{r}/secagg",
                                           min_survivors=plan.noisy_min if plan.ddg is not None else 0)
    except ProtocolAbort as exc:
        return None, f"round skipped: {exc}"
    total = quant.decode(ring, session.bits)
    return link.result(total, [ids[u] for u in survivors], time.perf_counter() - t0), ""


def _plan(config: net.FLConfig, dim: int) -> Plan:
    s = config.settings
    if s.weight_cap is None and s.dp is None:
        raise ParameterError("config [training]: give weight_cap, the public bound on a client's "
                             "example count (the server never learns the counts)")
    return make_plan(s, [None] * config.n_clients, dim, config.aggregator,
                     config.aggregator_options, None, keys=False)


def serve(config: net.FLConfig | str | Path, evaluator: Client, *, key: str | None = None,
          log: Callable[[str], None] | None = None,
          on_round: Callable[[RoundMetrics, AggregationResult | None], None] | None = None
          ) -> ServeResult:
    """Run the federated server of ``config`` until its last round; see the module docstring.

    ``evaluator`` is the server's model (its initial weights start the run,
    ``evaluate`` scores every round, e.g. on a held-out set); ``key`` the
    server's private key (default: beside its certificate). ``log`` receives
    one line per event (connections, rounds).
    """
    if not isinstance(config, net.FLConfig):
        config = net.load(config)
    say = log or (lambda text: None)
    start = evaluator.get_weights()
    plan = _plan(config, int(flatten(start).size))
    state = RunState(flatten(start), [tuple(np.shape(w)) for w in start], [], evaluator,
                     PrivacyAccountant() if config.settings.dp is not None else None)
    history = History(plan.aggregator.name, plan.config, initial=evaluate(state, 0))
    hub = Hub((config.listen or config.host, config.port),
              {k + 1: der for k, (_, der) in config.clients.items()},
              cert=str(config.server_certificate), key=net.key_for(config.server_certificate, key),
              session=config.session, digest=config.digest,
              names={k + 1: f"client {k}" for k in config.clients})
    result = ServeResult(history)
    he = None
    if plan.aggregator.name in ("ckks", "paillier"):
        from .he_network import HEServer, homomorphic
        he = HEServer(homomorphic(plan.aggregator), config.digest,
                      {k: der for k, (_, der) in config.clients.items()})
    try:
        here = hub.wait_for(set(range(1, config.n_clients + 1)), config.connect_timeout)
        say(f"server: {len(here)} of {config.n_clients} clients connected")
        for r in range(1, config.settings.rounds + 1):
            t0 = time.perf_counter()
            chosen, _ = sample(plan, r)
            up = hub.connected()
            ids = [k for k in chosen if k + 1 in up]
            say(f"server: round {r}: started with clients {ids}")
            view: View = []
            res, note = aggregate_round(plan, config, hub, state.weights, r, ids, view, he)
            apply_result(plan, state, res)
            metrics = round_metrics(plan, state, r, res, note, t0)
            history.rounds.append(metrics)
            result.views[r] = view
            if res is not None:
                history.last_result = res
                result.totals[r], result.survivors[r] = res.total, list(res.survivors)
            say(f"server: round {r}: sampled {len(chosen)}, reached {len(ids)}, survivors "
                f"{metrics.survivors}, accuracy {metrics.accuracy:.3f}" + (f" ({note})" if note else ""))
            if on_round is not None:
                on_round(metrics, res)
    finally:
        _finish(hub, config)
        result.refused = list(hub.refused)
    history.weights = unflatten(state.weights, state.shapes)
    return result


def _finish(hub: Hub, config: net.FLConfig) -> None:
    """Tell every connected client the run is over, then close the links."""
    for k in sorted(hub.connected()):
        try:
            net.send(hub.endpoint(k), k, "fl/done", ())
        except net.LINK_ERRORS:
            pass
    hub.close()


__all__ = ["ServeResult", "aggregate_round", "serve"]
