"""Secure aggregation (SecAgg, SecAgg+): server and client time, bytes per client, against a plaintext sum.

Name: ``secagg``, params ``n`` (clients), ``d`` (vector length), ``dropout``
(fraction of clients that drop after sharing keys and before sending their
masked input: the costliest case for the server, as in Bonawitz et al. Fig. 8)
and ``variant`` (``secagg`` or ``secagg+``). ``seconds`` is the server's time
(all four rounds), ``baseline_seconds`` a plaintext server adding the same
survivors' vectors as they arrive (``baseline_cpu_seconds``, ``cpu_ratio``: the
same in CPU time); extra fields ``server_seconds``, ``client_seconds`` (mean of
3 clients timed end to end, without the simulation's shared caches),
``server_cpu_seconds`` and ``client_cpu_seconds`` (the same in thread CPU
time, robust to other load on the machine), ``bytes_per_party`` (sent by a client that finished, as in
every bench), ``bytes_per_client`` (sent plus received by such a client),
``expansions`` (masks the server expanded), ``prg_gb_per_s`` (the mask
expander's rate measured in the same run) and ``prg_share`` (the fraction of the
server's CPU time that expansions at that rate account for: 1.0 = PRG-bound).

Runs on the one-process simulation (:func:`protocols.secagg.simulate`); for
SecAgg with n >= 500 its ``shortcut`` replaces the masks of surviving pairs (they
cancel) by zero-sum pads, see its docstring: the server is unchanged.

The full run also writes ``docs/img/secagg_cost.png`` (CPU cost against n).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.common import median_time, record
from protocols.secagg import make_config, simulate
from protocols.secagg.crypto import MaskExpander

PLOT = Path(__file__).resolve().parent.parent / "docs" / "img" / "secagg_cost.png"
TIMED_CLIENTS = 3


def prg_rate(d: int, dtype: np.dtype, count: int = 200) -> float:
    """Bytes per CPU second of mask expansion plus accumulation, as the server does it."""
    exp = MaskExpander(d, dtype)
    acc = np.zeros(d, dtype=dtype)
    seeds = [bytes([i % 256, i // 256]) * 8 for i in range(count)]
    t0 = time.thread_time()
    for s in seeds:
        exp.add(acc, s)
    return count * exp.nbytes / max(time.thread_time() - t0, 1e-9)


def plaintext_sum(values: np.ndarray, survivors: list[int]) -> np.ndarray:
    """The insecure baseline: a server adding the survivors' vectors as they arrive."""
    acc = np.zeros(values.shape[1], dtype=values.dtype)
    for u in survivors:
        np.add(acc, values[u], out=acc)
    return acc


def run_one(n: int, d: int, dropout: float, variant: str, rate: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 1 << 32, (n, d), dtype=np.uint64).astype(np.uint32)
    config = make_config(n, d, variant=variant, bits=32, dropout=max(dropout, 0.1))
    gone = rng.choice(n, int(round(dropout * n)), replace=False)
    drops = {int(u): 2 for u in gone}
    shortcut = variant == "secagg" and n >= 500
    res = simulate(config, values, drops, timed=TIMED_CLIENTS, shortcut=shortcut)
    base, _, want = median_time(lambda: plaintext_sum(values, res.survivors), repeat=3)
    c0 = time.thread_time()
    plaintext_sum(values, res.survivors)
    base_cpu = time.thread_time() - c0
    correct = bool(np.array_equal(res.total, want))
    expansions = res.server.expansions
    bound = expansions * d * 4 / rate
    c = res.cost
    return record("secagg", {"n": n, "d": d, "dropout": dropout, "variant": variant},
                  c.server_seconds, base, bytes_per_party=c.bytes_sent_per_client, rounds=c.rounds,
                  server_seconds=c.server_seconds, client_seconds=c.client_seconds,
                  server_cpu_seconds=c.server_cpu_seconds, client_cpu_seconds=c.client_cpu_seconds,
                  bytes_per_client=c.bytes_per_client, baseline_cpu_seconds=base_cpu,
                  cpu_ratio=c.server_cpu_seconds / base_cpu if base_cpu > 0 else None,
                  degree=config.degree,
                  threshold=config.threshold, expansions=expansions,
                  prg_gb_per_s=rate / 1e9, prg_share=bound / c.server_cpu_seconds if c.server_cpu_seconds else None,
                  privacy_failure=config.privacy_failure,
                  correctness_failure=config.correctness_failure,
                  server_unmask_seconds=c.server_round_seconds.get("unmask"),
                  shortcut=shortcut, correct=correct)


def plot(records: list[dict], path: Path = PLOT) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for variant, marker in (("secagg", "o"), ("secagg+", "s")):
        for dropout, style in ((0.0, "--"), (0.1, "-")):
            pts = sorted((r["params"]["n"], r) for r in records
                         if r["params"]["variant"] == variant and r["params"]["dropout"] == dropout
                         and r["params"]["d"] == 100_000)
            if not pts:
                continue
            ns = [p[0] for p in pts]
            label = f"{variant}, {dropout:.0%} dropout"
            axes[0].plot(ns, [p[1]["server_cpu_seconds"] for p in pts], style, marker=marker, label=label)
            axes[1].plot(ns, [p[1]["client_cpu_seconds"] for p in pts], style, marker=marker, label=label)
    base = sorted((r["params"]["n"], r["baseline_cpu_seconds"]) for r in records
                  if r["params"]["d"] == 100_000 and r["params"]["variant"] == "secagg+"
                  and r["params"]["dropout"] == 0.0)
    if base:
        axes[0].plot([b[0] for b in base], [b[1] for b in base], ":", color="grey", label="plaintext sum")
    axes[0].set(title="server, d = 10^5", xlabel="clients n", ylabel="CPU seconds", yscale="log")
    axes[1].set(title="one client, d = 10^5", xlabel="clients n", ylabel="CPU seconds", yscale="log")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Secure aggregation, one core (python -m bench secagg)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bench_secagg(quick: bool) -> list[dict]:
    """SecAgg and SecAgg+ with dropouts: server and client time, bytes per client vs a plaintext sum."""
    if quick:
        grid = [(n, 500, p, v) for n in (8, 20) for p in (0.0, 0.1) for v in ("secagg", "secagg+")]
    else:
        grid = [(n, 100_000, p, v) for v in ("secagg+", "secagg") for n in (100, 500, 1000)
                for p in (0.0, 0.1)]
        grid += [(100, d, 0.1, v) for d in (10_000, 1_000_000) for v in ("secagg", "secagg+")]
    rates: dict[int, float] = {}
    out = []
    for n, d, p, v in grid:
        if d not in rates:
            rates[d] = prg_rate(d, np.dtype(np.uint32), count=50 if quick else 200)
        out.append(run_one(n, d, p, v, rates[d]))
        print(f"  secagg {v} n={n} d={d} dropout={p}: server {out[-1]['server_seconds']:.2f} s, "
              f"client {out[-1]['client_seconds']:.3f} s", flush=True)
    if not quick:
        plot(out)
    return out


BENCHMARKS = {"secagg": bench_secagg}
