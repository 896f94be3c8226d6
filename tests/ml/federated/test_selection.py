"""Client selection: availability-aware sampling and power-of-choice (with DP on the reported losses)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from ml.data import partition_dirichlet, split_clients, standardize, train_test_split
from ml.federated import DPConfig, train
from ml.federated.selection import LOSS_UNIT, AvailabilitySampler, PowerOfChoice
from ml.models import LogisticRegression
from mpc.errors import ParameterError
from mpc.rand import PRG


@pytest.fixture(scope="module")
def task():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    return split_clients(Xtr, ytr, partition_dirichlet(ytr, 12, alpha=0.3, seed=0)), (Xte, yte)


def test_power_of_choice_keeps_the_highest_reported_losses():
    loss = {k: float((7 * k) % 11) for k in range(20)}
    poc = PowerOfChoice(candidates=8)
    asked: list[list[int]] = []

    def losses(ids):
        asked.append(ids)
        return {k: loss[k] for k in ids}

    chosen, info = poc.select(20, 3, PRG(b"\x01" * 16), losses)
    cand = asked[0]
    assert len(cand) == 8 and len(set(cand)) == 8
    assert chosen == sorted(sorted(cand, key=lambda k: -loss[k])[:3])
    assert info["reported_losses"] == {k: loss[k] for k in cand}
    with pytest.raises(ParameterError, match="candidates"):
        PowerOfChoice(candidates=2).select(20, 3, PRG(b"\x01" * 16), losses)


def test_dp_loss_reports_are_clipped_and_laplace_noised():
    poc = PowerOfChoice(candidates=4, loss_epsilon=1.0, loss_bound=2.0)
    prg = PRG(b"\x02" * 16)
    reports = np.array([poc.report(7.5, prg) for _ in range(800)])
    scale = 2.0 / LOSS_UNIT / 1.0 * LOSS_UNIT         # loss_bound / epsilon, in loss units
    assert abs(reports.mean() - 2.0) < 5 * np.sqrt(2) * scale / np.sqrt(800)   # clipped to 2
    assert np.std(reports) == pytest.approx(np.sqrt(2) * scale, rel=0.15)       # Laplace: sqrt(2) b
    assert PowerOfChoice(candidates=4).report(7.5, prg) == 7.5                    # no DP: as is


def test_availability_sampler_picks_only_online_clients():
    avail = AvailabilitySampler([0.0, 1.0, 0.5, 1.0, 0.0, 1.0])
    seen = set()
    for r in range(30):
        chosen, info = avail.select(6, 2, PRG(bytes([r]) * 16), lambda ids: {})
        assert len(chosen) == min(2, info["online"]) and not {0, 4} & set(chosen)
        seen |= set(chosen)
    assert seen == {1, 2, 3, 5}
    with pytest.raises(ParameterError, match="availability"):
        AvailabilitySampler([1.5])


def test_train_with_selection_and_its_dp_accounting(task):
    clients, test = task
    kw = dict(rounds=3, clients_per_round=3, progress=False, seed=5)
    off = train(LogisticRegression(30), clients, test, selection=AvailabilitySampler([0.0] * 12), **kw)
    assert all(r.skipped and "no client available" in r.note for r in off.rounds)
    dp = DPConfig("central", clip=1.0, epsilon=None, noise_multiplier=3.0, noise_seed=b"\x03" * 16)
    kw["clients_per_round"] = 1      # 1 of 12: WBK19's bound amplifies (at 3 of 12 it does not yet)
    poc = train(LogisticRegression(30), clients, test, dp=dp,
                selection=PowerOfChoice(6, loss_epsilon=2.0), **kw)
    uniform = train(LogisticRegression(30), clients, test, dp=dp, **kw)
    # a loss-driven choice is not the uniform draw the amplification bound is proved for
    assert poc.rounds[-1].epsilon == poc.rounds[-1].epsilon_unamplified
    assert uniform.rounds[-1].epsilon < uniform.rounds[-1].epsilon_unamplified
    assert poc.rounds[-1].epsilon_unamplified == uniform.rounds[-1].epsilon_unamplified
    assert not any(r.skipped for r in poc.rounds)


@pytest.mark.parametrize("bound,eps", [(0.0015, 0.75), (2.3456, 1.6), (5.0, 1.0), (1.0, 0.3)])
def test_loss_report_noise_covers_the_rounded_range(bound, eps):
    # reports are rounded to LOSS_UNIT first, so they span round(bound / LOSS_UNIT) units; the scale
    # used to be set from bound / LOSS_UNIT (0.0015 at epsilon 0.75: a true epsilon of 1.0)
    from mpc.dp import discrete_laplace
    poc = PowerOfChoice(4, loss_epsilon=eps, loss_bound=bound)
    span = round(bound / LOSS_UNIT)                  # the reports of losses >= bound and <= 0 differ by this
    scale = int(np.ceil(span / eps))
    assert span / scale <= eps
    seed = b"\x07" * 15
    for draw in range(3):
        got = poc.report(bound, PRG(seed + bytes([draw])))
        want = (span + int(discrete_laplace(PRG(seed + bytes([draw])), scale, 1)[0])) * LOSS_UNIT
        assert got == want
