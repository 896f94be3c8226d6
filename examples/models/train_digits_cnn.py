"""Train the small digits CNNs shipped beside this script and export them to ONNX.

Run it:  python examples/models/train_digits_cnn.py      (a few minutes on 2 busy cores; writes the three .onnx files)

The architecture is CrypTen's digits benchmark model: on scikit-learn's 8x8
digits scaled to [0, 1], ``Conv 1->8 3x3 (padding 1) -> activation -> 2x2
pooling -> Flatten -> Linear 128->10``, logits out (no Softmax: the label is
their argmax). Three variants:

* ``digits_cnn.onnx``: ReLU, average pooling;
* ``digits_cnn_maxpool.onnx``: ReLU, max pooling;
* ``digits_cnn_square.onnx``: square activation (``Mul(x, x)``), average
  pooling: only additions and products, so CKKS can evaluate it.

Training: plain numpy (no deep-learning framework), full-batch gradients
through im2col (:func:`ml.inference.layers.im2col`), Adam, 400 steps, seeded:
the same files come out on every run of the same numpy. Data: the first 75%
of ``train_test_split(test_size=0.25, random_state=0, stratify=y)``, as
``examples/private_inference.py`` and ``bench inference`` use, so the test
quarter was never seen. The export uses ``onnx.helper`` only (opset 17,
float32 weights, batch axis ``N`` dynamic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.inference.layers import im2col

HERE = Path(__file__).resolve().parent
VARIANTS = {"digits_cnn.onnx": ("relu", "AveragePool"), "digits_cnn_maxpool.onnx": ("relu", "MaxPool"),
            "digits_cnn_square.onnx": ("square", "AveragePool")}


def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def forward(params, X, activation, pool):
    """Logits and the intermediate values backprop needs; X is (n, 1, 8, 8)."""
    w1, b1, w2, b2 = params
    n = X.shape[0]
    cols = im2col(X, 3, 3, 1, 1)                                   # (n*64, 9)
    z = cols @ w1.reshape(8, -1).T + b1                           # (n*64, 8)
    a = np.maximum(z, 0.0) if activation == "relu" else z * z
    img = a.reshape(n, 8, 8, 8).transpose(0, 3, 1, 2)             # (n, 8, 8, 8)
    win = img.reshape(n, 8, 4, 2, 4, 2)
    p = win.mean(axis=(3, 5)) if pool == "AveragePool" else win.max(axis=(3, 5))
    flat = p.reshape(n, 128)
    return flat @ w2.T + b2, (cols, z, img, win, p, flat)


def gradients(params, X, Y, activation, pool, l2):
    w1, b1, w2, b2 = params
    n = X.shape[0]
    logits, (cols, z, img, win, p, flat) = forward(params, X, activation, pool)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    d_logits = (e / e.sum(axis=1, keepdims=True) - Y) / n
    g_w2, g_b2 = d_logits.T @ flat + l2 * w2, d_logits.sum(axis=0)
    d_p = (d_logits @ w2).reshape(p.shape)
    if pool == "AveragePool":
        d_win = np.broadcast_to(d_p[:, :, :, None, :, None] / 4.0, win.shape)
    else:
        mask = win == p[:, :, :, None, :, None]
        d_win = mask * (d_p[:, :, :, None, :, None] / mask.sum(axis=(3, 5), keepdims=True))
    d_a = d_win.reshape(img.shape).transpose(0, 2, 3, 1).reshape(z.shape)
    d_z = d_a * (z > 0) if activation == "relu" else d_a * 2.0 * z
    g_w1 = (d_z.T @ cols).reshape(w1.shape) + l2 * w1
    return [g_w1, d_z.sum(axis=0), g_w2, g_b2]


def train(X, y, activation, pool, steps=400, lr=0.02, l2=1e-4, seed=0):
    rng = np.random.default_rng(seed)  # simulated initial weights, not a secret
    params = [rng.normal(0, 1 / 3, (8, 1, 3, 3)), np.zeros(8), rng.normal(0, 128 ** -0.5, (10, 128)), np.zeros(10)]
    m = [np.zeros_like(q) for q in params]
    v = [np.zeros_like(q) for q in params]
    Y = np.eye(10)[y]
    for t in range(1, steps + 1):
        grads = gradients(params, X, Y, activation, pool, l2)
        for i, g in enumerate(grads):  # Adam
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] = params[i] - lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    return [q.astype(np.float32) for q in params]


def to_onnx(params, activation, pool, name):
    """The ONNX model, built node by node with onnx.helper."""
    from onnx import TensorProto, helper, numpy_helper

    w1, b1, w2, b2 = params
    act = (helper.make_node("Relu", ["conv"], ["act"], name="relu") if activation == "relu"
           else helper.make_node("Mul", ["conv", "conv"], ["act"], name="square"))
    nodes = [helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["conv"], name="conv",
                              kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
             act,
             helper.make_node(pool, ["act"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
             helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1)]
    inits = [numpy_helper.from_array(a, n) for a, n in
             zip(params, ("conv.weight", "conv.bias", "fc.weight", "fc.bias"))]
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="concilium examples/models/train_digits_cnn.py")
    model.ir_version = 8
    return model


def main() -> None:
    import onnx

    Xtr, Xte, ytr, yte = digits_split()
    Xtr4, Xte4 = Xtr.reshape(-1, 1, 8, 8), Xte.reshape(-1, 1, 8, 8)
    for filename, (activation, pool) in VARIANTS.items():
        params = train(Xtr4, ytr, activation, pool)
        acc = np.mean(np.argmax(forward(params, Xte4, activation, pool)[0], axis=1) == yte)
        model = to_onnx(params, activation, pool, filename.removesuffix(".onnx"))
        onnx.checker.check_model(model)
        onnx.save(model, str(HERE / filename))
        print(f"{filename}: {activation}, {pool}, test accuracy {acc:.1%}, "
              f"{(HERE / filename).stat().st_size} bytes")


if __name__ == "__main__":
    main()
