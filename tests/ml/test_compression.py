"""Tests for ml.compression: quantization, top-k, error feedback, bytes reported."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.compression import ErrorFeedback, Quantizer, TopK, bytes_saved
from mpc.errors import ParameterError
from mpc.rand import PRG


def prg(i=0):
    return PRG(bytes([i]) * 16)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=200), st.integers(1, 16))
def test_quantizer_roundtrip_within_one_level(values, bits):
    v = np.array(values)
    q = Quantizer(bits)
    c = q.compress(prg(), v)
    out = q.decompress(c)
    step = (v.max() - v.min()) / ((1 << bits) - 1)
    assert np.all(np.abs(out - v) <= step * (1 + 1e-9) + 1e-12)
    assert c.nbytes == 16 + (v.size * bits + 7) // 8
    assert c.dense_bytes == 8 * v.size


def test_quantizer_is_unbiased():
    v = np.linspace(-1, 1, 7)
    q = Quantizer(2)
    p = prg(1)
    mean = np.mean([q.decompress(q.compress(p, v)) for _ in range(3000)], axis=0)
    assert np.allclose(mean, v, atol=0.03)


def test_topk_keeps_largest():
    v = np.array([0.1, -5.0, 0.2, 3.0, -0.05, 0.0])
    t = TopK(fraction=2 / 6)
    c = t.compress(prg(), v)
    assert np.array_equal(t.decompress(c), [0, -5.0, 0, 3.0, 0, 0])
    assert c.nbytes == 2 * (4 + 8) + 4


def test_error_feedback_accumulates_what_was_dropped():
    ef = ErrorFeedback(TopK(fraction=0.25))
    v = np.array([1.0, 0.5, 0.4, 0.3])
    sent = np.zeros(4)
    for _ in range(8):
        _, approx = ef.step(prg(2), v)
        sent += approx
    # after T rounds, sent + residual == T * v exactly (nothing is lost)
    assert np.allclose(sent + ef.residual, 8 * v)
    assert np.all(sent > 0)  # every coordinate was eventually sent
    with pytest.raises(ParameterError):
        ef.step(prg(), np.ones(5))


def test_error_feedback_keeps_the_clip_bound_and_what_was_not_delivered():
    ef = ErrorFeedback(TopK(fraction=0.5))
    v = np.array([3.0, -2.0, 1.0, 0.5])
    total = np.zeros(4)
    for _ in range(6):
        _, approx = ef.step(prg(3), v, clip=1.0)
        assert np.linalg.norm(approx) <= 1.0 + 1e-12      # what is sent respects the clip
        total += approx
    assert np.allclose(total + ef.residual, 6 * v)        # what was clipped off is not lost
    before = ef.residual.copy()
    ef.step(prg(4), v, delivered=False)                   # the client dropped out
    assert np.allclose(ef.residual, before + v)
    # scaling to the clip rounds: no entry may pass the bound, even by one ulp
    rng = np.random.default_rng(1)
    for _ in range(500):
        clip = float(rng.uniform(0.1, 5))
        spike = np.zeros(4)
        spike[0] = rng.uniform(1, 100) * clip                # a 1-sparse update far beyond the clip
        for comp in (TopK(0.25), Quantizer(8)):
            _, approx = ErrorFeedback(comp).step(prg(5), spike, clip=clip)
            assert np.abs(approx).max() <= clip


def test_training_with_compression_and_a_tight_clip_runs():
    # Error feedback once pushed sent updates past the aggregator's bound (a crash).
    from sklearn.datasets import load_breast_cancer

    from ml.data import partition_iid, split_clients, standardize, train_test_split
    from ml.federated import train
    from ml.models import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, ytr, Xte, yte = train_test_split(X, y, 0.2, seed=0)
    Xtr, Xte = standardize(Xtr, Xte)
    clients = split_clients(Xtr, ytr, partition_iid(len(ytr), 5, seed=0))
    h = train(LogisticRegression(30), clients, (Xte, yte), rounds=12, lr=5.0, local_epochs=5,
              update_clip=2.0, compression=TopK(0.04), dropout=0.2, progress=False)
    assert h.final_accuracy > 0.9


def test_bytes_saved():
    msgs = [TopK(0.1).compress(prg(), np.arange(100.0)) for _ in range(3)]
    comp, dense = bytes_saved(msgs)
    assert dense == 3 * 800 and comp == 3 * (10 * 12 + 4)


def test_errors():
    with pytest.raises(ParameterError):
        Quantizer(0)
    with pytest.raises(ParameterError):
        TopK(0.0)
    with pytest.raises(ParameterError):
        Quantizer(8).compress(prg(), np.array([np.inf]))
    c = TopK(0.5).compress(prg(), np.ones(4))
    with pytest.raises(ParameterError):
        Quantizer(8).decompress(c)
    const = Quantizer(4)
    assert np.array_equal(const.decompress(const.compress(prg(), np.full(5, 2.5))), np.full(5, 2.5))
