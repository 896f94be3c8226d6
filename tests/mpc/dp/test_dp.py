"""Tests for mpc.dp: exact samplers, clipping, mechanisms and the privacy accountant."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.optimize import brentq

from mpc.dp import (DistributedDiscreteGaussian, GaussianMechanism, PrivacyAccountant,
                    bernoulli_exp, clip_by_l2_norm, clip_rows_by_l2_norm, ddg_zcdp,
                    discrete_gaussian, discrete_laplace, epsilon_from_rdp, gaussian,
                    gaussian_rdp, rational_variance, subsampled_gaussian_rdp, uniform01,
                    uniform_below)
from mpc.dp.accountant import DEFAULT_ORDERS, noise_multiplier_for
from mpc.errors import ParameterError
from mpc.rand import PRG


def prg(i: int = 0) -> PRG:
    return PRG(bytes([i]) * 16)


def chi2_pvalue(samples: np.ndarray, support: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square goodness of fit on ``support`` (tail lumped into one bin)."""
    counts = np.array([np.sum(samples == v) for v in support] + [0])
    counts[-1] = samples.size - counts[:-1].sum()
    expected = np.append(probs, max(1.0 - probs.sum(), 0.0)) * samples.size
    keep = expected > 5
    obs, exp = counts[keep], expected[keep]
    exp = exp * obs.sum() / exp.sum()
    return float(stats.chisquare(obs, exp).pvalue)


# ---------------------------------------------------------------- samplers


def test_uniform_below_is_uniform_and_in_range():
    x = uniform_below(prg(), 7, size=70_000)
    assert x.min() >= 0 and x.max() < 7
    assert chi2_pvalue(x, np.arange(7), np.full(7, 1 / 7)) > 1e-4


def test_uniform_below_per_element_bounds():
    bounds = np.array([1, 2, 3, 1000, 2**40], dtype=np.int64)
    x = uniform_below(prg(), np.tile(bounds, 2000))
    assert np.all(x.reshape(-1, 5) < bounds)
    assert np.all(x.reshape(-1, 5)[:, 0] == 0)


@pytest.mark.parametrize("bad", [0, -3, 2**62])
def test_uniform_below_refuses_bad_bounds(bad):
    with pytest.raises(ParameterError):
        uniform_below(prg(), bad, size=3)


@pytest.mark.parametrize("num,den", [(0, 1), (1, 3), (1, 1), (5, 2), (7, 1)])
def test_bernoulli_exp_mean(num, den):
    n = 60_000
    b = bernoulli_exp(prg(1), num, den, size=n)
    p = math.exp(-num / den)
    assert abs(b.mean() - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-9


def test_bernoulli_exp_refuses_negative():
    with pytest.raises(ParameterError):
        bernoulli_exp(prg(), -1, 2, size=2)
    with pytest.raises(ParameterError):
        bernoulli_exp(prg(), 1, 0, size=2)


def test_discrete_laplace_pmf():
    t = 2
    x = discrete_laplace(prg(2), t, 60_000)
    support = np.arange(-15, 16)
    w = np.exp(-np.abs(support) / t)
    # P[x] = (1 - e^{-1/t}) / (1 + e^{-1/t}) e^{-|x|/t}  (CKS20 Definition 28)
    probs = w * (1 - math.exp(-1 / t)) / (1 + math.exp(-1 / t))
    assert chi2_pvalue(x, support, probs) > 1e-4


@pytest.mark.parametrize("sigma2", [0.5, 2.0, 9.0])
def test_discrete_gaussian_pmf(sigma2):
    x = discrete_gaussian(prg(3), sigma2, 60_000)
    support = np.arange(-40, 41)
    w = np.exp(-support.astype(float) ** 2 / (2 * sigma2))
    assert chi2_pvalue(x, support, w / w.sum()) > 1e-4


def test_discrete_gaussian_large_sigma_moments():
    x = discrete_gaussian(prg(4), 1e6, 40_000)
    # For sigma >= 1 the variance of N_Z(0, s^2) equals s^2 up to e^{-2 pi^2 s^2}.
    assert abs(x.mean()) < 5 * 1000 / math.sqrt(x.size)
    assert abs(x.var() / 1e6 - 1) < 0.05
    assert x.dtype == np.int64


def test_discrete_gaussian_detects_wrong_variance():
    """The pmf test is not vacuous: samples of sigma^2 = 2 fail against sigma^2 = 3."""
    x = discrete_gaussian(prg(5), 2.0, 60_000)
    support = np.arange(-40, 41)
    w = np.exp(-support.astype(float) ** 2 / 6.0)
    assert chi2_pvalue(x, support, w / w.sum()) < 1e-6


def test_samplers_are_deterministic_for_a_seed():
    a = discrete_gaussian(PRG(b"k" * 16), 50.0, 100)
    b = discrete_gaussian(PRG(b"k" * 16), 50.0, 100)
    c = discrete_gaussian(PRG(b"j" * 16), 50.0, 100)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_tiny_variance_and_negative_sizes_are_refused_clearly():
    with pytest.raises(ParameterError, match="too small"):
        rational_variance(1e-12)  # would round to 0 (a division by zero in the sampler)
    with pytest.raises(ParameterError, match="too small"):
        discrete_gaussian(prg(1), 1e-12, 5)
    with pytest.raises(ParameterError, match="size"):
        discrete_laplace(prg(1), 3, -1)
    with pytest.raises(ParameterError, match="size"):
        discrete_gaussian(prg(1), 2.0, -1)


def test_rational_variance():
    assert rational_variance(2.5) == rational_variance(2.5)
    assert abs(float(rational_variance(math.pi)) - math.pi) < 1e-6
    with pytest.raises(ParameterError):
        rational_variance(1e9)
    with pytest.raises(ParameterError):
        rational_variance(0.0)
    with pytest.raises(ParameterError):
        discrete_gaussian(prg(), 1e9, 3)


def test_float_gaussian_and_uniform():
    u = uniform01(prg(6), 50_000)
    assert u.min() > 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    z = gaussian(prg(7), (100, 500), std=2.0)
    assert z.shape == (100, 500)
    assert stats.kstest(z.ravel() / 2.0, "norm").pvalue > 1e-4
    assert gaussian(prg(7), 7).shape == (7,)


# ---------------------------------------------------------------- clipping / mechanisms


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.floats(0.01, 100))
def test_clip_by_l2_norm_property(values, bound):
    v = np.array(values)
    c, was = clip_by_l2_norm(v, bound)
    assert np.linalg.norm(c) <= bound * (1 + 1e-12)
    assert was == (np.linalg.norm(v) > bound)
    if not was:
        assert np.array_equal(c, v)
    else:  # same direction
        assert np.allclose(c * np.linalg.norm(v) / bound, v, rtol=1e-9, atol=1e-9)


def test_clip_errors_and_rows():
    with pytest.raises(ParameterError):
        clip_by_l2_norm(np.ones(3), 0.0)
    with pytest.raises(ParameterError):
        clip_by_l2_norm(np.array([1.0, np.nan]), 1.0)
    rows, n = clip_rows_by_l2_norm(np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]]), 1.0)
    assert n == 1
    assert np.allclose(rows, [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]])
    with pytest.raises(ParameterError):
        clip_rows_by_l2_norm(np.ones(3), 1.0)


def test_gaussian_mechanism_std():
    mech = GaussianMechanism(l2_sensitivity=2.0, noise_multiplier=1.5)
    assert mech.std == 3.0
    noisy = mech.apply(prg(8), np.zeros(40_000))
    assert abs(noisy.std() - 3.0) < 0.1
    with pytest.raises(ParameterError):
        GaussianMechanism(0.0, 1.0)


def test_distributed_discrete_gaussian_sum():
    d, n = 200, 10
    ddg = DistributedDiscreteGaussian(clip=1.0, scale=256.0, dim=d, noise_multiplier=1.0,
                                      n_clients=n)
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(n, d)) * 0.05
    p = prg(9)
    total = sum(ddg.encode(p, x)[0] for x in xs)
    err = ddg.decode(total) - xs.sum(axis=0)
    # total noise std z C = 1 (real units), plus rounding
    assert abs(err.std() - 1.0) < 0.15
    assert abs(err.mean()) < 0.25
    _, was = ddg.encode(p, np.ones(d))
    assert was
    with pytest.raises(ParameterError):
        ddg.encode(p, np.ones(d + 1))
    assert ddg.zcdp(n_noisy=n // 2) > ddg.zcdp()


# ---------------------------------------------------------------- accounting


def analytic_gaussian_epsilon(sigma: float, delta: float) -> float:
    """Exact epsilon of the Gaussian mechanism (Balle and Wang, ICML 2018, Theorem 8)."""
    mu = 1 / sigma

    def d(e: float) -> float:
        return stats.norm.cdf(mu / 2 - e / mu) - math.exp(e) * stats.norm.cdf(-mu / 2 - e / mu)

    return brentq(lambda e: d(e) - delta, 0, 200)


@pytest.mark.parametrize("sigma,steps", [(1.0, 1), (0.8, 1), (3.0, 20), (10.0, 100)])
def test_gaussian_epsilon_is_a_tight_upper_bound(sigma, steps):
    acc = PrivacyAccountant()
    acc.add_gaussian(sigma, steps=steps)
    exact = analytic_gaussian_epsilon(sigma / math.sqrt(steps), 1e-5)
    eps = acc.epsilon(1e-5)
    assert exact <= eps <= 1.15 * exact


def test_composition_and_subsampling():
    a = subsampled_gaussian_rdp(1.0, 2.0)
    assert np.allclose(a, gaussian_rdp(2.0))
    sub = subsampled_gaussian_rdp(0.01, 2.0)
    ints = np.array([o == int(o) for o in DEFAULT_ORDERS])
    assert np.all(sub[ints] < a[ints]) and np.all(np.isinf(sub[~ints]))
    e1 = epsilon_from_rdp(10 * sub, DEFAULT_ORDERS, 1e-5)[0]
    e2 = epsilon_from_rdp(100 * sub, DEFAULT_ORDERS, 1e-5)[0]
    assert 0 < e1 < e2


def test_zcdp_conversion_beats_the_classical_bound():
    rho = 0.5
    acc = PrivacyAccountant()
    acc.add_zcdp(rho)
    # Bun and Steinke 2016, Prop. 1.3: rho-zCDP implies (rho + 2 sqrt(rho log 1/d), d)-DP
    assert acc.epsilon(1e-5) <= rho + 2 * math.sqrt(rho * math.log(1e5))
    assert PrivacyAccountant().epsilon(1e-5) == 0.0


def test_noise_multiplier_for_inverts_the_accountant():
    z = noise_multiplier_for(8.0, 1e-5, 20)
    acc = PrivacyAccountant()
    acc.add_gaussian(z, steps=20)
    assert abs(acc.epsilon(1e-5) - 8.0) < 0.01


def test_ddg_zcdp_limits():
    # Large sigma: tau is negligible, epsilon -> D2 / (sqrt(n) sigma), rho = D2^2 / (2 n s^2)
    rho = ddg_zcdp(100.0, 1000.0, 100.0**2, 10)
    assert rho == pytest.approx(100.0**2 / (2 * 10 * 100.0**2), rel=1e-9)
    # Tiny sigma: tau makes it worse than the continuous bound
    assert ddg_zcdp(1.0, 1.0, 0.3, 10) > 1.0 / (2 * 10 * 0.3)
    with pytest.raises(ParameterError):
        ddg_zcdp(1.0, 1.0, 0.1, 10)
    with pytest.raises(ParameterError):
        ddg_zcdp(1.0, 1.0, 1.0, 0)


def test_accountant_refuses_bad_parameters():
    with pytest.raises(ParameterError):
        gaussian_rdp(0.0)
    with pytest.raises(ParameterError):
        subsampled_gaussian_rdp(1.5, 1.0)
    with pytest.raises(ParameterError):
        epsilon_from_rdp(np.zeros(3), (2.0, 3.0, 4.0), 0.0)
    with pytest.raises(ParameterError):
        epsilon_from_rdp(np.zeros(2), (2.0, 3.0, 4.0), 1e-5)
    with pytest.raises(ParameterError):
        PrivacyAccountant(orders=(0.5,))


@pytest.mark.parametrize("sigma2", [0.25, 2.0, 9.0])
def test_discrete_gaussian_table_sampler_pmf(sigma2):
    from mpc.dp.sampling import discrete_gaussian_cdt
    x = discrete_gaussian_cdt(prg(6), sigma2, 200_000)
    support = np.arange(-40, 41)
    w = np.exp(-support.astype(float) ** 2 / (2 * sigma2))
    assert chi2_pvalue(x, support, w / w.sum()) > 1e-4
    wrong = np.exp(-support.astype(float) ** 2 / (2 * sigma2 * 1.1))
    assert chi2_pvalue(x, support, wrong / wrong.sum()) < 1e-6


def test_discrete_gaussian_table_sampler_large_sigma_and_limits():
    from mpc.dp.sampling import discrete_gaussian_cdt
    x = discrete_gaussian_cdt(prg(7), 1e6, 100_000)
    assert abs(x.mean()) < 5 * 1000 / math.sqrt(x.size)
    assert abs(x.var() / 1e6 - 1) < 0.03
    assert discrete_gaussian_cdt(prg(7), 4.0, 0).shape == (0,)
    with pytest.raises(ParameterError, match="sigma"):
        discrete_gaussian_cdt(prg(7), 1e9, 10)
    with pytest.raises(ParameterError, match="size"):
        discrete_gaussian_cdt(prg(7), 4.0, -1)


def test_ddg_zcdp_does_not_grow_with_more_noisy_clients():
    # KLS21's tau term grows with n; more independent noise cannot hurt (post-processing),
    # so the bound is the minimum over the first k <= n clients.
    from mpc.dp import ddg_zcdp

    rhos = [ddg_zcdp(100.0, 1000.0, 0.36, n) for n in (50, 100, 200, 400, 800)]
    assert all(b <= a + 1e-12 for a, b in zip(rhos, rhos[1:]))
    assert ddg_zcdp(100.0, 1000.0, 4.0, 1) == pytest.approx(0.5 * (100.0 / 2.0) ** 2)


def test_too_little_noise_per_client_is_refused_up_front():
    from mpc.dp import DistributedDiscreteGaussian

    with pytest.raises(ParameterError, match="below the 1/4"):
        DistributedDiscreteGaussian(clip=1.0, scale=1.0, dim=2, noise_multiplier=1.0, n_clients=2000)


# Sampling without replacement (WBK19 Theorem 9), as ml.federated samples its clients.
# Reference values: autodp 0.2.3.1 (the authors' library), anaRDPacct().compose_subsampled_mechanism(
# lambda a: 2 * a / z**2, gamma, improved_bound_flag=False).get_rdp(orders), i.e. the general
# upper bound for the replace-one Gaussian of sensitivity 2 (z: the zero-out multiplier).
AUTODP_WOR = {
    (0.01, 2.0): [0.0005435086381093816, 0.0008348726849544908, 0.0011416065565369587,
                  0.002684165012688947, 3.1340609222758506],
    (0.1, 3.0): [0.02213807439206397, 0.03604038873146136, 0.051632238339488525,
                 0.1259984896298987, 1.1599702383993977],
}


@pytest.mark.parametrize("gamma,z", sorted(AUTODP_WOR))
def test_without_replacement_rdp_matches_autodp(gamma, z):
    from mpc.dp import wor_subsampled_gaussian_rdp

    orders = np.array([2.0, 3.0, 4.0, 8.0, 16.0])
    ours = wor_subsampled_gaussian_rdp(gamma, z, orders)
    # orderwise minimum with the unamplified zero-out curve (the bound is loose at high orders)
    np.testing.assert_allclose(ours, np.minimum(AUTODP_WOR[gamma, z], orders / (2 * z * z)),
                               rtol=1e-9)


def _renyi_divergence(p, q, alpha: float, x: np.ndarray) -> float:
    """D_alpha(P || Q) of two log-densities by numerical integration on the grid ``x``."""
    log_integrand = alpha * p(x) + (1 - alpha) * q(x)
    top = log_integrand.max()
    return float((top + np.log(np.trapezoid(np.exp(log_integrand - top), x))) / (alpha - 1))


@pytest.mark.parametrize("gamma,z", [(0.05, 1.0), (0.2, 2.0), (0.01, 0.7)])
def test_without_replacement_bound_holds_on_worst_case_pairs(gamma, z):
    # One client of n is in the fixed-size sample with probability gamma; the others' updates are 0,
    # so the noisy sum is a two-component mixture. Replacing +C by -C (replace-one) and zeroing +C
    # (zero-out) must both stay within the curve, computed here by numerical integration.
    from mpc.dp import gaussian_rdp, wor_subsampled_gaussian_rdp

    def mix(mu):
        return lambda x: np.logaddexp(np.log1p(-gamma) + stats.norm.logpdf(x, 0, z),
                                      np.log(gamma) + stats.norm.logpdf(x, mu, z))

    x = np.linspace(-40 * z, 40 * z, 80_001)
    orders = np.array([2.0, 3.0, 5.0, 8.0, 2.5])
    curve = wor_subsampled_gaussian_rdp(gamma, z, orders)
    assert np.all(curve <= gaussian_rdp(z, orders))
    assert curve[0] < gaussian_rdp(z, orders)[0]           # amplified at low orders
    for a, bound in zip(orders, curve):
        assert _renyi_divergence(mix(1.0), mix(-1.0), a, x) <= bound * (1 + 1e-9)
        assert _renyi_divergence(mix(1.0), mix(0.0), a, x) <= bound * (1 + 1e-9)
        assert _renyi_divergence(mix(0.0), mix(1.0), a, x) <= bound * (1 + 1e-9)


def test_accountant_without_replacement_sampling():
    full, wor, plain = PrivacyAccountant(), PrivacyAccountant(), PrivacyAccountant()
    full.add_gaussian(1.5, sampling_rate=1.0, steps=50, sampling="without_replacement")
    plain.add_gaussian(1.5, steps=50)
    wor.add_gaussian(1.5, sampling_rate=0.05, steps=50, sampling="without_replacement")
    assert full.epsilon(1e-5) == plain.epsilon(1e-5)
    assert wor.epsilon(1e-5) < plain.epsilon(1e-5) / 3
    with pytest.raises(ParameterError, match="sampling"):
        wor.add_gaussian(1.5, sampling_rate=0.05, sampling="shuffle")
    from mpc.dp import wor_subsampled_gaussian_rdp
    with pytest.raises(ParameterError, match="sampling_fraction"):
        wor_subsampled_gaussian_rdp(0.0, 1.0)


@pytest.mark.parametrize("z", [0.05, 0.02])
def test_without_replacement_rdp_small_noise_is_finite(z):
    # eps(2) = 4 / z^2 is above 709 here: e^eps(2) overflows a float, the bound must not.
    from mpc.dp import gaussian_rdp, wor_subsampled_gaussian_rdp

    orders = np.array([1.5, 2.0, 3.0, 8.0])
    curve = wor_subsampled_gaussian_rdp(0.1, z, orders)
    assert np.all(np.isfinite(curve)) and np.all(curve <= gaussian_rdp(z, orders))
    acc = PrivacyAccountant()
    acc.add_gaussian(z, sampling_rate=0.1, sampling="without_replacement")
    assert math.isfinite(acc.epsilon(1e-5))
