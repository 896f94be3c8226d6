"""CKKS and Paillier aggregation with the server and the clients apart, over pinned TLS 1.3.

Network runs use real sockets: the roles in threads of this process (as the
SecAgg stall tests) or in processes (``mpc fl client``). The message checks
(replays, redirected or malformed messages) run on the roles' objects directly.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from ml.clients import NumpyClient
from ml.federated import cli, load_config, train
from ml.federated.he_network import HEClient, HEServer, pack_signatures
from ml.federated.plan import make_plan
from ml.models import LogisticRegression
from mpc.errors import EncodingError, IntegrityError
from mpc.transport.tls import load_certificate, new_identity

from .test_fl_network import FEATURES, PER_CLIENT, _in_threads, _run, _setup, _uploads

PAILLIER = {"key_bits": 1024, "insecure_for_testing": True}   # 2048-bit keygen is slow


def _config(tmp: Path, n: int, aggregator: str, rounds: int, **kw) -> tuple[Path, list, tuple]:
    cfg, parts, test = _setup(tmp, n, aggregator, rounds=rounds, **kw)
    if aggregator == "paillier":
        cfg.write_text(cfg.read_text() + "\n[aggregator]\nkey_bits = 1024\n"
                       "insecure_for_testing = true\n")
    return cfg, parts, test


def _model(data) -> NumpyClient:
    return NumpyClient(LogisticRegression(FEATURES), data)


def _in_process(cfg: Path, parts: list, r: int, dropped: set[int]) -> np.ndarray:
    """The in-process aggregator's sum of round ``r``'s uploads (from the initial weights)."""
    uploads, plan = _uploads(cfg, parts, r, np.zeros(FEATURES + 1))
    return plan.aggregator.aggregate(uploads, dropped=dropped).total


def _no_update_in_view(result, cfg: Path, parts: list) -> None:
    uploads, _ = _uploads(cfg, parts, 1, np.zeros(FEATURES + 1))
    for k, tag, arrays in result.views[1]:
        for a in arrays:
            for v in uploads.values():
                assert not (a.shape == v.shape and np.allclose(a, v, atol=1e-6)), (k, tag)


@pytest.mark.parametrize("aggregator", ["ckks", "paillier"])
def test_he_over_the_network_equals_in_process(tmp_path, aggregator):
    cfg, parts, test = _config(tmp_path, 3, aggregator, rounds=2)
    result, reports = _in_threads(cfg, _model(test), [_model(p) for p in parts])
    assert all(r.finished == [1, 2] and not r.refused for r in reports.values()), reports
    assert result.survivors == {1: [0, 1, 2], 2: [0, 1, 2]}
    history = train(LogisticRegression(FEATURES), parts, test, aggregator=aggregator, rounds=2,
                    local_epochs=1, batch_size=8, lr=0.2, weight_cap=PER_CLIENT, seed=7,
                    progress=False, aggregator_options=PAILLIER if aggregator == "paillier" else None)
    for a, b in zip(result.history.weights, history.weights):
        if aggregator == "paillier":    # exact fixed point: the same bits
            np.testing.assert_array_equal(a, b)
        else:                           # CKKS: each sum rounded to 2^-24 after ~2^-27 noise
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # the server saw ciphertexts, signatures, keys it cannot open and the decrypted sum only
    tags = [(k, t.split("/", 2)[2]) for k, t, _ in result.views[1]]
    assert tags[0] == (0, "he/keys") and (0, "he/sum") in tags
    assert sorted(k for k, t in tags if t == "update") == [0, 1, 2]
    _no_update_in_view(result, cfg, parts)
    state = result.history.last_result.server_state
    assert "secret" not in type(state["public_key"]).__name__.lower()


def test_cli_server_ckks_from_config_decryptor_stalls_next_survivor_decrypts(tmp_path, capsys):
    """``mpc fl server --config`` (through cli.main) with aggregator = "ckks": the lowest survivor,
    asked to decrypt, stalls past the deadline; the next one decrypts and the round completes."""
    cfg, parts, test = _config(tmp_path, 3, "ckks", rounds=1, round_timeout=1, fit_timeout=10)
    clients = [_model(p) for p in parts]
    reports: dict = {}

    def client(k: int) -> None:
        from ml.federated import run_client
        reports[k] = run_client(cfg, k, clients[k], fault=(1, "decrypt", "stall") if k == 0 else None)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    history = tmp_path / "run.json"
    assert cli.main(["server", "--config", str(cfg), "--test", str(tmp_path / "test.npz"),
                     "--history", str(history)]) == 0
    for t in threads:
        t.join(60)
    out = capsys.readouterr().out
    assert "final accuracy:" in out and "survivors 3" in out, out
    assert "decryptor client 0: no valid decrypted sum by the deadline" in out, out
    assert all(reports[k].finished == [1] for k in range(3)), reports
    import json
    weights = json.loads(history.read_text())
    assert weights["rounds"][0]["survivors"] == 3


def test_malformed_oversized_and_replayed_uploads_rejected_round_continues(tmp_path):
    """Client 1 sends a correctly signed but malformed ciphertext, client 2 one four times too large,
    in round 2 client 3 replays its round-1 message: each is refused with the reason, and the
    round sums the others, as the in-process aggregator does without them."""
    cfg, parts, test = _config(tmp_path, 4, "paillier", rounds=2)
    faults = {1: (1, "update", "garble"), 2: (1, "update", "oversize"), 3: (2, "update", "replay")}
    result, reports = _in_threads(cfg, _model(test), [_model(p) for p in parts], faults)
    assert result.survivors == {1: [0, 3], 2: [0, 1, 2]}
    notes = [m.note for m in result.history.rounds]
    assert "rejected: round 1: client 1's encrypted update: " in notes[0], notes
    assert "rejected: round 1: client 2's encrypted update: expected at most" in notes[0], notes
    assert "rejected: round 2: client 3's encrypted update: the signature does not verify for " \
           "this sender, round and key (a replayed" in notes[1], notes
    np.testing.assert_array_equal(result.totals[1], _in_process(cfg, parts, 1, {1, 2}))


def test_killed_client_processes_round_completes_with_survivors(tmp_path):
    """Processes: client 2 is SIGKILLed just before its upload; the round sums the other three."""
    cfg, parts, _ = _config(tmp_path, 4, "paillier", rounds=1, round_timeout=3, fit_timeout=8)
    arrays, meta, outs = _run(tmp_path, cfg, 4, faults={2: "1:update:kill"})
    assert outs[2][0] == -signal.SIGKILL
    assert [rc for k, (rc, _, _) in enumerate(outs) if k != 2] == [0, 0, 0], outs
    assert meta["survivors"] == {"1": [0, 1, 3]}
    np.testing.assert_array_equal(arrays["total_1"], _in_process(cfg, parts, 1, {2}))


# -- the message checks, on the roles' objects -----------------------------------------------
def _roles(tmp: Path, aggregator: str, n: int = 3) -> tuple[list[HEClient], HEServer, int]:
    for i in range(n + 1):
        new_identity(i, tmp)
    certs = {k: load_certificate(tmp / f"party{k + 1}.crt") for k in range(n)}
    digest = bytes(range(32))

    def agg():
        from ml.aggregators import make_aggregator
        a = make_aggregator(aggregator, **(PAILLIER if aggregator == "paillier" else {}))
        a.configure(n, 4, 2.0)
        return a

    clients = [HEClient.load(agg(), k, digest, certs, tmp / f"party{k + 1}.key") for k in range(n)]
    return clients, HEServer(agg(), digest, certs), 4


def _deal(clients: list[HEClient], server: HEServer, r: int) -> tuple:
    keys = clients[0].deal(r, (np.array([1, 1, 2], np.int64),))
    pub = server.agg._server_key(keys[0].tobytes())
    server.public_blob, server.pub, server.key_id = keys[0].tobytes(), pub, pub.key_id
    server.max_upload = server.agg._max_upload_bytes(pub)
    deliveries = {j: (np.array([0], np.int64), keys[0], keys[1], keys[2 + 2 * i], keys[3 + 2 * i])
                  for i, j in enumerate((1, 2))}
    for j in (1, 2):
        assert clients[j].receive_key(r, deliveries[j])
    server.holders = {k: server.key_id for k in range(3)}
    return deliveries


@pytest.mark.parametrize("aggregator", ["paillier", "ckks"])
def test_replayed_and_redirected_messages_refused(tmp_path, aggregator):
    clients, server, dim = _roles(tmp_path, aggregator)
    deliveries = _deal(clients, server, 1)
    vecs = [np.full(dim, 0.5 * (k + 1)) for k in range(3)]
    ups = [c.upload(1, v) for c, v in zip(clients, vecs)]
    checked = [server.check_upload(1, k, ups[k]) for k in range(3)]
    # round 1's upload offered in round 2, or on another client's link
    with pytest.raises(IntegrityError, match="round 2: client 0's encrypted update: the signature"):
        server.check_upload(2, 0, ups[0])
    with pytest.raises(IntegrityError, match="round 1: client 1's encrypted update: the signature"):
        server.check_upload(1, 1, ups[0])
    # the same client and round, but signed in another run's session (another config digest)
    import dataclasses
    other = dataclasses.replace(clients[0], digest=bytes(32)).upload(1, vecs[0])
    with pytest.raises(IntegrityError, match="round 1: client 0's encrypted update: the signature"):
        server.check_upload(1, 0, other)
    # malformed bytes, oversized, not a byte array
    blob = ups[0][0].copy()
    with pytest.raises(EncodingError, match="expected at most"):
        server.check_upload(1, 0, (np.zeros(server.max_upload + 1, np.uint8), ups[0][1]))
    garbled = blob.copy()
    garbled[len(blob) // 2] ^= 1   # one bit flipped: its signature no longer verifies
    with pytest.raises(IntegrityError, match="client 0's encrypted update: the signature"):
        server.check_upload(1, 0, (garbled, ups[0][1]))
    with pytest.raises(EncodingError, match="client 0's encrypted update"):
        server.check_upload(1, 0, (blob.astype(np.int64), ups[0][1]))
    with pytest.raises(EncodingError, match="a ciphertext and a signature"):
        server.check_upload(1, 0, (blob,))
    # a key delivery replayed in a later round, or handed to another client
    before = clients[2].key_id
    assert clients[2].receive_key(2, deliveries[2]) == ()
    assert clients[2].receive_key(1, deliveries[1]) == ()
    assert "does not verify" in clients[2].refused[0] and clients[2].key_id == before
    # decryption: once per round, only a request signed for this round
    total = server.agg._sum([c[0] for c in checked])
    request = (np.frombuffer(total, np.uint8).copy(), np.arange(3, dtype=np.int64),
               np.frombuffer(b"".join(c[1] for c in checked), np.uint8).reshape(3, 32).copy(),
               pack_signatures([c[2] for c in checked]))
    assert clients[1].decrypt(2, request) == ()
    assert "round 2: refused to decrypt: round 2: client 0's upload" in clients[1].refused[-1]
    got, _ = clients[1].decrypt(1, request)
    np.testing.assert_allclose(got, np.sum(vecs, axis=0), atol=2e-6)
    assert clients[1].decrypt(1, request) == ()
    assert "second decryption request" in clients[1].refused[-1]
    # a "sum" of one client's ciphertext is refused (at least 2 distinct signed uploads)
    single = (request[0], request[1][:1], request[2][:1], request[3][:1])
    assert clients[2].decrypt(1, single) == ()
    assert "at least 2 distinct clients" in clients[2].refused[-1]


def test_paillier_decryptor_checks_the_number_of_summands(tmp_path):
    clients, server, dim = _roles(tmp_path, "paillier")
    _deal(clients, server, 1)
    ups = [c.upload(1, np.ones(dim)) for c in clients]
    checked = [server.check_upload(1, k, ups[k]) for k in range(3)]
    one = ups[0][0].copy()   # client 0's ciphertext alone, presented as the sum of three
    request = (one, np.arange(3, dtype=np.int64),
               np.frombuffer(b"".join(c[1] for c in checked), np.uint8).reshape(3, 32).copy(),
               pack_signatures([c[2] for c in checked]))
    assert clients[1].decrypt(1, request) == ()
    assert "holds 1 summand(s)" in clients[1].refused[-1]


def test_config_accepts_he_aggregators(tmp_path):
    cfg, _, _ = _config(tmp_path, 2, "paillier", rounds=1)
    config = load_config(cfg)
    assert config.aggregator == "paillier" and config.aggregator_options == PAILLIER
    plan = make_plan(config.settings, [PER_CLIENT] * 2, FEATURES + 1, config.aggregator,
                     config.aggregator_options, None, keys=False)
    assert plan.aggregator._client_key is None   # a deployed role makes no key at start-up


def test_late_client_receives_the_key_from_a_holder(tmp_path, monkeypatch):
    """Client 3 connects only after round 1: in round 2 the lowest key holder (client 0) deals it
    the run's key through the server, and its upload is in round 2's sum."""
    import time

    import ml.federated.server as server_module
    from ml.federated import run_client, serve

    cfg, parts, test = _config(tmp_path, 4, "ckks", rounds=2)
    cfg.write_text(cfg.read_text().replace("connect_timeout = 60", "connect_timeout = 1"))
    hubs: list = []

    class RecordedHub(server_module.Hub):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            hubs.append(self)

    monkeypatch.setattr(server_module, "Hub", RecordedHub)
    reports: dict = {}

    def client(k: int) -> None:
        reports[k] = run_client(cfg, k, _model(parts[k]))

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(4)]
    for t in threads[:3]:
        t.start()

    def on_round(metrics, res) -> None:
        if metrics.round == 1:
            threads[3].start()
            deadline = time.monotonic() + 30
            while 4 not in hubs[0].connected() and time.monotonic() < deadline:
                time.sleep(0.05)

    result = serve(cfg, _model(test), on_round=on_round)
    for t in threads:
        t.join(60)
    assert result.survivors == {1: [0, 1, 2], 2: [0, 1, 2, 3]}
    tags = [(k, t.split("/", 2)[2], len(a)) for k, t, a in result.views[2]]
    assert tags[:2] == [(0, "he/keys", 4), (3, "he/keyok", 2)], tags   # one recipient: client 3
    assert reports[3].finished == [2] and not reports[3].refused


def test_any_flipped_byte_of_an_upload_is_refused(tmp_path):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    clients, server, dim = _roles(tmp_path, "paillier")
    _deal(clients, server, 1)
    blob, sig = clients[2].upload(1, np.linspace(-1, 1, dim))
    server.check_upload(1, 2, (blob, sig))

    @settings(max_examples=25, deadline=None)
    @given(st.sampled_from(["blob", "sig"]), st.integers(0, 10**6), st.integers(1, 255))
    def flipped(which: str, pos: int, bits: int) -> None:
        a, b = blob.copy(), sig.copy()
        target = a if which == "blob" else b
        target[pos % target.size] ^= bits
        with pytest.raises((EncodingError, IntegrityError), match="round 1: client 2's encrypted update"):
            server.check_upload(1, 2, (a, b))

    flipped()


def test_key_dealer_stalls_round_skipped_next_round_deals_again(tmp_path):
    """The dealer of round 1 (client 0) stalls past the deadline: nobody gets a key, the round is
    skipped with the reason (the server does not hang); round 2 deals a key and completes."""
    cfg, parts, test = _config(tmp_path, 3, "ckks", rounds=2, round_timeout=1, fit_timeout=2)
    result, reports = _in_threads(cfg, _model(test), [_model(p) for p in parts],
                                  faults={0: (1, "deal", "stall")})
    notes = [m.note for m in result.history.rounds]
    assert notes[0].startswith("round skipped: key dealer client 0 did not deal the key"), notes
    assert result.survivors == {2: [0, 1, 2]}
    assert all(2 in r.finished for r in reports.values()), reports


def test_dealt_public_key_with_a_bad_digest_is_a_note_not_a_server_crash(tmp_path):
    clients, server, _ = _roles(tmp_path, "paillier")

    class Link:   # the dealer's reply with one byte of its public key flipped
        def send(self, u, tag, arrays):
            self.req = arrays

        def recv(self, u, tag, timeout):
            reply = list(clients[0].deal(1, self.req))
            reply[0] = reply[0].copy()
            reply[0][len(reply[0]) // 2] ^= 1
            return tuple(reply)

    notes: list[str] = []
    server.distribute(Link(), 1, [0, 1, 2], (1.0, 1.0), notes)
    assert server.pending == [] and not server.key_id
    assert len(notes) == 1 and "key dealer client 0" in notes[0] and "digest" in notes[0]


def test_decryption_request_bytes_per_survivor_match_the_module_cost():
    import re

    from ml.federated import he_network
    from ml.he_aggregators import PaillierAggregator

    stated = int(re.search(r"and (\d+) bytes per survivor", " ".join(he_network.__doc__.split()))[1])

    class Link:   # records the request; no decryptor answers
        def send(self, u, tag, arrays):
            self.size = sum(a.nbytes for a in arrays)

        def recv(self, u, tag, timeout):
            return None

    sizes = []
    for n in (2, 3):
        server = HEServer(PaillierAggregator(), bytes(32), {})
        link = Link()
        server.decrypt(link, 1, list(range(n)), list(range(n)), b"sum", [bytes(32)] * n,
                       [np.zeros(70, np.uint8)] * n, 0.0, [])
        sizes.append(link.size)
    assert sizes[1] - sizes[0] == stated
