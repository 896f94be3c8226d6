"""The ``mpc`` command: keys, a local N-process run, one party per config, errors."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mpc
from mpc import cli
from mpc import config as cfgmod
from tests.mpc.transport import test_tcp_programs as progs

ROOT = Path(__file__).resolve().parents[2]


def _mpc(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "mpc.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_keys_new_and_show(tmp_path, capsys):
    assert cli.main(["keys", "new", "--party", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    fp = re.search(r"fingerprint  sha256:([0-9a-f]{64})", out).group(1)
    assert (tmp_path / "party1.key").stat().st_mode & 0o077 == 0
    assert cli.main(["keys", "show", str(tmp_path / "party1.crt")]) == 0
    assert capsys.readouterr().out.strip() == f"sha256:{fp}"
    # a second key for the same party is refused, with a reason
    assert cli.main(["keys", "new", "--party", "1", "--out", str(tmp_path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert cli.main(["keys", "new", "--party", "dealer", "--out", str(tmp_path)]) == 0


def test_local_run_of_the_example_prints_the_in_process_result(tmp_path):
    page = tmp_path / "run.json"
    proc = _mpc("run", "examples/hospital_stats.py", "--local", "3", "--transcript", str(page))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("result (all 3 parties): "))
    got = ast.literal_eval(line.split(": ", 1)[1])
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import hospital_stats
    finally:
        sys.path.pop(0)
    res = mpc.run(hospital_stats.program, 3)
    want = res.outputs[0]
    assert got["patients"] == want["patients"] == 400
    assert abs(got["mean"] - want["mean"]) < 1e-3 and abs(got["variance"] - want["variance"]) < 1e-2
    assert f"cost: {res.cost.rounds} rounds, {len(res.cost.messages)} messages" in proc.stdout
    assert "(TLS, handshakes and dealer included)" in proc.stdout
    # one transcript, merged from the three processes, with every message once
    data = json.loads(page.read_text())
    assert len(data["messages"]) == len(res.cost.messages)
    assert [p["output"] is not None for p in data["parties"]] == [True] * 3


def test_one_party_per_config_with_a_dealer(tmp_path):
    keys = tmp_path / "keys"
    for who in ("0", "1", "dealer"):
        assert cli.main(["keys", "new", "--party", who, "--out", str(keys)]) == 0
    from mpc.distributed import free_ports

    ports = free_ports(2)
    (tmp_path / "parties.toml").write_text(cfgmod.render(
        [(f"127.0.0.1:{ports[0]}", "keys/party0.crt"), (f"127.0.0.1:{ports[1]}", "keys/party1.crt")],
        dealer_certificate="keys/dealer.crt", timeout=30, name="cli-test"))
    cfg = str(tmp_path / "parties.toml")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    prog = "tests/mpc/transport/test_tcp_programs.py:arith"
    part = tmp_path / "party0.json"
    extra = [["--transcript", str(part)], []]
    procs = [subprocess.Popen([sys.executable, "-m", "mpc.cli", "run", prog, "--party", str(i),
                               "--config", cfg, "--kwargs", '{"size": 4}', *extra[i]], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    dealer = subprocess.Popen([sys.executable, "-m", "mpc.cli", "dealer", "--config", cfg], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=120) for p in procs]
    d_out, d_err = dealer.communicate(timeout=60)
    assert dealer.returncode == 0, d_err
    assert re.search(r"dealer: served \d+ requests", d_out)
    want = progs.arith_plain(4)
    for i, (out, err) in enumerate(outs):
        assert procs[i].returncode == 0, err
        assert f"party {i}: " in out and "cost (this party):" in out
        text = out.split(f"party {i}: ", 1)[1].split("\ncost")[0]
        mul = re.search(r"'mul': array\(\[([^\]]*)\]", text).group(1)
        assert np.allclose([float(v) for v in mul.split(",")], want["mul"], atol=1e-3)
    # party 0's own transcript: the messages it sent and the dealer's to it, no payloads
    data = json.loads(part.read_text())
    assert data["messages"] and {m["sender"] for m in data["messages"]} <= {0, -1}
    assert all("payload" not in m for m in data["messages"])


def test_clear_errors(tmp_path):
    proc = _mpc("run", "no/such/file.py", "--local", "2")
    assert proc.returncode == 2 and "program file 'no/such/file.py' not found" in proc.stderr
    proc = _mpc("run", "tests/mpc/transport/test_tcp_programs.py:nope", "--local", "2")
    assert proc.returncode == 2 and "has no function 'nope'" in proc.stderr
    proc = _mpc("run", "examples/hospital_stats.py")
    assert proc.returncode != 0 and "--local N, or --party I and --config FILE" in proc.stderr
    with pytest.raises(SystemExit, match="--args must be a JSON list"):
        cli.main(["run", "x.py", "--local", "2", "--args", "{}"])


def test_keys_and_program_errors_are_clear(tmp_path, capsys):
    assert cli.main(["keys", "new", "--party", "abc", "--out", str(tmp_path)]) == 2
    assert "--party must be a party number or 'dealer'" in capsys.readouterr().err
    assert cli.main(["keys", "show", str(tmp_path / "missing.crt")]) == 2
    assert "cannot read certificate" in capsys.readouterr().err
    (tmp_path / "notpem.crt").write_text("hello")
    assert cli.main(["keys", "show", str(tmp_path / "notpem.crt")]) == 2
    assert "not a PEM certificate" in capsys.readouterr().err
    bad = tmp_path / "broken.py"
    bad.write_text("def program(party):\n    return (\n")
    assert cli.main(["run", str(bad), "--local", "2"]) == 2
    assert "syntax error at line" in capsys.readouterr().err


def test_local_run_with_dealer_free_preprocessing():
    proc = _mpc("run", "tests/mpc/transport/test_tcp_programs.py:arith", "--local", "2", "--preprocessing", "ot",
                "--kwargs", '{"size": 3}')
    assert proc.returncode == 0, proc.stderr
    assert "result (all 2 parties)" in proc.stdout and "dealer: sent" not in proc.stdout
    assert "(TLS, handshakes included)" in proc.stdout and "dealer included" not in proc.stdout


def test_three_processes_make_their_own_triples_by_ot():
    # mpc run --local 3 --preprocessing ot: no dealer process, pairwise OT between the three
    proc = _mpc("run", "tests/mpc/transport/test_tcp_programs.py:arith", "--local", "3", "--preprocessing", "ot",
                "--kwargs", '{"size": 3}', timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "result (all 3 parties)" in proc.stdout and "dealer: sent" not in proc.stdout


def test_star_nodes_reads_server_and_clients_and_refuses_what_it_does_not_know(tmp_path):
    """The [server]/[[client]] sections shared by `mpc fl` and `mpc analytics` deployments."""
    from mpc.config import star_nodes
    from mpc.transport.tls import new_identity

    for i in range(3):
        new_identity(i, tmp_path / "keys")
    server = {"address": "10.0.0.1:9400", "certificate": "keys/party0.crt", "listen": "0.0.0.0"}
    clients = [{"id": k, "certificate": f"keys/party{k + 1}.crt"} for k in range(2)]
    nodes = star_nodes({"server": server, "client": clients}, tmp_path)
    assert (nodes.host, nodes.port, nodes.listen, sorted(nodes.clients)) == ("10.0.0.1", 9400, "0.0.0.0", [0, 1])
    bad = [({"server": {**server, "adress": "x"}, "client": clients}, "unknown keys"),
           ({"server": server, "client": clients[:1]}, "at least 2 clients"),
           ({"server": server, "client": [clients[0], {**clients[1], "id": 0}]}, "each client once"),
           ({"server": server, "client": [clients[0], {**clients[1], "certificate": "keys/party0.crt"}]},
            "share a certificate")]
    for data, message in bad:
        with pytest.raises(mpc.ParameterError, match=message):
            star_nodes(data, tmp_path, min_clients=2)
