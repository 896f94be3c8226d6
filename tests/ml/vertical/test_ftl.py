"""Federated transfer learning (ml.vertical.ftl): secure = plaintext, gradients, accuracy gain, bad messages."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from ml.vertical import ftl
from mpc.errors import MalformedPeerData, ParameterError

BITS = 512   # test keys only (insecure_for_testing)


def _small(seed=0, n_a=40, n_b=30, m=12):
    rng = np.random.default_rng(seed)
    XA, XB = rng.normal(size=(n_a, 5)), rng.normal(size=(n_b, 4))
    yA = (XA[:, 0] + 0.3 * rng.normal(size=n_a) > 0).astype(int)
    return XA, yA, np.arange(n_a - m, n_a), XB, np.arange(m)


def _secure(XA, yA, ova, XB, ovb, corrupt=None, **kw):
    def prog(party):
        if party.id == 0:
            return ftl.fit_ftl(party, XA, ova, yA, key_bits=BITS, insecure_for_testing=True, seed=3, **kw)
        if corrupt is not None:
            send = party.send
            party.send = lambda to, name, *arrays, **o: send(to, name, *corrupt(name, arrays), **o)
        return ftl.fit_ftl(party, XB, ovb, key_bits=BITS, insecure_for_testing=True, seed=3, **kw)

    return mpc.run(prog, parties=2, preprocessing=None, timeout=60)


def test_secure_training_equals_plaintext_ftl():
    XA, yA, ova, XB, ovb = _small()
    kw = dict(k=3, steps=3, lr=0.2, gamma=0.5)
    res = _secure(XA, yA, ova, XB, ovb, **kw)
    host, guest = ftl.fit_ftl_plain(XA, yA, ova, XB, ovb, seed=3, **kw)
    # also differs from the initial weights, so the comparison is not vacuous
    start = ftl.fit_ftl_plain(XA, yA, ova, XB, ovb, seed=3, **{**kw, "steps": 0})
    assert np.abs(host.weights - start[0].weights).max() > 1e-2
    np.testing.assert_allclose(res.outputs[0].weights, host.weights, atol=1e-5)
    np.testing.assert_allclose(res.outputs[1].weights, guest.weights, atol=1e-5)
    np.testing.assert_allclose(res.outputs[1].phi, host.phi, atol=1e-5)
    np.testing.assert_array_equal(res.outputs[1].predict(XB), guest.predict(XB))
    # 3 rounds per step, plus set-up and Phi
    assert res.cost.phase_rounds["ftl/train"] == 3 * 3 + 2


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 2.0))
def test_gradients_match_finite_differences(seed, gamma):
    XA, yA, ova, XB, ovb = _small(seed, n_a=9, n_b=6, m=4)
    rng = np.random.default_rng(seed)
    XA1, XBc = np.hstack([XA, np.ones((9, 1))]), np.hstack([XB[ovb], np.ones((4, 1))])
    WA, WB = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
    y_pm = 2.0 * yA - 1
    gA, gB = ftl.gradients(XA1, y_pm, ova, WA, XBc, WB, gamma)

    def f(wa, wb):
        return ftl.loss(XA1 @ wa, y_pm, ova, XBc @ wb, gamma)

    eps = 1e-6
    for W, g, which in [(WA, gA, 0), (WB, gB, 1)]:
        num = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            d = np.zeros_like(W)
            d[idx] = eps
            args = [(WA + d, WB), (WA - d, WB)] if which == 0 else [(WA, WB + d), (WA, WB - d)]
            num[idx] = (f(*args[0]) - f(*args[1])) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)


def test_guest_gains_accuracy_over_training_alone_on_the_demo_split():
    split = ftl.breast_cancer_split(0)
    alone = ftl.guest_alone_accuracy(split)
    _, guest = ftl.fit_ftl_plain(split.XA, split.yA, split.overlap_a, split.XB, split.overlap_b, seed=0)
    with_ftl = float(np.mean(guest.predict(split.XB[split.test]) == split.yB[split.test]))
    assert with_ftl > alone + 0.02 and with_ftl > 0.9
    # the guest's test rows are neither common nor labelled
    assert not set(split.test) & (set(split.overlap_b) | set(split.labeled))


def _replace(target, make):
    def corrupt(name, arrays):
        return make(arrays) if name == target else arrays
    return corrupt


@pytest.mark.parametrize("target, make, error, match", [
    # ciphertexts of the wrong shape
    ("guest-terms", lambda a: (a[1], a[1]), MalformedPeerData, r"guest-terms\[0\].*shape \(2, 2\)"),
    # one array missing
    ("guest-terms", lambda a: a[:1], MalformedPeerData, "guest-terms"),
    # bytes that are not a ciphertext envelope
    ("masked-gradient", lambda a: (np.zeros(40, np.uint8),), MalformedPeerData, "masked-gradient.*digest"),
    # the truncated gradient of the wrong shape or dtype
    ("truncated", lambda a: (a[0][:1],), MalformedPeerData, "truncated"),
    ("truncated", lambda a: (a[0].astype(np.float64),), MalformedPeerData, "truncated"),
    # another overlap size at set-up
    ("setup", lambda a: (a[0], a[1] + np.array([1, 0, 0])), ParameterError, "common rows"),
])
def test_malformed_messages_are_refused(target, make, error, match):
    XA, yA, ova, XB, ovb = _small()
    with pytest.raises(error, match=match) as info:
        _secure(XA, yA, ova, XB, ovb, corrupt=_replace(target, make), k=2, steps=1)
    assert getattr(info.value, "party", 0) == 0


def test_ciphertexts_under_the_wrong_key_are_refused():
    XA, yA, ova, XB, ovb = _small()
    other = mpc.he.paillier.keygen(BITS, insecure_for_testing=True).public

    def make(arrays):
        return tuple(np.frombuffer(other.encrypt(np.zeros(s), 20).serialize(), np.uint8)
                     for s in [(12, 2), (2, 2)])

    with pytest.raises(MalformedPeerData, match="guest-terms.*encrypted under key"):
        _secure(XA, yA, ova, XB, ovb, corrupt=_replace("guest-terms", make), k=2, steps=1)


def test_bad_inputs_are_refused():
    XA, yA, ova, XB, ovb = _small()
    with pytest.raises(ParameterError, match="overlap"):
        ftl.fit_ftl_plain(XA, yA, np.array([0, 0]), XB, ovb[:2])
    with pytest.raises(ParameterError, match="labels"):
        ftl.fit_ftl_plain(XA, yA + 1, ova, XB, ovb)
    with pytest.raises(ParameterError, match="differ"):
        ftl.fit_ftl_plain(XA, yA, ova, XB, ovb[:5])
    with pytest.raises(ParameterError, match="2 parties"):
        mpc.run(lambda party: ftl.fit_ftl(party, XA, ova, yA), parties=3, preprocessing=None)
    with pytest.raises(ParameterError, match="the guest does not"):
        mpc.run(lambda party: ftl.fit_ftl(party, XA, ova, yA), parties=2, preprocessing=None)
    with pytest.raises(ParameterError, match="diverged"):
        _secure(XA, yA, ova, XB, ovb, k=2, steps=30, lr=50.0)


@pytest.mark.parametrize("kw", [dict(gamma=float("nan")), dict(gamma=-5.0), dict(l2=-1.0),
                                dict(lr=float("inf")), dict(steps=-1)])
def test_bad_hyperparameters_are_refused(kw):
    # a NaN or negative gamma, or a negative l2, used to train silently to a NaN model (plain)
    XA, yA, ova, XB, ovb = _small()
    with pytest.raises(ParameterError, match="gamma|steps"):
        ftl.fit_ftl_plain(XA, yA, ova, XB, ovb, **kw)
    with pytest.raises(ParameterError, match="gamma|steps"):
        mpc.run(lambda party: ftl.fit_ftl(party, XA if party.id == 0 else XB, ova if party.id == 0 else ovb,
                                          yA if party.id == 0 else None, **kw), parties=2, preprocessing=None)
