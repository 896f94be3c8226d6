"""Federated learning with the server and every client in its own OS process, over pinned TLS 1.3.

The server runs ``ml.federated.serve`` in a child process (it saves what it
summed and every message it received); the clients run ``mpc fl client``.
The results are compared with the in-process run of the same seeds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.clients import NumpyClient
from ml.federated import load_config, train
from ml.federated.plan import make_plan
from ml.federated.rounds import RunState, local_updates
from ml.models import LogisticRegression
from mpc.transport.tls import new_identity

ROOT = Path(__file__).resolve().parents[3]
FEATURES, PER_CLIENT = 5, 24
TIMEOUT = 150

SERVER = """
import json, sys
import numpy as np
import pytest
from ml.clients import NumpyClient
from ml.federated import serve
from ml.models import LogisticRegression
cfg, test, out = sys.argv[1:4]
with np.load(test) as f:
    data = (f["X"], f["y"])
res = serve(cfg, NumpyClient(LogisticRegression(%d), data))
arrays = {"weights": np.concatenate([np.ravel(w) for w in res.history.weights])}
meta = {"survivors": {str(r): s for r, s in res.survivors.items()}, "refused": res.refused,
        "view": []}
for r, view in res.views.items():
    arrays[f"total_{r}"] = res.totals.get(r, np.zeros(0))
    for k, tag, msg in view:
        i = len(meta["view"])
        meta["view"].append([r, k, tag, len(msg)])
        for j, a in enumerate(msg):
            arrays[f"v_{r}_{i}_{j}"] = a
np.savez(out + ".npz", **arrays)
open(out + ".json", "w").write(json.dumps(meta))
print("server done")
""" % FEATURES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(n_clients: int):
    rng = np.random.default_rng(5)
    w = rng.normal(size=FEATURES)
    X = rng.normal(size=(n_clients * PER_CLIENT + 40, FEATURES))
    y = (X @ w + 0.3 * rng.normal(size=len(X)) > 0).astype(np.int64)
    parts = [(X[k * PER_CLIENT:(k + 1) * PER_CLIENT], y[k * PER_CLIENT:(k + 1) * PER_CLIENT])
             for k in range(n_clients)]
    return parts, (X[-40:], y[-40:])


def _setup(tmp: Path, n_clients: int, aggregator: str, rounds: int, round_timeout: float = 3,
           fit_timeout: float = 30) -> tuple[Path, list, tuple]:
    for i in range(n_clients + 1):
        new_identity(i, tmp / "keys")
    new_identity(99, tmp / "stranger")
    parts, test = _data(n_clients)
    for k, (X, y) in enumerate(parts):
        np.savez(tmp / f"client{k}.npz", X=X, y=y)
    np.savez(tmp / "test.npz", X=test[0], y=test[1])
    lines = ["[server]", f'address = "127.0.0.1:{_free_port()}"',
             'certificate = "keys/party0.crt"', ""]
    for k in range(n_clients):
        lines += ["[[client]]", f"id = {k}", f'certificate = "keys/party{k + 1}.crt"', ""]
    lines += ["[training]", f"rounds = {rounds}", f'aggregator = "{aggregator}"',
              f"weight_cap = {PER_CLIENT}", "local_epochs = 1", "batch_size = 8", "lr = 0.2",
              "seed = 7", f"round_timeout = {round_timeout}", f"fit_timeout = {fit_timeout}", "connect_timeout = 60",
              "idle_timeout = 120", "", "[model]", 'kind = "logistic"', f"features = {FEATURES}"]
    (tmp / "fl.toml").write_text("\n".join(lines) + "\n")
    return tmp / "fl.toml", parts, test


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _run(tmp: Path, cfg: Path, n_clients: int, faults: dict[int, str] | None = None,
         first: list[list[str]] = ()) -> tuple[dict, dict, list]:
    """Server and clients as processes; (server arrays, server meta, [(rc, out, err) per client]).

    The ``first`` clients (command-line arguments) run to their end before the others start."""
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(cfg), str(tmp / "test.npz"),
                               str(tmp / "server")], env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    procs = [server]
    try:
        early = []
        for args in first:
            procs.append(subprocess.Popen([sys.executable, "-m", "mpc.cli", "fl", "client", *args],
                                          env=_env(), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
            early.append((procs[-1].wait(TIMEOUT), *procs[-1].communicate()))
        clients = []
        for k in range(n_clients):
            args = ["--fault", (faults or {})[k]] if k in (faults or {}) else []
            clients.append(subprocess.Popen(
                [sys.executable, "-m", "mpc.cli", "fl", "client", "--config", str(cfg), "--id",
                 str(k), "--data", str(tmp / f"client{k}.npz"), *args],
                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        procs += clients
        outs = [(p.wait(TIMEOUT), *p.communicate()) for p in clients]
        _, err = server.communicate(timeout=TIMEOUT)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert server.returncode == 0, err
    with np.load(tmp / "server.npz") as f:
        arrays = dict(f)
    return arrays, json.loads((tmp / "server.json").read_text()), outs + early


def _uploads(cfg: Path, parts: list, r: int, weights: np.ndarray) -> tuple[dict, object]:
    """Every client's upload of round ``r`` from ``weights``, computed in process."""
    config = load_config(cfg)
    clients = [NumpyClient(LogisticRegression(FEATURES), p) for p in parts]
    plan = make_plan(config.settings, [PER_CLIENT] * len(parts), FEATURES + 1, config.aggregator,
                     config.aggregator_options, None)
    state = RunState(weights.copy(), [(FEATURES,), (1,)], clients, clients[0], None)
    vectors, _, _ = local_updates(plan, state, list(range(len(parts))), set(), r)
    return vectors, plan


def individual_updates_seen(arrays: dict, meta: dict, uploads: dict, plan) -> list[tuple]:
    """(client, tag) of every message in the server's view that equals some client's update,
    as floats or as its ring encoding."""
    from protocols.secagg import Quantizer

    agg = plan.aggregator
    quant = Quantizer(agg.value_bound, getattr(agg, "frac_bits", 20))
    found = []
    for i, (r, k, tag, count) in enumerate(meta["view"]):
        for j in range(count):
            a = arrays[f"v_{r}_{i}_{j}"]
            for v in uploads.values():
                if a.shape != v.shape:
                    continue
                ring = quant.encode(v, 64)[0]
                mask = np.uint64((1 << (8 * a.itemsize)) - 1)
                if np.allclose(a.astype(np.float64), v) or (
                        a.dtype.kind in "ui" and np.array_equal(a.astype(np.uint64) & mask, ring & mask)):
                    found.append((k, tag))
    return found


def test_secagg_plus_six_processes_equals_in_process(tmp_path):
    cfg, parts, test = _setup(tmp_path, 6, "secagg+", rounds=2)
    arrays, meta, outs = _run(tmp_path, cfg, 6)
    assert all(rc == 0 for rc, _, _ in outs), outs
    assert meta["survivors"] == {"1": list(range(6)), "2": list(range(6))}
    model = LogisticRegression(FEATURES)
    history = train(model, parts, test, aggregator="secagg+", rounds=2, local_epochs=1,
                    batch_size=8, lr=0.2, weight_cap=PER_CLIENT, seed=7, progress=False)
    flat = np.concatenate([np.ravel(w) for w in history.weights])
    np.testing.assert_array_equal(arrays["weights"], flat)
    uploads, plan = _uploads(cfg, parts, 1, np.zeros(FEATURES + 1))
    assert individual_updates_seen(arrays, meta, uploads, plan) == []
    masked = [v for v in meta["view"] if v[2].endswith("/masked")]
    assert len(masked) == 12   # the check above looked at every masked input


def test_killed_and_stalled_clients_dropped_round_completes(tmp_path):
    cfg, parts, _ = _setup(tmp_path, 6, "secagg+", rounds=1, round_timeout=3, fit_timeout=5)
    arrays, meta, outs = _run(tmp_path, cfg, 6, faults={2: "1:masked:kill", 4: "1:masked:stall"})
    assert outs[2][0] == -signal.SIGKILL
    assert all(rc == 0 for k, (rc, _, _) in enumerate(outs) if k != 2), outs
    assert "finished []" in outs[4][1]   # the stalled client was dropped from round 1
    assert meta["survivors"] == {"1": [0, 1, 3, 5]}
    uploads, plan = _uploads(cfg, parts, 1, np.zeros(FEATURES + 1))
    expected = plan.aggregator.aggregate(uploads, dropped={2, 4})
    np.testing.assert_array_equal(arrays["total_1"], expected.total)
    assert individual_updates_seen(arrays, meta, uploads, plan) == []
    tags = {(k, tag.rsplit("/", 1)[-1]) for _, k, tag, _ in meta["view"]}
    assert (2, "masked") not in tags and (4, "masked") not in tags
    assert {(k, "unmask") for k in (0, 1, 3, 5)} <= tags


def test_unknown_certificate_refused_and_plaintext_view_shows_updates(tmp_path):
    cfg, parts, _ = _setup(tmp_path, 2, "plaintext", rounds=1)
    stranger = ["--config", str(cfg), "--id", "1", "--data", str(tmp_path / "client1.npz"),
                "--certificate", str(tmp_path / "stranger" / "party99.crt")]
    arrays, meta, outs = _run(tmp_path, cfg, 2, first=[stranger])
    rc, _, err = outs[2]
    assert rc == 2 and "refused our certificate" in err, err
    assert any("certificate" in reason for reason in meta["refused"]), meta["refused"]
    assert [rc for rc, _, _ in outs[:2]] == [0, 0]
    uploads, plan = _uploads(cfg, parts, 1, np.zeros(FEATURES + 1))
    # the negative control of the view check: plaintext shows the server every update
    assert sorted(k for k, _ in individual_updates_seen(arrays, meta, uploads, plan)) == [0, 1]


def _in_threads(cfg: Path, evaluator, clients: list, faults: dict | None = None):
    """serve() and run_client() in threads of this process (real TLS over loopback)."""
    import threading

    from ml.federated import run_client, serve

    out: dict = {}

    def client(k: int) -> None:
        try:
            out[k] = run_client(cfg, k, clients[k], fault=(faults or {}).get(k))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            out[k] = exc

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(len(clients))]
    for t in threads:
        t.start()
    result = serve(cfg, evaluator)
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    return result, out


@pytest.mark.parametrize("aggregator", ["plaintext", "secagg"])
def test_sklearn_clients_over_the_network_equal_train(tmp_path, aggregator):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import SGDClassifier

    from ml.clients import SklearnClient

    cfg, parts, test = _setup(tmp_path, 3, aggregator, rounds=2)

    def factory(data):
        return SklearnClient(SGDClassifier(loss="log_loss", random_state=0), data, classes=[0, 1])

    result, reports = _in_threads(cfg, factory(test), [factory(p) for p in parts])
    assert all(r.finished == [1, 2] for r in reports.values()), reports
    history = train(factory, [factory(p) for p in parts], factory(test), aggregator=aggregator,
                    rounds=2, local_epochs=1, batch_size=8, lr=0.2, weight_cap=PER_CLIENT, seed=7,
                    progress=False)
    for a, b in zip(result.history.weights, history.weights):
        np.testing.assert_array_equal(a, b)
    assert result.history.accuracy == history.accuracy


def test_server_killed_mid_round_clients_fail_clearly(tmp_path):
    cfg, _, _ = _setup(tmp_path, 2, "plaintext", rounds=1, round_timeout=1, fit_timeout=5)
    server = subprocess.Popen([sys.executable, "-m", "mpc.cli", "fl", "server", "--config", str(cfg),
                               "--test", str(tmp_path / "test.npz")], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    clients = [subprocess.Popen(
        [sys.executable, "-m", "mpc.cli", "fl", "client", "--config", str(cfg), "--id", str(k),
         "--data", str(tmp_path / f"client{k}.npz"), *(["--fault", "1:update:stall"] if k else [])],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(2)]
    try:
        assert "2 of 2 clients connected" in server.stdout.readline()
        assert "round 1: started with clients [0, 1]" in server.stdout.readline()
        server.kill()   # round 1 waits for client 1's update: it stalls
        outs = [(p.wait(TIMEOUT), *p.communicate()) for p in clients]
    finally:
        for p in [server, *clients]:
            if p.poll() is None:
                p.kill()
    for k, (rc, _, err) in enumerate(outs):
        assert rc == 2, err
        # a TransportError: PeerDisconnected when the link dropped, TransportError when it was refused
        assert any(f"mpc fl client {k}: {kind}" in err for kind in ("TransportError", "PeerDisconnected"))
        assert "the server" in err, err


@pytest.mark.parametrize("step", ["advertise", "share", "masked", "unmask"])
def test_client_stalled_at_each_secagg_round(tmp_path, step):
    cfg, parts, test = _setup(tmp_path, 6, "secagg+", rounds=1, round_timeout=1, fit_timeout=3)
    clients = [NumpyClient(LogisticRegression(FEATURES), p) for p in parts]
    result, reports = _in_threads(cfg, NumpyClient(LogisticRegression(FEATURES), test), clients,
                                  faults={3: (1, step, "stall")})
    assert not [r for r in reports.values() if isinstance(r, Exception)], reports
    # a client late with its masked input (or earlier) is a dropout; late at unmask, its
    # input is already in the sum (the others' shares remove its self mask)
    survivors = list(range(6)) if step == "unmask" else [0, 1, 2, 4, 5]
    assert result.survivors == {1: survivors}
    uploads, plan = _uploads(cfg, parts, 1, np.zeros(FEATURES + 1))
    expected = plan.aggregator.aggregate(uploads, dropped=set(range(6)) - set(survivors))
    np.testing.assert_array_equal(result.totals[1], expected.total)
    sent = {tag.rsplit("/", 1)[-1] for k, tag, _ in result.views[1] if k == 3}
    assert step not in sent


def test_star_link_refuses_to_send_after_the_hub_left(tmp_path):
    """A message sent after the peer said goodbye and closed is refused, not queued forever
    (queued, it made the sender's close wait its whole timeout)."""
    import time

    from mpc.errors import TransportError
    from mpc.transport.mesh import Node
    from mpc.transport.star import Hub, dial
    from mpc.transport.tls import load_certificate

    for i in (0, 1):
        new_identity(i, tmp_path)
    port = _free_port()
    session, digest = bytes(8), bytes(32)
    hub = Hub(("127.0.0.1", port), {1: load_certificate(tmp_path / "party1.crt")},
              cert=str(tmp_path / "party0.crt"), key=str(tmp_path / "party0.key"),
              session=session, digest=digest, close_timeout=0.5)
    ep = dial(1, Node(0, "127.0.0.1", port, load_certificate(tmp_path / "party0.crt")),
              cert=str(tmp_path / "party1.crt"), key=str(tmp_path / "party1.key"),
              session=session, digest=digest, timeout=10)
    assert hub.wait_for({1}, 10) == {1}
    hub.close()
    deadline = time.monotonic() + 10
    with pytest.raises(TransportError, match="closed"):
        while time.monotonic() < deadline:
            ep.send_frame(0, b"late")
            time.sleep(0.05)
    ep.close()


def test_late_client_joins_and_stalled_client_comes_back_next_round(tmp_path):
    """Client 2 starts only once round 1 is under way: round 1 runs without it, round 2 with it.
    Client 1 stalls past round 1's deadline: dropped there, its late update is not read as
    round 2's, and it takes part in round 2."""
    # round 1 lasts fit_timeout (client 1 stalls): time for client 2 to start and connect
    cfg, _, _ = _setup(tmp_path, 3, "plaintext", rounds=2, round_timeout=1, fit_timeout=8)
    text = cfg.read_text().replace("connect_timeout = 60", "connect_timeout = 2")
    cfg.write_text(text)

    def client(k: int, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "mpc.cli", "fl", "client", "--config",
                                 str(cfg), "--id", str(k), "--data", str(tmp_path / f"client{k}.npz"),
                                 *extra], env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    server = subprocess.Popen([sys.executable, "-m", "mpc.cli", "fl", "server", "--config", str(cfg),
                               "--test", str(tmp_path / "test.npz")], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs = [server, client(0), client(1, "--fault", "1:update:stall")]
    try:
        assert "2 of 3 clients connected" in server.stdout.readline()
        assert "round 1: started with clients [0, 1]" in server.stdout.readline()
        procs.append(client(2))
        out, err = server.communicate(timeout=TIMEOUT)
        outs = [(p.wait(TIMEOUT), *p.communicate()) for p in procs[1:]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert server.returncode == 0, err
    assert "round 1: sampled 3, reached 2, survivors 1" in out, out
    assert "round 2: started with clients [0, 1, 2]" in out and \
        "round 2: sampled 3, reached 3, survivors 3" in out, out
    assert [rc for rc, _, _ in outs] == [0, 0, 0], outs
    # (a plaintext client does not learn that its update came too late)
    assert "fitted rounds [1, 2]" in outs[1][1] and "fitted rounds [2]" in outs[2][1]


def test_distributed_dp_round_short_of_planned_survivors_stops_before_unmask(tmp_path):
    """Distributed DP plans its noise for all 6 clients (no dropout configured): with one client
    silent from its masked input on, the session stops before the unmask round, so the server
    never forms the under-noised sum; the round is skipped, as in process."""
    cfg, parts, test = _setup(tmp_path, 6, "secagg+", rounds=1, round_timeout=1, fit_timeout=3)
    cfg.write_text(cfg.read_text() + '\n[dp]\nmode = "distributed"\nepsilon = 8.0\n')
    clients = [NumpyClient(LogisticRegression(FEATURES), p) for p in parts]
    result, reports = _in_threads(cfg, NumpyClient(LogisticRegression(FEATURES), test), clients,
                                  faults={3: (1, "masked", "stall")})
    assert not [r for r in reports.values() if isinstance(r, Exception)], reports
    note = result.history.rounds[-1].note
    assert 1 not in result.totals and "fewer than the 6 required" in note, note
    assert not [tag for _, tag, _ in result.views.get(1, []) if tag.endswith("/unmask")]
