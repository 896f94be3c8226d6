"""Large simulations, local against Ray: SecAgg+ rounds and a FedAvg round, wall/server/client time and peak memory.

Name: ``scale``, params ``task`` (``secagg+`` or ``fedavg``), ``backend``
(``local`` or ``ray``), ``cpus`` (Ray's CPUs, one actor each; 1 for local),
``clients``, ``values`` (the vector length; the digits model's 650 for FedAvg).
Fields: ``seconds`` the wall time of the round (one SecAgg+ session, four
round trips, 10% of the clients dropping, spread over the rounds; or one
FedAvg round of every client, local training plus plaintext averaging),
Ray's start-up excluded and reported as ``startup_seconds`` (it includes a
tiny warm-up session and a 3 s pause: right after ``ray.init`` Ray's own
processes keep a core busy, which made the first measured round up to 3x
slower here); creating the actors and moving the clients in is included;
``server_seconds`` the server's own work; ``client_seconds`` a client's mean
time in its steps (SecAgg+; FedAvg: wall time over clients);
``peak_mb`` the peak resident memory of the driver plus that of the largest
actor times the number of actors (an upper bound on the whole run's);
``driver_mb`` and ``worker_mb`` separately; ``speedup`` on Ray records: the
local record's seconds over this one's (same task and sizes).

Every configuration runs in a fresh Python process (so peak memory and Ray's
CPU count are its own). Inputs are made inside the clients' actors
(``values`` as a function of the client id). Full sizes: SecAgg+ at 10^3 and
10^4 clients x 10^4 values, FedAvg at 10^4 clients; ``--quick``: 60 clients x
1000 values and 200 FedAvg clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench.common import record

FULL = [("secagg+", 1000, 10_000), ("secagg+", 10_000, 10_000), ("fedavg", 10_000, 650)]
QUICK = [("secagg+", 60, 1000), ("fedavg", 200, 650)]
BACKENDS = [("local", 1), ("ray", 1), ("ray", 2)]
WARM_UP = 3.0


class _Inputs:
    """Client u's input vector, made where it is called (inside u's actor on Ray)."""

    def __init__(self, d: int) -> None:
        self.d = d

    def __call__(self, u: int) -> np.ndarray:
        return np.random.default_rng(u).integers(0, 1 << 32, self.d, dtype=np.uint32)


def _secagg(backend: Any, n: int, d: int) -> dict:
    from mpc.rand import PRG
    from protocols.secagg import dropout_schedule, make_config, simulate
    config = make_config(n, d, variant="secagg+", bits=32, dropout=0.1)
    drops = dropout_schedule(n, 0.1, seed=1)
    t0 = time.perf_counter()
    res = simulate(config, _Inputs(d), drops, server_prg=PRG(bytes(16)), backend=backend)
    seconds = time.perf_counter() - t0
    c = res.cost
    return {"seconds": seconds, "server_seconds": c.server_seconds,
            "client_seconds": c.client_seconds, "client_cpu_seconds": c.client_cpu_seconds,
            "server_cpu_seconds": c.server_cpu_seconds, "survivors": len(res.survivors),
            "degree": config.degree, "memory": res.memory,
            "check": float(res.total.astype(np.float64).sum())}


def _fedavg(backend: Any, n: int, per_client: int = 8) -> dict:
    from sklearn.datasets import load_digits

    from ml.data import standardize, train_test_split
    from ml.federated import train
    from ml.models import SoftmaxRegression
    X, y = load_digits(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    rng = np.random.default_rng(0)   # n clients of per_client examples drawn from the train set
    rows = rng.integers(0, len(ytr), (n, per_client))
    clients = [(Xtr[r], ytr[r]) for r in rows]
    t0 = time.perf_counter()
    h = train(SoftmaxRegression(64, 10), clients, (Xte, yte), rounds=1, batch_size=8,
              progress=False, seed=2, backend=backend, weight_cap=per_client)
    seconds = time.perf_counter() - t0
    r = h.rounds[0]
    return {"seconds": seconds, "server_seconds": r.server_seconds,
            "client_seconds": seconds / n, "survivors": r.survivors, "memory": h.memory,
            "check": r.accuracy}


def run_one(task: str, backend: str, cpus: int, clients: int, values: int) -> dict:
    """One configuration in this process (Ray started here unless it already runs)."""
    from mpc.backend import Ray
    chosen: Any = "local"
    startup = 0.0
    if backend == "ray":
        import ray
        chosen = Ray(cpus=cpus)
        if not ray.is_initialized():
            t0 = time.perf_counter()
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            _secagg(chosen, 20, 10)   # warm up: Ray's own processes are busy for a few seconds
            time.sleep(WARM_UP)
            startup = time.perf_counter() - t0
    out = _secagg(chosen, clients, values) if task == "secagg+" else _fedavg(chosen, clients)
    mem = out.pop("memory")
    actors = cpus if backend == "ray" else 0
    peak = mem.get("driver_mb", 0.0) + actors * mem.get("worker_mb", 0.0)
    return record("scale", {"task": task, "backend": backend, "cpus": cpus, "clients": clients,
                            "values": values},
                  out.pop("seconds"), peak_mb=peak, driver_mb=mem.get("driver_mb"),
                  worker_mb=mem.get("worker_mb"), startup_seconds=startup,
                  load=os.getloadavg()[0], **out)


def _fresh(args: list) -> dict:
    """:func:`run_one` in a new Python process."""
    code = ("import json, sys; from bench.scale import run_one; "
            "print(json.dumps(run_one(*json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"scale {args} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_scale(quick: bool) -> list[dict]:
    """SecAgg+ and FedAvg at scale on the local backend and on Ray with 1 and 2 CPUs."""
    recs = []
    for task, n, d in QUICK if quick else FULL:
        local = None
        for backend, cpus in BACKENDS:
            rec = _fresh([task, backend, cpus, n, d])
            if backend == "local":
                local = rec["seconds"]
            else:
                rec["speedup"] = local / rec["seconds"] if local else None
            print(f"scale {task} {backend}({cpus}) n={n} d={d}: {rec['seconds']:.2f} s, "
                  f"server {rec['server_seconds']:.2f} s, peak {rec['peak_mb']:.0f} MB",
                  file=sys.stderr)
            recs.append(rec)
    return recs


BENCHMARKS = {"scale": bench_scale}
