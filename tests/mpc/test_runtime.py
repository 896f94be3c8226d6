"""The in-process runtime: tags, timeouts, failures, rounds and byte accounting."""

import time

import numpy as np
import pytest

import mpc
from mpc.errors import ParameterError, PeerTimeout, ProtocolAbort, ProtocolError
from mpc.transport.stats import DEALER


def test_outputs_in_party_order_and_inputs_routed():
    res = mpc.run(lambda p, x: (p.id, x * 2), 4, inputs=[1, 2, 3, 4], preprocessing=None)
    assert res.outputs == [(0, 2), (1, 4), (2, 6), (3, 8)]


@pytest.mark.parametrize("n", [0, 1, -3, 2.5])
def test_too_few_parties_refused(n):
    with pytest.raises(ParameterError, match="at least 2 parties"):
        mpc.run(lambda p: None, n)


def test_inputs_length_checked():
    with pytest.raises(ParameterError, match="inputs"):
        mpc.run(lambda p, x: x, 3, inputs=[1, 2])


def test_exchange_is_one_round_and_counts_bytes():
    def prog(party):
        got = party.exchange("hello", np.full(10, party.id, np.uint64))
        return sorted(int(v[0][0]) for v in got.values())

    res = mpc.run(prog, 3, preprocessing=None)
    assert res.outputs[0] == [1, 2]
    assert res.cost.rounds == 1
    assert res.cost.bytes_sent == {0: 160, 1: 160, 2: 160}
    assert len(res.cost.messages) == 6
    assert res.cost.wire_bytes > 6 * 80


def test_rounds_follow_causality():
    def chain(party):
        # 0 -> 1 -> 2 -> 0: three rounds, one message each
        if party.id == 0:
            party.send(1, "a", np.zeros(1))
            return party.recv(2, "c")[0]
        if party.id == 1:
            party.recv(0, "a")
            party.send(2, "b", np.zeros(1))
        if party.id == 2:
            party.recv(1, "b")
            party.send(0, "c", np.ones(1))
        return None

    res = mpc.run(chain, 3, preprocessing=None)
    assert res.cost.rounds == 3
    assert [m.round for m in res.cost.messages] == [0, 1, 2]


def test_wrong_tag_is_a_clear_error_naming_both():
    def prog(party):
        if party.id == 0:
            party.send(1, "expected_not", np.zeros(1))
        else:
            party.recv(0, "wanted")

    with pytest.raises(ProtocolError, match="'wanted'.*'expected_not'"):
        mpc.run(prog, 2, preprocessing=None)


def test_scopes_nest_tags():
    def prog(party):
        with party.scope("stats"), party.scope("mean"):
            got = party.exchange("open", np.zeros(1))
        return party.log[0].tag, len(got)

    res = mpc.run(prog, 2, preprocessing=None)
    assert res.outputs[0] == ("stats/mean/open", 1)


def test_silent_party_times_out_not_hangs():
    def prog(party):
        if party.id == 1:
            party.recv(0, "never")
        else:
            time.sleep(1.0)                  # alive, but says nothing

    t0 = time.monotonic()
    with pytest.raises(PeerTimeout, match="party 1 waited .* from party 0"):
        mpc.run(prog, 2, timeout=0.3, preprocessing=None)
    assert time.monotonic() - t0 < 5


def test_a_party_that_returned_is_noticed_at_once_as_over_tcp():
    from mpc.errors import TransportError

    def prog(party):
        if party.id == 1:
            party.recv(0, "never")

    t0 = time.monotonic()
    with pytest.raises(TransportError, match="party 0 finished and closed its connection"):
        mpc.run(prog, 2, timeout=20, preprocessing=None)
    assert time.monotonic() - t0 < 5


def test_a_party_stuck_in_local_work_does_not_hold_up_a_failed_run():
    def prog(party):
        if party.id == 0:
            raise RuntimeError("party 0 broke")
        time.sleep(8)                        # never reads the abort

    t0 = time.monotonic()
    with pytest.raises(mpc.PartyError, match="party 0 broke") as info:
        mpc.run(prog, 2, timeout=1.0, preprocessing=None)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert time.monotonic() - t0 < 5


def test_overlapping_runs_restore_the_blas_limit():
    import threading

    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    if not blas_threads():
        pytest.skip("no BLAS thread pool to limit")
    with threadpool_limits(2, user_api="blas"):       # a limit the runs' 1 differs from
        before = blas_threads()
        assert all(n == 2 for n in before)
        started = threading.Event()

        def slow(party):
            started.set()
            time.sleep(0.5)

        other = threading.Thread(target=lambda: mpc.run(slow, 2, preprocessing=None))
        other.start()
        started.wait(5)
        mpc.run(lambda party: time.sleep(1.0), 2, preprocessing=None)   # starts inside, ends after
        other.join()
        assert blas_threads() == before


def test_crashed_party_wakes_the_others_with_its_error():
    def prog(party):
        if party.id == 2:
            raise RuntimeError("disk on fire")
        party.recv(2, "x")

    t0 = time.monotonic()
    with pytest.raises(mpc.PartyError, match="party 2 failed: RuntimeError: disk on fire"):
        mpc.run(prog, 3, timeout=20)
    assert time.monotonic() - t0 < 5


def _reads_a_column(party):
    table = {"pressure": 1.0}
    if party.id == 1:
        return table["temperature"]
    party.recv(1, "never")


def test_a_raising_party_is_named_alike_in_one_process_and_over_tcp(tmp_path):
    with pytest.raises(mpc.PartyError) as here:
        mpc.run(_reads_a_column, 3, timeout=10, preprocessing=None)
    assert str(here.value) == "party 1 failed: KeyError: 'temperature'"
    assert here.value.party == 1 and here.value.error_type == "KeyError"
    assert isinstance(here.value.__cause__, KeyError)
    from mpc.distributed import run_local
    with pytest.raises(mpc.PartyError) as threads:
        run_local(_reads_a_column, 3, timeout=10, preprocessing=None, processes=False)
    assert str(threads.value) == str(here.value) and isinstance(threads.value.__cause__, KeyError)
    with pytest.raises(mpc.PartyError) as procs:
        run_local("tests/mpc/test_runtime.py:_reads_a_column", 3, timeout=10, preprocessing=None)
    assert str(procs.value) == str(here.value) and procs.value.error_type == "KeyError"


def test_a_concilium_error_keeps_its_type_and_carries_the_party():
    def prog(party):
        if party.id == 2:
            raise ParameterError("bad shape")
        party.recv(2, "never")

    with pytest.raises(ParameterError, match="bad shape") as info:
        mpc.run(prog, 3, timeout=10, preprocessing=None)
    assert info.value.party == 2


def test_abort_error_names_failed_party():
    net = mpc.transport.memory.MemoryNetwork(2)
    ep = net.endpoint(1)
    net.abort("party 0 failed with X: y")
    with pytest.raises(ProtocolAbort, match="party 0 failed"):
        ep.recv_frame(0, 1.0)


def test_bad_peer_ids_refused():
    def prog(party):
        party.send(party.id, "self", np.zeros(1))

    with pytest.raises(ParameterError, match="not a peer"):
        mpc.run(prog, 2, preprocessing=None)


def test_dealer_traffic_is_one_array_per_triple_to_last_party():
    def prog(party):
        x = mpc.share(party, np.ones((4, 5)) if party.id == 0 else None, 0, integer=False)
        y = x * x
        return y.shape

    for n in (2, 3, 5):
        res = mpc.run(prog, n)
        dealer = [m for m in res.cost.messages if m.sender == DEALER]
        seeds = [m for m in dealer if m.tag == "dealer/seed"]
        corrections = [m for m in dealer if m.tag != "dealer/seed"]
        assert len(seeds) == n and all(m.payload_bytes == 16 for m in seeds)
        # one triple (c: 20 elements) and one truncation pair (two arrays of 20)
        assert {m.receiver for m in corrections} == {n - 1}
        assert sum(m.payload_bytes for m in corrections) == 8 * 20 + 2 * 8 * 20
        assert all(m.phase == "preprocessing" for m in dealer)


@pytest.mark.parametrize("n", [2, 3])
def test_party_and_dealer_bytes_are_separate_named_figures(n):
    def prog(party):
        x = mpc.share(party, np.ones((4, 5)) if party.id == 0 else None, 0, integer=False)
        return (x * x).reveal()

    res = mpc.run(prog, n)
    dealer_total = sum(m.payload_bytes for m in res.cost.messages if m.sender == DEALER)
    assert dealer_total > 0 and res.cost.dealer_bytes_sent == dealer_total
    assert set(res.cost.party_bytes_sent) == set(range(n))
    assert sum(res.cost.party_bytes_sent.values()) + dealer_total == sum(res.cost.bytes_sent.values())
    for name, pc in res.cost.phases().items():
        mine = [m for m in res.cost.messages if m.phase == name]
        assert pc.dealer_bytes_sent == sum(m.payload_bytes for m in mine if m.sender == DEALER)
        assert DEALER not in pc.party_bytes_sent
        for p in range(n):
            assert pc.party_bytes_sent[p] == sum(m.payload_bytes for m in mine if m.sender == p)
    pre = res.cost.phases()["preprocessing"]
    assert pre.dealer_bytes_sent == dealer_total
    assert f"dealer {dealer_total:,} B" in pre.describe_sent() and "-1" not in pre.describe_sent()
    plain = mpc.run(lambda p: p.exchange("a", np.zeros(3, np.uint64)) and None, n, preprocessing=None)
    assert plain.cost.dealer_bytes_sent == 0
    assert plain.cost.phases()["online"].describe_sent() == ", ".join(f"party {p} {24 * (n - 1)} B"
                                                                      for p in range(n))


def test_phases_label_costs():
    def prog(party):
        with party.phase("setup"):
            party.exchange("a", np.zeros(3, np.uint64))
        party.exchange("b", np.zeros(5, np.uint64))

    res = mpc.run(prog, 2, preprocessing=None)
    phases = res.cost.phases()
    assert phases["setup"].bytes_sent[0] == 24 and phases["online"].bytes_sent[0] == 40
    assert phases["setup"].rounds == 1 and phases["online"].rounds == 1
    assert "setup" in res.cost.phase_seconds


def test_views_record_what_each_party_received():
    def prog(party):
        party.exchange("v", np.array([party.id], np.uint64))

    res = mpc.run(prog, 3, preprocessing=None, record_view=True)
    assert sorted(int(a[0][0]) for _, _, a in res.views[0]) == [1, 2]


def test_cost_summary_mentions_each_party():
    res = mpc.run(lambda p: p.exchange("x", np.zeros(2)), 2, preprocessing=None)
    text = res.cost.summary()
    assert "party 0" in text and "party 1" in text and "1 rounds" in text


def test_simulated_latency_delays_each_round():
    def prog(party):
        for i in range(3):
            party.exchange(f"r{i}", np.zeros(1))

    res = mpc.run(prog, 2, preprocessing=None, latency=0.05)
    assert res.cost.rounds == 3
    assert res.cost.seconds >= 0.15


@pytest.mark.parametrize("bad", ["shape", "dtype", "count"])
def test_a_peer_share_of_the_wrong_shape_dtype_or_count_is_refused(bad):
    """Openings, Beaver products and truncations never broadcast or cast a peer's array."""
    def program(party):
        x = mpc.share(party, np.arange(6.0).reshape(2, 3) if party.id == 0 else None, 0)
        if party.id == 1:                       # a faulty party sends a malformed share
            tag = party.fresh("open")
            wrong = {"shape": (x.share[:1],), "dtype": (x.share.astype(np.int64),),
                     "count": (x.share, x.share)}[bad]
            party.send_many([0, 2], tag, *wrong)
            return None
        return x.reveal()

    with pytest.raises(mpc.EncodingError, match=r"party 1 sent .* expected uint64\[2, 3\]"):
        mpc.run(program, parties=3, timeout=5)


def test_strict_exchange_refuses_an_asymmetric_reply():
    from mpc.errors import EncodingError

    def program(party):
        mine = np.zeros(4 if party.id == 1 else 3, np.uint64)
        try:
            party.exchange("x", mine, strict=True)
        except EncodingError as exc:
            return str(exc)
        return "ok"

    out = mpc.run(program, parties=2, preprocessing=None).outputs
    assert "party 1 sent uint64[4]" in out[0] and "expected uint64[3]" in out[0]


def test_blas_threads_are_limited_while_parties_run_and_restored():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    inside = mpc.run(lambda party: blas_threads(), parties=2, preprocessing=None).outputs
    assert inside == [[1] * len(before)] * 2
    assert blas_threads() == before
    untouched = mpc.run(lambda party: blas_threads(), parties=2, preprocessing=None,
                        blas_threads=None).outputs
    assert untouched[0] == before
    with pytest.raises(ParameterError, match="blas_threads"):
        mpc.run(lambda party: None, parties=2, blas_threads=0)


def test_phase_rounds_add_up_and_a_send_only_phase_owns_its_round():
    def prog(party):
        other = 1 - party.id
        with party.phase("A"):                       # ends with a send: owns round 0
            if party.id == 0:
                party.send(1, "x", np.zeros(2))
        with party.phase("B"):
            if party.id == 1:
                party.recv(0, "x")
        party.exchange("y", np.zeros(1))             # default phase: one more round
        with party.phase("C"):
            party.exchange("z", np.zeros(1))
            party.send(other, "w", np.zeros(1))
            party.recv(other, "w")

    cost = mpc.run(prog, 2, preprocessing=None).cost
    ph = cost.phases()
    assert cost.rounds == 4
    assert (ph["A"].rounds, ph["B"].rounds, ph["online"].rounds, ph["C"].rounds) == (1, 0, 1, 2)
    assert sum(p.rounds for p in ph.values()) == cost.rounds


def test_try_recv_does_not_swallow_a_wrong_tag_from_a_peer_that_finished():
    def prog(party):
        if party.id == 0:
            party.send(1, "other", np.zeros(1))            # off-protocol, then returns
            return None
        time.sleep(0.3)                                    # let party 0 finish first
        return party.try_recv(0, "expected", timeout=5)

    with pytest.raises(ProtocolError, match="expected"):
        mpc.run(prog, 2, preprocessing=None)
