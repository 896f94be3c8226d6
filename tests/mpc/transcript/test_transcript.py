"""Transcripts: the recorder, the JSON form and the page's data, without a browser.

The page itself is checked in headless Chromium in test_transcript_browser.py.
"""

import base64
import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import ParameterError
from mpc.preprocessing.dealer import TrustedDealerWarning
from mpc.transcript import (ArrayInfo, MessageDetail, Recorder, Transcript, byte_entropy,
                            describe_arrays, frame_bytes, from_records, page_data, public_value,
                            read_json, render)
from mpc.transport.stats import DEALER, MessageRecord
from mpc.transport.wire import encode_frame

SECRETS = [31415.9265, -27182.8182, 16180.3399]


def stats_program(party, x):
    """Share, add, multiply, reveal; one public message and one published value."""
    xs = mpc.share_all(party, np.array([x, 2 * x]), bound=2.0**16)
    with party.phase("compute"):
        total = xs[0] + xs[1] + xs[2]
        # scaled so that the product fits the fixed-point range (|x y| < 2^30): unscaled, the
        # second element (about -3.4e9) would overflow, and is refused (RangeError)
        prod = xs[0] * (xs[1] * 2.0**-3)
    with party.phase("reveal"):
        out = party.publish("result", {"sum": total.reveal(), "product": prod.reveal()})
    if party.id == 0:
        party.send(1, "hello", np.array([7, 8, 9], np.int64), public=True)
    if party.id == 1:
        party.recv(0, "hello")
    return out


def secret_encodings(x: float, frac_bits: int = 16) -> list[str]:
    """Ways a secret real could appear in a page: decimal, fixed point, raw bytes (hex, base64)."""
    enc = np.array([round(x * 2**frac_bits)], np.int64)
    ring = enc.view(np.uint64)
    f64 = np.array([x], np.float64)
    out = [repr(x), f"{x:.4f}", f"{x:.6g}", str(int(enc[0])), str(int(ring[0])), hex(int(ring[0]))[2:]]
    for raw in (ring.tobytes(), f64.tobytes()):
        out += [raw.hex(), base64.b64encode(raw).decode().rstrip("=")]
    return out


def payload_encodings(views) -> set[str]:
    """Every received secret payload of a run, as hex, base64 and (uint64) decimal."""
    out = set()
    for view in views:
        for _sender, tag, arrays in view:
            if tag.endswith("hello"):
                continue  # the public message
            for a in arrays:
                raw = np.ascontiguousarray(a).tobytes()
                if len(raw) < 8:
                    continue
                out.add(raw.hex())
                out.add(base64.b64encode(raw).decode().rstrip("="))
                if a.dtype == np.uint64:
                    out.update(str(int(v)) for v in a.reshape(-1) if v > 2**40)
    return out


def secagg_like(n_clients: int = 1000, dim: int = 1000, seed: int = 1) -> Transcript:
    """A synthetic SecAgg run (Bonawitz et al. 2017, complete graph) of its real message shapes.

    Server 0, clients 1..n: advertise keys, the server broadcasts them, encrypted
    shares to every other client go through the server, masked inputs, the
    survivors list, unmasking shares. 7 n messages in 7 rounds.
    """
    rng = np.random.default_rng(seed)
    n = n_clients
    rec = Recorder(1 + n, labels={0: "server"}, title=f"SecAgg, {n} clients (synthetic)")
    keys = rng.integers(0, 256, (2, 32), dtype=np.uint8)
    key_list = rng.integers(0, 256, (n, 2, 32), dtype=np.uint8)
    shares = rng.integers(0, 256, (n - 1, 96), dtype=np.uint8)
    masked = rng.integers(0, 2**63, dim, dtype=np.uint64)
    survivors = np.arange(1, n + 1, dtype=np.uint32)
    unmask = rng.integers(0, 256, (n - 1, 32), dtype=np.uint8)
    clients = range(1, n + 1)
    with rec.phase("advertise keys"):
        for c in clients:
            rec.message(0, c, 0, "advertise", keys)
        for c in clients:
            rec.message(1, 0, c, "keys", key_list)
    with rec.phase("share keys"):
        for c in clients:
            rec.message(2, c, 0, "shares", shares)
        for c in clients:
            rec.message(3, 0, c, "shares", shares)
    with rec.phase("masked input"):
        for c in clients:
            rec.message(4, c, 0, "masked", masked)
    with rec.phase("unmasking"):
        for c in clients:
            rec.message(5, 0, c, "survivors", survivors, public=True)
        for c in clients:
            rec.message(6, c, 0, "unmask", unmask)
    rec.publish(0, "sum", masked[:10])
    return rec.transcript(outputs=[{"sum": "(vector)"}] + [None] * n)


@pytest.fixture(scope="module")
def stats_run():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        return mpc.run(stats_program, 3, inputs=SECRETS, transcript=True, record_view=True)


# -- recording ------------------------------------------------------------------------
def test_byte_entropy_separates_random_from_structured():
    rng = np.random.default_rng(0)
    assert byte_entropy(rng.integers(0, 256, 4096, dtype=np.uint8)) > 7.9
    assert byte_entropy(np.zeros(4096)) == 0.0
    assert byte_entropy(np.arange(100, dtype=np.int64)) < 3.0  # small integers: mostly zero bytes
    assert byte_entropy(np.zeros(3, np.uint16)) is None        # below 8 bytes: no judgement
    # 16 random bytes reach the cap log2(16) = 4 of a 16-byte sample (or nearly)
    assert byte_entropy(rng.integers(0, 256, 16, dtype=np.uint8)) >= 0.9 * 4


def test_describe_arrays_keeps_headers_only():
    a = np.arange(12, dtype=np.uint64).reshape(3, 4)
    (info,) = describe_arrays([a])
    assert (info.dtype, info.shape, info.nbytes) == ("<u8", (3, 4), 96)
    assert set(info.to_dict()) == {"dtype", "shape", "nbytes", "entropy_bits_per_byte", "looks_random"}
    assert info.looks_random is False


def test_public_value_truncates_and_hides_objects():
    v = public_value(np.arange(100, dtype=np.int32), limit=5)
    assert v == {"dtype": "<i4", "shape": [100], "values": [0, 1, 2, 3, 4], "truncated": True}
    assert public_value(float("nan")) == "nan"
    assert public_value({"a": (1, 2.5)}) == {"a": [1, 2.5]}
    assert public_value(object()) == {"type": "object"}


def test_run_records_every_message_in_cost_order(stats_run):
    t = stats_run.transcript
    assert t.records == stats_run.cost.messages
    assert len(t.messages) == len(stats_run.cost.messages) > 10
    keys = [(r.round, r.sender, r.receiver) for r in t.records]
    assert keys == sorted(keys)
    for m in t.messages:
        assert m.arrays, m.record.tag
        assert sum(a.nbytes for a in m.arrays) == m.record.payload_bytes
    assert any(m.record.sender == DEALER for m in t.messages)


def test_headers_match_what_was_sent():
    def prog(party):
        if party.id == 0:
            party.send(1, "a", np.zeros((2, 3), np.uint64), np.ones(5, np.uint8))
        else:
            party.recv(0, "a")

    t = mpc.run(prog, 2, preprocessing=None, transcript=True).transcript
    (m,) = t.messages
    assert [(a.dtype, a.shape, a.nbytes) for a in m.arrays] == [("<u8", (2, 3), 48), ("|u1", (5,), 5)]
    assert m.public is None
    assert m.record.wire_bytes == len(encode_frame("a", [np.zeros((2, 3), np.uint64), np.ones(5, np.uint8)]))


def test_only_public_messages_and_published_values_keep_values(stats_run):
    t = stats_run.transcript
    public = [m for m in t.messages if m.public is not None]
    assert [m.record.tag for m in public] == ["hello"]
    assert public[0].public == ({"dtype": "<i8", "shape": [3], "values": [7, 8, 9], "truncated": False},)
    published = {(v.party, v.tag) for v in t.published}
    assert {(p, "result") for p in range(3)} <= published
    # Besides the results, only opened (revealed) values are published, by every party.
    opened = published - {(p, "result") for p in range(3)}
    assert opened and all(tag.startswith("open#") for _, tag in opened)
    assert {p for p, _ in opened} == {0, 1, 2}
    expected_sum = sum(SECRETS)
    for p in t.parties:
        assert p.output["sum"]["values"][0] == pytest.approx(expected_sum, abs=1e-3)


def test_party_summaries_count_what_each_saw(stats_run):
    t = stats_run.transcript
    for p in t.parties:
        recs = [r for r in t.records if r.receiver == p.party]
        assert p.received_messages == len(recs)
        assert p.received_bytes == sum(r.payload_bytes for r in recs)
        assert p.sent_bytes == stats_run.cost.bytes_sent[p.party]
    assert t.cost["rounds"] == stats_run.cost.rounds
    assert set(t.cost["phases"]) >= {"compute", "reveal"}


def test_no_secret_in_json(stats_run):
    text = stats_run.transcript.to_json()
    for x in SECRETS:
        for s in secret_encodings(x):
            assert s not in text, (x, s)
    leaked = [s for s in payload_encodings(stats_run.views) if s in text]
    assert not leaked


def test_secret_search_finds_a_leak():
    # the search above can fail: a secret sent with public=True is found
    def prog(party):
        if party.id == 0:
            party.send(1, "oops", party.fixed.encode(np.array([SECRETS[0]])), public=True)
        else:
            party.recv(0, "oops")

    t = mpc.run(prog, 2, preprocessing=None, transcript=True).transcript
    text = t.to_json()
    assert any(s in text for s in secret_encodings(SECRETS[0]))


def test_failed_run_writes_messages_up_to_the_failure(tmp_path):
    def prog(party):
        party.exchange("first", np.zeros(2))
        if party.id == 1:
            raise RuntimeError("boom")
        party.recv(1, "never")

    path = tmp_path / "fail.json"
    with pytest.raises(mpc.PartyError, match="party 1 failed: RuntimeError: boom"):
        mpc.run(prog, 2, preprocessing=None, transcript=path, timeout=5)
    t = read_json(path)
    assert "boom" in t.error
    assert [m.record.tag for m in t.messages] == ["first", "first"]


def test_bad_transcript_targets_refused(tmp_path):
    with pytest.raises(ParameterError, match="no folder"):
        mpc.run(lambda p: None, 2, transcript=tmp_path / "missing" / "x.html")
    with pytest.raises(ParameterError, match="path, True or None"):
        mpc.run(lambda p: None, 2, transcript=3)


# -- JSON -----------------------------------------------------------------------------
def test_json_round_trip_of_a_run(stats_run, tmp_path):
    t = stats_run.transcript
    assert Transcript.from_json(t.to_json()) == t
    path = tmp_path / "run.json"
    t.write(path)
    assert read_json(path) == t
    d = json.loads(path.read_text())
    assert d["format"] == "concilium-transcript" and d["version"] == 1
    assert [m["index"] for m in d["messages"]] == list(range(len(t.messages)))


def test_run_writes_json_or_html_by_suffix(tmp_path):
    def prog(party):
        return party.exchange("x", np.zeros(1))[1 - party.id][0].tolist()

    mpc.run(prog, 2, preprocessing=None, transcript=tmp_path / "a.json")
    mpc.run(prog, 2, preprocessing=None, transcript=tmp_path / "a.html")
    assert len(read_json(tmp_path / "a.json").messages) == 2
    assert (tmp_path / "a.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("change, match", [({"format": "other"}, "not a Concilium"),
                                           ({"version": 99}, "unsupported transcript version")])
def test_foreign_json_refused(stats_run, change, match):
    d = stats_run.transcript.to_dict() | change
    with pytest.raises(ParameterError, match=match):
        Transcript.from_dict(d)


@pytest.mark.parametrize("damage, match", [
    (lambda d: d.pop("n_parties"), "missing field 'n_parties'"),
    (lambda d: d["messages"][0].pop("sender"), "missing field 'sender'"),
    (lambda d: d["parties"][0].update(bogus=1), "bogus"),
    (lambda d: d.update(messages=[[1, 2]]), "malformed"),
    (lambda d: d["messages"][0].update(round="x"), "malformed"),
])
def test_malformed_transcript_parts_are_refused_clearly(stats_run, damage, match):
    # parts written by other processes (mpc.distributed merges them): a damaged one names its fault
    d = json.loads(stats_run.transcript.to_json())
    damage(d)
    with pytest.raises(ParameterError, match=match):
        Transcript.from_dict(d)
    with pytest.raises(ParameterError, match="not a Concilium transcript"):
        Transcript.from_dict([])  # type: ignore[arg-type]


records = st.builds(
    lambda rnd, s, r, tag, ph, pay, extra: MessageRecord(rnd, s, r, tag, ph, pay, pay + extra),
    st.integers(0, 50), st.integers(-1, 4), st.integers(0, 4), st.text(min_size=1, max_size=12),
    st.sampled_from(["online", "offline", "p/q"]), st.integers(0, 10**9), st.integers(0, 300))
infos = st.builds(ArrayInfo, st.sampled_from(["<u8", "|u1", "<f8"]),
                  st.lists(st.integers(0, 9), max_size=3).map(tuple), st.integers(0, 10**6),
                  st.none() | st.floats(0, 8).map(lambda h: round(h, 3)))
details = st.none() | st.builds(MessageDetail, st.lists(infos, max_size=3).map(tuple),
                                st.none() | st.lists(st.integers() | st.text(max_size=5), max_size=3).map(tuple))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(records, details), max_size=20))
def test_json_round_trip_property(rows):
    t = from_records([r for r, _ in rows], 5, details=[d for _, d in rows],
                     outputs=[None, 1, "x", [1.5], {"k": 2}], labels={0: "server"})
    back = Transcript.from_json(t.to_json())
    assert back == t
    assert back.to_json() == t.to_json()


# -- building from records; the recorder for drivers -------------------------------------
def test_from_records_validates():
    rec = MessageRecord(0, 0, 3, "x", "online", 1, 1)
    with pytest.raises(ParameterError, match="outside 0..2"):
        from_records([rec], 3)
    with pytest.raises(ParameterError, match="1 details for 0 records"):
        from_records([], 3, details=[None])
    with pytest.raises(ParameterError, match="2 labels for 3 parties"):
        from_records([], 3, labels=["a", "b"])
    with pytest.raises(ParameterError, match="outputs"):
        from_records([], 3, outputs=[1])


def test_recorder_keeps_order_headers_phases_and_wire_size():
    rec = Recorder(3, labels={0: "server"})
    a = np.arange(6, dtype=np.uint64).reshape(2, 3)
    with rec.phase("one"):
        rec.message(0, 1, 0, "up", a)
        rec.message(0, 2, 0, "up", a, np.zeros(4, np.uint8))
    rec.message(1, 0, 1, "down", np.array([5, 6], np.int32), public=True)
    rec.publish(0, "result", 42)
    t = rec.transcript(outputs=[42, None, None])
    assert [(m.record.tag, m.record.phase) for m in t.messages] == [("up", "one"), ("up", "one"),
                                                                    ("down", "online")]
    assert t.messages[1].record.payload_bytes == 52
    for m, arrays in zip(t.messages, [[a], [a, np.zeros(4, np.uint8)], [np.array([5, 6], np.int32)]]):
        assert m.record.wire_bytes == len(encode_frame(m.record.tag, arrays)) == frame_bytes(m.record.tag, arrays)
    assert t.messages[2].public[0]["values"] == [5, 6]
    assert t.messages[0].public is None
    assert t.parties[0].label == "server" and t.parties[1].label == "party 1"
    assert t.parties[0].received_messages == 2
    assert t.cost["rounds"] == 2 and t.cost["phases"]["one"]["messages"] == 2
    assert t.published[0].value == 42


def test_recorder_refuses_unknown_parties():
    rec = Recorder(2)
    with pytest.raises(ParameterError, match="outside 0..1"):
        rec.message(0, 0, 2, "x")
    with pytest.raises(ParameterError, match="negative"):
        rec.message(-1, 0, 1, "x")


# -- the page's data ------------------------------------------------------------------------
def test_page_escapes_hostile_tags():
    rec = Recorder(2, labels=["<b>Ann</b>", "Bob"], title="<img src=x onerror=alert(1)>")
    rec.message(0, 0, 1, "</script><script>alert(1)</script>", np.zeros(2))
    page = render(rec.transcript())
    assert "</script><script>alert" not in page
    assert "<img src=x" not in page and "<b>Ann</b>" not in page
    assert "default-src 'none'" in page  # no request of any kind
    assert "http://" not in page and "https://" not in page


def test_small_runs_open_and_large_runs_collapse(stats_run):
    assert page_data(stats_run.transcript)["collapsed"] is False
    big = secagg_like(60, dim=10)
    assert page_data(big)["collapsed"] is True


def test_thousand_client_secagg_page_stays_small():
    t = secagg_like(1000, dim=1000)
    assert len(t.messages) == 7000
    data = page_data(t)
    assert data["collapsed"] is True
    assert len(data["lanes"]) == 12 and data["lanes"][-1] == -2  # server, 10 clients, "others"
    page = render(t)
    assert len(page.encode()) < 5 * 2**20
    assert len(json.dumps(t.to_dict())) < 20 * 2**20


def test_large_integers_keep_their_digits_in_the_page():
    rec = Recorder(2)
    big = np.array([2**64 - 1, 5], np.uint64)
    rec.message(0, 0, 1, "opened", big, public=True)
    rec.publish(1, "opened", big)
    data = page_data(rec.transcript(outputs=[None, int(big[0])]))
    assert data["pub"][0][0]["values"] == [str(2**64 - 1), 5]
    assert data["published"][0]["value"]["values"][0] == "18446744073709551615"
    assert data["parties"][1]["output"] == "18446744073709551615"


def test_many_parties_summarised_beyond_their_lanes():
    t = secagg_like(40, dim=4)
    data = page_data(t, max_lanes=6)
    assert data["lanes"] == [0, 1, 2, 3, 4, -2]
    assert [p["party"] for p in data["parties"]] == [0, 1, 2, 3, 4]
    others = [p for p in t.parties if p.party > 4]
    assert data["others"]["count"] == 36
    assert data["others"]["sent"] == [others[0].sent_bytes, others[0].sent_bytes,
                                      sum(p.sent_bytes for p in others)]


# -- runs over several processes: one part per party, merged ---------------------------
def run_parts(program, n, inputs):
    """Run ``program`` as separate Party objects (as one process per party would) and keep each part."""
    import os
    import threading

    from mpc.transport.memory import MemoryNetwork
    from mpc.transcript import from_party

    net = MemoryNetwork(n)
    session = os.urandom(8)
    parties = [mpc.Party(i, n, net.endpoint(i), session=session, record_transcript=True) for i in range(n)]
    parts = [None] * n

    def body(i):
        parts[i] = from_party(parties[i], program(parties[i], inputs[i]), title="parts")

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return parts


def ring_program(party, x):
    """Everyone opens the sum of the inputs; party 0 then sends a public note to party 2."""
    shares = mpc.share_all(party, np.array([x]), bound=2.0**16)
    total = party.publish("sum", sum(shares[1:], shares[0]).reveal())
    if party.id == 0:
        party.send(2, "note", np.array([1, 2]), public=True)
    if party.id == 2:
        party.recv(0, "note")
    return total


def test_merged_parts_equal_the_one_process_transcript():
    from mpc.transcript import merge

    parts = run_parts(ring_program, 3, SECRETS)
    whole = mpc.run(ring_program, 3, inputs=SECRETS, preprocessing=None, transcript=True).transcript
    for i, part in enumerate(parts):
        assert {m.record.sender for m in part.messages} == {i}
        assert [p.output is not None for p in part.parties] == [k == i for k in range(3)]
    merged = merge(parts[::-1])  # order of the parts does not matter
    strip = [(m.record.round, m.record.sender, m.record.receiver, m.record.tag, m.record.payload_bytes,
              m.record.wire_bytes, m.arrays and tuple((a.dtype, a.shape) for a in m.arrays), m.public)
             for m in merged.messages]
    assert strip == [(m.record.round, m.record.sender, m.record.receiver, m.record.tag, m.record.payload_bytes,
                      m.record.wire_bytes, m.arrays and tuple((a.dtype, a.shape) for a in m.arrays), m.public)
                     for m in whole.messages]
    assert [p.output for p in merged.parties] == [p.output for p in whole.parties]
    assert [(v.party, v.tag) for v in merged.published] == [(v.party, v.tag) for v in whole.published]
    for key in ("rounds", "messages", "payload_bytes", "wire_bytes", "bytes_sent", "bytes_received"):
        assert merged.cost[key] == whole.cost[key], key
    assert Transcript.from_json(merged.to_json()) == merged


def test_merge_refuses_mixed_or_duplicate_parts():
    from mpc.transcript import merge

    parts = run_parts(ring_program, 3, SECRETS)
    with pytest.raises(ParameterError, match="appears in transcript parts"):
        merge([parts[0], parts[0]])
    other = from_records([], 4)
    with pytest.raises(ParameterError, match="different runs"):
        merge([parts[0], other])
    with pytest.raises(ParameterError, match="nothing to merge"):
        merge([])


def test_merge_command_line(tmp_path):
    from mpc.transcript.__main__ import main

    paths = []
    for i, part in enumerate(run_parts(ring_program, 3, SECRETS)):
        paths.append(str(tmp_path / f"part{i}.json"))
        part.write_json(paths[-1])
    assert main(["merge", *paths, "-o", str(tmp_path / "run.json")]) == 0
    assert len(read_json(tmp_path / "run.json").messages) == 3 * 2 * 2 + 1
    assert main(["html", str(tmp_path / "run.json"), "-o", str(tmp_path / "run.html"),
                 "--labels", "A,B,C"]) == 0
    assert '"labels":["A","B","C"]' in (tmp_path / "run.html").read_text()


def test_write_page_from_driver_records(tmp_path):
    from mpc.transcript import write_page

    recs = [MessageRecord(0, 1, 0, "up", "online", 8, 40), MessageRecord(1, 0, 1, "down", "online", 4, 30)]
    t = write_page(recs, tmp_path / "p.json", 2, labels={0: "server"}, outputs=[3, None])
    assert read_json(tmp_path / "p.json") == t
    write_page(recs, tmp_path / "p.html", 2, labels={0: "server"}, collapsed=True)
    page = (tmp_path / "p.html").read_text()
    data = json.loads(page.split('id="transcript-data">')[1].split("</script>")[0])
    assert data["collapsed"] is True and data["labels"] == ["server", "party 1"]
    assert [data["tags"][row[3]] for row in data["m"]] == ["up", "down"]
    assert data["cost"]["rounds"] == 2 and data["cost"]["bytes_sent"] == {"0": 4, "1": 8}


def test_page_keeps_first_messages_of_each_round_above_max_rows():
    t = secagg_like(60, dim=4)  # 7 rounds of 60 messages
    data = page_data(t, max_rows=100)  # at least 50 per round are kept
    assert len(data["m"]) == 7 * 50
    assert data["index"][:51] == list(range(50)) + [60]
    assert data["omitted"] == {str(r): [10, 10 * t.messages[60 * r].record.payload_bytes] for r in range(7)}
    full = page_data(t)
    assert full["index"] is None and full["omitted"] == {}
    with pytest.raises(ParameterError, match="max_rows"):
        page_data(t, max_rows=0)
