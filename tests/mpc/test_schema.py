"""One receive-with-schema (Party.recv_checked) and one error for malformed peer data."""

import re

import numpy as np
import pytest

import mpc
from mpc.errors import EncodingError, MalformedPeerData, ProtocolError
from mpc.schema import ArraySpec, check_arrays
from protocols.secagg import MalformedMessage

SCHEMA = [ArraySpec(np.uint64, (None, 3), field="share"), ArraySpec(np.uint8, (2,), low=0, high=5)]
GOOD = (np.zeros((4, 3), np.uint64), np.array([1, 5], np.uint8))
BAD = [
    ((np.zeros((4, 3), np.uint64),), None, "1 arrays"),
    ((np.zeros((4, 2), np.uint64), GOOD[1]), "share", "uint64\\[4, 2\\]"),
    ((np.zeros((4, 3), np.int64), GOOD[1]), "share", "int64\\[4, 3\\]"),
    ((GOOD[0], np.array([1, 6], np.uint8)), "array 1", "outside \\[0, 5\\]"),
]


def test_the_one_error_is_caught_by_every_older_type():
    for old in (EncodingError, ProtocolError, MalformedMessage, ValueError, mpc.ConciliumError):
        assert issubclass(MalformedPeerData, old)
    assert MalformedMessage is MalformedPeerData


def test_recv_checked_accepts_a_message_that_fits():
    def prog(party):
        if party.id == 1:
            party.send(0, "m", *GOOD)
            return None
        return party.recv_checked(1, "m", SCHEMA)

    got = mpc.run(prog, 2, preprocessing=None).outputs[0]
    assert [g.shape for g in got] == [(4, 3), (2,)]


@pytest.mark.parametrize("arrays, field, text", BAD)
def test_recv_checked_names_peer_round_tag_and_field(arrays, field, text):
    def prog(party):
        if party.id == 1:
            with party.scope("s"):
                party.send(0, "m", *arrays)
            return None
        with party.scope("s"):
            try:
                party.recv_checked(1, "m", SCHEMA)
            except MalformedPeerData as exc:
                return exc.peer, exc.round, exc.tag, exc.field, str(exc)
        return None

    peer, rnd, tag, got_field, message = mpc.run(prog, 2, preprocessing=None).outputs[0]
    assert (peer, rnd, tag, got_field) == (1, 0, "s/m", field)
    assert message.startswith("party 0: party 1 sent ")
    assert "'s/m'" in message
    assert re.search(text, message)


def test_check_arrays_is_the_secagg_check():
    assert check_arrays(list(GOOD), SCHEMA, "x") == GOOD
    for arrays, _, _ in BAD:
        with pytest.raises(MalformedMessage, match="^client 3: "):
            check_arrays(arrays, SCHEMA, "client 3")
    with pytest.raises(MalformedPeerData, match="not an array"):
        check_arrays((GOOD[0], [1, 5]), SCHEMA, "x")
    with pytest.raises(MalformedPeerData, match="more than 2"):
        check_arrays((np.zeros((3, 3), np.uint64), GOOD[1]),
                     [ArraySpec(np.uint64, (None, 3), max_len=2), SCHEMA[1]], "x")


def test_a_remote_partys_malformed_peer_data_error_keeps_its_type():
    from mpc.launch import PartyOutcome

    sent = PartyOutcome(0, error=MalformedPeerData("party 0: party 1 sent 2 arrays under 'x', expected 1"))
    got = PartyOutcome.from_json(sent.to_json()).error
    assert type(got) is MalformedPeerData and str(got) == str(sent.error)
