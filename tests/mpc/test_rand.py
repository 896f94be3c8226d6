"""PRG: pinned outputs (the wire format of seeds must not drift), stream properties, errors."""

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed, random_seed


def test_prg_is_aes_ctr_keystream():
    # Known answer: the stream is AES-128-CTR of zero bytes, IV = nonce || 0 (big endian).
    key = bytes(range(16))
    expect = Cipher(algorithms.AES(key), modes.CTR((7).to_bytes(8, "big") + bytes(8))) \
        .encryptor().update(bytes(64))
    assert PRG(key, 7).bytes(64) == expect
    assert PRG(key, 7).uint64(8).tobytes() == expect


def test_prg_pinned_output():
    # Pinned so that seed-compressed shares cannot change silently between versions.
    out = PRG(bytes(16)).uint64(2)
    assert out.tolist() == [4263935709876578662, 3326810793440857224]


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(0, 70_000), min_size=1, max_size=4))
def test_stream_continues_across_calls(sizes):
    seed = b"s" * 16
    prg = PRG(seed, 1)
    parts = [prg.uint64(n) for n in sizes]
    whole = PRG(seed, 1).uint64(sum(sizes))
    assert np.array_equal(np.concatenate(parts), whole)


def test_fill_matches_uint64_for_large_arrays():
    n = (1 << 19) * 3 + 5  # crosses the internal 4 MiB block boundary
    buf = np.empty(n, np.uint64)
    PRG(b"k" * 16, 3).fill(buf)
    assert np.array_equal(buf, PRG(b"k" * 16, 3).uint64(n))


def test_nonces_and_seeds_give_different_streams():
    a = PRG(b"a" * 16, 0).uint64(4)
    assert not np.array_equal(a, PRG(b"a" * 16, 1).uint64(4))
    assert not np.array_equal(a, PRG(b"b" * 16, 0).uint64(4))


def test_uniform_bytes_chi_square():
    data = np.frombuffer(PRG(random_seed()).bytes(1 << 18), np.uint8)
    counts = np.bincount(data, minlength=256)
    expected = data.size / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 400  # 255 dof: mean 255, sd ~22.6; 400 is > 6 sd


def test_integers_below_range_and_uniformity():
    x = PRG(random_seed()).integers_below(10, 100_000)
    assert x.max() < 10
    counts = np.bincount(x.astype(np.int64), minlength=10)
    assert counts.min() > 9_500 and counts.max() < 10_500


def test_bits_are_zero_one():
    b = PRG(random_seed()).bits((3, 50))
    assert b.shape == (3, 50) and set(np.unique(b)) <= {0, 1}


def test_derive_seed_separates_labels_and_indices():
    s = random_seed()
    seeds = {derive_seed(s, "a", 0), derive_seed(s, "a", 1), derive_seed(s, "b", 0)}
    assert len(seeds) == 3 and all(len(x) == 16 for x in seeds)


@pytest.mark.parametrize("bad", [b"short", b"x" * 17, "not bytes"])
def test_bad_seed_refused(bad):
    with pytest.raises(ParameterError):
        PRG(bad)


def test_bad_arguments_refused():
    with pytest.raises(ParameterError):
        random_seed(8)
    with pytest.raises(ParameterError):
        PRG(bytes(16), -1)
    with pytest.raises(ParameterError):
        PRG(bytes(16)).integers_below(0, 3)
