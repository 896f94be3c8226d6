"""scikit-learn models exported by skl2onnx, imported by from_onnx: the same labels as scikit-learn.

One import route: what ``to_network`` reads from fitted attributes,
``from_onnx`` reads from skl2onnx's graph (``Scaler``, ``LinearClassifier``,
``Normalizer`` of ``ai.onnx.ml``; ``MatMul``/``Add``/``Relu``/``Softmax`` for
MLPs; the label branch beside the probabilities is left out).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ml.inference.convert import to_network
from ml.inference.layers import UnsupportedModelError
from ml.inference.secure import secure_predict
from mpc.preprocessing.dealer import TrustedDealerWarning

skl2onnx = pytest.importorskip("skl2onnx", reason="needs skl2onnx (the onnx extra)")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (the onnx extra)")
from ml.inference import from_onnx  # noqa: E402

DATA = {"digits": load_digits, "cancer": load_breast_cancer, "iris": load_iris}
MODELS = {
    "scaler+logistic (multinomial)": ("digits", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))),
    "scaler+logistic (binary)": ("cancer", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))),
    "logistic (3 classes)": ("iris", lambda: LogisticRegression(max_iter=300)),
    "scaler+mlp relu": ("digits", lambda: make_pipeline(StandardScaler(),
                                                         MLPClassifier((16,), max_iter=100, random_state=0))),
    "mlp tanh": ("iris", lambda: MLPClassifier((8,), activation="tanh", max_iter=300, random_state=0)),
}


def fitted(case):
    data, make = MODELS[case]
    X, y = DATA[data](return_X_y=True)
    X = X.astype(np.float32).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = make().fit(X, y)
    return clf, X, y


@pytest.mark.parametrize("case", list(MODELS))
def test_skl2onnx_export_imports_like_to_network(case):
    clf, X, _ = fitted(case)
    model = skl2onnx.to_onnx(clf, X[:1].astype(np.float32), options={"zipmap": False})
    net = from_onnx(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})
    assert np.allclose(net.predict_proba(X), proba, atol=1e-5)
    assert np.array_equal(clf.classes_[net.predict(X)], labels)
    assert np.allclose(net.forward(X), to_network(clf).forward(X), atol=1e-4)  # the same network either way
    rows = X[::7][:40]
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        got = secure_predict(net, rows, input_bound=2 * float(np.abs(X).max())).outputs
    assert np.array_equal(got, net.predict(rows))


def test_one_vs_rest_probabilities_are_refused_by_name():
    X, y = load_iris(return_X_y=True)
    from sklearn.multiclass import OneVsRestClassifier

    clf = OneVsRestClassifier(LogisticRegression(max_iter=300)).fit(X, y)
    model = skl2onnx.to_onnx(clf, X[:1].astype(np.float32), options={"zipmap": False})
    with pytest.raises(UnsupportedModelError):
        from_onnx(model)
