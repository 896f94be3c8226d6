"""Privacy of secret-shared inference: each owner's view is independent of the other's secret.

Statistical tests in the style of tests/mpc/sharing/test_compare.py: chi-square on the
bytes a party receives (apart from the opened result), for two very
different secrets of the other party; the message sequence (tags, shapes,
dtypes) must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import mpc
from ml.inference.layers import mlp
from ml.inference.secure import private_predict, skeleton

MODEL_OWNER, DATA_OWNER = 0, 1


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _net(scale, seed):
    rng = np.random.default_rng(seed)  # simulated weights
    return mlp([(rng.normal(size=(6, 8)) * scale, rng.normal(size=8) * scale),
                (rng.normal(size=(8, 4)) * scale, rng.normal(size=4) * scale)], "relu")


def _view(net, X, party_id, parties=2, input_bound=64.0):
    """What ``party_id`` (an int, or a tuple of colluding parties) received from the other parties.

    ``input_bound`` is the public bound the parties declare for ``|X|``."""
    public = skeleton(net)

    def prog(party):
        mine = net if party.id == MODEL_OWNER else public
        return private_predict(party, mine, X if party.id == DATA_OWNER else None,
                               model_owner=MODEL_OWNER, data_owner=DATA_OWNER, input_bound=input_bound)

    res = mpc.run(prog, parties, record_view=True)
    ids = party_id if isinstance(party_id, tuple) else (party_id,)
    received, seen = [], set()
    for i in ids:
        for sender, tag, arrays in res.views[i]:
            if sender < 0 or sender in ids:
                continue
            for a in arrays:  # an opening sends the same share to every colluder: count it once
                key = (sender, tag, a.tobytes())
                if key not in seen:
                    seen.add(key)
                    received.append((tag, a))
    return res, received


def _hist(received):
    raw = np.concatenate([a.reshape(-1).view(np.uint8) for _, a in received])
    return np.bincount(raw, minlength=256)


def _chi_square_uniform_and_same(h0, h1):
    for h in (h0, h1):
        e = h.sum() / 256
        assert ((h - e) ** 2 / e).sum() < 400  # 255 dof: mean 255, sd ~22.6
    tot = h0 + h1
    assert (((h0 - tot / 2) ** 2 + (h1 - tot / 2) ** 2) / (tot / 2)).sum() < 400


def _layout(received):
    return [(tag, a.shape, a.dtype) for tag, a in received]


def test_model_owners_view_is_independent_of_the_input():
    net = _net(1.0, 0)
    inputs = [np.zeros((300, 6)), np.where(np.arange(1800).reshape(300, 6) % 2, 60.0, -60.0)]
    views = []
    for X in inputs:
        res, received = _view(net, X, MODEL_OWNER)
        assert res.outputs[MODEL_OWNER] is None  # the model owner gets no output
        views.append(received)
    assert _layout(views[0]) == _layout(views[1])
    assert sum(a.nbytes for _, a in views[0]) > 100_000
    _chi_square_uniform_and_same(_hist(views[0]), _hist(views[1]))


def test_data_owners_view_is_independent_of_the_weights_beyond_the_prediction():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 6))
    views = []
    for net in (_net(0.0, 1), _net(30.0, 2)):
        res, received = _view(net, X, DATA_OWNER)
        assert np.array_equal(res.outputs[DATA_OWNER], net.predict(X))
        assert received[-1][0].split("/")[-1].startswith("open")  # the last message opens the labels
        views.append(received[:-1])
    assert _layout(views[0]) == _layout(views[1])
    _chi_square_uniform_and_same(_hist(views[0]), _hist(views[1]))


def test_the_chi_square_detects_a_view_that_depends_on_the_secret():
    """Control: the same statistic on the raw, unmasked inputs fails (so the tests above can fail)."""
    X = np.where(np.arange(1800).reshape(300, 6) % 2, 60.0, -60.0)
    raw = mpc.FixedPoint(16).encode(X)
    with pytest.raises(AssertionError):
        _chi_square_uniform_and_same(_hist([("x", raw)]), _hist([("x", mpc.FixedPoint(16).encode(X * 0))]))


def test_model_owner_colluding_with_a_helper_learns_nothing_about_the_input():
    """Three parties, dishonest majority: the model owner and the helper (party 2) pool their views."""
    net = _net(1.0, 3)
    views = []
    for X in (np.zeros((200, 6)), np.full((200, 6), -50.0)):
        _, received = _view(net, X, (MODEL_OWNER, 2), parties=3)
        views.append(received)
    assert _layout(views[0]) == _layout(views[1])
    _chi_square_uniform_and_same(_hist(views[0]), _hist(views[1]))
