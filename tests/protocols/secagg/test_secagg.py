"""SecAgg and SecAgg+ end to end: exact sums under dropouts, aborts, malformed messages, refusals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import ParameterError, ProtocolAbort, ProtocolError
from protocols.secagg import (Client, Server, aggregate, dropout_schedule, make_config,
                              party_program, simulate)
from protocols.secagg.rounds import ADVERTISE, MASKED, SHARE, UNMASK

DIM = 6


def _ints(n, bits=32, seed=0, dim=DIM):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 1 << bits, dim, dtype=np.uint64) for _ in range(n)]


def _ring_sum(values, ids, bits=32):
    total = np.zeros(len(values[0]), dtype=object)
    for u in ids:
        total += values[u].astype(object)
    return np.array([int(v) % (1 << bits) for v in total], dtype=np.uint64)


CASES = [(n, v, r) for n in (3, 10, 100) for v in ("secagg", "secagg+") for r in (0.0, 0.1, 0.3)]
CASES += [(500, "secagg+", r) for r in (0.0, 0.1, 0.3)]


@pytest.mark.parametrize("n,variant,rate", CASES)
def test_exact_sum_of_survivors_with_dropouts_at_every_round(n, variant, rate):
    values = _ints(n, seed=n)
    drops = dropout_schedule(n, rate, seed=n)
    # n = 500: a 5% corruption bound keeps the degree (and the test's time) lower
    config = make_config(n, DIM, variant=variant, dropout=max(rate, 0.05),
                         corruption=0.05 if n >= 500 else 0.1)
    res = simulate(config, values, drops)
    # who survives is exactly who did not drop before sending the masked input
    assert res.survivors == sorted(u for u in range(n) if drops.get(u, 4) > 2)
    assert np.array_equal(res.total, _ring_sum(values, res.survivors))
    assert set(res.dropped) == set(drops)
    assert res.cost.bytes_per_client > 0 and res.cost.server_seconds > 0
    if rate:
        assert set(drops.values()) == ({0, 1, 2, 3} if len(drops) >= 4 else set(drops.values()))


def test_floats_within_quantisation_bound_and_clipping_reported():
    rng = np.random.default_rng(3)
    updates = [rng.normal(0, 2, 200) for _ in range(12)]
    updates[4][7] = 50.0  # outside the clipping range
    res = aggregate(updates, variant="secagg+", dropouts={2: 2, 9: 0}, clip=8.0, frac_bits=16)
    assert res.survivors == [u for u in range(12) if u not in (2, 9)]
    want = sum(np.clip(updates[u], -8, 8) for u in res.survivors)
    assert np.abs(res.total - want).max() <= res.error_bound
    assert res.clipped[4] == 1 and sum(res.clipped) == 1
    assert res.config.bits == Quantizer_bits(12)
    total, cost = res
    assert total is res.total and cost.rounds == 4


def Quantizer_bits(n):
    from protocols.secagg import Quantizer
    return Quantizer(8.0, 16).bits_needed(n)


def test_64_bit_ring_and_integer_api():
    values = _ints(5, bits=64, seed=9)
    res = aggregate(values, bits=64, dropouts=[1])
    assert res.config.dtype == np.uint64
    assert np.array_equal(res.total, _ring_sum(values, [0, 2, 3, 4], bits=64))
    small = _ints(5, bits=12, seed=1)
    res = aggregate(small, bits=12, variant="secagg+")
    assert np.array_equal(res.total, _ring_sum(small, range(5), bits=12))


def test_below_threshold_aborts_clearly():
    config = make_config(10, DIM, dropout=0.1)
    values = _ints(10)
    gone = {u: 2 for u in range(10 - config.threshold + 1)}
    with pytest.raises(ProtocolAbort, match="fewer than the threshold"):
        simulate(config, values, gone)
    with pytest.raises(ProtocolAbort, match="round 'advertise'"):
        simulate(config, values, {u: 0 for u in range(6)})
    # dropping during unmasking: not enough shares come back
    with pytest.raises(ProtocolAbort, match="round 'unmask'"):
        simulate(config, values, {u: 3 for u in range(3)})


@pytest.mark.parametrize("round_,bad", [
    (0, lambda m: (m[0][:1],)),                                  # wrong shape
    (0, lambda m: (m[0].astype(np.int64),)),                     # wrong dtype
    (0, lambda m: (np.zeros((2, 32), np.uint8),)),               # low-order keys
    (1, lambda m: (m[0][:-1], m[1][:-1])),                       # missing a recipient
    (1, lambda m: (m[0], m[1], m[1])),                           # extra array
    (2, lambda m: (m[0].astype(np.float64),)),                   # floats, not ring elements
    (2, lambda m: (m[0][:3],)),                                  # too short
    (3, lambda m: (m[0], m[1][:, :4], m[2], m[3])),              # truncated shares
    (3, lambda m: (m[0][:-1], m[1][:-1], m[2], m[3])),           # answers for fewer clients
    (3, lambda m: ()),                                            # empty
    (0, lambda m: None),                                          # not a message at all
    (0, lambda m: ([1, [2, 3]],)),                                # ragged lists, not arrays
    (3, lambda m: (m[0], np.full_like(m[1], 2**31 - 1), m[2], m[3])),  # shares outside the field
])
def test_malformed_messages_drop_the_sender_and_the_sum_stays_exact(round_, bad):
    n = 8
    values = _ints(n, seed=5)
    config = make_config(n, DIM, dropout=0.2)

    def tamper(r, u, m):
        return bad(m) if (r, u) == (round_, 3) else m

    res = simulate(config, values, tamper=tamper)
    assert 3 in res.dropped
    expected = [u for u in range(n) if round_ == 3 or u != 3]
    assert res.survivors == expected
    assert np.array_equal(res.total, _ring_sum(values, expected))


def test_inconsistent_unmask_shares_abort_with_protocol_abort():
    # Valid field elements, but not shares of the seed: rebuilding fails its check, and
    # the session aborts with the documented ProtocolAbort (not a bare IntegrityError).
    n = 10
    values = _ints(n, seed=6)
    config = make_config(n, DIM, variant="secagg", dropout=0.2, corruption=0.1)
    prime = 2**31 - 1

    def shift(r, u, m):
        if (r, u) != (3, 0):
            return m
        live, seed, dropped, key = m
        return live, ((seed.astype(np.uint64) + 12345) % prime).astype(seed.dtype), dropped, key

    with pytest.raises(ProtocolAbort, match="inconsistent shares"):
        simulate(config, values, tamper=shift)


def test_unknown_client_ids_are_recorded_as_dropped():
    config = make_config(4, DIM, dropout=0.25)
    clients = [Client(u, config, v) for u, v in enumerate(_ints(4))]
    server = Server(config)
    msgs = {u: ADVERTISE.client_step(c) for u, c in enumerate(clients)}
    msgs[7] = msgs[0]
    ADVERTISE.server_step(server, msgs)
    assert "unknown client id" in server.dropped[7]


def test_small_sessions_and_exact_dropout_fractions_are_configured():
    from protocols.secagg.graph import choose

    assert choose(2, 0.0, 0.0).threshold == 2            # no dropouts: no dropped-node term
    assert choose(10, 0.0, 0.0, complete=True).threshold == 10
    assert choose(25, 7 / 25, 0.1, complete=True).threshold == 25 - 7   # 7/25*25 is 7, not 8
    assert choose(1000, 0.1, 0.1).threshold == 27 and choose(1000, 0.1, 0.1).k == 46


def test_out_of_range_masked_input_is_rejected():
    config = make_config(6, DIM, bits=12, dropout=0.2)
    values = _ints(6, bits=12)
    res = simulate(config, values, tamper=lambda r, u, m: (m[0] | np.uint32(1 << 12),) if (r, u) == (2, 1) else m)
    assert "outside" in res.dropped[1]
    assert np.array_equal(res.total, _ring_sum(values, [0, 2, 3, 4, 5], bits=12))


def test_corrupted_share_ciphertext_makes_the_recipient_abort():
    n = 8
    values = _ints(n, seed=2)
    config = make_config(n, DIM, dropout=0.2)

    def tamper(r, u, m):
        if (r, u) == (1, 0):
            ct = m[1].copy()
            ct[4, 10] ^= 1  # the ciphertext for client 5
            return (m[0], ct)
        return m

    res = simulate(config, values, tamper=tamper)
    assert res.survivors == [u for u in range(n) if u != 5]  # 5 refused and stopped
    assert np.array_equal(res.total, _ring_sum(values, res.survivors))


def _run_to_unmask(n=6, dim=4):
    config = make_config(n, dim, dropout=0.33)  # two of six drop
    values = _ints(n, dim=dim)
    clients = [Client(u, config, values[u]) for u in range(n)]
    server = Server(config)
    down = ADVERTISE.server_step(server, {u: ADVERTISE.client_step(c) for u, c in enumerate(clients)})
    down = SHARE.server_step(server, {u: SHARE.client_step(clients[u], down[u]) for u in range(n - 1)})
    down = MASKED.server_step(server, {u: MASKED.client_step(clients[u], down[u]) for u in range(n - 2)})
    return config, clients, server, down


def test_client_refuses_a_request_for_both_shares_of_one_client():
    config, clients, server, down = _run_to_unmask()
    live, dropped = down[0]
    assert dropped.tolist() == [4] and 4 not in live.tolist()
    greedy = (np.array([0, 1, 2, 3, 4]), np.array([4]))  # seed AND key share of client 4
    with pytest.raises(ProtocolAbort, match="both"):
        UNMASK.client_step(clients[0], greedy)
    # once answered, a client never answers a second request (e.g. for the other shares)
    UNMASK.client_step(clients[1], down[1])
    with pytest.raises(ProtocolError):
        UNMASK.client_step(clients[1], (np.array([0, 1, 2, 3]), np.array([], dtype=np.int64)))


def test_client_refuses_requests_outside_its_holdings_or_naming_itself_dropped():
    config, clients, server, down = _run_to_unmask()
    with pytest.raises(ProtocolAbort, match="refused"):
        UNMASK.client_step(clients[0], (np.array([0, 1, 2]), np.array([5])))  # 5 never shared keys
    with pytest.raises(ProtocolAbort, match="refused"):
        UNMASK.client_step(clients[1], (np.array([0, 2]), np.array([1])))
    with pytest.raises(ProtocolAbort, match="refused"):
        UNMASK.client_step(clients[2], (np.array([2, 0]), np.array([], dtype=np.int64)))  # unsorted


def test_server_never_asks_for_both_shares():
    n = 30
    config = make_config(n, DIM, variant="secagg+", dropout=0.3)
    res = simulate(config, _ints(n), dropout_schedule(n, 0.3, seed=4))
    for live, dropped in res.server.requests.values():
        assert not set(live.tolist()) & set(dropped.tolist())


def test_rounds_must_come_in_order():
    config = make_config(3, DIM)
    client = Client(0, config, np.zeros(DIM, np.uint32))
    with pytest.raises(ProtocolError):
        MASKED.client_step(client, (np.zeros(0, np.int64), np.zeros((0, 80), np.uint8)))
    server = Server(config)
    with pytest.raises(ProtocolError):
        UNMASK.server_step(server, {})


def test_unsafe_or_invalid_parameters_are_refused():
    with pytest.raises(ParameterError):
        make_config(1, 4)
    with pytest.raises(ParameterError):
        make_config(10, 4, variant="secagg++")
    with pytest.raises(ParameterError):
        make_config(10, 4, bits=65)
    with pytest.raises(ParameterError, match="threshold"):
        make_config(10, 4, threshold=1)
    with pytest.raises(ParameterError, match="threshold"):
        make_config(10, 4, dropout=0.3, threshold=9)  # 3 may drop: 7 remain
    with pytest.raises(ParameterError):
        make_config(10, 4, dropout=0.6, corruption=0.5)
    with pytest.raises(ParameterError):
        Client(0, make_config(3, 4, bits=8), np.array([1, 2, 3, 256]))
    with pytest.raises(ParameterError, match="overflow"):
        aggregate([np.ones(3)] * 4, bits=16)


def test_over_the_party_runtime_costs_and_transcript(tmp_path):
    n = 5
    values = _ints(n, seed=11)
    config = make_config(n, DIM, dropout=0.4)
    drops = {1: 0, 3: 2}
    page = tmp_path / "secagg.html"
    run = mpc.run(party_program, parties=n + 1, inputs=[None, *values],
                  kwargs={"config": config, "drops": drops}, preprocessing=None,
                  transcript=str(page))
    total, survivors, _ = run.outputs[0]
    assert survivors == [0, 2, 4]
    assert np.array_equal(total, _ring_sum(values, survivors))
    assert run.outputs[2] is None and run.outputs[4] is None and run.outputs[1] is not None
    assert run.cost.rounds == 7  # four uploads, three replies
    phases = run.cost.phases()
    assert list(phases)[:4] == ["advertise", "share", "masked", "unmask"]
    # a client that finished sent its two keys, 3 ciphertexts, its masked input and shares
    assert run.cost.bytes_sent[1] == 64 + (3 * 8 + 3 * 80) + 4 * DIM + (8 * 3 + 20 * 3 + 8 + 36)
    assert page.exists() and page.stat().st_size > 0


def test_party_runtime_aborts_below_threshold():
    config = make_config(4, DIM, dropout=0.25)
    with pytest.raises(ProtocolAbort):
        mpc.run(party_program, parties=5, inputs=[None, *_ints(4)],
                kwargs={"config": config, "drops": {0: 1, 1: 1}}, preprocessing=None)


def test_aggregate_over_parties_matches_simulation():
    rng = np.random.default_rng(8)
    updates = [rng.uniform(-1, 1, 10) for _ in range(4)]
    a = aggregate(updates, runtime="parties", dropouts={2: 1})
    b = aggregate(updates, runtime="simulation", dropouts={2: 1})
    assert a.survivors == b.survivors == [0, 1, 3]
    assert np.array_equal(a.total, b.total)
    assert a.cost.bytes_per_client > 0 and a.run is not None


def test_party_runtime_drops_a_client_that_sends_off_protocol_frames():
    n = 5
    values = _ints(n, seed=12)
    config = make_config(n, DIM, dropout=0.4)

    def program(party, value):
        if party.id == 3:  # client 2 sends a message under the wrong tag, then leaves
            party.send(0, "secagg/not-a-round", np.zeros(3, np.uint8))
            return None
        return party_program(party, value, config)

    run = mpc.run(program, parties=n + 1, inputs=[None, *values], preprocessing=None, timeout=20)
    total, survivors, _ = run.outputs[0]
    assert survivors == [0, 1, 3, 4]
    assert np.array_equal(total, _ring_sum(values, survivors))


def test_party_runtime_several_silent_clients_cost_one_deadline():
    # Three crashed devices never send anything. The server waits for one deadline per
    # round for all of them together (not one timeout each, which would outlast the
    # honest clients' patience and fail the session), then drops them.
    n = 10
    values = _ints(n, seed=13)
    config = make_config(n, DIM, dropout=0.3, corruption=0.1)
    silent = {1, 2, 3}

    def program(party, value):
        if party.id - 1 in silent:
            return None
        return party_program(party, value, config)

    run = mpc.run(program, parties=n + 1, inputs=[None, *values], preprocessing=None, timeout=1.5)
    total, survivors, _ = run.outputs[0]
    assert survivors == [u for u in range(n) if u not in silent]
    assert np.array_equal(total, _ring_sum(values, survivors))


def test_party_runtime_a_late_client_is_dropped_and_told_to_stop():
    # An honest but slow client misses the first round's deadline: the server drops it
    # and tells it to stop, so the session finishes with the others.
    import time

    n = 8
    values = _ints(n, seed=14)
    config = make_config(n, DIM, dropout=0.3, corruption=0.1)

    def program(party, value):
        if party.id == 3:
            time.sleep(1.5)
        return party_program(party, value, config)

    run = mpc.run(program, parties=n + 1, inputs=[None, *values], preprocessing=None, timeout=1.0)
    total, survivors, _ = run.outputs[0]
    assert survivors == [0, 1, 3, 4, 5, 6, 7] and run.outputs[3] is None
    assert np.array_equal(total, _ring_sum(values, survivors))


@settings(max_examples=15, deadline=None)
@given(st.integers(3, 12), st.sampled_from(["secagg", "secagg+"]), st.integers(1, 64),
       st.integers(1, 5), st.data())
def test_property_exact_ring_sum_for_any_ring_size_and_dropouts(n, variant, bits, dim, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    values = [rng.integers(0, 1 << bits, dim, dtype=np.uint64) if bits < 64 else
              rng.integers(0, 1 << 63, dim, dtype=np.uint64) * 2 + 1 for _ in range(n)]
    rate = 0.25 if n == 4 else 0.3  # 30% of 4 rounds up to 2 drops: no majority threshold
    config = make_config(n, dim, variant=variant, bits=bits, dropout=rate)
    allowed = n - max(config.threshold, n - int(rate * n))  # clients that may drop safely
    gone = data.draw(st.lists(st.integers(0, n - 1), max_size=max(allowed, 0), unique=True))
    drops = {u: data.draw(st.integers(0, 3)) for u in gone}
    res = simulate(config, values, drops)
    assert res.survivors == sorted(u for u in range(n) if drops.get(u, 4) > 2)
    assert np.array_equal(res.total, _ring_sum(values, res.survivors, bits=bits))


@pytest.mark.parametrize("variant,bits", [("secagg", 32), ("secagg", 12), ("secagg+", 64)])
def test_benchmark_shortcut_keeps_the_sum_exact(variant, bits):
    n = 40
    values = _ints(n, bits=min(bits, 63), seed=21, dim=5)
    config = make_config(n, 5, variant=variant, bits=bits, dropout=0.25)
    drops = {u: 2 for u in range(0, n, 6)} | {1: 3, 2: 1}
    res = simulate(config, values, drops, timed=2, shortcut=True)
    assert res.survivors == sorted(u for u in range(n) if drops.get(u, 4) > 2)
    assert np.array_equal(res.total, _ring_sum(values, res.survivors, bits=bits))
    assert res.cost.client_seconds > 0 and res.server.expansions > len(res.survivors)


def test_aggregate_takes_threshold_and_degree_and_refuses_unsafe_ones():
    rng = np.random.default_rng(30)
    updates = [rng.uniform(-1, 1, 8) for _ in range(20)]
    res = aggregate(updates, variant="secagg+", degree=8, threshold=6, dropouts=[3, 11])
    assert (res.config.degree, res.config.threshold) == (8, 6)
    want = sum(updates[u] for u in res.survivors)
    assert np.abs(res.total - want).max() <= res.error_bound
    # a degree alone gets the largest threshold that meets the targets
    alone = make_config(20, DIM, variant="secagg+", dropout=0.1, degree=8)
    assert alone.degree == 8 and 2 * alone.threshold > 9
    assert make_config(10, DIM, dropout=0.1, threshold=8).threshold == 8  # was silently ignored
    for bad in ({"threshold": 4},                       # 2t <= k + 1 = 20
                {"threshold": 20},                      # two drops leave 18 < t
                {"variant": "secagg+", "degree": 7},    # odd degree
                {"variant": "secagg+", "degree": 0},
                {"degree": 8},                          # SecAgg pairs everyone
                {"variant": "secagg+", "degree": 2}):   # no safe t for 2 neighbours
        with pytest.raises(ParameterError):
            aggregate(updates, dropouts=[3, 11], **bad)


def test_aggregate_mean_is_the_total_over_the_survivors():
    rng = np.random.default_rng(31)
    updates = [rng.uniform(-2, 2, 5) for _ in range(6)]
    res = aggregate(updates, dropouts=[2])
    total, _ = res                             # what callers got before: the sum
    assert np.abs(total - sum(updates[u] for u in res.survivors)).max() <= res.error_bound
    assert np.array_equal(res.mean, res.total / 5)
    want = np.mean([updates[u] for u in res.survivors], axis=0)
    assert np.abs(res.mean - want).max() <= res.error_bound / 5
    with pytest.raises(ParameterError, match="no mean"):
        aggregate(_ints(4), dropouts=[1]).mean


def test_cost_figures_mean_the_same_in_both_runtimes():
    rng = np.random.default_rng(32)
    updates = [rng.uniform(-1, 1, 7) for _ in range(5)]
    runs = {rt: aggregate(updates, runtime=rt, dropouts={1: 2, 3: 1}).cost
            for rt in ("simulation", "parties")}
    for rt, c in runs.items():
        # server_seconds: the server's time inside its four round methods, split by round
        assert list(c.server_round_seconds) == ["advertise", "share", "masked", "unmask"], rt
        assert c.server_seconds == pytest.approx(sum(c.server_round_seconds.values()))
        assert c.server_cpu_seconds > 0 and c.client_cpu_seconds > 0
        assert c.client_seconds_max >= c.client_seconds > 0
        assert list(c.client_round_seconds) == ["advertise", "share", "masked", "unmask"], rt
        assert c.total_bytes == c.server_bytes_sent + c.server_bytes_received
        assert c.total_bytes == sum(c.round_bytes.values())
        assert c.bytes_per_client_max >= c.bytes_per_client > c.bytes_sent_per_client > 0
        assert c.rounds == 4
    sim, par = runs["simulation"], runs["parties"]
    for name in ("bytes_per_client", "bytes_per_client_max", "bytes_sent_per_client",
                 "server_bytes_sent", "server_bytes_received", "total_bytes", "round_bytes"):
        assert getattr(sim, name) == getattr(par, name), name
    # the server also received what clients 1 and 3 sent before they left
    assert sim.server_bytes_received > 3 * sim.bytes_sent_per_client


@pytest.mark.parametrize("threshold", [7.9, 7.0, "7", True])
def test_a_threshold_that_is_not_an_integer_is_refused_not_truncated(threshold):
    with pytest.raises(ParameterError, match="threshold .* must be an integer"):
        make_config(10, 4, threshold=threshold)
    with pytest.raises(ParameterError, match="threshold .* must be an integer"):
        aggregate([np.ones(2)] * 10, threshold=threshold)


def test_party_runtime_drops_a_client_whose_frame_cannot_be_shaped():
    # A zero-element array announcing (0, 2^40, 2^40) passed every size limit, then numpy's
    # reshape raised ValueError in the server: one client aborted the whole session.
    import struct

    from mpc.transport.wire import encode_frame

    n = 5
    values = _ints(n, seed=13)
    config = make_config(n, DIM, dropout=0.4)

    def program(party, value):
        if party.id == 2:  # client 1 sends an unshapeable frame as its keys, then leaves
            good = encode_frame("secagg/advertise", [np.zeros((0, 0, 0), np.uint8)],
                                session=party.session)
            party.endpoint.send_frame(0, good[:-24] + struct.pack("<3Q", 0, 2**40, 2**40))
            return None
        return party_program(party, value, config)

    run = mpc.run(program, parties=n + 1, inputs=[None, *values], preprocessing=None, timeout=20)
    total, survivors, _ = run.outputs[0]
    assert survivors == [0, 2, 3, 4]
    assert np.array_equal(total, _ring_sum(values, survivors))


def test_party_runtime_client_refuses_a_server_message_with_the_wrong_array_count():
    # found by the fuzzer: three arrays where two are expected raised TypeError in the client
    n = 3
    values = _ints(n, seed=14)
    config = make_config(n, DIM, dropout=0.0)

    def program(party, value):
        if party.id == 0:   # a faulty server
            for u in range(1, n + 1):
                party.recv(u, "secagg/advertise")
            for u in range(1, n + 1):
                party.send(u, "secagg/keys", np.zeros(0, np.int64), np.zeros((0, 2, 32), np.uint8),
                           np.zeros(1, np.uint8))
            return None
        return party_program(party, value, config)

    from mpc.errors import EncodingError
    with pytest.raises(EncodingError, match="the server's 'keys' message: expected 2 arrays, got 3"):
        mpc.run(program, parties=n + 1, inputs=[None, *values], preprocessing=None, timeout=10)


def test_client_refuses_neighbour_ids_whose_differences_wrap():
    # found by the fuzzer: [1, 2^62, -2^63 + 5, 3] passed np.diff(ids) > 0 (the differences
    # wrap) with ids[0] >= 0 and ids[-1] < n, then crashed packing -2^63 + 5 as a u32
    config = make_config(5, DIM, dropout=0.2)
    clients = [Client(u, config, np.zeros(DIM, np.uint64)) for u in range(5)]
    keys = np.stack([ADVERTISE.client_step(c)[0] for c in clients])[1:]
    ids = np.array([1, 2**62, -2**63 + 5, 3], np.int64)
    with pytest.raises(ProtocolAbort, match="sorted, unique"):
        SHARE.client_step(clients[0], (ids, keys))


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_dropouts_argument_is_refused_by_name(flag):
    updates = [np.zeros(3, np.int64) for _ in range(3)]
    with pytest.raises(ParameterError, match="dropouts must be"):
        aggregate(updates, bits=16, dropouts=flag)
