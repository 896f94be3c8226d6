"""The one launcher (mpc/launch.py): typed knock-on failures, the root failure, the preprocessing hook.

Issue 20 §1: a party that stops because another failed raises a
:class:`~mpc.errors.PeerFailure` carrying the node where the failure began, and
both front-ends (:func:`mpc.run`, :func:`mpc.distributed.run_local`) report the
root by type, never by matching error text.
"""

import time

import numpy as np
import pytest
from tests.mpc.transport.test_tcp import SESSION, _close_all, _mesh

import mpc
from mpc.distributed import run_local
from mpc.errors import (PartyError, PeerAborted, PeerDisconnected, PeerFailure, ProtocolAbort,
                        TransportError)
from mpc.launch import PartyOutcome, root_failure
from mpc.preprocessing.source import Source, resolve
from mpc.runner import default_preprocessing
from mpc.transcript import from_parties
from mpc.transport.wire import encode_frame


def _fails_at_2(party):
    if party.id == 2:
        raise KeyError("temperature")
    return party.recv(2, "never")


def test_memory_echoes_are_peer_aborted_with_the_origin():
    with pytest.raises(PartyError, match="party 2 failed: KeyError") as info:
        mpc.run(_fails_at_2, 3, timeout=10, preprocessing=None)
    assert info.value.party == 2
    echoes = info.value.party_errors
    for i in (0, 1):
        assert isinstance(echoes[i], PeerAborted) and echoes[i].origin == 2
        assert f"party {i} stopped: party 2 failed with KeyError" in str(echoes[i])


def _own_abort_at_1(party):
    if party.id == 1:   # a protocol's own abort, whose text reads like an echo
        raise ProtocolAbort("stage 'unmask' aborted: too few clients")
    return party.recv(1, "never")


def test_a_protocol_abort_is_the_root_whatever_its_text():
    # Matching " aborted: " in the text took this for an echo and named party 0.
    with pytest.raises(ProtocolAbort, match="too few clients") as info:
        run_local(_own_abort_at_1, 3, preprocessing=None, processes=False, timeout=10)
    assert info.value.party == 1
    assert not isinstance(info.value, PeerFailure)
    for i in (0, 2):
        assert isinstance(info.value.party_errors[i], PeerAborted)
        assert info.value.party_errors[i].origin == 1


def test_an_abort_relayed_over_tcp_keeps_where_it_began(tmp_path):
    eps, _, _ = _mesh(tmp_path, 3)
    try:
        eps[1].abort("PeerAborted: party 0 aborted: ValueError: x", origin=0)
        with pytest.raises(PeerAborted) as info:
            eps[2].recv_frame(1, 5, "'y'")
        assert info.value.origin == 0
        assert str(info.value) == "party 1 aborted: PeerAborted: party 0 aborted: ValueError: x " \
                                  "while party 2 waited for 'y'"
        with pytest.raises(PeerAborted) as info:        # sticky, on send too, origin kept
            eps[2].send_frame(1, encode_frame("z", [np.zeros(1)], session=SESSION))
        assert info.value.origin == 0 and "cannot send 'z' (round 0) to party 1" in str(info.value)
    finally:
        _close_all(eps)


def test_an_abort_naming_no_node_of_the_session_blames_its_sender(tmp_path):
    eps, _, _ = _mesh(tmp_path, 2)
    try:
        eps[1].abort("claims another origin", origin=77)
        with pytest.raises(PeerAborted) as info:
            eps[0].recv_frame(1, 5)
        assert info.value.origin == 1
        assert str(info.value).startswith("party 1 aborted: claims another origin")
    finally:
        _close_all(eps)


def test_a_lost_connection_is_a_transport_error_and_a_knock_on(tmp_path):
    eps, _, _ = _mesh(tmp_path, 2)
    try:
        eps[1]._shutdown()
        time.sleep(0.2)
        with pytest.raises(PeerDisconnected) as info:
            eps[0].recv_frame(1, 5)
        assert isinstance(info.value, TransportError) and info.value.origin == 1
    finally:
        _close_all(eps)


def test_knock_ons_survive_the_trip_from_a_party_process():
    out = PartyOutcome(1, error=PeerAborted("party 1 stopped: party 0 aborted", 0))
    back = PartyOutcome.from_json(out.to_json()).error
    assert type(back) is PeerAborted and back.origin == 0 and str(back) == str(out.error)


def test_root_failure_is_by_type_then_time_then_party():
    echo = PartyOutcome(0, error=PeerDisconnected("party 2 disconnected", 2), failed_at=1.0)
    root = PartyOutcome(2, error=ValueError("bad"), failed_at=2.0)
    later = PartyOutcome(1, error=ValueError("also bad"), failed_at=3.0)
    assert root_failure([echo, later, root]) is root
    assert root_failure([echo]) is echo
    assert root_failure([PartyOutcome(0)]) is None


def _kind(party):
    return type(party.preprocessing).__name__


def test_default_preprocessing_is_a_scoped_public_hook():
    with default_preprocessing("dealer"):     # whatever the session chose (--preprocessing=ot)
        assert mpc.run(_kind, 2).outputs == ["DealerSource"] * 2
        with default_preprocessing("ot"):
            assert mpc.run(_kind, 2).outputs == ["OTSource"] * 2
            assert mpc.run(_kind, 2, preprocessing=None).outputs == ["NoneType"] * 2   # asked for: kept
        assert mpc.run(_kind, 2).outputs == ["DealerSource"] * 2


def test_a_source_object_prepares_and_reports():
    seen = []

    class Counting(Source):
        def prepare(self, program, n, options):
            seen.append((n, options["inputs"]))
            return resolve("dealer")

    res = mpc.run(lambda party, x: x, 2, inputs=[3, 4], preprocessing=Counting(None))
    assert res.outputs == [3, 4] and seen == [(2, [3, 4])]


def test_a_factory_cannot_travel_to_party_processes():
    with pytest.raises(mpc.ParameterError, match="preprocessing 'dealer', 'ot', 'he' or None"):
        run_local(_kind, 2, preprocessing=lambda n: None)


def test_the_launchers_transcript_is_from_parties_of_the_same_run():
    seen = []

    def prog(party):
        seen.append(party)
        x = mpc.share(party, np.arange(3.0) if party.id == 0 else None, owner=0)
        party.publish("opened", x.reveal())
        return (x * x).reveal()

    res = mpc.run(prog, 3, transcript=True)
    parties = sorted(seen, key=lambda p: p.id)
    again = from_parties(parties, outputs=res.outputs, cost=res.cost, title=res.transcript.title)
    assert again.to_dict() == res.transcript.to_dict()
    assert any(m.record.sender == -1 for m in again.messages)   # the dealer's messages too
