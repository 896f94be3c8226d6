"""Federated server and clients in separate network namespaces, every link delayed by netem.

The server runs in one namespace, the clients in two others (two per
namespace), each namespace's egress delayed by ``DELAY`` (the fixture of
``tests/mpc/transport/test_netns.py``). Where the kernel has no netem, the links
are bandwidth-shaped instead and the clients reach the server through a relay
in the server's namespace that delays every byte by ``DELAY`` each way
(``tools/delay_relay.py``): the same one-way latency per crossing. A SecAgg+ round is 8 one-way
messages in sequence (the model down, then four messages up and three
replies down), a plaintext round 2: the measured round times must be at
least that many delays, and SecAgg+'s exceed plaintext's by about the six
extra crossings. Physical lower bounds, not a benchmark.

Needs root and iproute2; skipped with the reason otherwise (an error under
``CONCILIUM_REQUIRE_NETNS=1``, as in CI).
"""

import json
import subprocess
import sys
from pathlib import Path


from tests.ml.federated.test_fl_network import _data, _env, _free_port
from tests.mpc.transport.test_netns import (DELAY, namespaces, netns_required,  # noqa: F401 - fixtures
                                            pytestmark)
from mpc.transport.tls import new_identity

CLIENTS = 4
RELAY = Path(__file__).resolve().parents[3] / "tools" / "delay_relay.py"


def _relay(names: list, host: str, port: int) -> subprocess.Popen:
    """The delay relay in the server's namespace: ``host:port`` -> the server on 127.0.0.1."""
    relay = subprocess.Popen(["ip", "netns", "exec", names[0], sys.executable, str(RELAY),
                              f"{host}:{port}", f"127.0.0.1:{port}", str(DELAY)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert relay.stdout is not None and relay.stdout.readline().strip() == "ready", relay.stderr
    return relay


def _run(tmp: Path, names: list, hosts: list, aggregator: str, relayed: bool) -> list[dict]:
    port = _free_port()
    lines = ["[server]", f'address = "{hosts[0]}:{port}"', 'certificate = "keys/party0.crt"']
    lines += ['listen = "127.0.0.1"', ""] if relayed else [""]
    for k in range(CLIENTS):
        lines += ["[[client]]", f"id = {k}", f'certificate = "keys/party{k + 1}.crt"', ""]
    lines += ["[training]", "rounds = 2", f'aggregator = "{aggregator}"', "weight_cap = 24",
              "round_timeout = 10", "fit_timeout = 20", "connect_timeout = 60", "",
              "[aggregator]", "dropout_bound = 0.1" if aggregator != "plaintext" else "",
              "[model]", 'kind = "logistic"', "features = 5"]
    cfg = tmp / f"{aggregator}.toml"
    cfg.write_text("\n".join(lines) + "\n")
    history = tmp / f"{aggregator}.json"
    cli = [sys.executable, "-m", "mpc.cli", "fl"]
    relay = _relay(names, hosts[0], port) if relayed else None
    procs = [subprocess.Popen(["ip", "netns", "exec", names[0], *cli, "server", "--config", str(cfg),
                               "--test", str(tmp / "test.npz"), "--history", str(history)],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs += [subprocess.Popen(["ip", "netns", "exec", names[1 + k % 2], *cli, "client", "--config",
                                str(cfg), "--id", str(k), "--data", str(tmp / f"client{k}.npz")],
                               env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for k in range(CLIENTS)]
    try:
        outs = [(p.wait(120), *p.communicate()) for p in procs]
    finally:
        for p in procs + ([relay] if relay is not None else []):
            if p.poll() is None:
                p.kill()
    assert all(rc == 0 for rc, _, _ in outs), outs
    return json.loads(history.read_text())["rounds"]


def test_round_time_grows_with_protocol_rounds_times_latency(namespaces, tmp_path):  # noqa: F811
    names, hosts, shaping = namespaces
    for i in range(CLIENTS + 1):
        new_identity(i, tmp_path / "keys")
    parts, test = _data(CLIENTS)
    import numpy as np

    for k, (X, y) in enumerate(parts):
        np.savez(tmp_path / f"client{k}.npz", X=X, y=y)
    np.savez(tmp_path / "test.npz", X=test[0], y=test[1])
    relayed = shaping != "netem"   # no sch_netem in this kernel: the latency comes from the relay
    secure = _run(tmp_path, names, hosts, "secagg+", relayed)
    plain = _run(tmp_path, names, hosts, "plaintext", relayed)
    assert [r["survivors"] for r in secure + plain] == [CLIENTS] * 4
    s, p = secure[-1]["seconds"], plain[-1]["seconds"]
    latency = "relay" if relayed else "netem"
    print(f"{shaping}, {latency}: secagg+ round {s:.3f} s, plaintext round {p:.3f} s, delay {DELAY} s")
    assert s >= 0.95 * 8 * DELAY and p >= 0.95 * 2 * DELAY
    assert s - p >= 0.5 * 6 * DELAY
    assert s < 30 and p < 30   # loose: no hang, no runaway retries
