"""``mpc analytics server|client`` through ``main(argv)`` (each role in its own thread here; the
same calls run as separate processes, see docs/analytics.md)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from mpc.transport.tls import new_identity
from protocols.analytics import cli

N = 4


def _config(folder, query: str, connect: float = 4) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for i in range(N + 1):
        new_identity(i, folder / "keys")
    clients = "".join(f'[[client]]\nid = {k}\ncertificate = "keys/party{k + 1}.crt"\n\n'
                      for k in range(N))
    text = (f'[server]\naddress = "127.0.0.1:{port}"\ncertificate = "keys/party0.crt"\n\n'
            f"{clients}[query]\n{query}\nround_timeout = 3\nfirst_timeout = 10\n"
            f"connect_timeout = {connect}\n")
    (folder / "q.toml").write_text(text)
    return str(folder / "q.toml")


def _run(config: str, client_args: dict[int, list[str]], server_args=()):
    codes: dict = {}
    threads = [threading.Thread(target=lambda k=k, a=a: codes.__setitem__(
        k, cli.main(["client", "--config", config, "--id", str(k), *a])), daemon=True)
        for k, a in client_args.items()]
    for t in threads:
        t.start()
    codes["server"] = cli.main(["server", "--config", config, *server_args])
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    return codes


def test_a_mean_across_clients_from_csv_files_with_one_client_absent(tmp_path, capsys):
    config = _config(tmp_path, 'kind = "mean"\ncolumn = "steps"\nlo = 0\nhi = 20000\nresolution = 2000',
                     connect=2)
    steps = [4000, 12000, 8000, 19990]
    for k, v in enumerate(steps):
        (tmp_path / f"phone{k}.csv").write_text(f"day,steps\nmonday,{v}\n")
    codes = _run(config, {k: ["--data", str(tmp_path / f"phone{k}.csv")] for k in range(3)},
                 ["--json", str(tmp_path / "out.json")])   # client 3 never starts
    assert codes == {0: 0, 1: 0, 2: 0, "server": 0}
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["survivors"] == 3 and out["value"] == pytest.approx(8000.0)  # multiples of 10: exact
    assert "mean: 8000" in capsys.readouterr().out


def test_a_count_with_values_given_directly(tmp_path, capsys):
    config = _config(tmp_path, 'kind = "count"')
    codes = _run(config, {k: ["--value", v] for k, v in enumerate(["true", "0", "1", "yes"])})
    assert codes["server"] == 0 and all(codes[k] == 0 for k in range(N))
    assert "count: 3.0" in capsys.readouterr().out


def test_a_client_with_an_epsilon_limit_refuses_a_noiseless_query(tmp_path, capsys):
    config = _config(tmp_path, 'kind = "count"')
    codes = _run(config, {0: ["--value", "1", "--max-epsilon", "1"],
                          **{k: ["--value", "1"] for k in range(1, N)}})
    assert codes[0] == 2 and codes["server"] == 0 and codes[1] == 0
    captured = capsys.readouterr()
    assert "mpc analytics client 0: ProtocolAbort: refused: the query asks for epsilon None" \
        in captured.err
    assert "count: 3.0" in captured.out        # the three others: the refusal is a dropout


@pytest.mark.parametrize("query, message", [
    ('kind = "median"', "needs a kind"),
    ('kind = "mean"\nlo = 0', "needs lo and hi"),
    ('kind = "count"\nbuckets = 3', "unknown keys ['buckets']"),
    ('kind = "histogram"\nbuckets = 3\nround_timeout = -1', "round_timeout must be a positive"),
])
def test_bad_configs_are_refused_with_the_reason(tmp_path, capsys, query, message):
    config = _config(tmp_path, query)
    text = (tmp_path / "q.toml").read_text().replace("round_timeout = 3\n", "", 1) \
        if "round_timeout = -1" in query else None
    if text:
        (tmp_path / "q.toml").write_text(text)
    assert cli.main(["server", "--config", config]) == 2
    assert message in capsys.readouterr().err


def test_a_clients_value_is_read_and_checked_for_its_kind(tmp_path):
    (tmp_path / "d.csv").write_text("app,n\nmaps,3\n")
    assert cli.read_csv(str(tmp_path / "d.csv"), None) == "maps"
    assert cli.read_value("histogram", cli.read_csv(str(tmp_path / "d.csv"), "n")) == 3
    with pytest.raises(cli.ParameterError, match="no column 'steps'"):
        cli.read_csv(str(tmp_path / "d.csv"), "steps")
    with pytest.raises(cli.ParameterError, match="a flag"):
        cli.read_value("count", "maybe")


def test_mpc_dispatches_analytics_to_the_command(monkeypatch):
    from mpc import cli as core

    seen = []
    monkeypatch.setattr(core, "_cmd_plugin", lambda name, argv: seen.append((name, argv)) or 0)
    assert core.main(["analytics", "server", "--help"]) == 0
    assert seen == [("analytics", ["server", "--help"])]
    with pytest.raises(SystemExit) as exc:
        cli.main(["client", "--help"])
    assert exc.value.code == 0


def test_a_histogram_with_every_role_its_own_process(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    config = _config(tmp_path, 'kind = "histogram"\nbuckets = 3', connect=30)  # imports take a while
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    main = "import sys; from protocols.analytics.cli import main; sys.exit(main())"
    server = subprocess.Popen([sys.executable, "-c", main, "server", "--config", config],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    clients = [subprocess.Popen([sys.executable, "-c", main, "client", "--config", config,
                                 "--id", str(k), "--value", str(b)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k, b in enumerate([2, 0, 2, 2])]
    try:
        out, err = server.communicate(timeout=60)
        assert server.returncode == 0, err
        assert "histogram: [1.0, 0.0, 3.0]" in out and "survivors: 4 of 4" in out
        for k, c in enumerate(clients):
            c_out, c_err = c.communicate(timeout=30)
            assert c.returncode == 0 and f"client {k}: answered" in c_out, c_err
    finally:
        for p in (server, *clients):
            if p.poll() is None:
                p.kill()
