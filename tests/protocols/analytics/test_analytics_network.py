"""A federated histogram with the analyst and each client on its own TLS link (threads here,
real sockets on loopback; the same functions run in separate processes)."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from mpc.errors import ProtocolAbort
from mpc.transport.mesh import Node
from mpc.transport.star import Hub, dial
from mpc.transport.tls import load_certificate, new_identity
from protocols import analytics
from protocols.analytics.network import EndpointLink, HubLink, answer_histogram, serve_histogram

N = 6
SESSION, DIGEST = b"histo-01", bytes(32)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    for i in range(N + 1):
        new_identity(i, folder)
    return folder


def _query(keys, buckets_of, buckets, *, epsilon=None, silent=(), limits=None, n=N):
    """Run one query; (result or exception, {client: outcome})."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    der = {i: load_certificate(keys / f"party{i}.crt") for i in range(n + 1)}
    hub = Hub(("127.0.0.1", port), {k + 1: der[k + 1] for k in range(n)},
              cert=str(keys / "party0.crt"), key=str(keys / "party0.key"), session=SESSION,
              digest=DIGEST, close_timeout=1.0)
    outcomes: dict = {}
    over = threading.Event()

    def client(k: int) -> None:
        ep = dial(k + 1, Node(0, "127.0.0.1", port, der[0]), cert=str(keys / f"party{k + 1}.crt"),
                  key=str(keys / f"party{k + 1}.key"), session=SESSION, digest=DIGEST, timeout=20)
        try:
            if k in silent:   # connected, never answers: a dropout
                outcomes[k] = "silent"
                over.wait(30)
                return
            outcomes[k] = answer_histogram(EndpointLink(ep), buckets_of[k], timeout=20,
                                           max_epsilon=(limits or {}).get(k))
        except ProtocolAbort as exc:
            outcomes[k] = exc
        finally:
            ep.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    try:
        assert hub.wait_for(set(range(1, n + 1)), 20) == set(range(1, n + 1))
        result = serve_histogram(HubLink(hub, list(range(1, n + 1))), buckets, epsilon=epsilon,
                                 round_timeout=2.0)
    except ProtocolAbort as exc:
        result = exc
    finally:
        over.set()
        hub.close()
    for t in threads:
        t.join(30)
    return result, outcomes


def test_noiseless_histogram_over_the_network_is_exact_with_a_dropout(keys):
    buckets_of = [0, 2, 2, 1, 3, 2]
    res, outcomes = _query(keys, buckets_of, 4, silent={4})
    assert res.value.tolist() == [1.0, 1.0, 3.0, 0.0]   # client 4 (bucket 3) is not counted
    assert res.cost.survivors == 5 and outcomes[0] is True


def test_noisy_histogram_has_the_in_process_plan(keys):
    buckets_of = [0, 1, 1, 1, 0, 1]
    res, _ = _query(keys, buckets_of, 2, epsilon=1.0)
    local = analytics.histogram(np.array(buckets_of), 2, epsilon=1.0)
    assert res.epsilon == local.epsilon and res.noise_std == pytest.approx(local.noise_std)
    assert res.cost.ring_bits == local.cost.ring_bits
    assert np.all(np.abs(res.value - [2, 4]) < 12 * res.noise_std)


def test_a_client_refuses_a_query_above_its_epsilon_limit(keys):
    res, outcomes = _query(keys, [0] * N, 2, epsilon=4.0, limits={1: 1.0, 2: 1.0})
    assert isinstance(outcomes[1], ProtocolAbort) and "limit 1.0" in str(outcomes[1])
    # two refusals: more than the 30% the noise is planned for, so nothing is released
    assert isinstance(res, ProtocolAbort)


def test_too_few_survivors_stop_before_the_unmask_round(keys):
    # n = 10: SecAgg+'s threshold is 4 but the noise is planned for 7 survivors. With 4 silent
    # clients the session used to finish (the server formed a sum with too little noise and only
    # then refused to release it); now it stops before anyone is asked for unmasking shares.
    for i in range(N + 1, 11):
        new_identity(i, keys)
    res, outcomes = _query(keys, [0] * 10, 2, epsilon=1.0, silent={6, 7, 8, 9}, n=10)
    assert isinstance(res, ProtocolAbort) and "fewer than the 7 required" in str(res)
    assert all(outcomes[k] is False for k in range(6))   # told to stop, never unmasked
