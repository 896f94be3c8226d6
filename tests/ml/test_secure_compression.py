"""Quantized and sparsified secure aggregation against the same compression in plaintext."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.aggregators import make_aggregator
from ml.secure_compression import (CompressedSecAggAggregator, StochasticQuantizer, pack,
                                   shared_coordinates, unpack)
from mpc.errors import ParameterError
from mpc.rand import PRG


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 20), st.integers(1, 40), st.integers(0, 2**32))
def test_packed_words_sum_to_the_packed_sums(bits, n, d, seed):
    # the overflow rule: slots of bitlen(n L) bits hold the sum of n values in [0, L], even all at L
    q = StochasticQuantizer(bits)
    k = q.slot_bits(n)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, q.levels + 1, size=(n, d)).astype(np.uint64)
    rows[0] = q.levels if seed % 2 else rows[0]
    words = np.sum([pack(r, k) for r in rows], axis=0, dtype=np.uint64)   # wraps mod 2^64
    np.testing.assert_array_equal(unpack(words, k, d), rows.sum(axis=0))
    full = np.sum([pack(np.full(d, q.levels, dtype=np.uint64), k) for _ in range(n)], axis=0,
                  dtype=np.uint64)
    np.testing.assert_array_equal(unpack(full, k, d), np.full(d, n * q.levels))
    if k > 1 and n * q.levels >= 2 ** (k - 1):   # one bit fewer would overflow a slot
        assert not np.array_equal(unpack(np.sum([pack(np.full(d, q.levels, dtype=np.uint64), k - 1)
                                                 for _ in range(n)], axis=0, dtype=np.uint64),
                                         k - 1, d), np.full(d, n * q.levels))


def test_stochastic_rounding_is_unbiased_and_in_range():
    q = StochasticQuantizer(4, clip=1.0)
    x = np.array([-1.5, -0.3, 0.0, 0.123, 0.9, 2.0])
    draws = q.encode(np.tile(x, (2000, 1)), PRG(b"\x05" * 16))[0]
    assert draws.max() <= q.levels
    step = 2.0 / q.levels
    means = q.decode_sum(draws.mean(axis=0), 1)
    np.testing.assert_allclose(means, np.clip(x, -1, 1), atol=4 * step / 2 / np.sqrt(2000))
    assert q.encode(x, PRG(b"\x01" * 16))[1] == 2                # two values clipped
    assert np.all(q.encode(np.array([-1.0, 1.0]), PRG(b"\x01" * 16))[0] == [0, q.levels])


def _vectors(n=8, d=60, seed=0):
    rng = np.random.default_rng(seed)
    return {k: np.concatenate([rng.normal(size=d - 1) * 0.1, [rng.uniform(0.2, 1.0)]]) for k in range(n)}


def test_quantized_secagg_equals_quantized_plaintext_exactly():
    v = _vectors()
    agg = CompressedSecAggAggregator(bits=6, clip=0.5, seed=b"\x02" * 16)
    agg.setup(8, 60, 10.0)
    agg._prg = PRG(b"\x03" * 16)     # the clients' rounding randomness, replayed below
    res = agg.aggregate(v, dropped=[5])
    clip = np.full(60, 0.5)
    clip[-1] = 1.0
    quant, prg = StochasticQuantizer(6, clip), PRG(b"\x03" * 16)
    ints = {k: quant.encode(v[k], prg)[0] for k in sorted(v)}
    plain = quant.decode_sum(np.sum([ints[k] for k in v if k != 5], axis=0), 7)
    np.testing.assert_array_equal(res.total, plain)
    assert res.survivors == [0, 1, 2, 3, 4, 6, 7]
    exact = np.sum([v[k] for k in v if k != 5], axis=0)
    assert np.abs(res.total - exact).max() <= 7 * 2 * 1.0 / quant.levels


@pytest.mark.parametrize("bits", [None, 8])
def test_sparsified_secagg_equals_sparsified_plaintext(bits):
    v = _vectors()
    agg = make_aggregator(CompressedSecAggAggregator(bits=bits, clip=0.5, keep=0.25, seed=b"\x04" * 16))
    agg.setup(8, 60, 10.0)
    first = agg.aggregate(v)
    idx = first.server_state["coordinates"]
    assert idx.size == 15 and idx[-1] == 59
    np.testing.assert_array_equal(idx, shared_coordinates(b"\x04" * 16, 0, 60, 15, always=[59]))
    plain = np.zeros(60)
    plain[idx] = np.sum([v[k][idx] for k in v], axis=0)          # the same sparsification in the clear
    tol = 8 * 2.0 ** -21 if bits is None else 8 * 2 * 1.0 / 255
    assert np.abs(first.total - plain).max() <= tol
    assert np.all(first.total[np.setdiff1d(np.arange(60), idx)] == 0)
    second = agg.aggregate(v)
    assert not np.array_equal(second.server_state["coordinates"], idx)   # a fresh choice per round


def test_compressed_uploads_are_smaller_than_dense():
    v = _vectors(d=400)
    dense = make_aggregator("secagg")
    dense.setup(8, 400, 10.0)
    sizes = {}
    for name, agg in {"q8": CompressedSecAggAggregator(bits=8), "dense": CompressedSecAggAggregator(bits=None),
                      "sparse": CompressedSecAggAggregator(bits=8, keep=0.1)}.items():
        agg.setup(8, 400, 10.0)
        sizes[name] = agg.aggregate(v).server_state["masked_bytes_per_client"]
    assert sizes["dense"] == pytest.approx(400 * 4, abs=64)     # 32-bit fixed-point ring
    assert sizes["q8"] == pytest.approx(8 * np.ceil(400 / (64 // 11)), abs=64)
    assert sizes["sparse"] < sizes["q8"] / 5
    with pytest.raises(ParameterError, match="keep"):
        CompressedSecAggAggregator(keep=1.5)


@pytest.mark.parametrize("mode", ["central", "distributed"])
def test_dp_with_quantization_is_refused(mode):
    # 1-bit rounding turns a zero update into +-clip per coordinate: a sum whose sensitivity is
    # clip * sqrt(d), not the DP clip the noise is calibrated to (epsilon would be under-reported)
    from ml.federated import DPConfig, train
    from ml.models import SoftmaxRegression
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(8, 3)), rng.integers(0, 2, 8)) for _ in range(8)]
    dp = DPConfig(mode, clip=1.0, epsilon=4.0)
    with pytest.raises(ParameterError, match="quantized"):
        train(SoftmaxRegression(3, 2), data, data[0], rounds=1, progress=False, dp=dp,
              aggregator=CompressedSecAggAggregator(bits=1))
    q = StochasticQuantizer(1, clip=1.0)
    assert np.all(np.abs(q.decode_sum(q.encode(np.zeros(50), PRG(b"\x01" * 16))[0], 1)) == 1.0)
