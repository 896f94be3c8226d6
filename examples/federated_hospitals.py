"""Five hospitals train a breast-cancer classifier together; no hospital's records or
model update is ever seen by anyone else, not even by the server that runs the training.

Run it:  python examples/federated_hospitals.py            (secure aggregation, SecAgg)
         python examples/federated_hospitals.py --processes (1 server + 5 hospital processes
                                                             over TLS 1.3, as across machines)
         python examples/federated_hospitals.py --aggregator ckks   (or secagg+, paillier)
         python examples/federated_hospitals.py --plot run.png      (accuracy and loss per round)

What happens (federated averaging, McMahan et al. 2017):
1. Each hospital keeps its patients (scikit-learn's breast cancer data, split
   unevenly: some hospitals see mostly benign cases, others mostly malignant).
2. Every round the server sends the current model to the hospitals; each one
   trains it for two epochs on its own patients and computes its update.
3. Each hospital puts ``[w * update, w]`` (w: its patient count over a public cap)
   into a secure sum. The server receives only masked vectors, which look
   uniformly random, and learns only the sum: the weighted average update. It
   never learns a single hospital's update or even its patient count.
4. A hospital whose connection drops in a round is simply left out of that
   round's sum; training goes on.
5. The same training is rerun in plaintext with the same seed, for comparison.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from tqdm.auto import tqdm

from ml.aggregators import AggregationResult
from ml.data import partition_dirichlet, split_clients, standardize, train_test_split
from ml.federated import RoundMetrics, train
from ml.models import LogisticRegression

HOSPITALS = ["St. Mary's", "General", "Children's", "University", "Riverside"]
SETTINGS = dict(rounds=15, local_epochs=2, batch_size=16, lr=0.1, server_lr=1.0,
                dropout=0.1, seed=2026)


def hospitals_data():
    """Simulated split of the public dataset into five hospitals (non-IID, Dirichlet 0.5)."""
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, test_fraction=0.2, seed=0)
    # For brevity every hospital scales features with the same public reference statistics.
    Xtr, Xte = standardize(Xtr, Xte)
    parts = partition_dirichlet(ytr, len(HOSPITALS), alpha=0.5, seed=3, min_size=20)
    return split_clients(Xtr, ytr, parts), (Xte, yte)


MEANING = {
    "advertise": "its two public keys (X25519)",
    "share": "Shamir shares of its mask secrets, encrypted for each other hospital",
    "masked": "its weighted update + self mask + pairwise masks, mod 2^k",
    "unmask": "shares that remove the masks: self-mask seeds of the survivors, "
              "mask keys of the dropped",
    "ciphertext": "its encrypted weighted update",
    "decrypted sum": "the decrypted SUM of all survivors, from the decrypting hospital",
    "update": "its update in the clear",
}


def _preview(payload) -> str:
    if len(payload) == 0:
        return "(empty: the sender is leaving)"
    if isinstance(payload, np.ndarray):
        flat = payload.reshape(-1)
        return np.array2string(flat[:3], precision=3, separator=" ")[:-1] + " ...]"
    raw = bytes(payload)
    return raw[len(raw) // 2: len(raw) // 2 + 6].hex(" ") + " ..."


def describe_round(res: AggregationResult, name: str) -> None:
    """Print what the server received in one round, from the aggregation's transcript."""
    print(f"\nRound 1, every message the server received ({name}):")
    by_tag: dict[str, list] = {}
    for m in res.transcript:
        by_tag.setdefault(m.tag, []).append(m)
    for tag, msgs in by_tag.items():
        print(f"  [{tag}] {MEANING.get(tag, '')}:")
        for m in msgs:
            who = HOSPITALS[m.sender] if 0 <= m.sender < len(HOSPITALS) else f"client {m.sender}"
            print(f"      from {who:<11} {m.nbytes:>7,} B  {_preview(m.payload)}")
    state = ", ".join(sorted(res.server_state)) or "-"
    print(f"  The server's state after the round holds: {state}.")
    if name == "plaintext":
        print("  (plaintext: these ARE the hospitals' updates)")
    else:
        print("  Keys, masked vectors and ciphertexts look uniformly random; the one")
        print("  readable vector is the SUM of all survivors' weighted updates and weights.")


def run(aggregator: str, clients, test, progress: bool, narrate: bool):
    seen: dict[int, RoundMetrics] = {}

    def on_round(metrics: RoundMetrics, res: AggregationResult | None) -> None:
        seen[metrics.round] = metrics
        if narrate and metrics.round == 1 and res is not None:
            tqdm.write("")  # keep the progress bar below the narration
            describe_round(res, aggregator)
        if narrate and res is not None and len(res.survivors) < metrics.sampled and \
                not seen.get(-1):
            seen[-1] = metrics  # narrate the first round with a dropout, once
            gone = sorted(set(range(len(clients))) - set(res.survivors))
            names = ", ".join(HOSPITALS[k] for k in gone)
            how = (" after sharing its keys;\n  the survivors' key shares let the server "
                   "remove its pairwise masks (never\n  its update, which it never sent)"
                   if aggregator.startswith("secagg") else "")
            tqdm.write(f"\nRound {metrics.round}: {names} dropped out mid-round{how}.\n"
                       f"  The sum of the {len(res.survivors)} others is still recovered and "
                       "training goes on.")

    model = LogisticRegression(clients[0][0].shape[1], l2=1e-3)
    t0 = time.perf_counter()
    # SecAgg runs on the Party runtime: one thread per party, messages in the wire
    # format, the server's view recorded by the runtime (what the narration prints)
    options = {"runtime": "parties"} if aggregator.startswith("secagg") else {}
    history = train(model, clients, test, aggregator=aggregator, progress=progress,
                    on_round=on_round, label=aggregator, aggregator_options=options,
                    **SETTINGS)
    return history, time.perf_counter() - t0


def run_processes(aggregator: str, clients, test, workdir: str | None):
    """The same training with the server and each hospital in its own OS process, over pinned
    TLS 1.3 on this machine: the commands of docs/federated_network.md, started for you."""
    import os
    import socket
    import subprocess
    import sys
    import tempfile

    from ml.federated import History
    from mpc.transport.tls import new_identity

    tmp = Path(workdir or tempfile.mkdtemp(prefix="fl-hospitals-"))
    for i in range(len(clients) + 1):
        new_identity(i, tmp / "keys", overwrite=True)          # what `mpc keys new` does
    for k, (X, y) in enumerate(clients):
        np.savez(tmp / f"hospital{k}.npz", X=X, y=y)
    np.savez(tmp / "test.npz", X=test[0], y=test[1])
    with socket.socket() as s:                                 # a free port on this machine
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines = ["[server]", f'address = "127.0.0.1:{port}"', 'certificate = "keys/party0.crt"', ""]
    for k in range(len(clients)):
        lines += ["[[client]]", f"id = {k}", f'certificate = "keys/party{k + 1}.crt"', ""]
    lines += ["[training]", f'aggregator = "{aggregator}"',
              f"weight_cap = {max(len(X) for X, _ in clients)}",
              *(f"{k} = {v}" for k, v in SETTINGS.items() if k != "dropout"),
              "round_timeout = 10", "fit_timeout = 60", "connect_timeout = 60", "",
              "[model]", 'kind = "logistic"', f"features = {clients[0][0].shape[1]}", "l2 = 0.001"]
    (tmp / "fl.toml").write_text("\n".join(lines) + "\n")
    # Six processes share this machine's cores: numpy's BLAS on one thread each (a pool per
    # process would spin after every call; docs/federated_network.md measured it).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    mpc = [sys.executable, "-m", "mpc.cli", "fl"]
    commands = [mpc + ["server", "--config", "fl.toml", "--test", "test.npz", "--history",
                       "history.json", "--quiet"]]
    commands += [mpc + ["client", "--config", "fl.toml", "--id", str(k), "--data",
                        f"hospital{k}.npz"] for k in range(len(clients))]
    print(f"\nStarting 1 server and {len(clients)} hospital processes in {tmp}:")
    for cmd in commands:
        print("  mpc fl " + " ".join(cmd[4:]))
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for cmd in commands]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for cmd, p, (_, err) in zip(commands, procs, outs):
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[4:6])} failed:\n{err[-2000:]}")
    return History.load_json(tmp / "history.json"), time.perf_counter() - t0


def main_processes(args) -> None:
    clients, test = hospitals_data()
    print(f"{len(HOSPITALS)} hospitals, each its own process with its own data file; the server "
          f"holds a held-out set of {test[0].shape[0]} patients.")
    secure, secs = run_processes(args.aggregator, clients, test, args.workdir)
    settings = {k: v for k, v in SETTINGS.items() if k != "dropout"}
    cap = max(len(X) for X, _ in clients)
    plain = train(LogisticRegression(clients[0][0].shape[1], l2=1e-3), clients, test,
                  aggregator="plaintext", progress=False, weight_cap=cap, **settings)
    print(f"\n round  survivors  accuracy ({args.aggregator}, processes)  accuracy (plaintext)")
    for a, b in zip(secure.rounds, plain.rounds):
        print(f" {a.round:>5}  {a.survivors:>5}/{a.sampled}   {a.accuracy:>24.1%}  "
              f"{b.accuracy:>18.1%}")
    print(f"\n{args.aggregator} over TLS between processes: {secs:.1f} s for "
          f"{len(secure.rounds)} rounds (start-up and handshakes included).")
    print(f"final accuracy: {secure.final_accuracy:.4f}")
    print(f"plaintext accuracy: {plain.final_accuracy:.4f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aggregator", default="secagg",
                        choices=["secagg", "secagg+", "ckks", "paillier", "plaintext"])
    parser.add_argument("--plot", metavar="FILE.png",
                        help="write accuracy and loss per round to this PNG (none by default)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar on stderr")
    parser.add_argument("--processes", action="store_true",
                        help="run the server and each hospital as separate processes over TLS "
                             "(every aggregator: secagg, secagg+, plaintext, ckks, paillier)")
    parser.add_argument("--workdir", help="with --processes: folder for keys, data and config "
                                          "(default: a new temporary folder)")
    args = parser.parse_args(argv)
    if args.processes:
        main_processes(args)
        return

    clients, test = hospitals_data()
    print("Each hospital holds its own patients (never sent anywhere):")
    for name, (X, y) in zip(HOSPITALS, clients):
        print(f"  {name:<11} {X.shape[0]:>4} patients, {np.mean(y == 0):4.0%} malignant")
    print(f"The server holds a held-out test set of {test[0].shape[0]} patients to report "
          "accuracy.")
    print(f"\nModel: logistic regression, {clients[0][0].shape[1] + 1} parameters. "
          f"{SETTINGS['rounds']} rounds, {SETTINGS['local_epochs']} local epochs per round, "
          f"each hospital drops out of a round with probability {SETTINGS['dropout']:.0%}.")
    print(f"Each round a hospital sends {clients[0][0].shape[1] + 2} numbers "
          f"(weighted update and weight) into the {args.aggregator} secure sum.")

    secure, secs = run(args.aggregator, clients, test, not args.no_progress, narrate=True)
    plain, plain_secs = run("plaintext", clients, test, False, narrate=False)

    print(f"\n round  survivors  accuracy ({args.aggregator})  accuracy (plaintext)")
    for a, b in zip(secure.rounds, plain.rounds):
        gone = a.sampled - a.survivors
        flag = f"  ({gone} hospital{'s' * (gone > 1)} dropped out)" if gone else ""
        if a.skipped:
            flag = f"  ({a.note})"
        print(f" {a.round:>5}  {a.survivors:>5}/{a.sampled}   {a.accuracy:>14.1%}  "
              f"{b.accuracy:>18.1%}{flag}")
    per_client = np.mean([r.bytes_per_client for r in secure.rounds if r.survivors])
    print(f"\n{args.aggregator}: {secs:.1f} s for {len(secure.rounds)} rounds, about "
          f"{per_client:,.0f} B per hospital per round (plaintext: {plain_secs:.2f} s, "
          f"{plain.rounds[0].bytes_per_client:,.0f} B).")
    if args.plot:
        png = secure.plot(Path(args.plot), others=[plain],
                          title="Five hospitals, breast cancer, federated averaging")
        print(f"Plot of accuracy and loss per round: {png}")
    print("\nWhat each party learned:")
    print("  each hospital: its own patients and the global model after every round;")
    print("  the server: who took part in each round, the sum of the weighted updates and")
    print("  the total weight (hence the new model), and nothing about any one hospital.")
    print(f"final accuracy: {secure.final_accuracy:.4f}")
    print(f"plaintext accuracy: {plain.final_accuracy:.4f}")


if __name__ == "__main__":
    main()
