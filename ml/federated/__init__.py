"""Federated training: FedAvg and FedProx over a pluggable secure aggregator, with DP (layer: ml).

:func:`train` runs the whole simulation in one process, driving every client
through the client interface of :mod:`ml.clients` (built-in numpy models,
scikit-learn, PyTorch or any object with its four methods):

1. **Sample** ``clients_per_round`` clients uniformly without replacement, or
   by a ``selection`` (availability-aware, power-of-choice:
   :mod:`.selection`).
2. **Local training**: each sampled client gets the global weights
   (``set_weights``) and trains (``fit``); the built-in models run
   ``local_epochs`` epochs of mini-batch SGD on their own data (with ``mu > 0``
   the FedProx proximal term ``mu/2 ||w - w_global||^2``; Li et al. 2020).
3. **Upload**: the client's update ``delta_k = w_k - w_global`` is sent as
   ``[p_k * delta_k, p_k]`` with ``p_k = n_k / weight_cap`` (its example count
   over a public cap), so the weights travel inside the secure sum and the
   server never learns one client's count. Optional: L2 clipping and DP noise
   (:class:`DPConfig`), compression with error feedback (plaintext only).
4. **Dropouts**: each sampled client drops out mid-protocol with probability
   ``dropout``; the aggregator sums the survivors. A round whose aggregation
   aborts (too few survivors) leaves the model unchanged and training goes on.
5. **Server update**: ``w_global += server_lr * sum_k p_k delta_k / sum_k p_k``
   (FedAvg, McMahan et al. 2017; server learning rate as in Reddi et al. 2021).
6. **Metrics**: loss and accuracy on the held-out set (the server's evaluator
   client), bytes per client, time, epsilon so far, in a :class:`History`
   (JSON, PNG plot).

Modules: :mod:`.plan` (validation, weight cap, DP plan, seeds), :mod:`.rounds`
(one round), :mod:`.loop` (:func:`train`), :mod:`.privacy` (DP),
:mod:`.history` and :mod:`.plot` (the record; matplotlib only when plotting),
:mod:`.progress`; :mod:`.fedbuff` (:func:`train_async`, buffered asynchronous
aggregation on a simulated clock), :mod:`.personal` (FedPer and Ditto clients,
per-client accuracy); across processes and machines, :mod:`.network` (the config
file and links), :mod:`.server` (:func:`serve`), :mod:`.client`
(:func:`run_client`) and :mod:`.cli` (``mpc fl server`` / ``mpc fl client``),
the same rounds with the clients as separate processes over pinned TLS 1.3.

Sampling, batch order and dropout simulation come from :mod:`mpc.rand` seeded by
``seed``, so two runs with the same seed and different aggregators see the same
clients, batches and dropouts: their accuracy differs only by the aggregators'
numerical error. DP noise is drawn from fresh OS randomness unless
``DPConfig.noise_seed`` is given (tests only).

Security
--------
With a secure aggregator the server learns, per round, which clients took
part, the sum of their weighted updates and the sum of their weights, and
nothing else (see each aggregator's threat model). With ``DPConfig("central")``
the server adds N(0, (z C)^2) to that sum itself, so it must be trusted to do
so (it sees the exact sum); with ``"distributed"`` each client adds discrete
Gaussian noise before the secure sum, so nobody sees a less noisy value. The
reported ``epsilon`` of central DP includes the amplification by sampling m of
the n clients uniformly without replacement (Wang, Balle, Kasiviswanathan
2019, the bound for this kind of sampling, not Poisson's): it holds for whoever
sees the models but not which clients were sampled. The server draws the
sample, so towards it only ``epsilon_unamplified`` (also recorded) holds.
Distributed noise is accounted without amplification (conservative). Distributed noise is accounted with the round's actual number
of surviving (noise-adding) clients.
"""

from __future__ import annotations

from ..clients.base import Dataset
from ..clients.numpy_model import local_train
from .history import History, RoundMetrics
from .client import ClientReport, run_client
from .fedbuff import synchronous_clock, time_to_accuracy, train_async
from .personal import DittoClient, FedPerClient, PersonalMetrics, personal_accuracy
from .loop import train
from .network import FLConfig
from .network import load as load_config
from .privacy import MAX_DELTA, MAX_EPSILON, DPConfig, planned_survivors
from .selection import AvailabilitySampler, PowerOfChoice
from .server import ServeResult, serve

__all__ = ["MAX_DELTA", "MAX_EPSILON", "AvailabilitySampler", "ClientReport", "DPConfig", "Dataset",
           "DittoClient", "FLConfig", "FedPerClient", "History", "PersonalMetrics", "PowerOfChoice", "RoundMetrics", "ServeResult", "load_config", "local_train", "personal_accuracy", "planned_survivors",
           "run_client", "serve", "synchronous_clock", "time_to_accuracy", "train",
           "train_async"]
