"""Two-server norm-checked aggregation: the sum, the rejections, and each server's view."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from mpc.errors import ParameterError
from mpc.preprocessing.dealer import TrustedDealerWarning
from protocols.twoserver import aggregate, client_shares

pytestmark = pytest.mark.filterwarnings("ignore::mpc.preprocessing.dealer.TrustedDealerWarning")


def _clients(seed, n=8, d=20, scale=0.05):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=d) * scale for k in range(n)}


@pytest.mark.parametrize("preprocessing", ["dealer", "ot"])   # "ot": no third party
def test_sum_of_accepted_and_exact_rejections(preprocessing):
    rng = np.random.default_rng(1)
    v = _clients(1)
    norms = {}
    for k in v:      # norms far from the bound 1 on both sides: 0.3 or 3
        target = 3.0 if k in (2, 5) else 0.3 + 0.4 * rng.random()
        v[k] = v[k] / np.linalg.norm(v[k]) * target
        norms[k] = target
    res = aggregate(v, norm_bound=1.0, value_bound=4.0, preprocessing=preprocessing)
    assert res.rejected == [2, 5]
    assert res.accepted == [k for k in v if norms[k] <= 1.0]
    plain = np.sum([v[k] for k in res.accepted], axis=0)
    assert np.abs(res.total - plain).max() <= len(v) * 2.0 ** -16


def test_norm_over_leading_entries_only_and_all_rejected():
    v = {0: np.array([0.5, 0.5, 3.0]), 1: np.array([2.0, 0.0, 0.1])}
    res = aggregate(v, norm_bound=1.0, value_bound=4.0, norm_dims=2)
    assert res.accepted == [0] and res.rejected == [1]
    np.testing.assert_allclose(res.total, v[0], atol=2.0 ** -15)
    res = aggregate({0: np.array([2.0, 0.0])}, norm_bound=1.0, value_bound=4.0)
    assert res.accepted == [] and np.all(res.total == 0)


def test_norm_bound_beyond_the_fixed_point_range_accepts_everyone():
    # B^2 = 1e14 cannot be encoded with frac_bits=16 (|x| < 2^46): it must mean "accept all"
    v = {0: np.array([0.5, 0.5]), 1: np.array([1.0, -1.0])}
    res = aggregate(v, norm_bound=1e7, value_bound=1.0)
    assert res.accepted == [0, 1]
    np.testing.assert_allclose(res.total, v[0] + v[1], atol=2.0 ** -14)


def test_refusals():
    with pytest.raises(ParameterError, match="client 1"):
        aggregate({0: np.zeros(3), 1: np.full(3, 9.0)}, 1.0, value_bound=4.0)
    with pytest.raises(ParameterError, match="fixed-point range"):
        aggregate({0: np.zeros(3000)}, 1.0, value_bound=1000.0)


def _server_view_bytes(v, server):
    """Server ``server``'s view without the outputs: its input shares and what it received
    before the openings, as the top byte of every 64-bit word."""
    res = aggregate(v, norm_bound=1.0, value_bound=4.0, record_view=True)
    words = [np.concatenate([a.ravel() for a in arrays]) for _, tag, arrays in res.views[server]
             if not tag.startswith(("open", "dealer"))]
    return np.concatenate(words).astype(np.uint64) >> np.uint64(56), res


@pytest.mark.parametrize("server", [0, 1])
def test_each_server_view_is_independent_of_the_updates(server, monkeypatch):
    # Two update sets with the same accepted set: tiny updates and updates near the bound.
    # Each server's view (received words; its input shares are checked by client_shares below)
    # must be distributed alike: a chi-square test on the top bytes, against uniform and
    # between the two sets.
    small = _clients(2, scale=1e-3)
    large = {k: x / np.linalg.norm(x) * 0.9 for k, x in _clients(3).items()}
    hist = []
    for v in (small, large):
        top = np.concatenate([_server_view_bytes(v, server)[0] for _ in range(3)])
        hist.append(np.bincount(top.astype(np.int64), minlength=256))
        assert stats.chisquare(hist[-1]).pvalue > 1e-4
    assert stats.chi2_contingency(np.array(hist)).pvalue > 1e-4


def test_client_shares_are_uniform_and_reconstruct():
    x = np.full(20_000, 0.25)          # a constant vector: its encoding is one repeated word
    s0, s1 = client_shares(x)
    np.testing.assert_array_equal(s0 + s1, np.full(20_000, 1 << 14, dtype=np.uint64))
    for s in (s0, s1):
        top = (s >> np.uint64(56)).astype(np.int64)
        assert stats.chisquare(np.bincount(top, minlength=256)).pvalue > 1e-4


def test_dealer_warning_is_the_only_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aggregate({0: np.zeros(2), 1: np.ones(2) * 0.1}, 1.0, value_bound=1.0)
    assert {type(w.message) for w in caught} <= {TrustedDealerWarning}
