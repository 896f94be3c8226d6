"""Asynchronous federated learning: FedBuff over secure aggregation, on a simulated clock (layer: ml).

:func:`train_async` runs buffered asynchronous aggregation (FedBuff, Nguyen et
al. 2022) in one process, with the clients' training times simulated by an
event queue (nothing sleeps):

1. **Concurrency**: ``concurrency`` clients train at any time. Each starts
   from the global model of the moment (version ``v0``) and finishes after
   its simulated duration ``speeds[k]`` (times a factor uniform in
   ``[1 - jitter, 1 + jitter]`` per job, from the seed).
2. **Upload**: a finished client's update ``delta = w_k - w(v0)`` (clipped to
   ``update_clip``) is scaled by its staleness weight ``s(tau)``, ``tau = v - v0``
   the number of server steps since it started, and sent as the vector
   ``[s(tau) p_k delta, p_k]`` with ``p_k = n_k / weight_cap``. The staleness
   is public (the server knows both versions), so the client scales its own
   update *before* masking and secure aggregation needs nothing new.
3. **Buffer**: every ``buffer_size`` = K uploads form one secure-aggregation
   session (SecAgg / SecAgg+ or any :class:`~ml.aggregators.Aggregator`,
   fresh keys each time, the buffer slots 0..K-1 as session ids, so one fast
   client may fill two slots). The server learns the buffer's sum and nothing
   about a single upload, exactly as in a synchronous round.
4. **Server step**: ``w += server_lr * sum_k s(tau_k) p_k delta_k / sum_k p_k``;
   the denominator is the revealed last entry (the slots' example weights, not
   their staleness weights, so stale updates count less in absolute terms as in
   FedBuff's ``1/K sum s(tau_k) delta_k``). The server's evaluator scores the
   model; the metrics carry ``sim_seconds`` (simulated time) and the buffer's
   staleness per slot.
5. **Restart**: a client that finished starts again (``concurrency`` equal to
   the population) or a new one is drawn uniformly among the idle ones, from the
   model of that moment. At equal times every upload (and server step) comes
   before any restart.

With ``buffer_size`` = number of clients = ``concurrency``, equal speeds and no
jitter every buffer holds every client once with staleness 0: the run is
FedAvg's :func:`~ml.federated.train` with the same seed, step for step (tested).

Staleness weights ``s(tau)``: ``"sqrt"`` 1/sqrt(1 + tau) (FedBuff's choice),
``"none"`` 1, or any function of tau with values in (0, 1].

:func:`synchronous_clock` gives a synchronous run the same simulated clock
(each round lasts as long as its slowest client), for time-to-accuracy
comparisons (:func:`time_to_accuracy`).

Security
--------
As for :func:`~ml.federated.train` with the same aggregator: per buffer the
server learns which K clients' updates are in it (it learns that from the
arrival times anyway), their staleness (public by construction), the sum of
the scaled weighted updates and the sum of the weights. Dropouts during a
buffer's secure sum are simulated (``dropout``); DP and compression are not
offered here.

References
----------
Nguyen, Malik, Zhan, Yousefpour, Rabbat, Malek, Huba: Federated Learning with
Buffered Asynchronous Aggregation, AISTATS 2022.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from mpc.dp import clip_by_l2_norm
from mpc.dp.sampling import uniform01
from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed

from ..aggregators import AggregationResult, Aggregator
from ..clients.base import ClientFactory, flatten, unflatten
from ..models import Model
from .history import History, RoundMetrics
from .loop import ClientOrData, build_clients, record_round
from .plan import Plan, Settings, make_plan
from .privacy import client_uploads
from .progress import progress_bar
from .rounds import RunState, aggregate, apply_result, evaluate, fit_config, fit_update, round_metrics

Staleness = Callable[[int], float]


def staleness_weight(rule: str | Staleness) -> Staleness:
    """The staleness weight function ``tau -> s(tau)`` named by ``rule`` (or ``rule`` itself)."""
    if callable(rule):
        return rule
    if rule == "sqrt":
        return lambda tau: 1.0 / math.sqrt(1.0 + tau)
    if rule == "none":
        return lambda tau: 1.0
    raise ParameterError(f"staleness must be 'sqrt', 'none' or a function of the staleness, got {rule!r}")


def duration(master: bytes, speeds: Sequence[float], jitter: float, k: int, job: int) -> float:
    """Simulated seconds of client ``k``'s ``job``-th local training (the same in every mode)."""
    if jitter == 0:
        return float(speeds[k])
    u = float(uniform01(PRG(derive_seed(master, f"speed/{k}", job)), 1)[0])
    return float(speeds[k]) * (1.0 + jitter * (2.0 * u - 1.0))


@dataclass
class _Job:
    """A client's training in flight: when it started, from which model version, what it will send."""

    client: int
    version: int
    delta: np.ndarray
    n: int


def _check(n: int, k: int, concurrency: int, speeds: Sequence[float], jitter: float) -> None:
    if not 1 <= concurrency <= n:
        raise ParameterError(f"concurrency must be in [1, {n}] (the clients), got {concurrency}")
    if not 1 <= k <= n:
        raise ParameterError(f"buffer_size must be in [1, {n}] (the clients), got {k}")
    if len(speeds) != n or not all(s > 0 and math.isfinite(s) for s in speeds):
        raise ParameterError(f"speeds needs one positive duration per client ({n}), got {len(speeds)}")
    if not 0 <= jitter < 1:
        raise ParameterError(f"jitter must be in [0, 1), got {jitter}")


class _Run:
    """The event loop of one asynchronous run (see the module docstring)."""

    def __init__(self, plan: Plan, state: RunState, speeds: Sequence[float], jitter: float,
                 concurrency: int, weigh: Staleness) -> None:
        self.plan, self.state, self.speeds, self.jitter, self.weigh = plan, state, speeds, jitter, weigh
        self.version = 0
        self.jobs = [0] * plan.n_clients
        self.events: list[tuple[float, int, int, Any]] = []
        self.seq = itertools.count()
        self.prg = PRG(derive_seed(plan.master, "async", 0))
        self.drop_prg = PRG(derive_seed(plan.master, "async/dropout", 0))
        self.idle = set(range(plan.n_clients))
        first = range(plan.n_clients) if concurrency == plan.n_clients else \
            sorted(int(k) for k in np.argsort(self.prg.uint64(plan.n_clients), kind="stable")[:concurrency])
        for k in first:
            self._start(k, 0.0)

    def _start(self, k: int, t: float) -> None:
        """Client ``k`` takes the current model and trains (computed now: it sees nothing later)."""
        self.idle.discard(k)
        self.jobs[k] += 1
        job = self.jobs[k]
        delta, n = fit_update(self.state.clients[k], self.state.weights, self.state.shapes,
                              fit_config(self.plan, k, job), f"client {k} (job {job})",
                              self.plan.cap if self.plan.check_counts else None)
        delta, _ = clip_by_l2_norm(delta, self.plan.settings.update_clip)
        end = t + duration(self.plan.master, self.speeds, self.jitter, k, job)
        heapq.heappush(self.events, (end, 0, next(self.seq), _Job(k, self.version, delta, n)))

    def _restart(self, done: int) -> int:
        """Who starts when ``done`` finishes: itself at full concurrency, else a uniform idle client."""
        self.idle.add(done)
        pool = sorted(self.idle)
        k = done if len(pool) == 1 else pool[int(self.prg.uint64(1)[0] % np.uint64(len(pool)))]
        self.idle.discard(k)          # taken now, so a second restart at the same time picks another
        return k

    def next_buffer(self) -> tuple[float, list[_Job], list[int]]:
        """Run the clock until K uploads are in; the time, the jobs and their staleness."""
        buffer: list[_Job] = []
        while len(buffer) < self.plan.per_round:
            t, kind, _, item = heapq.heappop(self.events)
            if kind == 1:
                self._start(item, t)
                continue
            buffer.append(item)
            heapq.heappush(self.events, (t, 1, next(self.seq), self._restart(item.client)))
        return t, buffer, [self.version - j.version for j in buffer]

    def step(self, r: int) -> tuple[RoundMetrics, AggregationResult | None]:
        """Server step ``r``: one buffer through the aggregator, the model updated and scored."""
        t0 = time.perf_counter()
        now, buffer, taus = self.next_buffer()
        weights = [self.weigh(tau) for tau in taus]
        if not all(0 < w <= 1 for w in weights):
            raise ParameterError(f"staleness weights must lie in (0, 1]; got {weights} for staleness {taus}")
        vectors = client_uploads({i: w * j.delta for i, (w, j) in enumerate(zip(weights, buffer))},
                                 {i: j.n for i, j in enumerate(buffer)}, self.plan.cap, None, None,
                                 self.plan.noise_prg)
        p = self.plan.settings.dropout
        drops = {i for i, u in enumerate(self.drop_prg.uint64(len(buffer))) if p and u < p * 2.0 ** 64}
        res, note = aggregate(self.plan, vectors, list(range(len(buffer))), drops)
        if res is not None:            # a skipped step leaves the model (and its version) as it was
            apply_result(self.plan, self.state, res)
            self.version += 1
        metrics = round_metrics(self.plan, self.state, r, res, note, t0)
        return replace(metrics, sim_seconds=now, staleness=taus,
                       buffer_clients=[j.client for j in buffer]), res


def train_async(model: Model | ClientFactory, clients: Sequence[ClientOrData], test: ClientOrData, *,
                aggregator: str | Aggregator = "plaintext", rounds: int = 10,
                buffer_size: int | None = None, concurrency: int | None = None,
                speeds: Sequence[float] | None = None, jitter: float = 0.0,
                staleness: str | Staleness = "sqrt", local_epochs: int = 1, batch_size: int = 32,
                lr: float = 0.1, server_lr: float = 1.0, mu: float = 0.0, dropout: float = 0.0,
                update_clip: float = 10.0,
                weight_cap: int | None = None, seed: int = 0, progress: bool = True,
                aggregator_options: dict[str, Any] | None = None, label: str | None = None,
                on_round: Callable[[RoundMetrics, AggregationResult | None], None] | None = None
                ) -> History:
    """Train by buffered asynchronous aggregation (FedBuff); return the :class:`History`.

    ``rounds`` is the number of server steps (buffers aggregated). Each
    :class:`RoundMetrics` has ``sim_seconds`` (simulated time of the step),
    ``staleness`` and ``buffer_clients`` (per buffer slot). The other parameters
    are those of :func:`~ml.federated.train`, plus:

    buffer_size:
        K, the uploads per server step (default: every client); at least the
        aggregator's ``min_survivors`` (2 for SecAgg).
    concurrency:
        How many clients train at once (default: every client).
    speeds:
        Simulated seconds of one local training per client (default 1 each).
    jitter:
        Each job's duration is its client's speed times a factor uniform in
        ``[1 - jitter, 1 + jitter]`` drawn from the seed.
    staleness:
        ``"sqrt"`` (1/sqrt(1+tau)), ``"none"`` or a function tau -> (0, 1].
    dropout:
        Probability that a buffered upload's client drops out during the secure
        sum; the step uses the survivors (a step the aggregator cannot finish is
        skipped: the model and its version stay, the uploads are lost).
    """
    n = len(clients)
    k = n if buffer_size is None else buffer_size
    c = n if concurrency is None else concurrency
    speeds = [1.0] * n if speeds is None else list(speeds)
    _check(n, k, c, speeds, jitter)
    weigh = staleness_weight(staleness)
    settings = Settings(rounds, k, local_epochs, batch_size, lr, server_lr, mu, dropout, None, None,
                        update_clip, weight_cap, seed)
    built, evaluator, sizes = build_clients(model, clients, test)
    start = evaluator.get_weights()
    plan = make_plan(settings, sizes, int(flatten(start).size), aggregator, aggregator_options, label)
    plan.config.update(mode="fedbuff", buffer_size=k, concurrency=c, jitter=jitter,
                       staleness=staleness if isinstance(staleness, str) else "custom")
    plan.config.pop("clients_per_round", None)
    state = RunState(flatten(start), [tuple(np.shape(w)) for w in start], built, evaluator, None)
    history = History(plan.aggregator.name, plan.config, initial=evaluate(state, 0))
    run = _Run(plan, state, speeds, jitter, c, weigh)
    bar = progress_bar(rounds, label or f"fedbuff/{plan.aggregator.name}", progress)
    try:
        for r in bar:
            record_round(history, bar, *run.step(r), on_round)
    finally:
        bar.close()
    history.weights = unflatten(state.weights, state.shapes)
    if isinstance(model, Model):
        model.set_params(state.weights)
    return history


def synchronous_clock(history: History, speeds: Sequence[float], jitter: float = 0.0) -> History:
    """Put a simulated clock on a synchronous run of every client per round (``train`` with
    ``clients_per_round=None``): round r lasts as long as its slowest client's r-th job,
    with the durations :func:`train_async` would draw for the same seed. Returns ``history``."""
    if history.config.get("clients_per_round") != len(speeds):
        raise ParameterError("synchronous_clock needs a run in which every client trains every round "
                             f"({len(speeds)} speeds, clients_per_round="
                             f"{history.config.get('clients_per_round')})")
    master = derive_seed(b"concilium.ml.federated", "seed", int(history.config["seed"]) % (1 << 64))
    now = 0.0
    for m in history.rounds:
        now += max(duration(master, speeds, jitter, k, m.round) for k in range(len(speeds)))
        m.sim_seconds = now
    return history


def time_to_accuracy(history: History, target: float) -> float:
    """Simulated seconds of the first step reaching ``target`` accuracy (inf if none does)."""
    for m in history.rounds:
        if m.sim_seconds is None:
            raise ParameterError(f"round {m.round} has no simulated time (use train_async or synchronous_clock)")
        if m.accuracy >= target:
            return m.sim_seconds
    return math.inf


__all__ = ["duration", "staleness_weight", "synchronous_clock", "time_to_accuracy", "train_async"]
