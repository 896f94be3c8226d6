"""Federated analytics: exact without noise, calibrated noise, server view, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mpc.dp import PrivacyAccountant
from mpc.errors import ParameterError
from protocols import analytics as A
from protocols.analytics.privacy import calibrate, ring_bits, tail_stds

SEED = b"analytics-tests!"


def seed(i: int) -> bytes:
    return bytes([i]) * 16


@pytest.mark.parametrize("n,drop", [(10, 0.0), (10, 0.2), (60, 0.0), (300, 0.2)])
def test_histogram_is_exact_without_noise(n, drop):
    rng = np.random.default_rng(n)
    values = rng.integers(0, 12, size=n)
    dropped = rng.choice(n, size=int(drop * n), replace=False)
    res = A.histogram(values, 12, dropped=dropped, seed=seed(1))
    alive = np.setdiff1d(np.arange(n), dropped)
    assert np.array_equal(res.value, np.bincount(values[alive], minlength=12))
    assert res.cost.survivors == n - dropped.size
    assert res.cost.rounds == 4 and res.cost.bytes_per_client > 0
    assert res.epsilon == math.inf and res.noise_std == 0.0


def test_count_sum_mean_without_noise():
    rng = np.random.default_rng(3)
    flags = rng.random(40) < 0.3
    assert A.count(flags, seed=seed(2)).value == flags.sum()
    # Values on the quantisation grid are summed exactly; others within the rounding bound.
    grid = rng.integers(0, 101, size=40) / 10.0
    res = A.sum(grid, 0.0, 10.0, resolution=100, seed=seed(3))
    assert res.value == pytest.approx(grid.sum(), abs=1e-9)
    x = rng.normal(2.0, 3.0, size=40)
    res = A.mean(x, -5.0, 5.0, resolution=1000, dropped=[0, 1, 2], seed=seed(4))
    clipped = np.clip(x, -5, 5)[3:]
    assert res.value == pytest.approx(clipped.mean(), abs=10.0 / 1000)
    assert res.clipped == int(np.sum((x < -5) | (x > 5)))


def test_noise_matches_the_predicted_std():
    """Per-bucket errors of one noisy 2000-bucket histogram are N(0, predicted std^2)."""
    n, buckets = 20, 2000
    values = np.arange(n) % buckets
    res = A.histogram(values, buckets, epsilon=1.0, delta=1e-6, seed=seed(5))
    err = res.value - np.bincount(values, minlength=buckets)
    assert res.noise_std > 1.0
    assert abs(err.mean()) < 4 * res.noise_std / math.sqrt(buckets)
    assert 0.92 < err.std() / res.noise_std < 1.08
    assert stats.kstest(err / res.noise_std, "norm").pvalue > 1e-3
    # The planned noise is what epsilon asks for: less noise would give a larger epsilon.
    plan = calibrate(1.0, 1e-6, l2=1.0, l1=1.0, threshold=A.min_noisy_clients(n))
    looser = calibrate(2.0, 1e-6, l2=1.0, l1=1.0, threshold=A.min_noisy_clients(n))
    assert looser.std < plan.std
    assert res.epsilon == pytest.approx(1.0, rel=1e-6)


def test_noise_with_dropouts_is_at_least_planned():
    n = 20
    res = A.histogram(np.zeros(n, dtype=int), 500, epsilon=1.0, dropped=[0, 1, 2, 3, 4, 5],
                      seed=seed(6))
    plan = calibrate(1.0, 1e-6, l2=1.0, l1=1.0, threshold=A.min_noisy_clients(n))
    assert res.cost.survivors == 14
    assert res.noise_std >= plan.std * 0.999


def test_server_view_is_uniform_and_independent_of_inputs():
    """The masked vectors the server gets look the same whatever bucket the clients chose."""
    n, buckets = 12, 400
    views = []
    for b in (0, 7):
        res = A.histogram(np.full(n, b), buckets, seed=seed(10 + b), record_server_view=True)
        assert len(res.details["server_view"]) == n
        views.append(np.concatenate(res.details["server_view"]).astype(np.int64))
    bits = res.cost.ring_bits
    for v in views:   # uniform over Z_2^bits, in 16 bins
        counts = np.bincount(v >> (bits - 4), minlength=16)
        assert stats.chisquare(counts).pvalue > 1e-4
    # Bucket 7's coordinate looks the same in both runs (where one run had the 1s).
    a, b = (v.reshape(n, buckets)[:, [0, 7]].ravel() for v in views)
    assert stats.ks_2samp(a, b).pvalue > 1e-4


def test_accountant_composes_queries():
    acc = PrivacyAccountant()
    v = np.arange(10) % 3
    r1 = A.histogram(v, 3, epsilon=0.5, accountant=acc, seed=seed(7))
    r2 = A.histogram(v, 3, epsilon=0.5, accountant=acc, seed=seed(8))
    assert r1.total_epsilon == pytest.approx(0.5, rel=1e-6)
    assert 0.5 < r2.total_epsilon <= 1.0


def test_heavy_hitters_exact_without_noise():
    words = ["apple"] * 20 + ["banana"] * 12 + ["cherry"] * 7 + ["kiwi"] * 2 + \
            [f"w{i}" for i in range(19)] + ["ünïcødé"] * 6
    res = A.heavy_hitters(words, k=4, min_count=5, max_bytes=16, seed=seed(9))
    assert res.value == [("apple", 20.0), ("banana", 12.0), ("cherry", 7.0), ("ünïcødé", 6.0)]
    assert res.clipped == 0
    assert res.cost.rounds == 4                       # one secure sum


def test_heavy_hitters_with_noise_find_frequent_items_and_invent_none():
    words = ["mail"] * 90 + ["maps"] * 60 + ["chat"] * 40 + [f"app{i}" for i in range(50)]
    res = A.heavy_hitters(words, k=5, epsilon=2.0, seed=seed(11))
    names = [w for w, _ in res.value]
    assert set(names) <= {"mail", "maps", "chat"}
    assert names[:2] == ["mail", "maps"]
    assert res.epsilon == pytest.approx(2.0, rel=1e-6)


def test_long_items_are_cut_and_counted():
    words = ["x" * 30] * 8 + ["y"] * 8 + ["ünïcødé"] * 6
    res = A.heavy_hitters(words, k=3, max_bytes=10, seed=seed(12))
    assert res.clipped == 14
    assert sorted(res.value) == [("x" * 10, 8.0), ("y", 8.0), ("ünïcød", 6.0)]


def test_bad_input_is_refused_or_clipped():
    res = A.histogram(np.array([-3, 0, 1, 99]), 4, seed=seed(13))
    assert res.clipped == 2 and np.array_equal(res.value, [2, 1, 0, 1])
    with pytest.raises(ParameterError, match="epsilon"):
        A.histogram(np.zeros(5, int), 3, epsilon=0.0)
    with pytest.raises(ParameterError, match="epsilon"):
        A.histogram(np.zeros(5, int), 3, epsilon=float("inf"))
    with pytest.raises(ParameterError, match="delta"):
        A.count(np.ones(5, bool), epsilon=1.0, delta=0.5)
    with pytest.raises(ParameterError, match="integers"):
        A.histogram(np.array([0.5, 1.0]), 3)
    with pytest.raises(ParameterError, match="drop"):
        A.histogram(np.zeros(10, int), 3, dropped=range(5))
    with pytest.raises(ParameterError, match="finite"):
        A.sum(np.array([1.0, np.nan]), 0, 1)
    with pytest.raises(ParameterError, match="lo < hi"):
        A.mean(np.array([1.0, 2.0]), 3, 1)
    with pytest.raises(ParameterError, match="strings"):
        A.heavy_hitters(["a", 3])
    with pytest.raises(ParameterError, match="0 or 1"):
        A.count(np.array([0, 2, 1]))


def test_ring_is_sized_so_the_noisy_sum_cannot_wrap():
    plan = calibrate(1.0, 1e-6, l2=1.0, l1=1.0, threshold=70)
    bits = ring_bits(100 * plan.scale, plan, 100)
    tail = tail_stds(1) * math.sqrt(plan.client_variance * 100)
    assert 2 ** (bits - 1) > 100 * plan.scale + tail
    with pytest.raises(ParameterError, match="64-bit"):
        ring_bits(2 ** 63, plan, 100)
    # long vectors: the tail grows so that no coordinate of the whole sum wraps (union bound)
    for dim in (1, 15, 10**4, 10**6):       # the subgaussian tail bound, a union over coordinates
        z = tail_stds(dim)
        assert dim * 2 * math.exp(-z * z / 2) <= 2.0**-40 * (1 + 1e-9)
        assert dim * 2 * math.exp(-(z - 0.01) ** 2 / 2) > 2.0**-40
    assert 7.5 < tail_stds(1) < 7.6 and 8.6 < tail_stds(10**4) < 8.7 and 9.1 < tail_stds(10**6) < 9.3
    wide = ring_bits(100 * plan.scale, plan, 100, dim=10**6)
    assert 2 ** (wide - 1) > 100 * plan.scale + tail_stds(10**6) * math.sqrt(plan.client_variance * 100)


def test_sum_with_more_survivors_lost_than_planned_is_not_released(monkeypatch):
    # The noise is planned for n - 30% - 10% honest survivors. If the session loses more
    # clients than the 30% it was planned for (here: 15 silent extra clients on top of
    # 50 announced dropouts of 200), SecAgg+ itself could still finish (its threshold is
    # lower), but the total must not be released.
    import importlib

    from mpc.errors import ProtocolAbort

    S = importlib.import_module("protocols.analytics.secure_sum")   # the module, not the function

    original = S.simulate

    def lose_more(config, values, drops, **kw):
        return original(config, values, {**drops, **{u: 2 for u in range(150, 165)}}, **kw)

    monkeypatch.setattr(S, "simulate", lose_more)
    alive = np.ones(200, bool)
    alive[:50] = False
    with pytest.raises(ProtocolAbort, match="not released"):
        S.secure_sum(np.ones((200, 2), np.uint64), 16, alive, seed=seed(21))


@pytest.mark.parametrize("query", ["histogram", "heavy_hitters"])
def test_progress_counts_each_client_step_of_the_secure_sum(query):
    n, dropped = 30, [3, 7, 11]
    calls = []
    if query == "histogram":
        A.histogram(np.arange(n) % 5, 5, dropped=dropped, seed=seed(4), progress=calls.append)
    else:
        A.heavy_hitters(["a"] * 20 + ["b"] * 10, k=2, dropped=dropped, seed=seed(4),
                        progress=calls.append)
    # every client sends keys and shares; the dropped ones send nothing from the masked round on
    assert calls == [1] * (4 * n - 2 * len(dropped))


@pytest.mark.parametrize("s", [12, 21, 35, 56, 65])
def test_heavy_hitters_report_no_item_nobody_holds(s):
    # Regression: with one row per level, the walk's hundreds of probes landed in
    # buckets of frequent keys and reported prefixes as items (the demo once
    # listed "map" with 155 of 0). Under these seeds the old sketch reported
    # "map" (10, chat's count), "s" (50) and others, noise-free. Now only the item
    # sketch reports, and only when every one of its rows reaches the threshold.
    words = ["mail"] * 30 + ["maps"] * 20 + ["chat"] * 10
    res = A.heavy_hitters(words, k=5, max_bytes=4, seed=seed(s))
    assert res.value == [("mail", 30.0), ("maps", 20.0), ("chat", 10.0)]


def test_heavy_hitters_walk_invents_no_item_at_demo_scale():
    # The demo's 1000 phones (Zipf over 15 apps) and its noise (std 21 per counter,
    # threshold 85): the analyst's walk on 12 noisy sums reports only apps someone has.
    from protocols.analytics.heavy_hitters import SketchLayout, walk
    rng = np.random.default_rng(5)
    apps = ["mail", "maps", "chat", "camera", "music", "news", "weather", "bank", "notes",
            "calendar", "podcasts", "fitness", "translate", "photos", "calculator"]
    p = 1.0 / np.arange(1, 16) ** 1.1
    held = [str(a) for a in rng.choice(apps, size=1000, p=p / p.sum())]
    for s in range(12):
        layout = SketchLayout(seed(60 + s), max_bytes=10, rows=1, item_rows=3, width=1024)
        total = np.zeros(layout.size)
        for a in held:
            total[layout.client_offsets(a.encode())] += 1
        total += np.round(rng.normal(0.0, 21.0, layout.size))
        found = walk(total, layout, keep_at=85.0, max_candidates=64)
        assert {b"mail", b"maps"} <= set(found)
        assert set(found) <= {a.encode() for a in held}
