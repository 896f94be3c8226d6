"""A thousand phones answer an analyst's questions without any phone's answer being seen.

Run it:  python examples/federated_analytics.py [--devices 1000] [--epsilon 1.0] [--plot FILE.png]
                                                [--no-progress]
(About a minute for 1000 phones on a 2-core machine; a progress bar per question on stderr.)

The analyst wants two things: the distribution of today's session lengths, and
the most used apps. Each phone knows only its own values. What happens:

1. Every phone turns its value into a vector: a one-hot vector over 20
   session-length buckets; for the apps, a sketch of its app name's prefixes.
2. It adds a little discrete Gaussian noise to the vector (its own share of
   the privacy noise) and sends it masked inside a secure sum (SecAgg+): what
   leaves the phone looks uniformly random.
3. The server unmasks only the total of the phones that finished (some drop
   out mid-protocol). It learns the noisy histogram and the noisy sketch,
   from which it reads the top apps, and nothing about any single phone.
4. The whole session spends epsilon = 1 (delta = 1e-6), split between the
   two questions; the noise is planned so that this holds even if the
   maximum number of phones drop out.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Callable, Iterator

import numpy as np

from mpc.dp import PrivacyAccountant
from protocols import analytics

APPS = ["mail", "maps", "chat", "camera", "music", "news", "weather", "bank", "notes",
        "calendar", "podcasts", "fitness", "translate", "photos", "calculator"]
BUCKET_MINUTES, BUCKETS = 3, 20
DELTA = 1e-6


def simulate_phones(devices: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Each phone's private data: a session length (minutes) and its most used app."""
    minutes = rng.lognormal(mean=2.3, sigma=0.6, size=devices)
    popularity = 1.0 / np.arange(1, len(APPS) + 1) ** 1.1          # Zipf-like
    apps = rng.choice(APPS, size=devices, p=popularity / popularity.sum())
    return minutes, [str(a) for a in apps]


@contextlib.contextmanager
def progress_bar(desc: str, devices: int, on: bool) -> Iterator[Callable[[int], None] | None]:
    """A tqdm bar on stderr over the secure sum's client steps (4 rounds per phone); one line stays."""
    if not on:
        yield None
        return
    from tqdm.auto import tqdm
    bar = tqdm(total=4 * devices, desc=desc, unit="step", leave=True)
    try:
        yield bar.update
    finally:
        bar.total = bar.n  # phones that dropped out take fewer steps
        bar.refresh()
        bar.close()


def plot(true: np.ndarray, private: np.ndarray, epsilon: float, devices: int, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(BUCKETS) * BUCKET_MINUTES
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.7, true, width=1.4, label="true (nobody sees this)", color="#9aa5b1")
    ax.bar(x + 0.7, private, width=1.4, label=f"private (epsilon={epsilon:g})", color="#2b6cb0")
    ax.set_xlabel("session length (minutes, 3-minute buckets; last bucket: 57 and more)")
    ax.set_ylabel("phones")
    ax.set_title(f"Session lengths of {devices} phones: what the analyst sees vs the truth")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--epsilon", type=float, default=1.0, help="privacy budget of the session")
    ap.add_argument("--dropout", type=float, default=0.1, help="fraction of phones that drop out")
    ap.add_argument("--plot", metavar="FILE.png",
                    help="write the private vs true histogram to this PNG (none by default)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    ap.add_argument("--seed", type=int, default=7, help="seed of the simulated phones' data")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    minutes, apps = simulate_phones(args.devices, rng)
    buckets = np.minimum(minutes // BUCKET_MINUTES, BUCKETS - 1).astype(np.int64)
    per_query = analytics.per_query_epsilon(args.epsilon, DELTA, 2)
    accountant = PrivacyAccountant()
    print(f"{args.devices} phones, a privacy budget of epsilon={args.epsilon:g} "
          f"(delta={DELTA:g}) for two questions: epsilon={per_query:.3f} each.\n")

    print("Question 1: how long are sessions? Each phone sends a masked, noisy one-hot "
          f"vector of {BUCKETS} buckets.")
    dropped = rng.choice(args.devices, size=int(args.dropout * args.devices), replace=False)
    t0 = time.perf_counter()
    with progress_bar("secure sum, question 1", args.devices, not args.no_progress) as step:
        hist = analytics.histogram(buckets, BUCKETS, epsilon=per_query, delta=DELTA,
                                   dropped=dropped, accountant=accountant, progress=step)
    alive = np.setdiff1d(np.arange(args.devices), dropped)
    true = np.bincount(buckets[alive], minlength=BUCKETS)
    c = hist.cost
    print(f"  {dropped.size} phones dropped out; the server summed the other {c.survivors}.")
    print(f"  each phone sent and received {c.bytes_per_client / 1e3:.1f} kB in {c.rounds} rounds "
          f"({c.ring_bits}-bit ring), computing {c.client_seconds * 1e3:.0f} ms; "
          f"server {c.server_seconds:.1f} s; wall {time.perf_counter() - t0:.1f} s")
    print(f"  the server learned the noisy histogram (noise std {hist.noise_std:.1f} phones "
          "per bucket), nothing per phone:")
    for b in range(0, BUCKETS, 5):
        row = "  ".join(f"{b_ * BUCKET_MINUTES:2d}-{(b_ + 1) * BUCKET_MINUTES:2d}m: "
                        f"{hist.value[b_]:6.1f} ({true[b_]:3d})" for b_ in range(b, b + 5))
        print("   ", row)
    l1 = float(np.abs(hist.value - true).sum())

    print("\nQuestion 2: which apps are used most? Each phone sends a masked, noisy sketch "
          "of its app name's prefixes.")
    t0 = time.perf_counter()
    with progress_bar("secure sum, question 2", args.devices, not args.no_progress) as step:
        top = analytics.heavy_hitters(apps, k=5, epsilon=per_query, delta=DELTA, dropped=dropped,
                                      accountant=accountant, progress=step)
    truth = {a: apps_alive for a, apps_alive in
             zip(*np.unique(np.array(apps)[alive], return_counts=True))}
    c = top.cost
    print(f"  one secure sum of {top.details['sketch_values']} values per phone: "
          f"{c.bytes_per_client / 1e3:.1f} kB each; server {c.server_seconds:.1f} s; "
          f"wall {time.perf_counter() - t0:.1f} s")
    print(f"  apps reported by at least {top.details['threshold']:.0f} phones "
          "(rarer ones stay hidden in the noise):")
    for app, count in top.value:
        print(f"    {app:10s} {count:7.1f}  (true {truth.get(app, 0)})")

    total_epsilon = accountant.epsilon(DELTA)
    if args.plot:
        plot(true, hist.value, args.epsilon, args.devices, args.plot)
        print(f"\nplot of the private vs true histogram: {args.plot}")
    print(f"histogram l1 error: {l1:.1f}")
    print(f"epsilon: {total_epsilon:.3f}")


if __name__ == "__main__":
    main()
