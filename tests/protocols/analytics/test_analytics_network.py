"""A federated histogram with the analyst and each client on its own TLS link (threads here,
real sockets on loopback; the same functions run in separate processes)."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.errors import ProtocolAbort
from mpc.transport.tls import new_identity
from protocols import analytics
from protocols.analytics.network import answer_histogram, serve_histogram
from tests.protocols.analytics.test_network_queries import N, run


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    for i in range(N + 1):
        new_identity(i, folder)
    return folder


def _query(keys, buckets_of, buckets, *, epsilon=None, silent=(), limits=None, n=N):
    """Run one histogram query; (result or exception, {client: outcome})."""
    clients = {k: (lambda link, k=k: answer_histogram(link, buckets_of[k], timeout=20,
                                                      max_epsilon=(limits or {}).get(k)))
               for k in range(n) if k not in silent}
    result, outcomes, _ = run(keys, lambda link: serve_histogram(link, buckets, epsilon=epsilon,
                                                                 round_timeout=2.0),
                              None, expect=None, silent=silent, behave=clients, n=n)
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
