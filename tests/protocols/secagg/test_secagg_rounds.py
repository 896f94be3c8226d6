"""The SecAgg table of rounds: one table that every driver reads, steps callable one round at a
time on explicit state (what a networked server and client processes will call)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import ProtocolError
from protocols.secagg import (ROUNDS, Client, MalformedMessage, Server, aggregate, make_config,
                              party_cost, party_program, simulate)
from protocols.secagg.crypto import agree
from protocols.secagg.rounds import ADVERTISE, MASKED, SHARE
from protocols.secagg.simulation import SharedAgreements

DIM = 5


def _ints(n, bits=32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 1 << bits, DIM, dtype=np.uint64) for _ in range(n)]


def _ring_sum(values, ids):
    return (np.sum([values[u] for u in ids], axis=0, dtype=np.uint64) & np.uint64(2**32 - 1))


def _drive(config, values, drops):
    """A driver written against the table alone: each side holds its state between rounds."""
    clients = {u: Client(u, config, values[u]) for u in range(config.n)}
    server = Server(config)
    replies = {u: () for u in range(config.n)}
    for rnd in ROUNDS:
        up = {u: rnd.client_step(clients[u], m) for u, m in replies.items()
              if drops.get(u, 4) > rnd.index}
        replies = rnd.server_step(server, up)
    return replies, server


@settings(max_examples=8, deadline=None)
@given(st.dictionaries(st.integers(0, 6), st.integers(0, 3), max_size=2))
def test_the_table_alone_runs_a_session_round_by_round(drops):
    config = make_config(7, DIM, dropout=2 / 7)
    values = _ints(7, seed=len(drops))
    total, server = _drive(config, values, drops)
    survivors = [u for u in range(7) if drops.get(u, 4) > MASKED.index]
    assert server.survivors == survivors
    assert np.array_equal(total, _ring_sum(values, survivors))
    assert set(server.dropped) == set(drops)
    assert [r.index for r in ROUNDS] == [0, 1, 2, 3] and ROUNDS[-1].reply_tag is None


def test_every_driver_names_the_rounds_from_the_table():
    n = 4
    config = make_config(n, DIM, dropout=0.25)
    names = [r.name for r in ROUNDS]
    sim = simulate(config, _ints(n), {1: 2})
    assert list(sim.cost.round_bytes) == names
    assert list(sim.server.seconds) == names
    run = mpc.run(party_program, parties=n + 1, inputs=[None, *_ints(n)],
                  kwargs={"config": config, "drops": {1: 2}, "report": True},
                  preprocessing=None, record_view=True)
    assert list(run.cost.phases())[:4] == names
    assert list(party_cost(run).round_bytes) == names
    # clients send under the round's name, the server replies under its reply tag
    to_server = {tag.rsplit("/", 1)[-1] for frm, tag, _ in run.views[0] if frm >= 1}
    to_client = {tag.rsplit("/", 1)[-1] for _, tag, _ in run.views[1]}   # client 0
    assert to_server == set(names)
    assert to_client == {r.reply_tag for r in ROUNDS[:-1]}


def test_both_runtimes_show_the_server_the_same_messages():
    rng = np.random.default_rng(4)
    updates = [rng.uniform(-1, 1, DIM) for _ in range(4)]
    views = [aggregate(updates, dropouts={2: 2}, runtime=rt, record_view=True).view
             for rt in ("simulation", "parties")]
    shapes = [[(u, name, [a.shape for a in m]) for u, name, m in view if len(m)] for view in views]
    assert shapes[0] == shapes[1] and len(shapes[0]) == 4 + 4 + 3 + 3
    # over parties the client leaving in round 2 says so with an empty message
    assert [(u, name) for u, name, m in views[1] if not len(m)] == [(2, "masked")]
    assert aggregate(updates, record_view=False).view is None


def test_steps_refuse_the_wrong_round_or_a_malformed_message_naming_both():
    config = make_config(3, DIM)
    client = Client(0, config, np.zeros(DIM, np.uint32))
    with pytest.raises(ProtocolError, match="'share'.*'advertise'"):
        SHARE.client_step(client, (np.zeros(0, np.int64), np.zeros((0, 2, 32), np.uint8)))
    ADVERTISE.client_step(client)
    with pytest.raises(MalformedMessage, match="client 0, round 'share'"):
        SHARE.client_step(client, (np.zeros(2, np.int32), np.zeros((2, 2, 32), np.uint8)))
    with pytest.raises(ProtocolError, match="server: round 'masked'.*'advertise'"):
        MASKED.server_step(Server(config), {})


def test_state_reprs_leave_out_inputs_and_secrets():
    config = make_config(3, DIM)
    value = np.full(DIM, 123456789, np.uint32)
    client = Client(1, config, value)
    ADVERTISE.client_step(client)
    text = repr(client)
    assert "123456789" not in text and client.s.secret.hex() not in text
    assert repr(client.s.secret) not in text and "Client(id=1" in text


def test_shared_agreements_give_both_ends_the_x25519_value():
    a, b = Client(0, make_config(3, DIM), _ints(3)[0]), Client(1, make_config(3, DIM), _ints(3)[1])
    shared = SharedAgreements()
    ab = shared("s", 0, 1, a.s.secret, b.s.public)
    assert ab == agree(a.s.secret, b.s.public) == agree(b.s.secret, a.s.public)
    assert shared("s", 1, 0, b"\x00" * 32, b"\x00" * 32) == ab   # computed once per pair
