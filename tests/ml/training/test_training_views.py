"""Privacy of training on shares: during a training step, a party's view is independent of the other's data.

As tests/ml/inference/test_inference_views.py: chi-square on the bytes a
party receives for two very different datasets of the other party, and the
same message layout (tags, shapes, dtypes), and no received word that looks
like an opened fixed-point value; every message is of a masked kind (an
opening's shares are uniform on their own: its tag is what shows it). Nothing is opened: the model stays shared.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import mpc
from ml.training.secure import Data, TrainConfig, private_train

# the only messages of a training step: seeds of the data sharing, and openings masked by fresh
# preprocessing (Beaver products, truncations, comparison ANDs and bit injections)
MASKED = {"share_all", "mul", "matmul", "trunc", "and", "inject"}
CONFIG = TrainConfig((6, 8, 2), epochs=1, batch_size=64, lr=0.1, momentum=0.9, input_bound=8.0)


def _view(X, y, owner, viewer):
    def prog(party):
        private_train(party, Data(X, y) if party.id == owner else None, CONFIG, split="outsourced")

    res = mpc.run(prog, 2, record_view=True)
    return [(tag, a) for sender, tag, arrays in res.views[viewer] if sender >= 0 for a in arrays]


def _hist(received):
    raw = np.concatenate([a.reshape(-1).view(np.uint8) for _, a in received])
    return np.bincount(raw, minlength=256)


@pytest.mark.parametrize("owner, viewer", [(0, 1), (1, 0)])
def test_one_training_step_view_is_independent_of_the_others_data(owner, viewer):
    n = 64   # one step: the batch is the whole set
    datasets = [(np.zeros((n, 6)), np.zeros(n, dtype=int)),
                (np.where(np.arange(n * 6).reshape(n, 6) % 2, 7.5, -7.5), np.arange(n) % 2)]
    views = [_view(X, y, owner, viewer) for X, y in datasets]
    assert [(t, a.shape, a.dtype) for t, a in views[0]] == [(t, a.shape, a.dtype) for t, a in views[1]]
    h0, h1 = _hist(views[0]), _hist(views[1])
    for h in (h0, h1):
        e = h.sum() / 256
        assert ((h - e) ** 2 / e).sum() < 400   # 255 degrees of freedom: mean 255, sd ~22.6
    tot = h0 + h1
    assert (((h0 - tot / 2) ** 2 + (h1 - tot / 2) ** 2) / (tot / 2)).sum() < 400
    for received in views:
        kinds = {re.sub(r"#\d+", "", tag).split("/")[-1] for tag, _ in received}
        assert kinds <= MASKED, f"messages other than masked openings: {kinds - MASKED}"
        words, small = _small_words(received)
        assert small <= 4 + 4 * words * 2.0**-16, f"{small} of {words} received words look like opened reals"


def _small_words(received):
    """Ring words below 2^47 in magnitude: an opened fixed-point value always is, a masked one
    with probability 2^-16. The sharing messages (seeds and public shapes) are left out."""
    words = small = 0
    for tag, a in received:
        if a.dtype == np.uint64 and "share_all" not in tag:
            s = np.abs(a.view(np.int64).reshape(-1).astype(np.float64))
            words += s.size
            small += int(np.sum(s < 2.0**47))
    return words, small
