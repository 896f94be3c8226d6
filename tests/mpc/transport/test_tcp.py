"""TCP + TLS transport: same results and costs as in memory, pinned certificates, faults."""

import os
import socket
import ssl
import threading
import time

import numpy as np
import pytest

import mpc
from mpc import config as cfgmod
from mpc.distributed import (encode_value, decode_value, execute_party, make_local_config,
                             run_local)
from mpc.errors import (EncodingError, IntegrityError, ParameterError, PeerTimeout, ProtocolAbort,
                        ProtocolError,
                        TransportError)
from mpc.transport import mesh, tcp
from mpc.preprocessing.remote_dealer import RemoteDealer
from mpc.transport.tls import context, fingerprint, load_certificate, new_identity
from mpc.transport.wire import WireLimits, decode_frame, encode_frame
from tests.mpc.transport import test_tcp_programs as progs

SESSION = b"testsess"


# -- helpers ----------------------------------------------------------------------
def _mesh(tmp_path, n=2, limits=None, timeout=10.0):
    """n endpoints connected over loopback TLS (threads of this process)."""
    ids = [new_identity(i, tmp_path) for i in range(n)]
    ports = _ports(n)
    nodes = {i: mesh.Node(i, "127.0.0.1", ports[i], load_certificate(ids[i].certificate))
             for i in range(n)}
    eps = [None] * n
    errs = []

    def go(i):
        try:
            eps[i] = mesh.connect(i, nodes, cert=str(ids[i].certificate), key=str(ids[i].key),
                                 session=SESSION, timeout=timeout,
                                 limits=limits or WireLimits())
        except Exception as exc:  # noqa: BLE001
            errs.append(exc)

    ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise errs[0]
    return eps, ids, nodes


def _ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _raw_record(ep, to, kind, length, body):
    """Write a record with an arbitrary header through ``ep``'s TLS channel (a misbehaving peer)."""
    c = ep._conns[to]
    with c.lock:
        c.obj.write(tcp.RECORD.pack(kind, length) + body)
        c.out.append(memoryview(c.outbio.read()))
    ep._wake()


def _close_all(eps):
    ts = [threading.Thread(target=e.close) for e in eps if e is not None]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _threads(tmp_path, n, program, timeout=10.0, names=None, dealer=False):
    """Run ``program`` for n parties as threads over TCP; return every outcome (never raises)."""
    conf = cfgmod.load(make_local_config(tmp_path, n, dealer=dealer, timeout=timeout))
    outcomes = [None] * n

    def body(i):
        outcomes[i] = execute_party(program, conf, i, name=names[i] if names else "t")

    ts = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return outcomes


# -- config and keys ----------------------------------------------------------------
def test_keys_are_private_pinned_and_not_overwritten(tmp_path):
    files = new_identity(0, tmp_path)
    assert oct(files.key.stat().st_mode & 0o777) == "0o600"
    assert files.fingerprint == fingerprint(files.certificate.read_bytes())
    assert files.fingerprint == fingerprint(load_certificate(files.certificate))
    with pytest.raises(ParameterError, match="refusing to overwrite"):
        new_identity(0, tmp_path)
    with pytest.raises(ParameterError, match="dealer"):
        new_identity("-1", tmp_path)
    # Overwriting makes a fresh private file: not the old file's mode, not a link's target.
    files.key.chmod(0o644)
    again = new_identity(0, tmp_path, overwrite=True)
    assert oct(again.key.stat().st_mode & 0o777) == "0o600"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "party0.key").symlink_to(victim)
    new_identity(0, linked, overwrite=True)
    assert victim.read_text() == "keep me" and not (linked / "party0.key").is_symlink()


def test_config_round_trip_and_errors(tmp_path):
    path = make_local_config(tmp_path, 3, timeout=7)
    conf = cfgmod.load(path)
    assert conf.n == 3 and conf.dealer is not None and conf.dealer_id == 3 and conf.timeout == 7.0
    assert [p.id for p in conf.parties] == [0, 1, 2]
    assert conf.digest() == cfgmod.load(path).digest()
    text = path.read_text()
    for bad, msg in [
        (text.replace("id = 2", "id = 1"), "party ids must be 0..2"),
        (text.replace('timeout = 7.0', 'timeout = -1'), "timeout must be"),
        (text.replace("127.0.0.1:", "127.0.0.1-"), "address must be"),
        (text + "\n[extra]\n", "unknown sections"),
        (text.replace("keys/party1.crt", "keys/party0.crt"), "share a certificate"),
        (text.replace("keys/party1.crt", "keys/missing.crt"), "cannot read certificate"),
        ("[[party]\n", "not valid TOML"),
    ]:
        (tmp_path / "bad.toml").write_text(bad)
        with pytest.raises(ParameterError, match=msg):
            cfgmod.load(tmp_path / "bad.toml")


def test_result_values_round_trip_without_pickle():
    value = {"a": np.arange(6, dtype=np.uint64).reshape(2, 3), "b": (1, 2.5, float("nan")),
             "c": [None, True, "x"], 3: np.float64(0.5)}
    back = decode_value(encode_value(value))
    assert np.array_equal(back["a"], value["a"]) and back["a"].dtype == np.uint64
    assert back["b"][:2] == (1, 2.5) and np.isnan(back["b"][2])
    assert back["c"] == [None, True, "x"] and back[3] == 0.5
    with pytest.raises(EncodingError):
        decode_value({"$array": "|O", "shape": [1], "data": ""})


# -- the transport ------------------------------------------------------------------
def test_frames_cross_intact_and_report_tls_wire_bytes(tmp_path):
    eps, _, _ = _mesh(tmp_path, 2)
    try:
        big = np.random.default_rng(0).integers(0, 2**63, 300_000, dtype=np.uint64)
        frame = encode_frame("big", [big], session=SESSION)
        small = encode_frame("small", [np.arange(3, dtype=np.int32)], session=SESSION)
        wire_big = eps[0].send_frame(1, frame)
        wire_small = eps[1].send_frame(0, small)
        assert bytes(eps[1].recv_frame(0, 5, "big")) == frame
        assert bytes(eps[0].recv_frame(1, 5, "small")) == small
        # record header (5) + TLS 1.3 records (22 bytes each, at most 16 KiB of plaintext)
        records = -(-(len(frame) + 5) // 16384)
        assert wire_big == len(frame) + 5 + 22 * records
        assert wire_small == len(small) + 5 + 22
    finally:
        _close_all(eps)
    sent, received = eps[0].bytes_on_socket()[1]
    assert sent > wire_big and received > wire_small  # handshake included


@pytest.mark.parametrize("n", [2, 3, 5])
def test_arithmetic_over_tcp_threads_matches_memory_exactly_in_cost(tmp_path, n):
    res_tcp = run_local(progs.arith, n, processes=False, timeout=20)
    res_mem = mpc.run(progs.arith, n)
    want = progs.arith_plain()
    for out in res_tcp.outputs:
        for k in want:
            assert np.allclose(out[k], want[k], atol=1e-3), k
    _same_cost(res_tcp.cost, res_mem.cost)


def test_dealer_free_ot_preprocessing_over_tcp(tmp_path):
    # Two parties on a network make their own triples by OT: no dealer process, same results
    # and the same online cost as in memory with the same source.
    res_tcp = run_local(progs.arith, 2, processes=False, timeout=30, preprocessing="ot")
    res_mem = mpc.run(progs.arith, 2, preprocessing="ot")
    want = progs.arith_plain()
    for out in res_tcp.outputs:
        for k in want:
            assert np.allclose(out[k], want[k], atol=1e-3), k
    assert -1 not in res_tcp.cost.bytes_sent                 # nobody but the two parties spoke
    assert res_tcp.cost.phases()["compute"].rounds == res_mem.cost.phases()["compute"].rounds
    # three parties make their own triples too (every pair runs its OT extension)
    res3 = run_local(progs.arith, 3, processes=False, timeout=60, preprocessing="ot", kwargs={"size": 4})
    for out in res3.outputs:
        for k, v in progs.arith_plain(4).items():
            assert np.allclose(out[k], v, atol=1e-3), k
    assert -1 not in res3.cost.bytes_sent
    assert all(res3.cost.phases()["offline"].bytes_sent[p] > 0 for p in range(2))
    with pytest.raises(ParameterError, match="exactly 2 parties"):   # Paillier stays two-party
        run_local(progs.arith, 3, processes=False, timeout=10, preprocessing="he")
    conf = cfgmod.load(make_local_config(tmp_path, 2, dealer=True, timeout=5))
    refused = execute_party(progs.arith, conf, 0, preprocessing="ot")
    assert isinstance(refused.error, ParameterError) and "[dealer]" in str(refused.error)


def test_arithmetic_between_processes_matches_memory(tmp_path):
    res_tcp = run_local("tests/mpc/transport/test_tcp_programs.py:arith", 3, timeout=30, kwargs={"size": 5})
    res_mem = mpc.run(progs.arith, 3, kwargs={"size": 5})
    want = progs.arith_plain(5)
    for out in res_tcp.outputs:
        for k in want:
            assert np.allclose(out[k], want[k], atol=1e-3), k
    _same_cost(res_tcp.cost, res_mem.cost)
    # TLS wire bytes exceed the frames' own size; socket totals add the handshakes
    tcp_sent = [m for m in res_tcp.cost.messages if m.sender >= 0]
    assert all(m.wire_bytes >= m.payload_bytes + 27 for m in tcp_sent)
    assert all(sum(s for s, _ in per.values()) > 1000 for per in res_tcp.socket_bytes.values())


def _same_cost(a, b):
    assert a.rounds == b.rounds
    assert a.bytes_sent == b.bytes_sent and a.bytes_received == b.bytes_received
    key = lambda m: (m.round, m.sender, m.receiver, m.tag, m.phase, m.payload_bytes)  # noqa: E731
    assert sorted(map(key, a.messages)) == sorted(map(key, b.messages))
    assert {k: v.rounds for k, v in a.phases().items()} == {k: v.rounds for k, v in b.phases().items()}


# -- authentication -----------------------------------------------------------------
def _listening_party0(folder, timeout):
    """Party 0 of a 2-party mesh, connecting in a thread (box["ep"]); returns ids, port, nodes."""
    ids = [new_identity(i, folder) for i in range(2)]
    port = _ports(1)[0]
    nodes = {i: mesh.Node(i, "127.0.0.1", port if i == 0 else 1, load_certificate(ids[i].certificate))
             for i in range(2)}
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("ep", mesh.connect(
        0, nodes, cert=str(ids[0].certificate), key=str(ids[0].key), session=SESSION, timeout=timeout)))
    t.start()
    return ids, port, nodes, box, t


def _dial(port):
    for _ in range(100):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nobody listens on port {port}")


def test_unknown_certificate_is_refused_and_the_session_still_runs(tmp_path):
    ids, port, nodes, box, t = _listening_party0(tmp_path / "ok", 10)
    intruder = new_identity(1, tmp_path / "intruder")
    # The intruder trusts party 0's real certificate but presents its own.
    ctx = context(False, intruder.certificate, intruder.key, [nodes[0].der])
    raw = _dial(port)
    try:
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"x" * 64)
            refused = s.recv(64) == b""  # the connection closes...
    except (ssl.SSLError, ConnectionError):
        refused = True  # ...or the handshake ends with an alert
    assert refused
    # The real party 1 still gets in.
    ep1 = mesh.connect(1, nodes, cert=str(ids[1].certificate), key=str(ids[1].key), session=SESSION,
                      timeout=10)
    t.join()
    ep0 = box["ep"]
    assert any("certificate" in r or "alert" in r.lower() or "ssl" in r.lower() for r in ep0.refused)
    ep1.send_frame(0, encode_frame("hi", [], session=SESSION))
    assert bytes(ep0.recv_frame(1, 5, "hi")) == encode_frame("hi", [], session=SESSION)
    _close_all([ep0, ep1])


def test_silent_strangers_do_not_hold_up_the_session(tmp_path):
    # Strangers connect to party 0's port first and say nothing. Each accepted connection
    # shakes hands in its own thread, so the real party 1 still gets in at once.
    ids, port, nodes, box, t = _listening_party0(tmp_path, 6)
    strangers = [_dial(port) for _ in range(3)]
    ep1 = mesh.connect(1, nodes, cert=str(ids[1].certificate), key=str(ids[1].key), session=SESSION,
                       timeout=6)
    t.join()
    ep0 = box["ep"]
    ep1.send_frame(0, encode_frame("hi", [], session=SESSION))
    assert bytes(ep0.recv_frame(1, 5, "hi")) == encode_frame("hi", [], session=SESSION)
    for s in strangers:
        s.close()
    _close_all([ep0, ep1])


def test_more_silent_strangers_than_handshake_slots_do_not_keep_a_party_out(tmp_path):
    # 40 silent connections from one address (more than the 32 slots): beyond the per-address
    # limit they are closed at once, the others must send their first bytes within 2 s;
    # the real party 1, from the same address, gets in well within the session's timeout.
    assert 40 > mesh.MAX_PENDING_HANDSHAKES
    ids, port, nodes, box, t = _listening_party0(tmp_path, 6)
    strangers = [_dial(port) for _ in range(40)]
    ep1 = mesh.connect(1, nodes, cert=str(ids[1].certificate), key=str(ids[1].key), session=SESSION,
                       timeout=6)
    t.join()
    ep0 = box["ep"]
    assert any("already pending" in r for r in ep0.refused)
    assert any("sent nothing" in r for r in ep0.refused)
    ep1.send_frame(0, encode_frame("hi", [], session=SESSION))
    assert bytes(ep0.recv_frame(1, 5, "hi")) == encode_frame("hi", [], session=SESSION)
    for s in strangers:
        s.close()
    _close_all([ep0, ep1])


def test_connections_from_addresses_of_no_configured_peer_are_refused(tmp_path):
    # Party 1 is configured at 127.0.0.2 but dials from 127.0.0.1: party 0 refuses it unread.
    ids = [new_identity(i, tmp_path) for i in range(2)]
    port = _ports(1)[0]
    nodes = {0: mesh.Node(0, "127.0.0.1", port, load_certificate(ids[0].certificate)),
             1: mesh.Node(1, "127.0.0.2", 1, load_certificate(ids[1].certificate))}
    t = threading.Thread(target=lambda: pytest.raises(PeerTimeout, mesh.connect, 1, nodes,
                                                      cert=str(ids[1].certificate),
                                                      key=str(ids[1].key), session=SESSION, timeout=3))
    t.start()
    with pytest.raises(PeerTimeout, match="not the address of a node that dials party 0"):
        mesh.connect(0, nodes, cert=str(ids[0].certificate), key=str(ids[0].key), session=SESSION,
                     timeout=3)
    t.join()
    assert mesh.peer_addresses(["127.0.0.2", "localhost"]) >= {"127.0.0.2", "127.0.0.1"}
    assert mesh.peer_addresses(["0.0.0.0"]) is None


def test_dealer_stops_when_a_party_fails_while_the_last_one_is_silent(tmp_path):
    # The dealer only reads the last party's requests. Party 0 fails; party 1 (the last)
    # goes silent for 8 s. The dealer must stop with party 0's failure, not wait for party 1.
    from mpc.preprocessing.remote_dealer import serve_dealer

    conf = cfgmod.load(make_local_config(tmp_path, 2, dealer=True, timeout=1.0))
    box = {}

    def dealer():
        t0 = time.monotonic()
        try:
            serve_dealer(conf)
        except Exception as exc:  # noqa: BLE001
            box["error"] = exc
        box["seconds"] = time.monotonic() - t0

    def program(party):
        if party.id == 0:
            raise RuntimeError("party 0 broke")
        time.sleep(8)

    t = threading.Thread(target=dealer)
    t.start()
    outcomes = [None, None]
    parties = [threading.Thread(target=lambda i=i: outcomes.__setitem__(
        i, execute_party(program, conf, i, name="t"))) for i in range(2)]
    for p in parties:
        p.start()
    t.join(30)
    assert isinstance(box.get("error"), ProtocolAbort) and "0" in str(box["error"])
    assert box["seconds"] < 6
    for p in parties:
        p.join()


def test_party_dialing_an_impostor_refuses_it(tmp_path):
    ids = [new_identity(i, tmp_path / "ok") for i in range(2)]
    impostor = new_identity(0, tmp_path / "impostor")
    port = _ports(1)[0]
    real = {i: mesh.Node(i, "127.0.0.1", port, load_certificate(ids[i].certificate)) for i in range(2)}
    # The impostor listens as party 0, trusting party 1, with a certificate nobody pinned.
    fake = dict(real)
    fake[0] = mesh.Node(0, "127.0.0.1", port, load_certificate(impostor.certificate))
    t = threading.Thread(target=lambda: pytest.raises(Exception, mesh.connect, 0, fake,
                                                      cert=str(impostor.certificate),
                                                      key=str(impostor.key), session=SESSION,
                                                      timeout=1.5))
    t.start()
    with pytest.raises(TransportError, match="TLS with node 0"):
        mesh.connect(1, real, cert=str(ids[1].certificate), key=str(ids[1].key), session=SESSION,
                    timeout=3)
    t.join()


def test_parties_running_different_programs_fail_fast(tmp_path):
    outs = _threads(tmp_path, 2, lambda party: party.exchange("x", np.zeros(1)),
                    names=["prog_a", "prog_b"], timeout=5)
    assert all(isinstance(o.error, TransportError) for o in outs)
    assert any("different program" in str(o.error) for o in outs)


# -- faults ----------------------------------------------------------------------
def test_malformed_frame_names_peer_and_round(tmp_path):
    eps, _, _ = _mesh(tmp_path, 2)
    try:
        party = mpc.Party(0, 2, eps[0], session=SESSION, timeout=5)
        eps[1].send_frame(0, b"not a frame at all, but long enough for a header")
        with pytest.raises(EncodingError, match=r"party 0: bad frame from party 1 while waiting for "
                                                r"'x' \(round 0\).*bad magic"):
            party.recv(1, "x")
        good = encode_frame("x", [np.ones(4)], session=SESSION)
        eps[1].send_frame(0, good[:-3])  # a frame whose payload is cut short
        with pytest.raises(EncodingError, match="truncated frame 'x'"):
            party.recv(1, "x")
        eps[1].send_frame(0, encode_frame("y", [], session=SESSION))  # out of order
        with pytest.raises(ProtocolError, match="expected 'x' from party 1 but received 'y'"):
            party.recv(1, "x")
    finally:
        _close_all(eps)


def test_oversized_record_refused_before_allocation(tmp_path):
    eps, _, _ = _mesh(tmp_path, 2, limits=WireLimits(max_frame_bytes=4096))
    try:
        party = mpc.Party(0, 2, eps[0], session=SESSION, timeout=5)
        # announce 2 GiB but send 10 bytes: refused from the header alone
        _raw_record(eps[1], 0, tcp.DATA, 2**31, b"0123456789")
        with pytest.raises(EncodingError, match=r"oversized frame of 2147483648 bytes \(limit 4096\); "
                                                r"refused before reading it.*'x' \(round 0\)"):
            party.recv(1, "x")
        assert 1 in party.dropped_peers()  # the stream cannot be trusted any more
        with pytest.raises(EncodingError):  # sticky
            party.recv(1, "x")
        with pytest.raises(EncodingError, match="exceeds the limit"):
            eps[0].send_frame(1, bytes(5000))
    finally:
        _close_all(eps)


def test_unknown_record_kind_and_truncated_record(tmp_path):
    eps, _, _ = _mesh(tmp_path, 3)
    try:
        _raw_record(eps[1], 0, 7, 0, b"")
        with pytest.raises(EncodingError, match="party 1 sent a record of unknown kind 7"):
            eps[0].recv_frame(1, 5, "'x' (round 3)")
        # party 2 announces 100 bytes, sends 10, then its connection dies
        _raw_record(eps[2], 0, tcp.DATA, 100, b"0123456789")
        time.sleep(0.2)
        eps[2]._shutdown()
        with pytest.raises(TransportError, match=r"party 2 disconnected while party 0 waited for 'x' \(round 3\)"):
            eps[0].recv_frame(2, 5, "'x' (round 3)")
        assert eps[0].dropped_peers() == {1, 2}
    finally:
        _close_all(eps)


def test_stalled_peer_times_out_naming_it(tmp_path):
    def program(party):
        party.exchange("first", np.zeros(2))
        if party.id == 1:
            time.sleep(2.5)  # stalls past the 1 s timeout, then leaves
            return None
        return party.recv(1, "second")

    t0 = time.monotonic()
    outs = _threads(tmp_path, 3, program, timeout=1.0)
    assert time.monotonic() - t0 < 15
    for i in (0, 2):
        assert isinstance(outs[i].error, PeerTimeout)
        assert f"party {i} waited 1 s for 'second' (round 1) from party 1" in str(outs[i].error)


def test_crashing_party_aborts_the_others_with_its_reason(tmp_path):
    def program(party):
        party.exchange("first", np.zeros(2))
        if party.id == 0:
            raise ValueError("bad input on party 0")
        return party.exchange("second", np.zeros(2))

    outs = _threads(tmp_path, 3, program, timeout=10.0)
    assert isinstance(outs[0].error, ValueError)
    for i in (1, 2):
        assert isinstance(outs[i].error, ProtocolAbort)
        assert "party 0 aborted: ValueError: bad input on party 0" in str(outs[i].error)
        assert "(round 1)" in str(outs[i].error)


def test_killed_process_is_reported_by_every_survivor(tmp_path):
    with pytest.raises(ProtocolAbort) as info:
        run_local("tests/mpc/transport/test_tcp_programs.py:killed_mid_protocol", 3, timeout=20,
                  preprocessing=None)
    errors = info.value.party_errors
    assert "party 2's process exited with code 3" in str(errors[2])
    for i in (0, 1):
        assert isinstance(errors[i], TransportError)
        text = str(errors[i])  # party i learns it on its send or its receive of round 1
        assert "party 2 disconnected" in text and "'second' (round" in text, text


def test_dropout_tolerant_code_learns_who_dropped(tmp_path):
    def program(party):
        if party.id == 2:
            party.endpoint._shutdown()  # vanishes without a goodbye
            return "gone"
        time.sleep(0.5)  # party 2's disappearance reaches the others
        alive = [q for q in party.peers if q not in party.dropped_peers()]
        party.send_many(alive, "value", np.array([party.id]))
        got = {p: party.try_recv(p, "value", timeout=3) for p in party.peers}
        assert party.try_recv(2, "value") is None  # dropped stays dropped, no wait
        return sorted(p for p, v in got.items() if v is None), sorted(party.dropped_peers())

    outs = _threads(tmp_path, 3, program, timeout=10.0)
    for i in (0, 1):
        assert outs[i].error is None, outs[i].error
        assert outs[i].output == ([2], [2])


def test_dropout_by_silence_on_memory_transport():
    def program(party):
        if party.id == 2:
            return None
        party.send_many(party.peers, "v", np.array([party.id]))
        silent = [party.try_recv(p, "v", timeout=0.5) is None for p in party.peers]
        with pytest.raises(TransportError, match="party 2 has dropped out"):
            party.send(2, "w", np.array([1]))       # sending to a dropped peer is refused
        return silent, sorted(party.dropped_peers())

    res = mpc.run(program, 3)
    assert res.outputs[0] == ([False, True], [2])
    assert res.outputs[1] == ([False, True], [2])


def test_flipped_ciphertext_byte_is_an_integrity_error(tmp_path):
    eps, _, _ = _mesh(tmp_path, 2)
    try:
        c = eps[1]._conns[0]
        with c.lock:
            c.obj.write(tcp.RECORD.pack(tcp.DATA, 3) + b"abc")
            data = bytearray(c.outbio.read())
            data[-5] ^= 1  # inside the AEAD tag
            c.out.append(memoryview(bytes(data)))
        eps[1]._wake()
        with pytest.raises(IntegrityError, match="TLS integrity failure on the connection to party 1"):
            eps[0].recv_frame(1, 5, "'x' (round 0)")
        assert eps[0].dropped_peers() == {1}
    finally:
        _close_all(eps)


def test_random_frames_cross_intact(tmp_path):
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    from mpc.transport.wire import DTYPES, decode_frame

    eps, _, _ = _mesh(tmp_path, 2)
    arrays = hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                                   max_side=24))

    @settings(max_examples=20, deadline=None)
    @given(st.lists(arrays, max_size=4), st.integers(0, 2**31 - 2), st.text(max_size=30))
    def roundtrip(arrs, rnd, tag):
        frame = encode_frame(tag, arrs, session=SESSION, round=rnd)
        wire = eps[0].send_frame(1, frame)
        got = decode_frame(eps[1].recv_frame(0, 5, "frame"), session=SESSION)
        assert got.tag == tag and got.round == rnd and len(got.arrays) == len(arrs)
        for a, b in zip(arrs, got.arrays):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        records = -(-(len(frame) + 5) // 16384)  # TLS 1.3 records of at most 16 KiB
        assert wire == len(frame) + 5 + 22 * records

    try:
        roundtrip()
    finally:
        _close_all(eps)


def test_absent_party_fails_the_connection_phase_within_the_timeout(tmp_path):
    conf = cfgmod.load(make_local_config(tmp_path, 3, dealer=False, timeout=1.0))
    t0 = time.monotonic()
    out = execute_party(lambda party: None, conf, 1, name="t")  # parties 0 and 2 never start
    assert time.monotonic() - t0 < 5
    assert isinstance(out.error, PeerTimeout)
    assert "party 1 could not connect to party 0" in str(out.error) or "party 2 did not connect" in str(out.error)


def test_a_forgotten_dealer_is_named_the_dealer(tmp_path):
    conf = cfgmod.load(make_local_config(tmp_path, 3, dealer=True, timeout=1.0))
    outs = [None] * 3

    def body(i):
        outs[i] = execute_party(lambda party: None, conf, i, name="t")   # no `mpc dealer` started
    threads = [threading.Thread(target=body, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, out in enumerate(outs):
        assert isinstance(out.error, PeerTimeout)
        assert f"party {i}: the dealer did not connect" in str(out.error)
        assert "node 3" not in str(out.error) and "[3]" not in str(out.error)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_announcing_a_large_frame_does_not_commit_its_memory(tmp_path):
    eps, _, _ = _mesh(tmp_path, 2)
    try:
        before = _rss_bytes()
        _raw_record(eps[1], 0, tcp.DATA, 1_500_000_000, b"0123456789")  # within the 2 GiB limit
        time.sleep(0.3)
        assert eps[0]._conns[1].body_len == 1_500_000_000  # the I/O thread is inside that record
        assert _rss_bytes() - before < 100_000_000
        with pytest.raises(PeerTimeout):
            eps[0].recv_frame(1, 0.2, "'x' (round 0)")
    finally:
        _close_all(eps)


def test_dealer_refuses_requests_for_oversized_products():
    from mpc.preprocessing import remote_dealer as R

    ok = R._parse_request(tuple(R._request_arrays("matmul", ((3, 4), (4, 5)))))
    assert ok == ("matmul", ((3, 4), (4, 5)))
    with pytest.raises(ParameterError, match="product of shape"):   # operands small, result 2^54
        R._parse_request(tuple(R._request_arrays("matmul", ((2**27, 1), (1, 2**27)))))
    with pytest.raises(ParameterError, match="broadcast"):
        R._parse_request(tuple(R._request_arrays("mul", ((3,), (4,)))))


def test_a_party_raising_systemexit_fails_a_threaded_local_run():
    def prog(party):
        if party.id == 0:
            party.send(1, "x", np.zeros(4))
            raise SystemExit(3)
        party.recv(0, "x")
        return 1

    with pytest.raises(SystemExit):
        run_local(prog, 2, preprocessing=None, processes=False, timeout=5)


def test_errors_after_connecting_name_the_dealer_too(tmp_path):
    """Issue 18 §4: "the dealer" everywhere, not only in the connection phase."""
    ids = [new_identity(i, tmp_path) for i in range(3)]
    ports = _ports(3)
    nodes = {i: mesh.Node(i, "127.0.0.1", ports[i], load_certificate(ids[i].certificate)) for i in range(3)}
    names = {0: "party 0", 1: "party 1", 2: "the dealer"}
    eps = [None] * 3

    def go(i):
        eps[i] = mesh.connect(i, nodes, cert=str(ids[i].certificate), key=str(ids[i].key),
                              session=SESSION, timeout=10, names=names)
    ts = [threading.Thread(target=go, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    try:
        with pytest.raises(PeerTimeout) as info:            # a dealer that says nothing
            RemoteDealer(eps[0], 2, 2, SESSION, 0.3).seed_for(0)
        assert str(info.value) == "party 0 waited 0.3 s for 'dealer/seed' from the dealer"
        eps[2].abort("dealer: out of luck")                # a dealer that gives up
        with pytest.raises(ProtocolAbort) as info:
            eps[1].recv_frame(2, 5, "'dealer/seed'")
        assert str(info.value).startswith("the dealer aborted: dealer: out of luck")
        assert "party 2" not in str(info.value)
    finally:
        _close_all([e for e in eps if e is not None])


def test_frames_a_peer_pushes_ahead_are_bounded_by_backpressure(tmp_path):
    # An authenticated peer pushes frames nobody asked for: the receiver holds at most
    # limits.max_queued_bytes of them (plus the frame that crossed the limit); the rest wait in
    # the peer's own buffers, and every frame still arrives, in order, once it is received.
    limit, size, count = 1 << 18, 1 << 16, 24
    eps, _, _ = _mesh(tmp_path, 2, limits=WireLimits(max_queued_bytes=limit))
    try:
        frames = [encode_frame(f"push#{k}", [np.full(size, k, np.uint8)], session=SESSION)
                  for k in range(count)]
        for f in frames:
            eps[0].send_frame(1, f)
        conn = eps[1]._conns[0]
        deadline = time.monotonic() + 10
        while conn.frames.qsize() * len(frames[0]) < limit and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)   # room for the I/O thread to (wrongly) read on
        assert conn.frames.qsize() * len(frames[0]) <= limit + len(frames[0])
        for k in range(count):
            got = decode_frame(eps[1].recv_frame(0, 10, "push"), session=SESSION)
            assert got.tag == f"push#{k}" and np.all(got.arrays[0] == k)
        eps[1].send_frame(0, encode_frame("after", [], session=SESSION))
        assert decode_frame(eps[0].recv_frame(1, 10, "after"), session=SESSION).tag == "after"
    finally:
        for ep in eps:
            ep.close()
