"""A PyTorch model exported to ONNX (torch's TorchScript exporter) imports and answers like PyTorch.

Skipped where torch is absent (it is no dependency of Concilium; CI does not
install it) or where its exporter cannot run (the dynamo exporter needs
onnxscript).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from ml.inference.secure import secure_predict
from mpc.preprocessing.dealer import TrustedDealerWarning

torch = pytest.importorskip("torch", reason="PyTorch is optional and not installed")
pytest.importorskip("onnx", reason="needs the onnx extra: pip install 'concilium[onnx]'")
from ml.inference import from_onnx  # noqa: E402


class CryptenDigits(torch.nn.Module):
    """CrypTen's digits benchmark model, with batch normalisation, dropout and a softmax."""

    def __init__(self, pool: str) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.pool = torch.nn.MaxPool2d(2) if pool == "max" else torch.nn.AvgPool2d(2)
        self.drop = torch.nn.Dropout(0.2)
        self.fc = torch.nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return torch.softmax(self.fc(self.drop(torch.flatten(x, 1))), dim=1)


def export(module: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, torch.zeros(1, 1, 8, 8), buf, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=17, dynamo=False)
    except (ImportError, TypeError) as exc:  # pragma: no cover - depends on the torch version
        pytest.skip(f"torch's ONNX exporter is unavailable here: {exc}")
    return buf.getvalue()


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_torch_export_matches_torch_in_plaintext_and_on_shares(pool):
    torch.manual_seed(0)
    module = CryptenDigits(pool)
    with torch.no_grad():  # non-trivial batch-norm statistics
        module.bn.running_mean.uniform_(-0.5, 0.5)
        module.bn.running_var.uniform_(0.5, 2.0)
        module.bn.weight.uniform_(0.5, 1.5)
        module.bn.bias.uniform_(-0.5, 0.5)
    module.eval()
    net = from_onnx(export(module))
    X = np.random.default_rng(1).uniform(0, 1, size=(40, 1, 8, 8))
    with torch.no_grad():
        want = module(torch.tensor(X, dtype=torch.float32)).numpy()
    assert np.allclose(net.predict_proba(X), want, atol=1e-5)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        got = secure_predict(net, X, parties=2, input_bound=1.0).outputs
    assert np.array_equal(got, want.argmax(axis=1))
