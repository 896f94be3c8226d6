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
    ('aggregator = "ckks"', "does not run over the network"),
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
