"""FedBuff (ml.federated.train_async): equals FedAvg without asynchrony, secure buffer sums,
staleness weights, the simulated clock."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.aggregators import SecAggAggregator
from ml.federated import History, synchronous_clock, time_to_accuracy, train, train_async
from ml.models import SoftmaxRegression
from mpc.errors import ParameterError


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(5)
    centers = rng.normal(0, 2, (3, 6))
    y = rng.integers(0, 3, 300)
    X = centers[y] + rng.normal(0, 1.5, (300, 6))
    parts = [(X[i:240:5], y[i:240:5]) for i in range(5)]
    return parts, (X[240:], y[240:])


class ConstantStep:
    """A client whose local training adds 1 to every weight (so its update is all ones)."""

    n_examples = 4

    def __init__(self) -> None:
        self.w = [np.zeros(3)]

    def get_weights(self):
        return [w.copy() for w in self.w]

    def set_weights(self, weights) -> None:
        self.w = [np.array(w, dtype=np.float64) for w in weights]

    def fit(self, config):
        return [w + 1.0 for w in self.w], self.n_examples, {}

    def evaluate(self, config):
        return float(self.w[0].sum()), self.n_examples, {"accuracy": 0.0}


def test_fedbuff_without_asynchrony_is_fedavg(task):
    """K = clients = concurrency, equal speeds: every buffer is a synchronous round, bit for bit."""
    parts, test = task
    sync = train(SoftmaxRegression(6, 3), parts, test, rounds=3, lr=0.2, seed=7, progress=False)
    asyn = train_async(SoftmaxRegression(6, 3), parts, test, rounds=3, lr=0.2, seed=7, progress=False,
                       speeds=[2.0] * 5)
    assert [m.accuracy for m in asyn.rounds] == [m.accuracy for m in sync.rounds]
    assert [m.loss for m in asyn.rounds] == [m.loss for m in sync.rounds]
    for a, b in zip(asyn.weights, sync.weights):
        assert np.array_equal(a, b)
    assert [m.sim_seconds for m in asyn.rounds] == [2.0, 4.0, 6.0]
    assert all(m.staleness == [0] * 5 and m.buffer_clients == list(range(5)) for m in asyn.rounds)
    other = train(SoftmaxRegression(6, 3), parts, test, rounds=3, lr=0.2, seed=8, progress=False)
    assert not np.array_equal(other.weights[0], asyn.weights[0])   # the seed matters


class CheckedSecAgg(SecAggAggregator):
    """SecAgg that also keeps the plaintext sum of what it was given (test only)."""

    def __init__(self, variant: str) -> None:
        super().__init__(variant)
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def aggregate(self, vectors, dropped=()):
        res = super().aggregate(vectors, dropped)
        self.pairs.append((res.total, np.sum([vectors[k] for k in sorted(vectors)], axis=0)))
        return res


@pytest.mark.parametrize("variant, k", [("secagg", 3), ("secagg+", 5)])
def test_secure_buffer_sum_equals_the_plaintext_buffer_sum(task, variant, k):
    parts, test = task
    agg = CheckedSecAgg(variant)
    h = train_async(SoftmaxRegression(6, 3), parts, test, aggregator=agg, rounds=4, buffer_size=k,
                    speeds=[1.0, 1.3, 2.0, 3.1, 5.0], jitter=0.2, seed=1, progress=False)
    assert any(t > 0 for m in h.rounds for t in m.staleness)        # stale updates were summed
    assert len(agg.pairs) == 4
    for secure, plain in agg.pairs:
        np.testing.assert_allclose(secure, plain, rtol=0, atol=k * 2.0 ** -20)
    assert h.final_accuracy > 0.6


def test_staleness_clock_known_answer(tmp_path):
    """Speeds 1 and 3, K = 1: client 0 at t = 1, 2; at t = 3 client 1 (from version 0, so
    staleness 2) then client 0 (from version 2, staleness 1)."""
    clients = [ConstantStep(), ConstantStep()]
    h = train_async(lambda d: ConstantStep(), clients, (None, None), rounds=4, buffer_size=1,
                    speeds=[1.0, 3.0], staleness="none", progress=False)
    assert [m.sim_seconds for m in h.rounds] == [1.0, 2.0, 3.0, 3.0]
    assert [m.buffer_clients for m in h.rounds] == [[0], [0], [1], [0]]
    assert [m.staleness for m in h.rounds] == [[0], [0], [2], [1]]
    back = History.load_json(h.save_json(tmp_path / "h.json"))
    assert back.rounds == h.rounds and back.config["mode"] == "fedbuff"


def test_staleness_weights_scale_the_uploads_as_documented():
    """Upload = [s(tau) p delta, p]; the step adds server_lr * sum s(tau) p delta / sum p."""
    weight = lambda tau: 1.0 / (2.0 + tau)  # noqa: E731
    received: list[tuple[list[int], dict]] = []
    h = train_async(lambda d: ConstantStep(), [ConstantStep() for _ in range(3)], (None, None),
                    rounds=5, buffer_size=2, speeds=[1.0, 1.7, 2.9], staleness=weight,
                    server_lr=0.5, weight_cap=8, progress=False,
                    on_round=lambda m, res: received.append((m.staleness, res.server_state["received"])))
    expected = np.zeros(3)
    for taus, vecs in received:
        assert sorted(vecs) == [0, 1]
        for slot, tau in enumerate(taus):
            p = 4 / 8
            np.testing.assert_allclose(vecs[slot], [weight(tau) * p] * 3 + [p], rtol=1e-15)
        expected += 0.5 * sum(weight(t) * 0.5 for t in taus) / (2 * 0.5)
    assert any(t > 0 for taus, _ in received for t in taus)
    np.testing.assert_allclose(h.weights[0], expected, rtol=1e-12)


def test_dropouts_in_a_buffer_leave_the_survivors_sum():
    """Dropped slots are not summed; the step divides by the survivors' weights; a step with no
    survivor is skipped and leaves the model and its version."""
    weight = lambda tau: 1.0 / (1.0 + tau)  # noqa: E731
    steps: list[tuple[list[int], list[int], bool]] = []
    h = train_async(lambda d: ConstantStep(), [ConstantStep() for _ in range(3)], (None, None),
                    rounds=12, buffer_size=3, speeds=[1.0, 1.5, 2.5], staleness=weight, dropout=0.45,
                    seed=3, progress=False,
                    on_round=lambda m, res: steps.append((m.staleness, res.survivors if res else [],
                                                          m.skipped)))
    expected = 0.0
    for taus, survivors, skipped in steps:
        if not skipped:
            expected += sum(weight(taus[i]) for i in survivors) / len(survivors)
    assert any(0 < len(s) < 3 for _, s, _ in steps)            # some slots dropped
    assert any(skipped for _, _, skipped in steps)              # and a whole buffer once
    np.testing.assert_allclose(h.weights[0], [expected] * 3, rtol=1e-12)
    versions = np.cumsum([not skipped for _, _, skipped in steps])
    assert all(max(t) <= v for (t, _, _), v in zip(steps, versions))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.5, 4.0), min_size=2, max_size=5), st.data())
def test_clock_properties(speeds, data):
    """Any speeds, K, concurrency, jitter: time never goes back, every buffer holds K uploads,
    no client uploads faster than its jobs allow, no upload is older than the run."""
    n = len(speeds)
    k = data.draw(st.integers(1, n))
    c = data.draw(st.integers(1, n))
    jitter = data.draw(st.sampled_from([0.0, 0.3]))
    h = train_async(lambda d: ConstantStep(), [ConstantStep() for _ in range(n)], (None, None),
                    rounds=8, buffer_size=k, concurrency=c, speeds=speeds, jitter=jitter,
                    seed=data.draw(st.integers(0, 3)), progress=False)
    times = [m.sim_seconds for m in h.rounds]
    assert times == sorted(times) and times[0] >= min(speeds) * (1 - jitter) - 1e-12
    uploads = [0] * n
    for r, m in enumerate(h.rounds):
        assert len(m.buffer_clients) == len(m.staleness) == k
        assert all(0 <= tau <= r for tau in m.staleness)
        for client in m.buffer_clients:     # its j-th upload arrived by now, after j jobs in a row
            uploads[client] += 1
            assert uploads[client] * speeds[client] * (1 - jitter) <= m.sim_seconds + 1e-9
    if c == 1:                              # one job at a time: K = 1 buffers are never stale
        assert k > 1 or all(m.staleness == [0] for m in h.rounds)


def test_one_client_in_flight_is_never_stale(task):
    parts, test = task
    h = train_async(SoftmaxRegression(6, 3), parts, test, rounds=6, buffer_size=1, concurrency=1,
                    speeds=[1.0, 2.0, 3.0, 4.0, 5.0], seed=2, progress=False)
    assert all(m.staleness == [0] for m in h.rounds)
    times = [m.sim_seconds for m in h.rounds]
    assert times == sorted(times) and len({c for m in h.rounds for c in m.buffer_clients}) > 1


def test_synchronous_clock_and_time_to_accuracy(task):
    parts, test = task
    sync = train(SoftmaxRegression(6, 3), parts, test, rounds=3, seed=0, progress=False)
    synchronous_clock(sync, [1.0, 1.0, 1.0, 1.0, 4.0])
    assert [m.sim_seconds for m in sync.rounds] == [4.0, 8.0, 12.0]
    first = next(m for m in sync.rounds if m.accuracy >= sync.rounds[0].accuracy)
    assert time_to_accuracy(sync, sync.rounds[0].accuracy) == first.sim_seconds
    assert time_to_accuracy(sync, 1.01) == math.inf
    from ml.federated.plot import x_axis
    asyn = train_async(SoftmaxRegression(6, 3), parts, test, rounds=2, buffer_size=2,
                       speeds=[1.0, 1.0, 1.0, 1.0, 4.0], seed=0, progress=False)
    assert x_axis([sync, asyn]) == ("simulated seconds", [[4.0, 8.0, 12.0], [1.0, 1.0]])
    plain = train(SoftmaxRegression(6, 3), parts, test, rounds=2, progress=False)
    assert x_axis([sync, plain]) == ("round", [[1.0, 2.0, 3.0], [1.0, 2.0]])
    partial = train(SoftmaxRegression(6, 3), parts, test, rounds=1, clients_per_round=2, progress=False)
    with pytest.raises(ParameterError, match="every client"):
        synchronous_clock(partial, [1.0] * 5)


def test_fedbuff_parameters_are_checked(task):
    parts, test = task
    bad = [dict(buffer_size=6), dict(concurrency=0), dict(speeds=[1.0] * 4), dict(speeds=[1, 1, 1, 1, 0]),
           dict(jitter=1.0), dict(staleness="linear")]
    for kw in bad:
        with pytest.raises(ParameterError):
            train_async(SoftmaxRegression(6, 3), parts, test, rounds=1, progress=False, **kw)
    with pytest.raises(ParameterError, match="staleness weights"):
        train_async(SoftmaxRegression(6, 3), parts, test, rounds=1, progress=False,
                    staleness=lambda tau: 2.0)
