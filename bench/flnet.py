"""Federated aggregation over TLS between processes (1 server, N clients) against the in-process round.

Name: ``flnet``, params ``aggregator`` (``secagg+``, ``plaintext``, ``ckks`` or
``paillier``: 2048-bit keys, the clients' key dealt in the first round),
``clients`` (N client processes) and ``values`` (length of each upload: 651 is
the digits model's 650 weights plus the weight entry, 10^5 a larger model).
Each configuration starts N client processes (``python -m bench.flnet``, a
client whose ``fit`` adds a fixed random update) and runs ``ml.federated.serve``
in this process for ``MEASURED + 1`` rounds over pinned TLS 1.3 on loopback;
the first warms up both sides, the median of the others is reported (the
baseline is a median of 3 too: on a shared machine one round alone varied
by 2x between runs).

Fields: ``seconds`` the round's wall time at the server (sending the model,
the clients' fit, every protocol round, the update), ``server_seconds`` the
aggregation part of it, ``baseline_seconds`` the same aggregation of the same
vectors in process (``ml.aggregators``: the one-process SecAgg simulation, or
the plaintext sum), ``ratio`` their quotient, ``bytes_per_party`` the payload
bytes one client sent in the round, ``startup_seconds`` from launching the
processes to every TLS link being up (reported apart, not in the round),
``rounds`` the protocol's round trips (CKKS and Paillier: the uploads, then the
decryption by one client). ``server_cpu_seconds`` is the CPU time
of the server process (every thread) during a measured round, and
``baseline_cpu_seconds`` that of the in-process aggregation (medians): on a
shared machine they vary less than wall times, and they show where a round's
time goes (in the recorded runs the server's CPU per round was about the whole
in-process simulation's; the rest of the wall time is the client processes'
work and waiting for a core).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import median_time, record

ROOT = Path(__file__).resolve().parent.parent
FULL = [(agg, n, d) for agg in ("secagg+", "plaintext", "ckks", "paillier") for n in (4, 8, 16)
        for d in (651, 100_000)]
QUICK = [("secagg+", 4, 651), ("plaintext", 4, 651)]
WEIGHT_CAP = 10
MEASURED = 3
"""Rounds measured after the warm-up round; the median is reported."""
CLIENT_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""The client processes' BLAS runs on one thread: N clients stand for N machines but share
this machine's cores, and a pool of BLAS threads per client (numpy's default, one per core)
spins after every call (the update clipping's norm): with 16 clients on 2 cores that more
than doubled each client's CPU per round (0.018-0.021 s against 0.0076 s)."""


class FixedClient:
    """A client of ``dim`` weights whose ``fit`` adds the same random update every round."""

    def __init__(self, dim: int, seed: int) -> None:
        self.weights = np.zeros(dim)
        self.delta = np.random.default_rng(seed).uniform(-0.01, 0.01, dim)   # simulated data
        self.n_examples = WEIGHT_CAP

    def get_weights(self) -> list[np.ndarray]:
        return [self.weights.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.weights = np.asarray(weights[0], dtype=np.float64).copy()

    def fit(self, config: dict) -> tuple[list[np.ndarray], int, dict]:
        return [self.weights + self.delta], self.n_examples, {}

    def evaluate(self, config: dict) -> tuple[float, int, dict]:
        return 0.0, 0, {"accuracy": float("nan")}


def _options(aggregator: str) -> dict:
    return {"dropout_bound": 0.2} if aggregator in ("secagg", "secagg+") else {}


def _config(tmp: Path, n: int, aggregator: str) -> Path:
    from mpc.transport.tls import new_identity

    for i in range(n + 1):
        new_identity(i, tmp / "keys", overwrite=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines = ["[server]", f'address = "127.0.0.1:{port}"', 'certificate = "keys/party0.crt"', ""]
    for k in range(n):
        lines += ["[[client]]", f"id = {k}", f'certificate = "keys/party{k + 1}.crt"', ""]
    lines += ["[training]", f"rounds = {MEASURED + 1}", f'aggregator = "{aggregator}"', f"weight_cap = {WEIGHT_CAP}",
              "round_timeout = 60", "fit_timeout = 120", "connect_timeout = 120", "",
              "[aggregator]", *(f"{k} = {v}" for k, v in _options(aggregator).items())]
    path = tmp / "fl.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _baseline(aggregator: str, n: int, values: int) -> tuple[float, float]:
    """The same round's aggregation in process, on the same uploads: (seconds, CPU seconds)."""
    from ml.aggregators import make_aggregator

    agg = make_aggregator(aggregator, **_options(aggregator))
    agg.setup(n, values, 10.0)
    vectors = {k: np.append(FixedClient(values - 1, k).delta, 1.0) for k in range(n)}
    seconds, _, _ = median_time(lambda: agg.aggregate(vectors), repeat=3)
    cpu = []
    for _ in range(3):
        c0 = time.process_time()
        agg.aggregate(vectors)
        cpu.append(time.process_time() - c0)
    return seconds, float(np.median(cpu))


def run_one(aggregator: str, n: int, values: int) -> dict:
    from ml.federated import serve

    with tempfile.TemporaryDirectory(prefix="flnet-") as tmp:
        cfg = _config(Path(tmp), n, aggregator)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               **CLIENT_ENV}
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-m", "bench.flnet", str(cfg), str(k), str(values - 1)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for k in range(n)]
        connected: list[float] = []

        cpu: dict[str, list[float]] = {"started": [], "ended": []}

        def log(text: str) -> None:
            if "clients connected" in text:
                connected.append(time.perf_counter() - t0)
            elif ": started with" in text:
                cpu["started"].append(time.process_time())
            elif "survivors" in text:
                cpu["ended"].append(time.process_time())
        try:
            result = serve(cfg, FixedClient(values - 1, 10_000), log=log)
            for p in procs:
                if p.wait(120) != 0:
                    raise RuntimeError(f"a client failed: {p.stderr.read()[-2000:]}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
    measured = result.history.rounds[1:]
    res = result.history.last_result
    lost = [m for m in measured if m.survivors != n]
    if res is None or lost:
        raise RuntimeError(f"flnet {aggregator} n={n}: a measured round lost clients ({lost[0].note})")
    up = res.server_state["bytes_up"]
    baseline, baseline_cpu = _baseline(aggregator, n, values)
    round_cpu = [e - s for s, e in zip(cpu["started"][1:], cpu["ended"][1:])]
    return record("flnet", {"aggregator": aggregator, "clients": n, "values": values},
                  float(np.median([m.seconds for m in measured])), baseline,
                  bytes_per_party=float(np.mean(list(up.values()))),
                  rounds={"plaintext": 1, "ckks": 2, "paillier": 2}.get(aggregator, 4),
                  server_seconds=float(np.median([m.server_seconds for m in measured])), startup_seconds=connected[0] if connected else None,
                  bytes_per_client=res.bytes_per_client,
                  server_cpu_seconds=float(np.median(round_cpu)) if round_cpu else None,
                  baseline_cpu_seconds=baseline_cpu)


def bench_flnet(quick: bool) -> list[dict]:
    """One federated aggregation round over TLS, 1 server + N client processes, vs in process."""
    return [run_one(agg, n, d) for agg, n, d in (QUICK if quick else FULL)]


BENCHMARKS = {"flnet": bench_flnet}


def _client_main(argv: list[str]) -> int:
    from ml.federated import run_client

    cfg, k, dim = argv
    run_client(cfg, int(k), FixedClient(int(dim), int(k)))
    return 0


if __name__ == "__main__":
    sys.exit(_client_main(sys.argv[1:]))
