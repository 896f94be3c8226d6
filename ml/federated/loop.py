"""``train``: federated training in one process, over clients of any framework (layer: ml).

:func:`train` builds a client per data partition (the numpy adapter for a
built-in model, else the given factory), plans the run (:mod:`.plan`), runs
its rounds (:mod:`.rounds`) and records them in a :class:`~.history.History`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import numpy as np

from mpc.backend import Ray, peak_mb, resolve
from mpc.dp import PrivacyAccountant
from mpc.errors import ParameterError

from ..aggregators import AggregationResult, Aggregator
from ..clients.base import Client, ClientFactory, Dataset, flatten, unflatten
from ..clients.numpy_model import NumpyClient
from ..compression import Compressor
from ..models import Model
from .history import History, RoundMetrics
from .plan import Settings, make_plan
from .privacy import DPConfig
from .progress import progress_bar
from .rounds import RunState, evaluate, run_round

ClientOrData = Union[Client, Dataset]


def _is_client(x: object) -> bool:
    return isinstance(x, Client)


def build_clients(model: Model | ClientFactory, clients: Sequence[ClientOrData],
                  test: ClientOrData) -> tuple[list[Client], Client, list[int | None]]:
    """The clients, the server's evaluator and the clients' example counts (None if unknown).

    A data set becomes a client through ``model``: a copy of the built-in model
    behind :class:`~ml.clients.NumpyClient` (the evaluator holds ``model``
    itself, so it is trained in place), or ``model(data)`` for a factory.
    """
    factory: Callable[[Dataset], Client]
    evaluator: Any
    if isinstance(model, Model):
        base = model

        def factory(data: Dataset) -> Client:
            return NumpyClient(base.copy(), data)
        evaluator = test if _is_client(test) else NumpyClient(model, test)  # type: ignore[arg-type]
    elif callable(model):
        factory = model
        evaluator = test if _is_client(test) else model(test)  # type: ignore[arg-type]
    else:
        raise ParameterError(f"model must be an ml.models.Model or a client factory "
                             f"(data -> client), got {type(model).__name__}")
    built: list[Client] = []
    sizes: list[int | None] = []
    for k, c in enumerate(clients):
        if _is_client(c):
            built.append(c)  # type: ignore[arg-type]
            n = getattr(c, "n_examples", None)
            sizes.append(None if n is None else int(n))
        else:
            X, y = c  # type: ignore[misc]
            built.append(factory((X, y)))
            sizes.append(int(np.shape(X)[0]))
    return built, evaluator, sizes


def train(model: Model | ClientFactory, clients: Sequence[ClientOrData], test: ClientOrData, *,
          aggregator: str | Aggregator = "plaintext", rounds: int = 10,
          clients_per_round: int | None = None, local_epochs: int = 1, batch_size: int = 32,
          lr: float = 0.1, server_lr: float = 1.0, mu: float = 0.0, dropout: float = 0.0,
          dp: DPConfig | None = None, compression: Compressor | None = None,
          update_clip: float = 10.0, weight_cap: int | None = None, seed: int = 0,
          progress: bool = True, aggregator_options: dict[str, Any] | None = None,
          label: str | None = None,
          on_round: Callable[[RoundMetrics, AggregationResult | None], None] | None = None,
          backend: str | Ray = "local",
          selection: Any = None) -> History:
    """Train by federated averaging; return the :class:`History`.

    Parameters
    ----------
    model:
        A built-in :class:`~ml.models.Model` (the initial global model, updated in
        place), or a client factory ``data -> client`` (:mod:`ml.clients`) that
        builds the server's evaluator on ``test`` and a client per data set.
    clients:
        One (X, y) per client (the data never leaves its client's code), or
        ready clients (any object with the :class:`~ml.clients.Client` methods).
    test:
        Held-out (X, y), or a client on it, evaluated by the server after every
        round; the run starts from this evaluator's weights.
    aggregator:
        ``"plaintext"``, ``"secagg"``, ``"secagg+"``, ``"ckks"``, ``"paillier"``
        or an :class:`~ml.aggregators.Aggregator` instance.
    local_epochs, batch_size, lr, mu:
        Passed to every client's ``fit`` (``mu``: FedProx proximal coefficient; 0: FedAvg).
    dropout:
        Probability that a sampled client drops out after local training.
    update_clip:
        Without DP, updates are clipped to this L2 norm (a public encoding range
        for the secure sum; generous so it rarely binds).
    weight_cap:
        Public upper bound on a client's example count (default: the largest
        client's count), so that weights p_k = n_k / weight_cap lie in (0, 1].
        The secure aggregators have a fixed absolute precision (2^-20 to 2^-25),
        so a cap far above the clients' counts costs accuracy (warned above 64x).
        Needed for a ready client without an ``n_examples`` attribute.
    progress:
        A progress bar on stderr, one line left when training ends: tqdm's with the
        ``progress`` extra (``pip install 'concilium[progress]'``), else a plain
        ``label: round r/R acc=...`` line. ``False`` prints nothing and imports no tqdm.
    aggregator_options:
        Keyword arguments of the aggregator chosen by name.
    on_round:
        Called after every round with its metrics and aggregation result (None
        for a skipped round), e.g. to narrate what the server received.
    backend:
        Where the clients train: ``"local"`` (this process) or ``"ray"`` /
        :class:`mpc.backend.Ray` ``(address=..., cpus=...)``: the clients move
        into Ray actors for the run (:mod:`.on_ray`); the same history for the
        same seed, and their trained state (personal models) is copied back
        into the client objects at the end. A client whose worker dies is a
        dropout (and keeps its state from before the run).
    selection:
        How each round's clients are chosen: ``None`` (uniform, without
        replacement), :class:`~ml.federated.selection.AvailabilitySampler` or
        :class:`~ml.federated.selection.PowerOfChoice` (see
        :mod:`ml.federated.selection`, and what the server learns there).
    """
    settings = Settings(rounds, clients_per_round, local_epochs, batch_size, lr, server_lr, mu,
                        dropout, dp, compression, update_clip, weight_cap, seed, selection)
    built, evaluator, sizes = build_clients(model, clients, test)
    start = evaluator.get_weights()
    plan = make_plan(settings, sizes, int(flatten(start).size), aggregator, aggregator_options,
                     label)
    state = RunState(flatten(start), [tuple(np.shape(w)) for w in start], built, evaluator,
                     PrivacyAccountant() if dp is not None else None)
    history = History(plan.aggregator.name, plan.config, initial=evaluate(state, 0))
    options = resolve(backend)
    fitter = None
    if options is not None:
        from .on_ray import RayFitter
        fitter = RayFitter(options, built)
    bar = progress_bar(rounds, label or plan.aggregator.name, progress)
    try:
        for r in bar:
            record_round(history, bar, *run_round(plan, state, r, fitter), on_round)
        history.memory = {"driver_mb": peak_mb()}
        if fitter is not None:
            history.memory["worker_mb"] = fitter.peak_mb()
            fitter.sync(built)          # trained client state (personal models) back here
    finally:
        bar.close()
        if fitter is not None:
            fitter.close()
    history.weights = unflatten(state.weights, state.shapes)
    if isinstance(model, Model):
        model.set_params(state.weights)
    return history


def record_round(history: History, bar: Any, metrics: RoundMetrics, res: AggregationResult | None,
                 on_round: Callable[[RoundMetrics, AggregationResult | None], None] | None) -> None:
    """Append a finished round (or server step) to ``history``, call ``on_round``, show its accuracy."""
    if res is not None:
        history.last_result = res
    history.rounds.append(metrics)
    if on_round is not None:
        on_round(metrics, res)
    bar.set_postfix(acc=f"{metrics.accuracy:.3f}")


__all__ = ["build_clients", "record_round", "train"]
