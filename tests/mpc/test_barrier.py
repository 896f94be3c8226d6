"""party.barrier(): every party has arrived when it returns; one round, empty messages."""

import threading
import time

import pytest

import mpc
from mpc.distributed import run_local


@pytest.mark.parametrize("n", [2, 3, 5])
def test_no_party_leaves_the_barrier_before_every_party_reached_it(n):
    arrived, lock = [], threading.Lock()

    def prog(party):
        if party.id == n - 1:
            time.sleep(0.3)               # the last one is late: the others must wait for it
        with lock:
            arrived.append(party.id)
        party.barrier()
        with lock:
            return sorted(arrived)

    res = mpc.run(prog, n, preprocessing=None, timeout=10)
    assert all(out == list(range(n)) for out in res.outputs)
    assert res.cost.rounds == 1 and len(res.cost.messages) == n * (n - 1)
    assert all(m.payload_bytes == 0 and m.tag == "barrier#0" for m in res.cost.messages)


def test_barriers_in_phases_and_over_tcp():
    res = run_local(_phased, 3, preprocessing=None, timeout=20, processes=False)
    phases = res.cost.phases()
    assert phases["a"].rounds == 1 and phases["b"].rounds == 1
    assert res.outputs == [2] * 3


def _phased(party):
    with party.phase("a"):
        party.barrier()
    with party.phase("b"):
        party.barrier("sync")
    return party.clock


def test_a_missing_party_times_out_naming_the_barrier():
    def prog(party):
        if party.id == 0:
            party.barrier()
        else:
            time.sleep(3)

    with pytest.raises(mpc.PeerTimeout, match="barrier#0"):
        mpc.run(prog, 2, preprocessing=None, timeout=1)
