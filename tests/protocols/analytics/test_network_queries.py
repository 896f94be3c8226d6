"""Count, sum, mean, histogram and heavy hitters with the analyst and each client on its own TLS
link (threads here, real sockets on loopback; the CLI test runs the same functions from
``main(argv)``): the network result equals the in-process query for the same seed and the same
survivors, a silent client is dropped, malformed queries and messages are rejected."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.errors import ParameterError, ProtocolAbort
from mpc.transport.mesh import Node
from mpc.transport.star import Hub, dial
from mpc.transport.tls import load_certificate, new_identity
from mpc.transport.wire import encode_frame
from protocols import analytics
from protocols.analytics import network as net

N = 6
SESSION, DIGEST = b"queries1", bytes(32)
SEED = b"network-equals-in-process"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    for i in range(N + 1):
        new_identity(i, folder)
    return folder


def run(keys, serve, values, *, expect, silent=(), gone=(), seed=None, behave=None, n=N):
    """Serve one query to n client threads; (result or exception, {client: outcome}, hub link).

    ``behave[k](link)`` replaces client k's honest answer (malformed messages, or another
    query's client). ``n`` clients: ``keys`` must hold identities 0..n."""
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
            if k in silent:   # connected, never answers: dropped at the first deadline
                outcomes[k] = "silent"
                over.wait(30)
            elif k in gone:   # takes the query, then its link goes down (a killed process)
                net.EndpointLink(ep).recv("analytics/query", 20)
                outcomes[k] = "gone"
            elif behave and k in behave:
                outcomes[k] = behave[k](net.EndpointLink(ep))
                over.wait(30)
            else:
                outcomes[k] = net.answer(net.EndpointLink(ep), values[k], timeout=20,
                                         expect=expect, seed=seed)
        except (ProtocolAbort, ParameterError) as exc:
            outcomes[k] = exc
        finally:
            ep.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    link = net.HubLink(hub, list(range(1, n + 1)))
    try:
        assert hub.wait_for(set(range(1, n + 1)), 20) == set(range(1, n + 1))
        result = serve(link)
    except ProtocolAbort as exc:
        result = exc
    finally:
        over.set()
        hub.close()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    return result, outcomes, link


FLAGS = [True, False, True, True, False, True]
REALS = [3.5, 80.0, 12.25, 99.0, 140.0, -5.0]    # two out of [0, 100]: clipped on the clients
BUCKETS = [0, 2, 2, 1, 3, 2]
WORDS = ["maps"] * 4 + ["mail", "music"]


@pytest.mark.parametrize("kind, serve, local, values", [
    ("count", lambda link, **kw: net.serve_count(link, **kw),
     lambda v, **kw: analytics.count(np.array(v), **kw), FLAGS),
    ("sum", lambda link, **kw: net.serve_sum(link, 0.0, 100.0, resolution=64, **kw),
     lambda v, **kw: analytics.sum(np.array(v), 0.0, 100.0, resolution=64, **kw), REALS),
    ("mean", lambda link, **kw: net.serve_mean(link, 0.0, 100.0, resolution=64, **kw),
     lambda v, **kw: analytics.mean(np.array(v), 0.0, 100.0, resolution=64, **kw), REALS),
    ("histogram", lambda link, **kw: net.serve_histogram(link, 4, **kw),
     lambda v, **kw: analytics.histogram(np.array(v), 4, **kw), BUCKETS),
])
def test_each_network_query_equals_the_in_process_one_with_its_noise_and_a_dropout(
        keys, kind, serve, local, values):
    res, outcomes, link = run(keys, lambda link: serve(link, epsilon=1.0, round_timeout=2.0, first_timeout=20),
                              values, expect=kind, gone={4}, seed=SEED)
    ref = local(values, epsilon=1.0, dropped=[4], seed=SEED)
    assert res.cost.survivors == ref.cost.survivors == N - 1
    assert np.array_equal(res.value, ref.value)          # the same noise, the same rounding
    assert res.noise_std == pytest.approx(ref.noise_std) and res.epsilon == ref.epsilon
    assert res.cost.ring_bits == ref.cost.ring_bits
    assert all(outcomes[k] is True for k in range(N) if k != 4)
    assert {u for u, _, _ in link.view} == set(range(N)) - {4}   # the silent client sent nothing


def test_a_noiseless_network_mean_is_the_clipped_mean_of_the_survivors(keys):
    res, _, _ = run(keys, lambda link: net.serve_mean(link, 0.0, 100.0, resolution=400,
                                                      round_timeout=2.0, first_timeout=3),
                    REALS, expect="mean", silent={1})
    # survivors 3.5, 12.25, 99, 100 (clipped), 0 (clipped): multiples of 1/4, exact at resolution 400
    assert res.value == pytest.approx((3.5 + 12.25 + 99.0 + 100.0 + 0.0) / 5)
    assert res.epsilon == float("inf") and res.clipped == 0


def test_network_heavy_hitters_equal_the_in_process_ones(keys):
    kw = dict(k=2, max_bytes=5, width=1024, min_count=2)
    res, outcomes, _ = run(keys, lambda link: net.serve_heavy_hitters(link, seed=SEED, round_timeout=2.0, first_timeout=20,
                                                                     **kw),
                           WORDS, expect="heavy_hitters", seed=SEED)
    ref = analytics.heavy_hitters(WORDS, seed=SEED, **kw)
    assert res.value == ref.value and res.value[0] == ("maps", 4.0)
    assert res.details["sketch_values"] == ref.details["sketch_values"]


def test_the_server_never_sees_an_unmasked_input(keys):
    buckets = [3, 17, 17, 40, 63, 0]
    res, _, _ = run(keys, lambda link: net.serve_histogram(link, 64, round_timeout=2.0,
                                                           first_timeout=20, record_server_view=True),
                    buckets, expect="histogram")
    assert np.flatnonzero(res.value).tolist() == [0, 3, 17, 40, 63]
    view = res.details["server_view"]
    assert len(view) == N
    # an unmasked input is one-hot (one nonzero of 64); a masked one is uniform in the ring
    # (about 60 of 64 entries nonzero, fewer than 16 with probability below 2^-60)
    assert all(np.count_nonzero(v) >= 16 for v in view)


def test_a_client_refuses_a_query_of_another_kind(keys):
    res, outcomes, _ = run(keys, lambda link: net.serve_histogram(link, 4, round_timeout=1.0, first_timeout=5),
                           [1] * N, expect="count")
    assert all(isinstance(outcomes[k], ProtocolAbort) and "count only" in str(outcomes[k])
               for k in range(N))
    assert isinstance(res, ProtocolAbort)     # nobody answered: nothing is released


def _garbage(link):
    """A client that answers the query with malformed SecAgg messages."""
    query = link.recv("analytics/query", 20)
    link.endpoint.send_frame(0, encode_frame("analytics/secagg/advertise", (np.zeros(3, np.float32),)))
    return len(query)


def _wrong_tag(link):
    link.recv("analytics/query", 20)
    link.endpoint.send_frame(0, encode_frame("analytics/secagg/masked", (np.zeros(1, np.uint64),)))
    return "sent"


def test_malformed_client_messages_are_dropped_and_the_rest_is_summed(keys):
    res, outcomes, _ = run(keys, lambda link: net.serve_count(link, round_timeout=2.0, first_timeout=20),
                           FLAGS, expect="count", behave={0: _garbage})
    assert outcomes[0] == 7
    assert res.value == 3.0 and res.cost.survivors == N - 1   # client 0's flag is not counted
    res, _, _ = run(keys, lambda link: net.serve_count(link, round_timeout=2.0, first_timeout=20),
                    FLAGS, expect="count", behave={2: _wrong_tag})
    assert res.value == 3.0 and res.cost.survivors == N - 1


class _FakeLink:
    def __init__(self, message):
        self.message = message

    def recv(self, tag, timeout):
        return self.message


def _query_message(**changes):
    q = net._Query("sum", N, (64,), (0.0, 1.0), b"", 1.0, 1e-6)
    from protocols.secagg import make_config
    from protocols.secagg.network import config_arrays
    config = make_config(N, q.dim, variant="secagg", bits=q.bits, dropout=1 / N, corruption=0.1)
    parts = [*q.arrays(), *config_arrays(config), np.array([0])]
    for i, a in changes.items():
        parts[int(i[1:])] = a
    return tuple(parts)


@pytest.mark.parametrize("changes, message", [
    ({"p0": np.array([9, 64])}, "malformed"),                       # unknown kind
    ({"p0": np.array([1, 64, 3])}, "malformed"),                    # too many ints
    ({"p1": np.array([1.0, 1e-6, 5.0, 1.0])}, "lo < hi"),           # bounds reversed
    ({"p1": np.array([np.nan, 1e-6, 0.0, 1.0])}, "non-finite"),
    ({"p3": np.array([N, 1, 7, 4, 5, 0])}, "does not match"),        # a ring too small for the noise
    ({"p6": np.array([0.5])}, "malformed"),                          # index not an integer
])
def test_a_client_rejects_a_malformed_or_mismatched_query(changes, message):
    with pytest.raises(ProtocolAbort, match=message):
        net.answer(_FakeLink(_query_message(**changes)), 0.5, timeout=1, expect="sum")


def test_the_query_parameters_are_checked_on_the_server():
    with pytest.raises(ParameterError, match="unknown query kind"):
        net._Query("median", N, (), (), b"", None, 1e-6)
    with pytest.raises(ParameterError, match="resolution"):
        net._Query("mean", N, (0,), (0.0, 1.0), b"", None, 1e-6)


def _decode(q, rows):
    total = np.sum(np.array(rows, dtype=np.uint64), axis=0, dtype=np.uint64)
    total &= np.uint64((1 << q.bits) - 1)
    t = total.astype(np.int64)
    t = np.where(t >= (1 << (q.bits - 1)), t - (1 << q.bits), t)
    return t / q.plan.scale if q.plan.scale != 1 else t.astype(np.float64)


@settings(max_examples=6, deadline=None)
@given(st.lists(st.floats(-50, 150), min_size=2, max_size=12), st.sampled_from([None, 0.5, 2.0]),
       st.binary(min_size=1, max_size=8))
def test_client_encodings_sum_to_the_in_process_sum(values, epsilon, seed):
    """Each client's own encoding (its slice of the simulation's rounding and noise), summed in
    the ring, is the in-process query's total: the secure sum only adds these rows."""
    n = len(values)
    q = net._Query("sum", n, (32,), (0.0, 100.0), b"", epsilon, 1e-6)
    rows = [q.encode(v, i, seed) for i, v in enumerate(values)]
    value = float(_decode(q, rows)[0]) * (100.0 / 32) + 0.0 * n
    assert value == analytics.sum(np.array(values), 0.0, 100.0, resolution=32, epsilon=epsilon,
                                  seed=seed).value
    buckets = [int(abs(v)) % 5 for v in values]
    h = net._Query("histogram", n, (5,), (), b"", epsilon, 1e-6)
    got = _decode(h, [h.encode(b, i, seed) for i, b in enumerate(buckets)])
    assert np.array_equal(got, analytics.histogram(np.array(buckets), 5, epsilon=epsilon,
                                                   seed=seed).value)
