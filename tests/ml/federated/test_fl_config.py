"""The federated deployment's config file and message tags (no processes)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ml.clients import NumpyClient
from ml.federated import load_config, run_client, serve
from ml.federated.network import recv
from ml.models import LogisticRegression
from mpc.errors import EncodingError, ParameterError, PeerTimeout, TransportError
from mpc.transport.tls import new_identity
from mpc.transport.wire import encode_frame


def _write(tmp: Path, training: str, port: int = 9, folder: str = "keys") -> Path:
    for i in range(3):
        if not (tmp / folder / f"party{i}.crt").exists():
            new_identity(i, tmp / folder)
    text = (f'[server]\naddress = "127.0.0.1:{port}"\ncertificate = "{folder}/party0.crt"\n'
            + "".join(f'[[client]]\nid = {k}\ncertificate = "{folder}/party{k + 1}.crt"\n'
                      for k in range(2))
            + f"[training]\n{training}\n[model]\nkind = \"logistic\"\nfeatures = 2\n")
    path = tmp / f"{folder}-{abs(hash(training))}.toml"
    path.write_text(text)
    return path


def test_config_digest_ignores_paths_and_names_every_setting(tmp_path):
    a = load_config(_write(tmp_path, "rounds = 2\nweight_cap = 5"))
    (tmp_path / "copy").mkdir()
    for f in (tmp_path / "keys").iterdir():
        (tmp_path / "copy" / f.name).write_bytes(f.read_bytes())
    b = load_config(_write(tmp_path, "rounds = 2\nweight_cap = 5", folder="copy"))
    c = load_config(_write(tmp_path, "rounds = 3\nweight_cap = 5"))
    assert a.digest == b.digest and a.digest != c.digest
    assert a.settings.rounds == 2 and a.n_clients == 2 and a.aggregator == "plaintext"


@pytest.mark.parametrize("training, match", [
    ('aggregator = "sum"', "does not run over the network"),
    ("round_timeout = 0", "round_timeout must be a number above 0"),
    ("epochs = 3", "unknown keys"),
])
def test_config_refuses_with_the_reason(tmp_path, training, match):
    with pytest.raises(ParameterError, match=match):
        load_config(_write(tmp_path, training))


def test_server_needs_a_public_weight_cap(tmp_path):
    cfg = _write(tmp_path, "rounds = 1")
    with pytest.raises(ParameterError, match="weight_cap"):
        serve(cfg, NumpyClient(LogisticRegression(2), (np.zeros((1, 2)), np.zeros(1))))


class _Frames:
    """An endpoint that hands out the given frames from 'client 0' (node 1)."""

    def __init__(self, *frames: bytes) -> None:
        self.frames = list(frames)

    def name(self, p: int) -> str:
        return "client 0"

    def recv_frame(self, frm: int, timeout: float, what: str = "") -> bytes:
        if not self.frames:
            raise PeerTimeout(f"nothing from client 0 ({what})")
        return self.frames.pop(0)


def test_a_late_message_of_an_earlier_round_is_skipped_not_read_as_this_one():
    ep = _Frames(encode_frame("fl/1/secagg/masked", [np.ones(3)]),
                 encode_frame("fl/2/secagg/masked", [np.full(3, 2.0)]))
    (got,) = recv(ep, 1, "fl/2/secagg/masked", 1.0)
    assert got.tolist() == [2.0, 2.0, 2.0]


def test_a_message_under_another_tag_is_refused_naming_both():
    ep = _Frames(encode_frame("fl/3/secagg/masked", [np.ones(3)]))
    with pytest.raises(EncodingError, match="'fl/3/secagg/masked' where 'fl/2/secagg/masked'"):
        recv(ep, 1, "fl/2/secagg/masked", 1.0)
    ep = _Frames(encode_frame("fl/1/secagg/keys", [np.ones(3)]))
    with pytest.raises(EncodingError, match="client 0 sent 'fl/1/secagg/keys'"):
        recv(ep, 1, "fl/1/secagg/request", 1.0, skip_older=False)


def test_a_client_with_another_config_is_refused_with_the_reason(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mine = _write(tmp_path, "rounds = 1\nweight_cap = 5\nconnect_timeout = 5", port=port)
    other = _write(tmp_path, "rounds = 2\nweight_cap = 5\nconnect_timeout = 5", port=port)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            run_client(other, 0, NumpyClient(LogisticRegression(2), (np.zeros((2, 2)), np.zeros(2))))
        except TransportError as exc:
            errors.append(exc)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    result = serve(mine, NumpyClient(LogisticRegression(2), (np.zeros((2, 2)), np.zeros(2))))
    t.join(30)
    assert errors and "another session" in str(errors[0])
    assert any("another session" in r for r in result.refused), result.refused
    assert result.history.rounds[0].skipped   # nobody reached: the round is skipped, not hung


@pytest.mark.parametrize("role", ["server", "client"])
def test_fl_commands_have_help(role):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mpc.cli", "fl", role, "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--config" in proc.stdout


@pytest.mark.parametrize("mode", ["central", "distributed"])
def test_dp_over_the_network_accounts_like_train(tmp_path, mode):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 2))
    y = (X[:, 0] > 0).astype(int)
    parts = [(X[:30], y[:30]), (X[30:60], y[30:60])]
    training = 'rounds = 2\naggregator = "secagg"\nconnect_timeout = 30'
    cfg = _write(tmp_path, training, port=port)
    cfg.write_text(cfg.read_text() + f'[dp]\nmode = "{mode}"\nepsilon = 20.0\nclip = 1.0\n'
                   + "[aggregator]\ndropout_bound = 0.0\n")
    clients = [NumpyClient(LogisticRegression(2), p) for p in parts]
    threads = [threading.Thread(target=run_client, args=(cfg, k, clients[k]), daemon=True)
               for k in range(2)]
    for t in threads:
        t.start()
    result = serve(cfg, NumpyClient(LogisticRegression(2), (X[60:], y[60:])))
    for t in threads:
        t.join(60)
    from ml.federated import DPConfig, train

    history = train(LogisticRegression(2), parts, (X[60:], y[60:]), aggregator="secagg", rounds=2,
                    dp=DPConfig(mode, epsilon=20.0, clip=1.0), progress=False,
                    aggregator_options={"dropout_bound": 0.0})
    got = [r.epsilon for r in result.history.rounds]
    assert all(not r.skipped for r in result.history.rounds)
    assert got == [r.epsilon for r in history.rounds] and 0 < got[-1] <= 20.0


def test_plaintext_server_drops_an_update_outside_the_public_bound(tmp_path):
    """A client that skips the clipping (here: a raw link) is dropped, as the in-process
    aggregator refuses it; the round goes on with the others."""
    import socket

    from ml.federated.network import recv, send
    from mpc.transport.mesh import Node
    from mpc.transport.star import dial
    from mpc.transport.tls import load_certificate

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _write(tmp_path, "rounds = 1\nweight_cap = 5\nconnect_timeout = 20\nfit_timeout = 5",
                 port=port)
    config = load_config(cfg)
    data = (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))

    def rogue() -> None:
        ep = dial(2, Node(0, "127.0.0.1", port, load_certificate(tmp_path / "keys" / "party0.crt")),
                  cert=str(tmp_path / "keys" / "party2.crt"), key=str(tmp_path / "keys" / "party2.key"),
                  session=config.session, digest=config.digest, timeout=20)
        weights, _ = recv(ep, 0, "fl/1/fit", 20)
        send(ep, 0, "fl/1/update", (np.full(weights.size + 1, 1e6),))
        recv(ep, 0, "fl/done", 20)
        ep.close()

    threads = [threading.Thread(target=run_client, args=(cfg, 0, NumpyClient(LogisticRegression(2), data)),
                                daemon=True), threading.Thread(target=rogue, daemon=True)]
    for t in threads:
        t.start()
    result = serve(cfg, NumpyClient(LogisticRegression(2), data))
    for t in threads:
        t.join(30)
    assert result.survivors == {1: [0]}
    assert [k for k, tag, _ in result.views[1]] == [0, 1]   # it was received, then refused
