"""The server's view in SecAgg: masked inputs are uniform and independent of the inputs.

Seeded input data, OS-random masks: each chi-square threshold is the mean plus
seven standard deviations of its distribution under the null hypothesis, so a
correct protocol fails with probability below 1e-9 per statistic; the controls
show that the same statistics reject unmasked inputs.
"""

import numpy as np
import pytest

from protocols.secagg import make_config, simulate

BITS = 8
Q = 1 << BITS
D = 4096


def _chi2_uniform(values, bins):
    counts = np.bincount(values, minlength=bins)
    expected = len(values) / bins
    return float(((counts - expected) ** 2 / expected).sum())


def _limit(dof):
    return dof + 7 * np.sqrt(2 * dof)


def _chi2_independent(a, b, bins):
    """Pearson's test of independence on the occupied rows and columns: (statistic, dof)."""
    table = np.zeros((bins, bins))
    np.add.at(table, (a, b), 1)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    return float(((table - expected) ** 2 / expected).sum()), dof


def _server_view(values, variant, drops):
    n = len(values)
    config = make_config(n, D, bits=BITS, variant=variant, dropout=0.25)
    seen = {}

    def tamper(r, u, m):
        if r == 2:
            seen[u] = m[0].astype(np.int64)
        return m

    res = simulate(config, values, drops, tamper=tamper)
    return seen, res


@pytest.mark.parametrize("variant,drops", [("secagg", {}), ("secagg", {2: 2}), ("secagg+", {0: 2})])
def test_masked_inputs_are_uniform_and_independent_of_inputs(variant, drops):
    rng = np.random.default_rng(0)
    n = 6
    skewed = [rng.integers(0, 4, D, dtype=np.uint64) for _ in range(n)]  # far from uniform
    ramp = [(np.arange(D, dtype=np.uint64) * (u + 1)) % Q for u in range(n)]
    for values in (skewed, ramp, [np.zeros(D, np.uint64)] * n):
        seen, res = _server_view(values, variant, drops)
        assert sorted(seen) == res.survivors
        for u, y in seen.items():
            assert y.min() >= 0 and y.max() < Q
            assert _chi2_uniform(y, Q) < _limit(Q - 1)
            x = values[u].astype(np.int64)
            stat, dof = _chi2_independent(x % 16, y % 16, 16)
            assert dof == 0 or stat < _limit(dof)  # dof 0: a constant input
        ids = sorted(seen)
        for a, b in zip(ids, ids[1:]):  # pairs of masked inputs are jointly uniform
            assert _chi2_uniform((seen[a] % 16) * 16 + seen[b] % 16, 256) < _limit(255)


def test_controls_reject_unmasked_inputs():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, D)
    assert _chi2_uniform(x, Q) > _limit(Q - 1)
    stat, dof = _chi2_independent(x % 16, (x * 7 + rng.integers(0, 2, D)) % 16, 16)
    assert stat > _limit(dof)


def test_masked_input_distribution_does_not_depend_on_the_input():
    # Two-sample chi-square: client 1's masked input under inputs all 0 versus all 255.
    rng = np.random.default_rng(2)
    n = 4
    others = [rng.integers(0, Q, D, dtype=np.uint64) for _ in range(n)]
    views = []
    for fill in (0, Q - 1):
        values = list(others)
        values[1] = np.full(D, fill, dtype=np.uint64)
        seen, _ = _server_view(values, "secagg", {})
        views.append(np.bincount(seen[1], minlength=Q))
    a, b = views
    chi2 = float((((a - b) ** 2) / np.maximum(a + b, 1)).sum())
    assert chi2 < _limit(Q - 1)
