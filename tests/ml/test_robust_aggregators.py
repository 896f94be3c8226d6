"""Robust aggregators against numpy on fixed inputs, and in the federated loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ml.aggregators import make_aggregator
from ml.robust_aggregators import coordinate_median, krum_scores, multi_krum, trimmed_mean
from mpc.errors import ParameterError, ProtocolAbort

# Five clients, three coordinates; client 4 is an outlier.
U = np.array([[1.0, 2.0, 0.0],
              [2.0, 1.0, 1.0],
              [1.5, 1.5, 0.5],
              [0.5, 2.5, 0.0],
              [100.0, -50.0, 80.0]])


def test_median_and_trimmed_mean_fixed_inputs():
    np.testing.assert_allclose(coordinate_median(U), [1.5, 1.5, 0.5])
    # trim 0.2 of 5: drop one largest and one smallest per coordinate
    np.testing.assert_allclose(trimmed_mean(U, 0.2), [1.5, 1.5, 0.5])
    rng = np.random.default_rng(0)
    V = rng.standard_cauchy((11, 7))
    for trim in (0.1, 0.25, 0.4):       # scipy's trim_mean cuts the same floor(trim n) per end
        np.testing.assert_allclose(trimmed_mean(V, trim), stats.trim_mean(V, trim, axis=0))
    np.testing.assert_allclose(coordinate_median(V), np.percentile(V, 50, axis=0))
    np.testing.assert_allclose(trimmed_mean(U, 0.0), U.mean(axis=0))
    with pytest.raises(ParameterError, match="trim"):
        trimmed_mean(U[:2], 0.5)


def test_krum_against_brute_force():
    n, f = 5, 1
    brute = []
    for i in range(n):
        d = sorted(float(np.sum((U[i] - U[j]) ** 2)) for j in range(n) if j != i)
        brute.append(sum(d[:n - f - 2]))
    np.testing.assert_allclose(krum_scores(U, f), brute)
    est, chosen = multi_krum(U, f, 1)
    assert list(chosen) == [int(np.argmin(brute))]
    np.testing.assert_allclose(est, U[np.argmin(brute)])
    est3, chosen3 = multi_krum(U, f, 3)
    assert 4 not in chosen3
    np.testing.assert_allclose(est3, U[np.argsort(brute)[:3]].mean(axis=0))
    with pytest.raises(ParameterError, match="n - f - 2"):
        krum_scores(U[:3], 1)


@pytest.mark.parametrize("rule", ["median", "trimmed_mean", "krum", "multi_krum"])
def test_aggregator_total_divides_to_the_estimate(rule):
    agg = make_aggregator(rule, **({"trim": 0.2} if rule == "trimmed_mean" else {}))
    agg.setup(6, 4, 1000.0)
    w = np.array([0.5, 1.0, 0.25, 1.0, 0.8])
    vectors = {k: np.concatenate([w[k] * U[k], [w[k]]]) for k in range(5)}
    vectors[5] = np.zeros(4) + 0.1
    res = agg.aggregate(vectors, dropped=[5])
    est = res.total[:-1] / res.total[-1]
    expected = {"median": coordinate_median(U), "trimmed_mean": trimmed_mean(U, 0.2),
                "krum": multi_krum(U, 1, 1)[0], "multi_krum": multi_krum(U, 1, 4)[0]}[rule]
    np.testing.assert_allclose(est, expected)
    assert res.survivors == [0, 1, 2, 3, 4]
    if rule.endswith("krum"):
        assert 4 not in res.server_state["krum_selected"]


def test_robust_aggregator_refusals():
    with pytest.raises(ParameterError, match="unknown robust rule"):
        from ml.robust_aggregators import RobustAggregator
        RobustAggregator("mode")
    agg = make_aggregator("krum")
    agg.setup(3, 2, 10.0)
    with pytest.raises(ProtocolAbort, match="krum"):
        agg.aggregate({0: np.ones(2), 1: np.ones(2), 2: np.ones(2)}, dropped=[2])


def test_twoserver_aggregator_drops_over_norm_updates():
    import warnings

    from mpc import TrustedDealerWarning

    agg = make_aggregator("twoserver", norm_bound=1.0)
    agg.setup(5, 4, 10.0)
    rng = np.random.default_rng(4)
    vectors = {k: np.concatenate([rng.normal(size=3) * 0.1, [0.5]]) for k in range(5)}
    vectors[1][:3] = [3.0, 0.0, 4.0]                 # norm 5: dropped (the weight entry is not counted)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrustedDealerWarning)    # the aggregator silences it itself
        res = agg.aggregate(vectors, dropped=[4])
    assert res.survivors == [0, 2, 3] and res.server_state["rejected"] == [1]
    np.testing.assert_allclose(res.total, vectors[0] + vectors[2] + vectors[3], atol=4 * 2.0 ** -16)
    assert "received" not in res.server_state            # no server holds an update
    with pytest.raises(ProtocolAbort, match="exceed the norm bound"):
        agg.aggregate({1: vectors[1]})


@pytest.mark.parametrize("options,match", [({"multi": 0}, "multi=0"), ({"multi": -1}, "multi=-1"),
                                           ({"byzantine": -1}, "byzantine")])
def test_robust_aggregator_refuses_bad_krum_parameters(options, match):
    # multi=0 used to fall back silently to n - f (``multi or n - f``)
    from ml.robust_aggregators import RobustAggregator
    with pytest.raises(ParameterError, match=match):
        RobustAggregator("multi_krum", **options)


def test_trimmed_mean_that_would_drop_nothing_warns():
    """trim 0.1 of 5 updates drops floor(0.5) = 0 values a side: a plain mean, said aloud."""
    from ml.robust_aggregators import RobustAggregator

    updates = np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])
    with pytest.warns(RuntimeWarning, match="drops no value"):
        est, _ = RobustAggregator("trimmed_mean", trim=0.1).estimate(updates)
    assert est[0] == pytest.approx(22.0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est, _ = RobustAggregator("trimmed_mean", trim=0.2).estimate(updates)   # drops 1 a side
    assert est[0] == pytest.approx(3.0)
