"""Tests for ml.federated: FedAvg/FedProx against hand-computed rounds, dropouts, DP, history."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from ml.aggregators import PlaintextAggregator
from ml.compression import TopK
from ml.data import partition_dirichlet, partition_iid, split_clients, standardize, train_test_split
from ml.federated import DPConfig, History, local_train, train
from ml.models import LogisticRegression, SoftmaxRegression
from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    return Xtr, ytr, Xte, yte


def hospitals(cancer, n=5, alpha=0.5):
    Xtr, ytr, _, _ = cancer
    return split_clients(Xtr, ytr, partition_dirichlet(ytr, n, alpha=alpha, seed=0))


def test_fedavg_learns_breast_cancer(cancer):
    clients = hospitals(cancer)
    model = LogisticRegression(30)
    h = train(model, clients, cancer[2:], rounds=10, progress=False, seed=3)
    assert h.initial[1] < 0.8
    assert h.final_accuracy > 0.93
    assert len(h.rounds) == 10 and all(r.survivors == 5 for r in h.rounds)
    assert np.allclose(model.evaluate(*cancer[2:])[1], h.final_accuracy)


def test_one_round_equals_weighted_average_by_hand():
    rng = np.random.default_rng(1)
    clients = [(rng.normal(size=(n, 4)), rng.integers(0, 3, n)) for n in (5, 17, 9)]
    test = (rng.normal(size=(10, 4)), rng.integers(0, 3, 10))
    model = SoftmaxRegression(4, 3)
    start = model.params.copy()
    seed, lr, slr = 7, 0.05, 0.7
    train(model, clients, test, rounds=1, lr=lr, server_lr=slr, batch_size=4, local_epochs=2,
          update_clip=1e6, progress=False, seed=seed)
    # the same local training, by hand, with the loop's documented seeds
    master = derive_seed(b"concilium.ml.federated", "seed", seed)
    ref = SoftmaxRegression(4, 3)
    deltas, weights = [], []
    for k, data in enumerate(clients):
        local = local_train(ref, data, 2, 4, lr, PRG(derive_seed(master, f"client/{k}", 1)))
        deltas.append(local.params - start)
        weights.append(data[0].shape[0])
    want = start + slr * np.average(deltas, axis=0, weights=weights)
    assert np.allclose(model.params, want, atol=1e-12)


def test_fedprox_keeps_local_models_closer(cancer):
    data = hospitals(cancer)[0]
    base = LogisticRegression(30)
    far = local_train(base, data, 5, 8, 0.5, PRG(b"\x01" * 16), mu=0.0)
    near = local_train(base, data, 5, 8, 0.5, PRG(b"\x01" * 16), mu=1.0)
    assert np.linalg.norm(near.params) < 0.7 * np.linalg.norm(far.params)
    assert np.all(base.params == 0)  # the global model is not touched


def test_same_seed_same_run_and_server_lr(cancer):
    clients = hospitals(cancer)
    runs = [train(LogisticRegression(30), clients, cancer[2:], rounds=3, progress=False, seed=5)
            for _ in range(2)]
    assert [r.loss for r in runs[0].rounds] == [r.loss for r in runs[1].rounds]
    other = train(LogisticRegression(30), clients, cancer[2:], rounds=3, progress=False, seed=6)
    assert [r.loss for r in other.rounds] != [r.loss for r in runs[0].rounds]


def test_client_sampling(cancer):
    clients = hospitals(cancer, n=10, alpha=5.0)
    h = train(LogisticRegression(30), clients, cancer[2:], rounds=4, clients_per_round=3,
              progress=False)
    assert all(r.sampled == 3 and r.survivors == 3 for r in h.rounds)
    assert h.final_accuracy > 0.85


def test_dropouts_do_not_stop_training(cancer):
    clients = hospitals(cancer, n=8, alpha=5.0)
    h = train(LogisticRegression(30), clients, cancer[2:], rounds=12, dropout=0.4,
              progress=False, seed=2)
    assert len(h.rounds) == 12
    assert any(r.survivors < r.sampled for r in h.rounds)
    assert h.final_accuracy > 0.9


def test_round_where_everyone_drops_is_skipped_not_fatal(cancer):
    clients = hospitals(cancer, n=3)
    h = train(LogisticRegression(30), clients, cancer[2:], rounds=6, clients_per_round=1,
              dropout=0.5, progress=False, seed=4)
    skipped = [r for r in h.rounds if r.skipped]
    assert skipped and all(r.survivors == 0 and "skipped" in r.note for r in skipped)
    assert len(h.rounds) == 6


def _dp_setup(cancer, n=100):
    Xtr, ytr, Xte, yte = cancer
    clients = split_clients(Xtr, ytr, partition_iid(ytr.size, n, seed=0))
    return clients, (Xte, yte)


@pytest.mark.parametrize("mode", ["central", "distributed"])
def test_dp_at_epsilon_8_within_5_points(cancer, mode):
    clients, test = _dp_setup(cancer)
    kw = dict(rounds=15, lr=0.2, batch_size=8, progress=False, seed=1)
    plain = train(LogisticRegression(30), clients, test, **kw)
    dp = DPConfig(mode, clip=1.0, epsilon=8.0, delta=1e-5, noise_seed=b"\x07" * 16)
    private = train(LogisticRegression(30), clients, test, dp=dp,
                    aggregator="secagg+" if mode == "distributed" else "plaintext", **kw)
    eps = [r.epsilon for r in private.rounds]
    assert all(a < b for a, b in zip(eps, eps[1:]))  # grows every round
    assert 7.0 < eps[-1] <= 8.0 + 1e-6
    assert private.final_accuracy >= plain.final_accuracy - 0.05


def test_distributed_dp_keeps_its_target_under_dropouts(cancer, monkeypatch):
    # The noise is planned for planned_survivors(m, dropout) clients; rounds with fewer are
    # skipped before their sum is revealed, so epsilon never passes the target.
    import ml.federated as F
    import ml.federated.privacy as P

    assert F.planned_survivors(20, 0.0) == 20 and F.planned_survivors(20, 0.5) == 5
    assert F.planned_survivors(3, 0.9) == 1
    clients, test = _dp_setup(cancer, n=20)
    dp = DPConfig("distributed", clip=1.0, epsilon=8.0, delta=1e-5, noise_seed=b"\x05" * 16)
    # SecAgg+ sized for this dropout: with its default bound (threshold 7 of 20) a round with
    # fewer survivors aborts, and in about 1 run of 6 every round did (fresh keys and graph)
    h = train(LogisticRegression(30), clients, test, rounds=15, dropout=0.5, dp=dp, progress=False,
              seed=2, aggregator="secagg+", aggregator_options={"dropout_bound": 0.45})
    assert 0 < h.rounds[-1].epsilon <= 8.0 + 1e-6
    # Planning for every sampled client instead: any dropout skips the round, and a skipped
    # round spends no privacy.
    monkeypatch.setattr(P, "planned_survivors", lambda m, dropout: m)
    h = train(LogisticRegression(30), clients, test, rounds=6, dropout=0.2, dp=dp, progress=False,
              seed=2, aggregator="secagg+")
    skipped = [r for r in h.rounds if r.skipped]
    assert skipped and all("the distributed noise is planned for" in r.note for r in skipped)
    eps = [0.0] + [r.epsilon for r in h.rounds]
    assert all(eps[r.round] == eps[r.round - 1] for r in skipped)
    assert eps[-1] <= 8.0 + 1e-6


def test_dp_noise_is_really_added(cancer):
    clients, test = _dp_setup(cancer, n=20)
    kw = dict(rounds=2, progress=False, seed=1)
    tight = DPConfig("central", clip=1.0, epsilon=0.5)
    a = train(LogisticRegression(30), clients, test, dp=tight, **kw)
    b = train(LogisticRegression(30), clients, test, dp=tight, **kw)
    assert [r.loss for r in a.rounds] != [r.loss for r in b.rounds]  # fresh OS noise
    assert a.rounds[-1].epsilon <= 0.5 + 1e-6


@pytest.mark.parametrize("mode", ["central", "distributed"])
def test_dp_noise_in_the_averaged_sum_has_std_z_times_clip(mode):
    # The wiring from DPConfig to the mechanisms, with C != 1 (the other DP tests use C = 1, where
    # a noise of std z instead of z C would go unnoticed): zero updates from 10 clients, so the
    # decoded sum is the noise alone, of std z C whichever party adds it.
    from mpc.dp import PrivacyAccountant

    from ml.aggregators import AggregationResult
    from ml.federated.privacy import client_uploads as _client_uploads
    from ml.federated.privacy import dp_plan as _dp_plan
    from ml.federated.privacy import server_average as _server_average

    z, clip, dim, n = 3.0, 2.0, 2000, 10
    dp = DPConfig(mode, clip=clip, epsilon=None, noise_multiplier=z, noise_seed=b"\x09" * 16)
    mech, ddg, _ = _dp_plan(dp, dim, n, 5, 10.0)
    prg = PRG(b"\x09" * 16)
    uploads = _client_uploads({k: np.zeros(dim) for k in range(n)}, [1] * n, 1, dp, ddg, prg)
    total = np.sum([uploads[k] for k in range(n)], axis=0)
    res = AggregationResult(total, list(range(n)), 0.0, 0.0, 0.0)
    acc = PrivacyAccountant()
    summed, count = _server_average(res, mech, ddg, acc, prg)
    assert count == n and acc.steps == 1
    assert abs(summed.std() / (z * clip) - 1) < 0.05  # 2000 samples: 5% is about 3 standard errors
    assert abs(summed.mean()) < 4 * z * clip / np.sqrt(dim)


def test_compression_reports_bytes(cancer):
    clients = hospitals(cancer)
    h = train(LogisticRegression(30), clients, cancer[2:], rounds=5, compression=TopK(0.25),
              progress=False)
    r = h.rounds[-1]
    assert r.upload_bytes < 0.5 * r.dense_bytes
    assert h.final_accuracy > 0.85


def test_history_json_and_png(cancer, tmp_path):
    clients = hospitals(cancer)
    h = train(LogisticRegression(30), clients, cancer[2:], rounds=3, progress=False,
              label="run a")
    p = h.save_json(tmp_path / "h.json")
    back = History.load_json(p)
    assert back.to_dict() == json.loads(json.dumps(h.to_dict()))
    png = h.plot(tmp_path / "plot.png", others=[back], title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_weight_cap_far_above_the_clients_is_warned(cancer):
    import warnings

    clients = hospitals(cancer)
    with pytest.warns(UserWarning, match="fixed-point precision"):
        train(LogisticRegression(30), clients, cancer[2:], rounds=1, progress=False, weight_cap=10**6)
    Xtr, ytr = cancer[0], cancer[1]
    uneven = [(Xtr[:3], ytr[:3]), (Xtr[3:400], ytr[3:400])]      # sizes 3 and 397, default cap
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(LogisticRegression(30), uneven, cancer[2:], rounds=1, progress=False)


def test_aggregator_instance_and_bad_parameters(cancer):
    clients = hospitals(cancer)
    h = train(LogisticRegression(30), clients, cancer[2:], rounds=1, progress=False,
              aggregator=PlaintextAggregator())
    assert h.aggregator == "plaintext"
    bad = [dict(rounds=0), dict(lr=0), dict(mu=-1), dict(dropout=1.0), dict(clients_per_round=9),
           dict(aggregator="nope"), dict(weight_cap=1), dict(server_lr=0)]
    for kw in bad:
        with pytest.raises(ParameterError):
            train(LogisticRegression(30), clients, cancer[2:], progress=False, **kw)
    with pytest.raises(ParameterError):
        DPConfig("local")
    with pytest.raises(ParameterError):
        DPConfig("central", epsilon=8.0, noise_multiplier=1.0)
    # parameters that promise no meaningful privacy are refused
    for kw, match in [(dict(delta=0.5), "delta"), (dict(delta=0.01), "delta"), (dict(delta=0.0), "delta"),
                      (dict(epsilon=1e6), "epsilon"), (dict(epsilon=float("inf")), "epsilon"),
                      (dict(epsilon=float("nan")), "epsilon"), (dict(clip=float("inf")), "clip")]:
        with pytest.raises(ParameterError, match=match):
            DPConfig("central", **kw)
    for mode in ("central", "distributed"):      # an explicit noise multiplier gets the same bound
        with pytest.raises(ParameterError, match="guarantee in name only|sigma\\^2 = .* below the 1/4"):
            train(LogisticRegression(30), clients, cancer[2:], progress=False, rounds=2,
                  aggregator="secagg+", dp=DPConfig(mode, epsilon=None, noise_multiplier=0.01))
    with pytest.raises(ParameterError, match="distributed DP needs a secure aggregator"):
        train(LogisticRegression(30), clients, cancer[2:], progress=False, rounds=1,
              dp=DPConfig("distributed", epsilon=8.0))
    with pytest.raises(ParameterError):
        train(LogisticRegression(30), clients, cancer[2:], progress=False,
              compression=TopK(0.5), dp=DPConfig())
    for name in _secure_available():
        with pytest.raises(ParameterError, match="at least 2"):
            train(LogisticRegression(30), clients, cancer[2:], progress=False, aggregator=name,
                  clients_per_round=1)


# ---------------------------------------------------------------- secure = plaintext

def _secure_available():
    from ml.aggregators import AGGREGATORS, make_aggregator
    out = []
    for name in AGGREGATORS[1:]:
        try:
            make_aggregator(name)
        except ImportError:
            continue
        out.append(name)
    return out


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    return split_clients(Xtr, ytr, partition_dirichlet(ytr, 6, alpha=1.0, seed=0)), (Xte, yte)


@pytest.mark.parametrize("name", _secure_available())
def test_secure_aggregators_match_plaintext_fedavg(cancer, digits, name):
    kw = dict(rounds=4, dropout=0.2, progress=False, seed=8)
    for clients, test, make in ((hospitals(cancer), cancer[2:], lambda: LogisticRegression(30)),
                                (*digits, lambda: SoftmaxRegression(64, 10))):
        plain = train(make(), clients, test, **kw)
        secure = train(make(), clients, test, aggregator=name, **kw)
        assert [r.survivors for r in secure.rounds] == [r.survivors for r in plain.rounds]
        assert abs(secure.final_accuracy - plain.final_accuracy) <= 0.005
        assert np.allclose([r.loss for r in secure.rounds], [r.loss for r in plain.rounds],
                           atol=1e-3)
        assert secure.last_result.transcript and secure.config["aggregator"] == name


@pytest.mark.parametrize("name", _secure_available())
def test_distributed_dp_through_secure_aggregation(cancer, name):
    clients, test = _dp_setup(cancer, n=20)
    dp = DPConfig("distributed", clip=1.0, epsilon=8.0, noise_seed=b"\x03" * 16)
    kw = dict(rounds=3, dp=dp, progress=False, seed=1)
    # (the plaintext aggregator refuses distributed DP: compare with another secure one)
    reference = train(LogisticRegression(30), clients, test,
                      aggregator="secagg" if name != "secagg" else "secagg+", **kw)
    secure = train(LogisticRegression(30), clients, test, aggregator=name, **kw)
    # same client noise (seeded for the test): the integer sums agree exactly
    assert [r.loss for r in secure.rounds] == pytest.approx([r.loss for r in reference.rounds],
                                                            abs=1e-9)
    assert secure.rounds[-1].epsilon == reference.rounds[-1].epsilon


def test_dp_on_digits_within_5_points(digits):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    clients = split_clients(Xtr, ytr, partition_iid(ytr.size, 100, seed=0))
    kw = dict(rounds=15, lr=0.1, batch_size=8, progress=False, seed=1)
    plain = train(SoftmaxRegression(64, 10), clients, (Xte, yte), **kw)
    dp = DPConfig("central", clip=0.5, epsilon=8.0, noise_seed=b"\x05" * 16)
    private = train(SoftmaxRegression(64, 10), clients, (Xte, yte), dp=dp, **kw)
    assert private.rounds[-1].epsilon <= 8.0 + 1e-6
    assert private.final_accuracy >= plain.final_accuracy - 0.05


@pytest.mark.parametrize("name", _secure_available())
def test_server_never_holds_a_client_update_during_training(cancer, name):
    """End to end: record what each client fed into the secure sum (client side) and check
    that no round's server transcript or state contains any of those vectors."""
    from ml.aggregators import make_aggregator
    from tests.ml.test_aggregators import _holds_plaintext

    agg = make_aggregator(name)
    rounds = []
    inner = agg.aggregate

    def spy(vectors, dropped=()):
        res = inner(vectors, dropped)
        rounds.append((dict(vectors), res))
        return res

    agg.aggregate = spy
    h = train(LogisticRegression(30), hospitals(cancer), cancer[2:], aggregator=agg, rounds=3,
              dropout=0.2, progress=False, seed=4)
    assert len(rounds) == 3 and h.final_accuracy > 0.9
    for vectors, res in rounds:
        assert not _holds_plaintext(res, vectors)


@pytest.mark.parametrize("name", [n for n in ("secagg", "secagg+") if n in _secure_available()])
def test_secure_rounds_below_threshold_are_skipped_and_training_goes_on(cancer, name):
    clients = hospitals(cancer, n=6, alpha=5.0)
    h = train(LogisticRegression(30), clients, cancer[2:], aggregator=name, rounds=8,
              dropout=0.5, progress=False, seed=0)
    assert len(h.rounds) == 8
    skipped = [r for r in h.rounds if r.skipped]
    done = [r for r in h.rounds if not r.skipped]
    assert skipped and done  # some rounds lost too many clients, others went through
    assert all(r.survivors < 6 for r in done if r.survivors != r.sampled)
    assert h.final_accuracy > 0.85


def test_data_helpers_handle_constant_columns_and_small_classes():
    from ml.data import standardize

    X = np.column_stack([np.full(6, 0.1), np.arange(6.0)])
    Xtr, Xte = standardize(X, np.array([[0.101, 2.0]]))
    assert np.allclose(Xtr[:, 0], 0) and abs(Xte[0, 0] - 0.001) < 1e-12   # centred, not blown up
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])                              # class 2 has one row
    Xa = np.arange(9.0).reshape(-1, 1)
    _, ytr, _, yte = train_test_split(Xa, y, 0.25, seed=0)
    assert 2 in ytr and 2 not in yte and {0, 1} <= set(yte.tolist())
    with pytest.raises(ParameterError, match="empty training set|empty test set"):
        train_test_split(np.arange(2.0).reshape(-1, 1), np.array([0, 1]), 0.5)


def test_central_dp_epsilon_reflects_client_sampling(cancer):
    # 5 of 50 clients a round (uniform, without replacement): the reported epsilon has the WBK19
    # amplification, the unamplified one (what holds against the server) is the plain composition.
    from mpc.dp import PrivacyAccountant

    clients, test = _dp_setup(cancer, n=50)
    dp = DPConfig("central", clip=1.0, epsilon=None, noise_multiplier=3.0, noise_seed=b"\x02" * 16)
    h = train(LogisticRegression(30), clients, test, rounds=4, clients_per_round=5, dp=dp,
              progress=False, seed=3)
    plain = PrivacyAccountant()
    plain.add_gaussian(3.0, steps=4)
    amplified = PrivacyAccountant()
    amplified.add_gaussian(3.0, sampling_rate=0.1, steps=4, sampling="without_replacement")
    last = h.rounds[-1]
    assert last.epsilon_unamplified == pytest.approx(plain.epsilon(1e-5))
    assert last.epsilon == pytest.approx(amplified.epsilon(1e-5))
    assert last.epsilon < 0.6 * last.epsilon_unamplified
    full = train(LogisticRegression(30), clients, test, rounds=2, dp=dp, progress=False, seed=3)
    assert full.rounds[-1].epsilon == full.rounds[-1].epsilon_unamplified
