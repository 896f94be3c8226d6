"""DH-PSI and vertical logistic regression, 2 parties in one process.

Names:

* ``psi`` -- :func:`protocols.psi.psi` on random int64 sets of ``n`` items per
  side with ``overlap`` (the fraction of common items), ``protocol`` ``dh``
  (10^3 to 10^5) or ``oprf`` (KKRT16 OT-based, 10^3 to 10^6); the baseline is
  ``numpy.intersect1d`` on the same sets; ``oprf`` records also carry
  ``dh_seconds`` and ``speedup_vs_dh`` (the DH record of the same ``n`` and
  overlap in the same run; None at 10^6, where DH is not run). Extra fields:
  ``exact`` (output equals the true intersection), ``hash_blind_seconds``
  (the slower party's hashing and first blinding), ``workers``,
  ``cpu_seconds`` (CPU time of both parties, all threads), ``cores_used``
  (``cpu_seconds / seconds``: 2 when both cores are busy all along) and
  ``load_average`` (1-minute, at the end: other jobs on the machine inflate
  ``seconds``).
* ``vertical_lr`` (run as ``vertical``) -- :mod:`ml.vertical` on scikit-learn's
  breast cancer set split by columns (15 + 15) between 2 parties, 80/20
  split; ``method`` is ``ss`` (secret sharing, full-batch: an epoch is one
  iteration, 300 of them; trusted dealer) or ``paillier`` (encrypted
  gradients, 2048-bit keys, mini-batches of 64, 20 epochs, piecewise sigmoid
  on shares with OT preprocessing: no third party). ``seconds`` is the time
  per epoch, the baseline the same epoch in plaintext numpy; bytes and
  rounds are per epoch. Extra: ``accuracy`` on the test rows,
  ``centralized_accuracy`` (scikit-learn on all columns, same split),
  ``epochs``, ``train_seconds``, ``dealer_bytes`` (sent by the dealer) and
  ``offline_bytes_per_party`` / ``offline_rounds`` (OT preprocessing made on
  demand during training, per epoch; included in ``seconds``).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Literal

import numpy as np

import mpc
from bench.common import median_time, record
from ml import vertical
from protocols.psi import psi


def _sets(n: int, overlap: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    common = int(round(overlap * n))
    pool = rng.choice(2**62, 2 * n - common, replace=False).astype(np.int64)
    x = pool[:n]
    y = np.concatenate([x[:common], pool[n:]])
    return rng.permutation(x), rng.permutation(y)


def _psi_record(n: int, overlap: float, repeat: int, protocol: Literal["dh", "oprf"] = "dh") -> dict:
    x, y = _sets(n, overlap, seed=n + int(100 * overlap))
    base, _, want = median_time(lambda: np.intersect1d(x, y), repeat=max(repeat, 5))
    times, cpu, runs = [], [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        res = mpc.run(lambda party, items: psi(party, items, protocol=protocol), parties=2, inputs=[x, y],
                      preprocessing=None, timeout=600)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        runs.append(res)
    res = runs[-1]
    k = int(np.argsort(times)[len(times) // 2])      # the median run
    return record("psi", {"protocol": protocol, "n": n, "overlap": overlap}, float(np.median(times)), base,
                  bytes_per_party=res.cost.bytes_per_party(), rounds=res.cost.rounds,
                  exact=bool(np.array_equal(res.outputs[0], want)),
                  hash_blind_seconds=res.cost.phase_seconds.get("psi/blind", 0.0),
                  phase_seconds={k: v for k, v in res.cost.phase_seconds.items() if k.startswith("psi/")},
                  bytes_sent={str(k): v for k, v in res.cost.bytes_sent.items() if k >= 0},
                  workers="all cores", cpu_seconds=cpu[k], cores_used=cpu[k] / times[k],
                  load_average=os.getloadavg()[0])


def _with_dh(oprf: list[dict], dh: list[dict]) -> list[dict]:
    """Add the DH record of the same (n, overlap) to each OPRF record."""
    by = {(r["params"]["n"], r["params"]["overlap"]): r["seconds"] for r in dh}
    for r in oprf:
        d = by.get((r["params"]["n"], r["params"]["overlap"]))
        r["dh_seconds"] = d
        r["speedup_vs_dh"] = d / r["seconds"] if d else None
    return dh + oprf


def bench_psi(quick: bool) -> list[dict]:
    """DH and OPRF PSI on 10^3 to 10^6 items per side: time, bytes and exactness vs numpy.intersect1d."""
    if quick:
        dh = [_psi_record(100, 0.5, 1), _psi_record(300, 0.0, 1)]
        return _with_dh([_psi_record(100, 0.5, 1, "oprf"), _psi_record(300, 0.0, 1, "oprf")], dh)
    dh = [_psi_record(n, 0.5, 3 if n < 10**5 else 1) for n in (10**3, 10**4, 10**5)]
    dh += [_psi_record(10**3, ov, 3) for ov in (0.0, 1.0)]
    oprf = [_psi_record(n, 0.5, 3 if n < 10**6 else 1, "oprf") for n in (10**3, 10**4, 10**5, 10**6)]
    oprf += [_psi_record(10**3, ov, 3, "oprf") for ov in (0.0, 1.0)]
    return _with_dh(oprf, dh)


# -- vertical logistic regression -----------------------------------------------------------
def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


def _centralized(Xtr, Xte, ytr, yte) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(Xtr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(max_iter=5000).fit(scaler.transform(Xtr), ytr)
    return float(clf.score(scaler.transform(Xte), yte))


def _methods(quick: bool) -> list[tuple[str, object, dict, int, dict]]:
    """(method, fit, kwargs, epochs, extra params) for each training method."""
    ss_epochs = 3 if quick else 300
    pa_epochs = 1 if quick else 20
    bits = 512 if quick else 2048  # 512 only for the smoke test, flagged as insecure
    return [
        ("ss", vertical.fit_ss, {"iterations": ss_epochs}, ss_epochs, {}),
        ("paillier", vertical.fit_paillier,
         {"epochs": pa_epochs, "batch_size": 64, "key_bits": bits, "insecure_for_testing": quick},
         pa_epochs, {"key_bits": bits, "batch_size": 64, "activation": "piecewise",
                     "preprocessing": "ot"}),
    ]


def _vertical_record(method: str, fit, kwargs: dict, epochs: int, extra: dict, data,
                     central: float) -> dict:
    Xtr, Xte, ytr, yte = data
    blocks = [Xtr[:, :15], Xtr[:, 15:]]

    def program(party, X):
        t0 = time.perf_counter()
        model = fit(party, X, ytr if party.id == 0 else None, **kwargs)
        return model, time.perf_counter() - t0

    res = mpc.run(program, parties=2, inputs=blocks, timeout=3600,
                  preprocessing=extra.get("preprocessing", "dealer"))
    models = [m for m, _ in res.outputs]
    train_seconds = max(s for _, s in res.outputs)
    z = models[0].partial_logits(Xte[:, :15]) + models[1].partial_logits(Xte[:, 15:])
    accuracy = float(((z > 0) == yte).mean())
    if method == "ss":
        base, _, _ = median_time(lambda: vertical.fit_plain(blocks, ytr, iterations=20), repeat=3)
        base /= 20
    else:
        base, _, _ = median_time(lambda: vertical.fit_plain_minibatch(blocks, ytr, epochs=5), repeat=3)
        base /= 5
    phases = res.cost.phases()
    train = phases[f"vertical/train-{method}"]
    dealer = phases.get("preprocessing")
    offline = phases.get("offline")              # dealer-free (OT) preprocessing, made on demand
    bytes_pp = sum(v for p, v in train.bytes_sent.items() if p >= 0) / 2 / epochs
    return record("vertical_lr", {"method": method, "parties": 2, "rows": len(ytr), "features": 30,
                                  **extra},
                  train_seconds / epochs, base, bytes_per_party=bytes_pp,
                  rounds=train.rounds // epochs, accuracy=accuracy,
                  centralized_accuracy=central, epochs=epochs, train_seconds=train_seconds,
                  dealer_bytes=(dealer.bytes_sent.get(-1, 0) / epochs) if dealer else 0,
                  offline_bytes_per_party=(sum(offline.bytes_sent.values()) / 2 / epochs) if offline else 0,
                  offline_rounds=(offline.rounds // epochs) if offline else 0)


def bench_vertical(quick: bool) -> list[dict]:
    """Vertical logistic regression (secret sharing, Paillier): time per epoch, accuracy vs central."""
    data = _breast_cancer()
    central = _centralized(*data)
    return [_vertical_record(method, fit, kwargs, epochs, extra, data, central)
            for method, fit, kwargs, epochs, extra in _methods(quick)]


BENCHMARKS = {"psi": bench_psi, "vertical": bench_vertical}
