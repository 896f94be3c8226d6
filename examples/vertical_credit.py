"""Vertical federated learning: two parties hold different columns of the same people.

Run it:  python examples/vertical_credit.py
         python examples/vertical_credit.py --paillier   (also FATE-style Paillier training;
                                                          a progress bar on stderr, --no-progress)
         python examples/vertical_credit.py --transcript vertical.html   (what crossed the wire)

The pattern is the one of credit scoring across a bank and a shop (FATE's
vertical setting); the data here is scikit-learn's breast cancer set, split by
columns:

* party 0, the **clinic**, holds the diagnosis (the label) and the first 15
  measurements of its patients;
* party 1, the **imaging lab**, holds the other 15 measurements of its own
  patients.

Each knows its patients under an ID; the two patient lists overlap only partly.

What happens:
1. **Alignment by PSI.** The two parties find the patients they have in common
   with Diffie-Hellman private set intersection on Curve25519: each hashes its
   IDs to curve points and blinds them with a secret scalar, the other blinds
   them again, and doubly blinded values are compared. Both learn the common
   IDs and nothing about the others.
2. **Training on secret shares.** Each party standardises its own columns and
   secret-shares them; the clinic shares the labels. Gradient descent runs on
   the shares (Beaver products, and the sigmoid ``clip(z/4 + 1/2, 0, 1)`` by
   two exact secure comparisons). At the end each party opens only its own
   block of weights.
3. **Prediction.** For the test patients each party shares its partial score;
   only the clinic opens their sum and turns it into a probability.
4. The same split is trained centrally (all columns in one place) with
   scikit-learn, for comparison.
5. With ``--paillier``, the two parties train again with Paillier-encrypted
   gradients, as FATE's hetero logistic regression does, but with no third
   party: each holds its own 2048-bit Paillier key and a share of the
   residual ``sigma(z) - y`` (the same clipped sigmoid, compared on secret
   shares whose preprocessing the two make themselves by oblivious
   transfer); each encrypts its share, the other multiplies it by its
   columns, masks it and has it decrypted. Slower: 1.5 to 2.5 minutes of
   training on the 2-core reference machine, with a progress bar of its
   mini-batch steps on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Callable

import numpy as np

import mpc
from ml import vertical

ITERATIONS = 300
PAILLIER_EPOCHS, PAILLIER_BATCH = 20, 64
TEST_FRACTION = 0.2
NAMES = ["clinic", "lab"]


def simulated_tables() -> list[tuple[list[str], np.ndarray, np.ndarray | None]]:
    """(IDs, columns, labels or None) for each party: overlapping patient lists."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(2024)            # simulated IDs and overlap, not secrets
    ids = [f"patient-{k:06d}" for k in rng.choice(10**6, len(y), replace=False)]
    clinic_rows = rng.permutation(len(y))[:530]
    lab_rows = rng.permutation(len(y))[:540]
    clinic_only = [f"walk-in-{k}" for k in range(40)]  # patients the lab never saw
    lab_only = [f"referral-{k}" for k in range(25)]    # patients the clinic never saw
    clinic = ([ids[r] for r in clinic_rows] + clinic_only,
              np.vstack([X[clinic_rows, :15], rng.normal(size=(40, 15)) * X[:, :15].std(0) + X[:, :15].mean(0)]),
              np.concatenate([y[clinic_rows], rng.integers(0, 2, 40)]))
    lab = ([ids[r] for r in lab_rows] + lab_only,
           np.vstack([X[lab_rows, 15:], rng.normal(size=(25, 15)) * X[:, 15:].std(0) + X[:, 15:].mean(0)]),
           None)
    return [clinic, lab]


def say(who: str, message: str) -> None:
    """One line of narration; one write, so that the parties' threads do not interleave."""
    sys.stdout.write(f"[{who}] {message}\n")


Table = tuple[list[str], np.ndarray, "np.ndarray | None"]


def aligned(party: mpc.Party, table: Table) -> tuple[list[str], np.ndarray, np.ndarray | None, int]:
    """Step 1: PSI on the IDs; this party's rows of the common IDs, and the training size."""
    ids, X, y = table
    common, rows = vertical.align(party, ids)
    say(NAMES[party.id], f"holds {len(ids)} patients; {len(common)} in common after PSI")
    n_train = int(round(len(common) * (1 - TEST_FRACTION)))   # common IDs are sorted: a random split
    return common, X[rows], (y[rows] if y is not None else None), n_train


def check_parties(party: mpc.Party) -> None:
    """The clinic and the lab, no more."""
    if party.n != len(NAMES):
        raise mpc.ParameterError(f"the vertical program is for 2 parties (the clinic and the lab), "
                                 f"not {party.n}")


def program(party: mpc.Party, table: Table) -> dict:
    """Party code: the clinic and the lab both run this, each with its own table."""
    check_parties(party)
    who = NAMES[party.id]
    common, X, y, n_train = aligned(party, table)              # step 1: PSI
    t0 = time.perf_counter()
    model = vertical.fit_ss(party, X[:n_train], None if y is None else y[:n_train],
                            iterations=ITERATIONS)             # step 2: training on shares
    seconds = time.perf_counter() - t0
    say(who, f"trained in {seconds:.1f} s; my weight block has {len(model.weights)} entries")
    proba = vertical.predict_proba(party, X[n_train:], model)  # step 3: only the clinic opens
    out = {"common": common, "n_train": n_train, "model": model, "seconds": seconds}
    if proba is not None:
        out["accuracy"] = float(((proba > 0.5) == y[n_train:]).mean())
    return out


def paillier_program(party: mpc.Party, table: Table,
                     progress: Callable[[int], None] | None = None) -> dict:
    """Step 5: align again, train with Paillier-encrypted gradients, predict.

    ``progress(1)`` is called after each of the clinic's mini-batch steps.
    """
    check_parties(party)
    _, X, y, n_train = aligned(party, table)
    t0 = time.perf_counter()
    model = vertical.fit_paillier(party, X[:n_train], None if y is None else y[:n_train],
                                  epochs=PAILLIER_EPOCHS, batch_size=PAILLIER_BATCH,
                                  progress=progress if party.id == 0 else None)
    say(NAMES[party.id], f"Paillier training took {time.perf_counter() - t0:.1f} s")
    proba = vertical.predict_proba(party, X[n_train:], model)
    return {} if proba is None else {"accuracy": float(((proba > 0.5) == y[n_train:]).mean())}


def centralized_accuracy(tables, common: list[str], n_train: int) -> float:
    """scikit-learn on the same aligned split with all columns in one place."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    cols, labels = [], None
    for ids, X, y in tables:
        where = {v: k for k, v in enumerate(ids)}
        rows = [where[v] for v in common]
        cols.append(X[rows])
        if y is not None:
            labels = y[rows]
    X = np.hstack(cols)
    scaler = StandardScaler().fit(X[:n_train])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(max_iter=5000).fit(scaler.transform(X[:n_train]), labels[:n_train])
    return float(clf.score(scaler.transform(X[n_train:]), labels[n_train:]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paillier", action="store_true",
                    help="also train with Paillier-encrypted gradients (1.5-2.5 minutes)")
    ap.add_argument("--no-progress", action="store_true",
                    help="no progress bar on stderr for the Paillier training")
    ap.add_argument("--transcript", metavar="FILE.html",
                    help="write what crossed the wire (PSI, training, prediction) as a web page")
    args = ap.parse_args(argv)
    tables = simulated_tables()
    result = mpc.run(program, parties=2, inputs=tables, timeout=600, transcript=args.transcript)
    clinic = result.outputs[0]
    print("\nWhat crossed the wire, by phase:")
    for name, cost in result.cost.phases().items():
        if cost.rounds or any(cost.bytes_sent.values()):
            print(f"  {name:24s} rounds {cost.rounds:5d}   bytes sent: {cost.describe_sent()}")
    print(f"  per training iteration: {clinic['seconds'] / ITERATIONS * 1000:.0f} ms")
    central = centralized_accuracy(tables, clinic["common"], clinic["n_train"])
    print(f"\n{len(clinic['common']) - clinic['n_train']} test patients, {clinic['n_train']} training")
    if args.paillier:
        print("\nPaillier training (OT preprocessing: no dealer, no third party):")
        bar = None
        if not args.no_progress:
            from tqdm.auto import tqdm
            steps = PAILLIER_EPOCHS * -(-clinic["n_train"] // PAILLIER_BATCH)
            bar = tqdm(total=steps, desc="Paillier training", unit="batch", leave=True)
        fate = mpc.run(paillier_program, parties=2, inputs=tables, timeout=1200, preprocessing="ot",
                       kwargs={"progress": bar.update if bar is not None else None})
        if bar is not None:
            bar.close()
        print(f"paillier accuracy: {fate.outputs[0]['accuracy']:.4f}")
    print(f"vertical accuracy: {clinic['accuracy']:.4f}")
    print(f"centralized accuracy: {central:.4f}")
    if args.transcript and result.transcript is not None:   # HTML, or JSON for .json
        result.transcript.write(args.transcript, labels=NAMES,
                                title="Vertical learning: clinic and lab align by PSI and train")
        print(f"Transcript written to {args.transcript}")


if __name__ == "__main__":
    main()
