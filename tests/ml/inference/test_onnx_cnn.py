"""The shipped digits CNNs (examples/models/*.onnx): private labels equal onnxruntime's on the test set.

The whole digits test quarter (450 images, never seen in training) runs under
secret sharing with 2 and 3 parties for the ReLU models (average and max
pooling), and under CKKS (batch layout) for the square-activation model.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from ml.inference.secure import secure_predict
from mpc.preprocessing.dealer import TrustedDealerWarning

ort = pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install 'concilium[onnx]'")
pytest.importorskip("onnx", reason="needs the onnx extra: pip install 'concilium[onnx]'")
from ml.inference import from_onnx  # noqa: E402

MODELS = Path(__file__).resolve().parents[3] / "examples" / "models"
sys.path.insert(0, str(MODELS))
from train_digits_cnn import digits_split  # noqa: E402


@pytest.fixture(scope="module")
def test_images():
    _, Xte, _, yte = digits_split()
    return Xte, yte


def reference_labels(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X.reshape(-1, 1, 8, 8).astype(np.float32)})[0].argmax(axis=1)


@pytest.mark.parametrize("name", ["digits_cnn.onnx", "digits_cnn_maxpool.onnx"])
def test_shipped_cnn_agrees_with_onnxruntime_on_shares(name, test_images):
    X, y = test_images
    path = MODELS / name
    net = from_onnx(path)
    assert net.architecture()[0] == "Conv2d (1, 8, 8) -> (8, 8, 8)" and net.shapes[-2] == (128,)
    want = reference_labels(path, X)
    assert np.mean(want == y) > 0.95  # a trained model, not a constant one
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        for parties in (2, 3):
            got = secure_predict(net, X, parties=parties, input_bound=1.0).outputs
            assert np.array_equal(got, want), (parties, np.flatnonzero(got != want))


def test_shipped_cnn_runs_without_a_dealer(test_images):
    """Dealer-free preprocessing (two parties, Beaver triples from OT): the same labels."""
    X, _ = test_images
    path = MODELS / "digits_cnn_maxpool.onnx"
    with threadpool_limits(1):
        got = secure_predict(from_onnx(path), X[:4], parties=2, input_bound=1.0, preprocessing="ot").outputs
    assert np.array_equal(got, reference_labels(path, X[:4]))


@pytest.mark.slow  # ~10-25 s: 512 ciphertext squares and ~9,000 scalar products, whatever the batch
def test_square_cnn_agrees_with_onnxruntime_under_ckks(test_images):
    from ml.inference.ckks import ckks_predict

    X, _ = test_images
    path = MODELS / "digits_cnn_square.onnx"
    res = ckks_predict(from_onnx(path), X, layout="batch", input_bound=1.0)
    assert np.array_equal(res.outputs, reference_labels(path, X))


@pytest.mark.slow
def test_example_answers_with_a_users_onnx_model(tmp_path):
    """``python examples/private_inference.py --model FILE.onnx`` prints its agreement with onnxruntime."""
    import subprocess

    proc = subprocess.run([sys.executable, str(MODELS.parent / "private_inference.py"), "--model",
                           str(MODELS / "digits_cnn_maxpool.onnx")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for parties in (2, 3):
        assert f"[secret sharing, {parties} parties] agreement: 100.0% of 450 predictions" in proc.stdout
    assert "CKKS: skipped" in proc.stdout
