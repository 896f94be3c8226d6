"""Model poisoning against federated averaging, and the robust aggregators that resist it.

Run::

    python examples/robust_aggregation.py [--clients 20] [--poisoned 2] [--scale -20] [--rounds 10]

1. Twenty hospitals train a logistic regression on their share of the
   breast-cancer data; two of them are malicious: they train honestly, then
   send -20 times their update (a scaled, sign-flipped update).
2. Plain FedAvg averages everything: the two poisoned updates dominate the
   sum and the model is wrecked.
3. The robust plaintext rules (coordinate-wise median, trimmed mean, Krum,
   multi-Krum) read every update and discard the outliers.
4. The two-server aggregator keeps the updates secret: each hospital
   secret-shares its update between two non-colluding servers, which check
   every update's L2 norm in MPC (Beaver products and a secure comparison),
   drop the over-norm ones without seeing any update, and open only the sum
   of the others.
"""

from __future__ import annotations

import argparse
import warnings

from sklearn.datasets import load_breast_cancer

from ml.clients import NumpyClient
from ml.data import partition_iid, split_clients, standardize, train_test_split
from ml.federated import train
from ml.models import LogisticRegression
from ml.robust_aggregators import ScaledUpdateClient
from mpc import TrustedDealerWarning

AGGREGATORS = [("plaintext", "FedAvg (plain mean)", {}),
               ("median", "coordinate-wise median", {}),
               ("trimmed_mean", "trimmed mean (20%)", {"trim": 0.2}),
               ("krum", "Krum", {}),
               ("multi_krum", "multi-Krum", {}),
               ("twoserver", "two-server norm check", {"norm_bound": 1.0})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--poisoned", type=int, default=2)
    parser.add_argument("--scale", type=float, default=-20.0)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", TrustedDealerWarning)   # the dealer: see protocols.twoserver

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    data = split_clients(Xtr, ytr, partition_iid(ytr.size, args.clients, seed=0))
    print(f"{args.clients} hospitals, {args.poisoned} of them send {args.scale:g} x their update")

    def run(name: str, options: dict, poisoned: int) -> tuple[float, list[int]]:
        clients = [NumpyClient(LogisticRegression(X.shape[1]), d) for d in data]
        for k in range(poisoned):
            clients[k] = ScaledUpdateClient(clients[k], args.scale)   # type: ignore[call-overload]
        h = train(LogisticRegression(X.shape[1]), clients, (Xte, yte), rounds=args.rounds, lr=0.1,
                  aggregator=name, aggregator_options=options, progress=False, seed=1)
        return h.final_accuracy, [r.survivors for r in h.rounds]

    clean, _ = run("plaintext", {}, 0)
    print(f"no attack, FedAvg: {100 * clean:.1f}%")
    for name, label, options in AGGREGATORS:
        acc, survivors = run(name, options, args.poisoned)
        note = f"  (accepted {min(survivors)}-{max(survivors)} of {args.clients} a round)" \
            if name == "twoserver" else ""
        print(f"{label}: {100 * acc:.1f}%{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
