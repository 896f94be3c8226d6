"""Private training: hospitals train one neural network on patient rows that none of them sees.

Run it:  python examples/private_training.py                      (2 hospitals, breast cancer)
         python examples/private_training.py --hospitals 3 --dataset digits
         python examples/private_training.py --split columns       (each hospital holds some features)

Two or three hospitals each hold their own patients' records (breast-cancer
biopsies, or 8x8 digit scans as a stand-in for images). Together they want
one classifier trained on all the rows, but no hospital may show another a
single record. Each hospital splits its rows into additive secret shares
(one share per hospital, each alone uniformly random); an MLP (30-64-2 or
64-128-10, ReLU) is trained on the shares by minibatch SGD with momentum,
every product, ReLU, softmax and gradient computed on shares
(``ml.training``). The trained weights stay shared: the hospitals first
score the still-shared model on a test set (``ml.inference`` on shares),
then open it.

The same network is trained in float64 from the same initialization, on the
same batches in the same order, with the same learning rate and momentum:
``private accuracy`` and ``plaintext accuracy`` compare the two.

Features are standardized with public reference statistics (here those of
the training set, as a published reference range would be) and clipped to
[-8, 8] (digits: pixels / 16, in [0, 1]): that public bound lets every
product be checked against the fixed-point range before training starts.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from ml.training.data import load
from ml.training.reference import train_plain
from ml.training.secure import Data, TrainConfig, secure_train
from mpc.preprocessing.dealer import TrustedDealerWarning


def split(X, y, hospitals: int, how: str):
    if how == "columns":     # every hospital a block of features of the same patients; hospital 0 the labels
        blocks = np.array_split(np.arange(X.shape[1]), hospitals)
        ids = np.arange(len(X))
        return [Data(X[:, b], y if i == 0 else None, ids) for i, b in enumerate(blocks)], X, y
    parts = [Data(X[i::hospitals], y[i::hospitals]) for i in range(hospitals)]
    if how == "outsourced":  # hospital 0's rows only, trained by all as compute parties
        parts = [parts[0]] + [None] * (hospitals - 1)
        return parts, parts[0].X, parts[0].y
    return parts, np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["cancer", "digits"], default="cancer")
    parser.add_argument("--hospitals", type=int, choices=[2, 3], default=2)
    parser.add_argument("--split", choices=["rows", "columns", "outsourced"], default="rows")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.5)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", TrustedDealerWarning)

    Xtr, ytr, Xte, yte = load(args.dataset)
    sizes = (30, 64, 2) if args.dataset == "cancer" else (64, 128, 10)
    config = TrainConfig(sizes, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         momentum=args.momentum, input_bound=8.0 if args.dataset == "cancer" else 1.0,
                         weight_bound=4.0)
    parts, Xall, yall = split(Xtr, ytr, args.hospitals, args.split)
    print(f"{args.hospitals} hospitals, {args.dataset}: {len(Xall)} training rows ({args.split} split), "
          f"MLP {'-'.join(map(str, sizes))}, {args.epochs} epochs, batch {args.batch_size}, "
          f"lr {args.lr}, momentum {args.momentum}")
    with threadpool_limits(1):
        res = secure_train(parts, config, split=args.split, test=(Xte, yte))
    for i, e in enumerate(res.epochs, 1):
        print(f"  epoch {i}: {e.seconds:.2f} s, {e.rounds} rounds, {e.bytes_sent / 1e6:.1f} MB sent by hospital 0")
    plain = train_plain(Xall, yall, config)
    print("test accuracy of the model trained on shares (scored on shares, before it is opened) and of the")
    print("same training in float64 (same initialization, batches, learning rate and momentum):")
    print(f"private accuracy: {100 * res.accuracy:.1f}%")
    print(f"plaintext accuracy: {100 * float(np.mean(plain.predict(Xte) == yte)):.1f}%")
    gap = max(float(np.max(np.abs(a.weight - b.weight))) for a, b in
              zip(*[[layer for layer in net.layers if hasattr(layer, "weight")] for net in (res.network, plain)]))
    print(f"largest weight difference after opening: {gap:.2e}")


if __name__ == "__main__":
    main()
