"""Asynchronous federated learning (FedBuff) under secure aggregation, against synchronous FedAvg.

Run::

    python examples/async_training.py [--clients 20] [--buffer 5] [--target 0.9] [--plot async.png]

1. Hospitals train a softmax regression on their share of the digits; their
   machines differ: hospital k needs 1 + 9 (k / (n - 1))^2 simulated seconds
   per local training (the slowest ten times the fastest).
2. Synchronous FedAvg waits for every hospital each round: every round lasts
   as long as the slowest one.
3. FedBuff never waits: whenever K updates have arrived the server sums them
   by SecAgg+ (one session per buffer) and steps; each hospital scales its
   update by 1/sqrt(1 + staleness) before masking (the staleness is public),
   so asynchrony costs no privacy.
4. Printed: simulated seconds to the target accuracy for both, and what the
   server saw of the first stale buffer.
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_digits

from ml.data import partition_iid, split_clients, standardize, train_test_split
from ml.federated import synchronous_clock, time_to_accuracy, train, train_async
from ml.models import SoftmaxRegression


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--buffer", type=int, default=5)
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--rounds", type=int, default=8, help="synchronous rounds (FedBuff gets 7.5x the steps)")
    ap.add_argument("--plot", help="write accuracy against simulated time to this PNG")
    args = ap.parse_args(argv)
    n = args.clients
    X, y = load_digits(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    data = split_clients(Xtr, ytr, partition_iid(ytr.size, n, seed=0))
    speeds = [1.0 + 9.0 * (k / (n - 1)) ** 2 for k in range(n)]
    kw = dict(aggregator="secagg+", lr=0.1, batch_size=16, local_epochs=2, seed=11, progress=False)
    print(f"{n} hospitals, local training from {speeds[0]:.1f} to {speeds[-1]:.1f} simulated seconds")

    sync = synchronous_clock(train(SoftmaxRegression(64, 10), data, (Xte, yte), rounds=args.rounds,
                                   label="FedAvg (synchronous)", **kw), speeds, jitter=0.2)
    buff = train_async(SoftmaxRegression(64, 10), data, (Xte, yte), rounds=int(7.5 * args.rounds),
                       buffer_size=args.buffer, speeds=speeds, jitter=0.2,
                       label=f"FedBuff (K = {args.buffer})", **kw)
    stale = next((m for m in buff.rounds if any(m.staleness)), None)
    if stale is not None:
        print(f"server step {stale.round} at t = {stale.sim_seconds:.1f} s: SecAgg+ sum of "
              f"{len(stale.buffer_clients)} updates from hospitals {stale.buffer_clients}, "
              f"staleness {stale.staleness} (public), weights "
              f"{[round(1 / (1 + t) ** 0.5, 2) for t in stale.staleness]} applied by the hospitals")
    for h in (sync, buff):
        t = time_to_accuracy(h, args.target)
        reached = f"{t:.1f} simulated seconds" if t != float("inf") else "not reached"
        print(f"{h.config['label']}: {args.target:.0%} accuracy after {reached}; "
              f"{h.final_accuracy:.1%} after {len(h.rounds)} steps, "
              f"{h.rounds[-1].sim_seconds:.1f} s")
    if args.plot:
        print(f"plot: {sync.plot(args.plot, others=[buff], title='FedAvg vs FedBuff, SecAgg+')}")


if __name__ == "__main__":
    main()
