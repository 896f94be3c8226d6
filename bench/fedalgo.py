"""Federated algorithms beyond FedAvg: robustness, compression under SecAgg, asynchrony, personalization, client selection, transfer learning.

Name: ``fedalgo``; ``params.experiment`` says which:

* ``robust``: scikit-learn's digits, softmax regression (651 summed entries),
  IID over 20 clients (10 with ``--quick``), 10% of them malicious: they train
  honestly and send -20 times their update. Per aggregator (plain FedAvg,
  coordinate-wise median, trimmed mean 20%, Krum, multi-Krum, the two-server
  norm-checked aggregator) one record: ``accuracy`` after the rounds,
  ``clean_accuracy`` (FedAvg without attack, same run), ``seconds`` (median
  round), ``bytes_per_party`` (one client's bytes a round), ``accepted`` (the
  two-server aggregator: fewest clients accepted in a round). The two-server
  norm bound is 3 times the largest honest update norm of a clean first
  round (a public calibration).
* ``compression``: the same task, 10 clients, no attack; SecAgg dense
  (fixed point, 32-bit ring), quantized to 8 and 4 bits per value (packed,
  :mod:`ml.secure_compression`), and 8 bits with 25% shared-seed random
  sparsification. Per variant: ``accuracy``, ``bytes_per_party`` (one
  client's SecAgg bytes sent and received plus the model), ``masked_bytes``
  (its masked input alone, the part compression shrinks), ``seconds``.
* ``async``: digits IID over 20 clients (10 with ``--quick``) whose local
  training takes 1 + 9 (k / (n - 1))^2 simulated seconds (a tail of slow
  clients; each job jittered by up to 20%), SecAgg+ in both: synchronous
  FedAvg (every client every round, a round lasts as long as its slowest
  client) vs FedBuff (buffers of K = 5, staleness weight 1/sqrt(1 + tau), and
  without staleness weighting). Per method: ``seconds`` the simulated time to
  reach ``target`` accuracy (0.9; ``--quick`` 0.85; None if never reached),
  ``baseline_seconds`` FedAvg's, ``accuracy`` at the end, ``sim_seconds``
  simulated time of the whole run, ``steps`` server steps, ``wall_seconds``
  (median real seconds per step) and ``bytes_per_party`` (one client, one
  step).
* ``personal``: digits over 10 clients (Dirichlet 0.1, non-IID), a quarter
  of each client's data kept as its local test set, MLP 64-32-10, SecAgg+,
  every client every round, 10 rounds (``--quick``: 3): one global model
  (FedAvg), FedPer (output layer local), Ditto (lam 0.1) and local training
  alone (Ditto's personal models at lam 0). Per method: ``accuracy`` the mean
  over clients of their personal model's accuracy on their own test set,
  ``worst_accuracy`` the worst client's, ``seconds`` (median round).
* ``selection``: digits over 30 clients (Dirichlet 0.1, non-IID), 3 a round;
  uniform sampling vs power-of-choice with 9 candidates, without and with
  DP (loss_epsilon 1) on the reported losses. Per rule: ``accuracy`` after 10
  rounds (mean of 3 seeds; ``--quick``: 5 rounds, 1 seed), ``seconds``.
* ``ftl``: federated transfer learning (:mod:`ml.vertical.ftl`) on two views of
  breast cancer (host 250 labelled rows, guest 369 rows with 6 labels, 50 in
  common). ``method`` ``guest-alone`` (logistic regression on the guest's 6
  labels) and ``ftl-paillier`` (30 steps, 2048-bit keys; ``--quick``: 5 steps,
  512-bit test keys): ``accuracy`` on the guest's 313 other rows; for FTL also
  ``seconds`` (whole run), ``bytes_per_party`` (mean bytes sent), ``rounds``.
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits

from bench.common import record
from ml.clients import NumpyClient
from ml.data import partition_iid, split_clients, standardize, train_test_split
from ml.data import partition_dirichlet
from ml.federated import DittoClient, FedPerClient, History, PowerOfChoice, personal_accuracy, synchronous_clock, time_to_accuracy, train, train_async
from ml.federated.personal import global_accuracy, split_local
from ml.models import MLP, SoftmaxRegression
from ml.robust_aggregators import ScaledUpdateClient
from ml.secure_compression import CompressedSecAggAggregator
from mpc import TrustedDealerWarning

SCALE = -20.0


def _task(n_clients: int):
    X, y = load_digits(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    return split_clients(Xtr, ytr, partition_iid(ytr.size, n_clients, seed=0)), (Xte, yte)


def _train(data, test, aggregator, options: dict, rounds: int, poisoned: int = 0,
           on_round=None) -> History:
    clients = [NumpyClient(SoftmaxRegression(test[0].shape[1], 10), d) for d in data]
    for k in range(poisoned):
        clients[k] = ScaledUpdateClient(clients[k], SCALE)  # type: ignore[call-overload]
    return train(SoftmaxRegression(test[0].shape[1], 10), clients, test, aggregator=aggregator,
                 aggregator_options=options, rounds=rounds, local_epochs=1, batch_size=16, lr=0.1,
                 seed=11, progress=False, on_round=on_round)


def _honest_norm_bound(data, test) -> float:
    """3 x the largest weighted update norm of a clean first round (read in plaintext, once)."""
    seen: list[float] = []

    def look(_metrics, res) -> None:
        if res is not None:
            seen.extend(float(np.linalg.norm(v[:-1])) for v in res.server_state["received"].values())

    _train(data, test, "plaintext", {}, 1, on_round=look)
    return 3.0 * max(seen)


def _seconds(h: History) -> float:
    return statistics.median(r.seconds for r in h.rounds)


def bench_robust(quick: bool) -> list[dict]:
    n, rounds = (10, 3) if quick else (20, 10)
    poisoned = max(1, n // 10)
    data, test = _task(n)
    clean = _train(data, test, "plaintext", {}, rounds)
    bound = _honest_norm_bound(data, test)
    out = []
    for name, options in [("plaintext", {}), ("median", {}), ("trimmed_mean", {"trim": 0.2}),
                          ("krum", {}), ("multi_krum", {}), ("twoserver", {"norm_bound": bound})]:
        h = _train(data, test, name, options, rounds, poisoned)
        params = {"experiment": "robust", "aggregator": name, "clients": n, "poisoned": poisoned,
                  "scale": SCALE, "rounds": rounds}
        extra = {"accepted": min(r.survivors for r in h.rounds), "norm_bound": bound} \
            if name == "twoserver" else {}
        out.append(record("fedalgo", params, _seconds(h), _seconds(clean),
                          bytes_per_party=float(np.mean([r.bytes_per_client for r in h.rounds])),
                          accuracy=h.final_accuracy, clean_accuracy=clean.final_accuracy, **extra))
    return out


def bench_compression(quick: bool) -> list[dict]:
    n, rounds = 10, (2 if quick else 8)
    data, test = _task(n)
    out, base = [], None
    variants = [("dense", None, None), ("quantized-8bit", 8, None), ("quantized-4bit", 4, None),
                ("sparse25-8bit", 8, 0.25)]
    for label, bits, keep in variants:
        agg = CompressedSecAggAggregator(bits=bits, clip=0.5, keep=keep)
        masked: list[float] = []
        h = _train(data, test, agg, {}, rounds,
                   on_round=lambda _m, res: masked.append(res.server_state["masked_bytes_per_client"])
                   if res is not None else None)
        base = base if base is not None else _seconds(h)
        out.append(record("fedalgo", {"experiment": "compression", "variant": label, "bits": bits,
                                      "keep": keep, "clients": n, "rounds": rounds},
                          _seconds(h), base,
                          bytes_per_party=float(np.mean([r.bytes_per_client for r in h.rounds])),
                          masked_bytes=float(np.mean(masked)), accuracy=h.final_accuracy))
    return out


def bench_selection(quick: bool) -> list[dict]:
    X, y = load_digits(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    data = split_clients(Xtr, ytr, partition_dirichlet(ytr, 30, alpha=0.1, seed=0))
    rounds, seeds = (5, 1) if quick else (10, 3)
    out, base = [], None
    for label, sel in [("uniform", None), ("power-of-choice", PowerOfChoice(9)),
                       ("power-of-choice-dp", PowerOfChoice(9, loss_epsilon=1.0))]:
        runs = [train(SoftmaxRegression(64, 10), data, (Xte, yte), rounds=rounds, clients_per_round=3,
                      lr=0.05, seed=s, progress=False, selection=sel) for s in range(seeds)]
        secs = statistics.median(_seconds(h) for h in runs)
        base = base if base is not None else secs
        out.append(record("fedalgo", {"experiment": "selection", "rule": label, "clients": 30,
                                      "per_round": 3, "rounds": rounds, "seeds": seeds},
                          secs, base, accuracy=float(np.mean([h.final_accuracy for h in runs]))))
    return out


def bench_ftl(quick: bool) -> list[dict]:
    """Federated transfer learning (:mod:`ml.vertical.ftl`) on the breast-cancer transfer split."""
    import mpc
    from ml.vertical import ftl

    bits, steps = (512, 5) if quick else (2048, 30)
    s = ftl.breast_cancer_split(0)
    inputs = [(s.XA, s.overlap_a, s.yA), (s.XB, s.overlap_b, None)]
    t0 = time.perf_counter()
    res = mpc.run(lambda party, d: ftl.fit_ftl(party, *d, steps=steps, seed=0, key_bits=bits,
                                                insecure_for_testing=quick),
                  parties=2, inputs=inputs, preprocessing=None, timeout=3600)
    secs = time.perf_counter() - t0
    sent = [sum(r.wire_bytes for r in res.cost.messages if r.sender == p) for p in (0, 1)]
    params = {"experiment": "ftl", "host_rows": len(s.XA), "guest_rows": len(s.XB),
              "common": len(s.overlap_a), "guest_labels": len(s.labeled), "test_rows": len(s.test)}
    acc = float(np.mean(res.outputs[1].predict(s.XB[s.test]) == s.yB[s.test]))
    return [record("fedalgo", {**params, "method": "guest-alone"}, None, accuracy=ftl.guest_alone_accuracy(s)),
            record("fedalgo", {**params, "method": "ftl-paillier", "key_bits": bits, "steps": steps}, secs,
                   bytes_per_party=float(np.mean(sent)), rounds=res.cost.phase_rounds["ftl/train"],
                   accuracy=acc)]


def bench_async(quick: bool) -> list[dict]:
    n, sync_rounds, steps, target = (10, 4, 20, 0.85) if quick else (20, 8, 60, 0.9)
    data, test = _task(n)
    speeds = [1.0 + 9.0 * (k / (n - 1)) ** 2 for k in range(n)]
    kw = dict(aggregator="secagg+", lr=0.1, batch_size=16, local_epochs=2, seed=11, progress=False)
    runs = [("fedavg", synchronous_clock(train(SoftmaxRegression(64, 10), data, test, rounds=sync_rounds,
                                               **kw), speeds, 0.2))]
    for label, rule in [("fedbuff", "sqrt"), ("fedbuff-unweighted", "none")]:
        runs.append((label, train_async(SoftmaxRegression(64, 10), data, test, rounds=steps, buffer_size=5,
                                        speeds=speeds, jitter=0.2, staleness=rule, **kw)))
    reach = {label: time_to_accuracy(h, target) for label, h in runs}
    out = []
    for label, h in runs:
        out.append(record("fedalgo", {"experiment": "async", "method": label, "clients": n,
                                      "buffer_size": n if label == "fedavg" else 5, "target": target,
                                      "aggregator": "secagg+"},
                          None if reach[label] == float("inf") else reach[label],
                          None if reach["fedavg"] == float("inf") else reach["fedavg"],
                          bytes_per_party=float(np.mean([r.bytes_per_client for r in h.rounds])),
                          rounds=len(h.rounds), accuracy=h.final_accuracy,
                          sim_seconds=h.rounds[-1].sim_seconds, steps=len(h.rounds),
                          wall_seconds=_seconds(h)))
    return out


def bench_personal(quick: bool) -> list[dict]:
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    trains, tests = split_local(split_clients(X, y, partition_dirichlet(y, 10, alpha=0.1, seed=0)), 0.25)
    pooled = (np.concatenate([t[0] for t in tests]), np.concatenate([t[1] for t in tests]))
    rounds = 3 if quick else 10

    def mlp():
        return MLP(64, 10, hidden=(32,), seed=0)

    kw = dict(aggregator="secagg+", rounds=rounds, lr=0.1, local_epochs=2, batch_size=16, seed=1,
              progress=False)
    out, base = [], None
    for label in ("fedavg", "fedper", "ditto", "local"):
        if label == "fedavg":
            h = train(mlp(), trains, pooled, **kw)
            m = global_accuracy(mlp(), tests, h.weights)
        else:
            clients = [FedPerClient(mlp(), d, t) if label == "fedper" else
                       DittoClient(mlp(), d, t, lam=0.1 if label == "ditto" else 0.0)
                       for d, t in zip(trains, tests)]
            h = train(mlp(), clients, pooled, **kw)
            m = personal_accuracy(clients, h.weights)
        base = base if base is not None else _seconds(h)
        out.append(record("fedalgo", {"experiment": "personal", "method": label, "clients": 10,
                                      "alpha": 0.1, "aggregator": "secagg+"},
                          _seconds(h), base, rounds=rounds,
                          bytes_per_party=float(np.mean([r.bytes_per_client for r in h.rounds])),
                          accuracy=m.mean, worst_accuracy=m.worst,
                          per_client=[round(a, 4) for a in m.accuracy]))
    return out


def bench_fedalgo(quick: bool) -> list[dict]:
    """Accuracy under 10% poisoning per robust aggregator; SecAgg bytes and accuracy, dense vs
    quantized vs sparsified; client selection; FedBuff vs FedAvg in simulated time to accuracy;
    personalization; federated transfer learning (guest alone vs FTL)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        return bench_robust(quick) + bench_compression(quick) + bench_selection(quick) \
            + bench_async(quick) + bench_personal(quick) + bench_ftl(quick)


BENCHMARKS = {"fedalgo": bench_fedalgo}
