"""Federated transfer learning: a label-poor party borrows a labelled party's knowledge.

Run it:  python examples/transfer_learning.py            (2048-bit Paillier keys, ~1-3 minutes)
         python examples/transfer_learning.py --key-bits 1024 --insecure-keys   (quick look)

The setting of Liu et al. 2020 ("A secure federated transfer learning
framework", FATE's FTL), on scikit-learn's breast cancer data split two ways
(:func:`ml.vertical.ftl.breast_cancer_split`):

* party 0, the **host** (source): 250 patients, 15 of the 30 measurements,
  and their diagnoses;
* party 1, the **guest** (target): 369 patients, the *other* 15
  measurements, and the diagnosis of only 6 of them.

Only 50 patients are known to both. The guest wants to diagnose its other
patients. Alone, it can fit logistic regression to its 6 labels. With FTL,
each party learns a linear map of its own measurements into a shared
8-dimensional space: the 50 common patients tie the two maps together
(their two images should agree, and the host's labels of them should be
predicted from the guest's image), and the host's labelled patients give a
direction ``Phi`` in that space along which the guest scores its patients.

What crosses the wire (see :mod:`ml.vertical.ftl`): per step, each party's
terms of the other's gradient under its own Paillier key, the other's
gradient homomorphically computed and masked, and the masked gradient's
decryption; at the end ``Phi`` (8 numbers) to the guest. Each party learns
its own gradients (which depend on the other's terms) and nothing else of the
other's data: the guest receives no host label or measurement, the host no
guest measurement.
"""

from __future__ import annotations

import argparse
import time

from typing import Callable

import numpy as np

import mpc
from ml.federated.progress import progress_bar
from ml.vertical import ftl

NAMES = ["host", "guest"]


def program(party: mpc.Party, data: tuple, steps: int, key_bits: int, insecure: bool, seed: int = 0,
            on_step: Callable[[int], None] | None = None) -> ftl.FTLModel:
    """Party code: the host passes (X, overlap, labels), the guest (X, overlap, None)."""
    if party.n != 2:
        raise mpc.ParameterError(f"the transfer-learning program is for 2 parties (host, guest), not {party.n}")
    X, overlap, y = data
    return ftl.fit_ftl(party, X, overlap, y, steps=steps, seed=seed, key_bits=key_bits,
                       insecure_for_testing=insecure, on_step=on_step if party.id == 0 else None)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--key-bits", type=int, default=2048, help="Paillier modulus size (default 2048)")
    ap.add_argument("--insecure-keys", action="store_true", help="allow keys below 2048 bits (demo only)")
    ap.add_argument("--steps", type=int, default=30, help="gradient steps (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    s = ftl.breast_cancer_split(args.seed)
    print(f"host: {len(s.XA)} patients x {s.XA.shape[1]} measurements, all labelled; "
          f"guest: {len(s.XB)} x {s.XB.shape[1]}, {len(s.labeled)} labelled; "
          f"{len(s.overlap_a)} in common; {len(s.test)} guest patients to diagnose")
    print("each step: host and guest send their terms of the other's gradient encrypted under their own "
          "key, get back the gradient masked, and decrypt the other's masked gradient")
    alone = ftl.guest_alone_accuracy(s)
    bar = progress_bar(args.steps, "FTL steps", not args.no_progress)
    ticks = iter(bar)
    next(ticks, None)   # a bar shows a step once the next one is asked for
    t0 = time.perf_counter()
    try:
        res = mpc.run(program, parties=2, inputs=[(s.XA, s.overlap_a, s.yA), (s.XB, s.overlap_b, None)],
                      args=(args.steps, args.key_bits, args.insecure_keys, 0, lambda _: next(ticks, None)),
                      preprocessing=None, timeout=1200)
        for _ in ticks:
            pass
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    guest = res.outputs[1]
    with_ftl = float(np.mean(guest.predict(s.XB[s.test]) == s.yB[s.test]))
    _, plain = ftl.fit_ftl_plain(s.XA, s.yA, s.overlap_a, s.XB, s.overlap_b, steps=args.steps, seed=0)
    sent = {p: sum(r.wire_bytes for r in res.cost.messages if r.sender == p) for p in (0, 1)}
    print(f"FTL under Paillier ({args.key_bits}-bit keys): {args.steps} steps in {seconds:.1f} s; "
          f"bytes sent: host {sent[0]:,}, guest {sent[1]:,}")
    print(f"largest weight difference to the same FTL in plaintext: "
          f"{np.abs(guest.weights - plain.weights).max():.1e}")
    print(f"guest alone accuracy: {alone:.4f}")
    print(f"with FTL accuracy: {with_ftl:.4f}")
    return {"alone": alone, "ftl": with_ftl, "seconds": seconds, "bytes": sent}


if __name__ == "__main__":
    main()
