"""Tests for ml.inference.onnx_import: ONNX models built with onnx.helper, run against onnxruntime.

Every supported operator is checked three ways on random inputs: the imported
network in plaintext (float64 against onnxruntime's float32), under secret
sharing (fixed point, 16 fractional bits) and, where CKKS can evaluate it
(no ReLU, sigmoid, tanh or max pooling), under CKKS.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import mpc
from ml.inference.convert import to_network
from ml.inference.layers import Conv2d, Dense, UnsupportedModelError
from ml.inference.secure import secure_predict
from mpc.errors import ParameterError
from mpc.preprocessing.dealer import TrustedDealerWarning

onnx = pytest.importorskip("onnx", reason="needs the onnx extra: pip install 'concilium[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="needs the onnx extra (onnxruntime is the reference)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from ml.inference import from_onnx  # noqa: E402
from ml.inference.onnx_import import MAX_OPSET, MIN_OPSET  # noqa: E402

SS_ATOL = 2e-3  # fixed point with 16 fractional bits through a few layers (as tests/ml/inference/test_inference_secure.py)


@pytest.fixture(autouse=True)
def _quiet():
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        yield


def rng(seed=0):
    return np.random.default_rng(seed)


def init(name, a, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(a, dtype), name)


def model(nodes, inits, in_shape, out_shape, opset=17, inputs=None):
    """A one-input, one-output model ``x -> y``; the batch axis is the symbolic ``N``."""
    graph = helper.make_graph(
        nodes, "test", inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def run_ort(m, X):
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": X.astype(np.float32)})[0].astype(np.float64)


def expected(net, X, m):
    """What the network says the ONNX output is: scores, or probabilities after a head."""
    return net.predict_proba(X)[:, 1:] if net.head == "sigmoid" and probability_output(m) else (
        net.predict_proba(X) if probability_output(m) else net.forward(X))


def probability_output(m):
    return m.graph.node[-1].op_type in ("Softmax", "Sigmoid") and m.graph.node[-1].output[0] == "y"


# -- the operator cases: (model, per-example input shape) -----------------------------------------

def gemm_chain(activation=None, out=4, **attrs):
    r = rng(1)
    w = r.normal(size=(out, 6)) if attrs.get("transB") else r.normal(size=(6, out))
    nodes = [helper.make_node("Gemm", ["x", "W", "C"], ["g"], **attrs)]
    inits = [init("W", w * 0.5), init("C", r.normal(size=(1, out)))]
    if activation:
        nodes += [helper.make_node(activation, ["g"], ["a"]), helper.make_node("MatMul", ["a", "W2"], ["y"])]
        inits.append(init("W2", r.normal(size=(out, 3))))
        return model(nodes, inits, (6,), (3,)), (6,)
    nodes[0].output[0] = "y"
    return model(nodes, inits, (6,), (out,)), (6,)


def conv_chain(tail="Flatten", bn=False, **attrs):
    r = rng(2)
    kernel = attrs.pop("kernel", (3, 3))
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], **attrs)]
    inits = [init("W", r.normal(size=(3, 2, *kernel)) * 0.4), init("B", r.normal(size=3))]
    last = "c"
    if bn:
        nodes.append(helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], epsilon=1e-3))
        inits += [init("s", r.uniform(0.5, 2, 3)), init("b", r.normal(size=3)), init("m", r.normal(size=3)),
                  init("v", r.uniform(0.5, 2, 3))]
        last = "bn"
    nodes.append(helper.make_node(tail, [last], ["y"]))
    probe = model(nodes, inits, (2, 7, 7), ())  # output shape from onnxruntime
    n_out = run_ort(probe, np.zeros((1, 2, 7, 7))).shape[1]
    return model(nodes, inits, (2, 7, 7), (n_out,)), (2, 7, 7)


def pool_chain(op, relu=False, **attrs):
    r = rng(3)
    act = [helper.make_node("Relu", ["c0"], ["c"])] if relu else []
    nodes = [helper.make_node("Conv", ["x", "W"], ["c0" if relu else "c"]), *act,
             helper.make_node(op, ["c"], ["p"], **attrs),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "W2"], ["y"], transB=1)]
    probe_nodes = nodes[:-1]
    probe_nodes[-1] = helper.make_node("Flatten", ["p"], ["y"])
    inits = [init("W", r.normal(size=(2, 1, 3, 3)) * 0.5)]
    width = run_ort(model(probe_nodes, inits, (1, 8, 8), ()), np.zeros((1, 1, 8, 8))).shape[1]
    inits.append(init("W2", r.normal(size=(4, width)) * 0.3))
    return model(nodes, inits, (1, 8, 8), (4,)), (1, 8, 8)


def normalised_input():
    """Sub mean, Div std, Mul: folded forward into the Gemm (as a scaler in front of a model)."""
    r = rng(4)
    nodes = [helper.make_node("Sub", ["x", "mu"], ["a"]), helper.make_node("Div", ["a", "sd"], ["b"]),
             helper.make_node("Mul", ["k", "b"], ["c"]), helper.make_node("Sub", ["one", "c"], ["d"]),
             helper.make_node("Gemm", ["d", "W", "C"], ["y"])]
    inits = [init("mu", r.normal(size=6)), init("sd", r.uniform(1, 2, size=(1, 6))), init("k", 0.7),
             init("one", 1.0), init("W", r.normal(size=(6, 3))), init("C", r.normal(size=3))]
    return model(nodes, inits, (6,), (3,)), (6,)


def affine_after_gemm():
    """Gemm, Mul and Add by per-feature constants, BatchNormalization (1-D): folded into the Gemm."""
    r = rng(5)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Mul", ["a", "s"], ["s1"]),
             helper.make_node("BatchNormalization", ["s1", "g", "bb", "mm", "vv"], ["bn"]),
             helper.make_node("Tanh", ["bn"], ["t"]), helper.make_node("Gemm", ["t", "W2"], ["y"])]
    inits = [init("W", r.normal(size=(6, 5)) * 0.5), init("b", r.normal(size=5)), init("s", r.uniform(-2, 2, 5)),
             init("g", r.uniform(0.5, 2, 5)), init("bb", r.normal(size=5)), init("mm", r.normal(size=5)),
             init("vv", r.uniform(0.5, 2, 5)), init("W2", r.normal(size=(5, 3)))]
    return model(nodes, inits, (6,), (3,)), (6,)


def bn_before_conv():
    """BatchNormalization on the input, folded forward into an unpadded convolution."""
    r = rng(6)
    nodes = [helper.make_node("BatchNormalization", ["x", "g", "bb", "mm", "vv"], ["bn"]),
             helper.make_node("Conv", ["bn", "W", "B"], ["c"], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Flatten", ["r"], ["y"])]
    inits = [init("g", r.uniform(0.5, 2, 2)), init("bb", r.normal(size=2)), init("mm", r.normal(size=2)),
             init("vv", r.uniform(0.5, 2, 2)), init("W", r.normal(size=(3, 2, 3, 3)) * 0.4),
             init("B", r.normal(size=3))]
    return model(nodes, inits, (2, 7, 7), (27,)), (2, 7, 7)


def reshapes():
    """The input reshaped to an image, a Constant shape, Identity, Dropout (opset 13), Reshape to a vector."""
    r = rng(7)
    shape = helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("v", TensorProto.INT64, [4],
                                                                                   [-1, 1, 4, 4]))
    nodes = [shape, helper.make_node("Reshape", ["x", "shape"], ["img"]),
             helper.make_node("Identity", ["img"], ["i"]),
             helper.make_node("Conv", ["i", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Dropout", ["c", "ratio", "train"], ["d"]),
             helper.make_node("Concat", ["zero", "minus"], ["flat"], axis=0),
             helper.make_node("Reshape", ["d", "flat"], ["v"]), helper.make_node("Gemm", ["v", "W2"], ["y"])]
    inits = [init("W", r.normal(size=(2, 1, 3, 3))), init("ratio", 0.3), init("train", False, np.bool_),
             init("zero", [0], np.int64), init("minus", [-1], np.int64), init("W2", r.normal(size=(32, 5)) * 0.3)]
    return model(nodes, inits, (16,), (5,), opset=13), (16,)


def squares():
    """Mul(x, x) and Pow(x, 2): the square activation."""
    r = rng(8)
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"]), helper.make_node("Mul", ["g", "g"], ["sq"]),
             helper.make_node("Gemm", ["sq", "W2", "C"], ["h"]), helper.make_node("Pow", ["h", "two"], ["y"])]
    inits = [init("W", r.normal(size=(6, 4)) * 0.4), init("W2", r.normal(size=(4, 3)) * 0.4),
             init("C", r.normal(size=3)), init("two", 2.0)]
    return model(nodes, inits, (6,), (3,)), (6,)


def softmax_head(opset=17):
    r = rng(9)
    nodes = [helper.make_node("Gemm", ["x", "W", "C"], ["g"]), helper.make_node("Softmax", ["g"], ["y"])]
    return model(nodes, [init("W", r.normal(size=(6, 4))), init("C", r.normal(size=4))], (6,), (4,),
                 opset=opset), (6,)


def sigmoid_head():
    r = rng(10)
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"]), helper.make_node("Sigmoid", ["g"], ["y"])]
    return model(nodes, [init("W", r.normal(size=(6, 1)))], (6,), (1,)), (6,)


CASES = {
    "gemm": lambda: gemm_chain(alpha=0.5, beta=2.0),
    "gemm-transB": lambda: gemm_chain(transB=1),
    "relu": lambda: gemm_chain("Relu"),
    "sigmoid": lambda: gemm_chain("Sigmoid"),
    "tanh": lambda: gemm_chain("Tanh"),
    "sub-div-mul-input": normalised_input,
    "matmul-add-mul-batchnorm": affine_after_gemm,
    "conv": lambda: conv_chain(),
    "conv-stride-pads-batchnorm": lambda: conv_chain(bn=True, strides=[2, 2], pads=[1, 1, 1, 1]),
    "conv-same-upper": lambda: conv_chain(auto_pad="SAME_UPPER"),
    "conv-rectangular-kernel": lambda: conv_chain(kernel=(2, 3)),
    "batchnorm-before-conv": bn_before_conv,
    "averagepool": lambda: pool_chain("AveragePool", kernel_shape=[2, 2], strides=[2, 2]),
    "averagepool-stride-1": lambda: pool_chain("AveragePool", kernel_shape=[3, 3]),
    "maxpool": lambda: pool_chain("MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
    "maxpool-3-stride-2": lambda: pool_chain("MaxPool", kernel_shape=[3, 3], strides=[2, 2]),
    "relu-maxpool": lambda: pool_chain("MaxPool", relu=True, kernel_shape=[2, 2], strides=[2, 2]),
    "globalaveragepool": lambda: pool_chain("GlobalAveragePool"),
    "reshape-identity-dropout": reshapes,
    "square-mul-pow": squares,
    "softmax": softmax_head,
    "softmax-opset-11": lambda: softmax_head(11),
    "sigmoid-head": sigmoid_head,
}
CKKS_CASES = ("gemm", "sub-div-mul-input", "conv-stride-pads-batchnorm", "averagepool", "globalaveragepool",
              "reshape-identity-dropout", "square-mul-pow", "softmax")


def inputs(shape, n=6, seed=11):
    return rng(seed).normal(size=(n, *shape)).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("case", list(CASES))
def test_operator_matches_onnxruntime_in_plaintext_and_on_shares(case):
    m, shape = CASES[case]()
    onnx.checker.check_model(m)
    X = inputs(shape)
    want = run_ort(m, X)
    net = from_onnx(m)
    assert np.allclose(expected(net, X, m), want, atol=1e-4, rtol=1e-4)
    if probability_output(m):
        got = secure_predict(net, X, output="proba", input_bound=8.0).outputs
        got = got.reshape(-1, 1) if net.head == "sigmoid" else got  # the sigmoid head: P(class 1)
        assert np.allclose(got, want, atol=5e-3)
    else:
        got = secure_predict(net, X, output="scores", input_bound=8.0).outputs
        assert np.allclose(got, want, atol=SS_ATOL, rtol=1e-3)
    labels = secure_predict(net, X, parties=3, input_bound=8.0).outputs
    assert np.array_equal(labels, net.predict(X))


@pytest.mark.parametrize("case", CKKS_CASES)
def test_operator_matches_onnxruntime_under_ckks(case):
    from ml.inference.ckks import ckks_predict

    m, shape = CASES[case]()
    X = inputs(shape, n=4)
    want = run_ort(m, X)
    net = from_onnx(m)
    res = ckks_predict(net, X, layout="batch")
    got = res.scores
    if probability_output(m):
        e = np.exp(got - got.max(axis=1, keepdims=True))
        got = e / e.sum(axis=1, keepdims=True)
    assert np.allclose(got, want, atol=1e-3, rtol=1e-3)


def test_convolution_under_ckks_one_image_per_ciphertext():
    """The vector layout: the convolution, pooling and dense layer as diagonal products on one ciphertext."""
    from ml.inference.ckks import ckks_predict

    m, shape = CASES["averagepool"]()
    X = inputs(shape, n=2)
    res = ckks_predict(from_onnx(m), X, layout="vector")
    assert np.allclose(res.scores, run_ort(m, X), atol=1e-3, rtol=1e-3)


@settings(max_examples=12, deadline=None)
@given(stride=st.integers(1, 3), pad=st.integers(0, 2), kh=st.integers(1, 4), kw=st.integers(1, 4),
       channels=st.integers(1, 3), size=st.integers(5, 9), seed=st.integers(0, 2**16))
def test_conv_attributes_match_onnxruntime(stride, pad, kh, kw, channels, size, seed):
    r = rng(seed)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], strides=[stride, stride], pads=[pad] * 4),
             helper.make_node("Flatten", ["c"], ["y"])]
    inits = [init("W", r.normal(size=(2, channels, kh, kw))), init("B", r.normal(size=2))]
    m = model(nodes, inits, (channels, size, size), ())
    X = r.normal(size=(3, channels, size, size)).astype(np.float32).astype(np.float64)
    assert np.allclose(from_onnx(m).forward(X), run_ort(m, X), atol=1e-4, rtol=1e-4)


def test_relu_before_max_pooling_runs_after_it():
    m, _ = CASES["relu-maxpool"]()
    assert [a.split()[0] for a in from_onnx(m).architecture()[:3]] == ["Conv2d", "MaxPool2d", "relu"]


@settings(max_examples=15, deadline=None)
@given(pre=st.sampled_from(["none", "bn", "scale", "shift"]), act=st.sampled_from(["Relu", "Tanh", "none"]),
       pool=st.sampled_from(["MaxPool", "AveragePool", "none"]), post=st.sampled_from(["none", "bn", "affine"]),
       pad=st.integers(0, 1), seed=st.integers(0, 2**16))
def test_random_chains_import_exactly_or_are_refused(pre, act, pool, post, pad, seed):
    """Chains of supported operators in random orders: equal to onnxruntime, or refused by name, never wrong."""
    r = rng(seed)
    c, nodes, inits, last = 2, [], [], "x"

    def node(op, *inputs, **attrs):
        nonlocal last
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op, [last, *inputs], [out], name=f"n{len(nodes)}", **attrs))
        last = out

    def const(name, a):
        inits.append(init(name, a))
        return name

    def bn(prefix, n):
        node("BatchNormalization", const(f"{prefix}s", r.uniform(0.5, 2, n)), const(f"{prefix}b", r.normal(size=n)),
             const(f"{prefix}m", r.normal(size=n)), const(f"{prefix}v", r.uniform(0.5, 2, n)))

    if pre == "bn":
        bn("p", c)
    elif pre == "scale":
        node("Mul", const("k", r.uniform(0.5, 2, (c, 1, 1))))
    elif pre == "shift":
        node("Sub", const("mu", r.normal(size=(c, 1, 1))))
    node("Conv", const("W", r.normal(size=(3, c, 3, 3)) * 0.4), const("B", r.normal(size=3)), pads=[pad] * 4)
    if post == "bn":
        bn("q", 3)
    elif post == "affine":
        node("Mul", const("s", r.uniform(-2, 2, (3, 1, 1))))
        node("Add", const("t", r.normal(size=(3, 1, 1))))
    if act != "none":
        node(act)
    if pool != "none":
        node(pool, kernel_shape=[2, 2], strides=[2, 2])
    node("Flatten")
    side = 6 + 2 * pad - 2
    width = 3 * (side // 2 if pool != "none" else side) ** 2
    node("Gemm", const("W2", r.normal(size=(width, 4)) * 0.3))
    nodes[-1].output[0] = "y"
    m = model(nodes, inits, (c, 6, 6), (4,))
    X = r.normal(size=(4, c, 6, 6)).astype(np.float32).astype(np.float64)
    try:
        net = from_onnx(m)
    except UnsupportedModelError as exc:  # only the one documented case: a shift before zero padding
        assert pre in ("bn", "shift") and pad and "pads with zeros" in str(exc)
        return
    assert np.allclose(net.forward(X), run_ort(m, X), atol=1e-4, rtol=1e-4)
    assert sum(isinstance(layer, (Dense, Conv2d)) for layer in net.layers) == 2  # every affine map folded


def test_path_bytes_and_to_network_read_the_same_model(tmp_path):
    m, shape = CASES["conv"]()
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    X = inputs(shape)
    nets = [from_onnx(path), from_onnx(str(path)), from_onnx(m.SerializeToString()), to_network(path)]
    for net in nets:
        assert np.array_equal(net.forward(X), nets[0].forward(X))
    assert np.array_equal(secure_predict(path, X).outputs, nets[0].predict(X))


def test_overflowing_weights_are_refused_by_the_public_bounds():
    """Imported weights carry the announced bounds: a layer that could overflow is refused, not wrong."""
    r = rng(12)
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"]), helper.make_node("Gemm", ["g", "W2"], ["y"])]
    m = model(nodes, [init("W", r.normal(size=(6, 4)) * 3e4), init("W2", r.normal(size=(4, 3)) * 3e4)],
              (6,), (3,))
    with pytest.raises(mpc.RangeError):
        secure_predict(from_onnx(m), inputs((6,)), output="scores")


# -- errors -------------------------------------------------------------------------------------

def refused(m, *words):
    with pytest.raises(UnsupportedModelError) as info:
        from_onnx(m)
    for w in words:
        assert w in str(info.value), str(info.value)
    return str(info.value)


def test_unsupported_operator_is_named_with_its_node():
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"]), helper.make_node("LeakyRelu", ["g"], ["y"], name="act1")]
    m = model(nodes, [init("W", np.ones((6, 3)))], (6,), (3,))
    refused(m, "LeakyRelu", "'act1'", "supported operators")
    other = helper.make_node("TreeEnsembleClassifier", ["x"], ["l", "y"], domain="ai.onnx.ml", name="trees")
    refused(model([other], [], (6,), (3,)), "TreeEnsembleClassifier", "'trees'", "ai.onnx.ml")


def test_unsupported_attributes_are_named():
    for attrs, word in (({"group": 2}, "group"), ({"dilations": [2, 2]}, "dilations"),
                        ({"pads": [0, 1, 0, 1]}, "pads"), ({"strides": [1, 2]}, "strides")):
        nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv0", **attrs),
                 helper.make_node("Flatten", ["c"], ["y"])]
        m = model(nodes, [init("W", np.ones((2, 1 if "group" in attrs else 2, 3, 3)))], (2, 7, 7), ())
        refused(m, "Conv node 'conv0'", word)
    gemm = helper.make_node("Gemm", ["x", "W"], ["y"], transA=1)
    refused(model([gemm], [init("W", np.ones((6, 3)))], (6,), (3,)), "transA")


def test_dynamic_shapes_are_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", 8])
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["y"])]
    m = model(nodes, [init("W", np.ones((64, 2)))], (), (2,), inputs=[x])
    refused(m, "dynamic dimension 'H' at axis 2")
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"])]
    refused(model(nodes, [init("s", [3, 8], np.int64)], (1, 8, 8), (8,)), "batch axis")


def test_non_constant_weights_are_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])
    w = helper.make_tensor_value_info("W", TensorProto.FLOAT, [6, 3])
    m = model([helper.make_node("Gemm", ["x", "W"], ["y"])], [], (6,), (3,), inputs=[x, w])
    refused(m, "2 non-constant inputs (x, W)", "constant")
    m = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MatMul", ["x", "r"], ["y"])],
              [], (6,), (6,))
    refused(m, "MatMul")
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])]
    refused(model(nodes, [], (6,), (6,)), "Shape")


def test_branches_and_misplaced_softmax_are_refused():
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"]), helper.make_node("Relu", ["g"], ["r"]),
             helper.make_node("Add", ["r", "g"], ["y"], name="skip")]
    refused(model(nodes, [init("W", np.ones((6, 6)))], (6,), (6,)), "'skip'", "branches")
    nodes = [helper.make_node("Softmax", ["x"], ["s"]), helper.make_node("Gemm", ["s", "W"], ["y"])]
    refused(model(nodes, [init("W", np.ones((6, 3)))], (6,), (3,)), "Softmax", "last")


def test_opsets_outside_the_stated_range_are_refused():
    for opset in (MIN_OPSET - 1, MAX_OPSET + 1):
        m = model([helper.make_node("MatMul", ["x", "W"], ["y"])], [init("W", np.ones((6, 3)))], (6,), (3,),
                  opset=opset)
        refused(m, f"opset {opset}", f"{MIN_OPSET} to {MAX_OPSET}")


def test_an_affine_map_that_cannot_be_folded_is_refused():
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"]), helper.make_node("Relu", ["g"], ["r"]),
             helper.make_node("Add", ["r", "c"], ["y"], name="shift")]
    refused(model(nodes, [init("W", np.ones((6, 3))), init("c", np.ones(3))], (6,), (3,)), "'shift'", "folded")
    nodes = [helper.make_node("Add", ["x", "c"], ["a"], name="shift"),
             helper.make_node("Conv", ["a", "W"], ["c2"], pads=[1, 1, 1, 1]), helper.make_node("Flatten", ["c2"], ["y"])]
    m = model(nodes, [init("c", np.ones((1, 1, 1))), init("W", np.ones((1, 1, 3, 3)))], (1, 4, 4), (16,))
    refused(m, "'shift'", "pads with zeros")


def test_not_a_model_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match="no ONNX model file"):
        from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(ParameterError, match="not a serialized ONNX model"):
        from_onnx(b"\x00not onnx\xff" * 3)
    with pytest.raises(ParameterError, match="path, bytes or an onnx.ModelProto"):
        from_onnx(42)


def test_outputs_are_chosen_and_a_label_branch_is_left_out():
    r = rng(13)
    nodes = [helper.make_node("Cast", ["x"], ["xc"], to=TensorProto.FLOAT),
             helper.make_node("Gemm", ["xc", "W"], ["g"]), helper.make_node("Softmax", ["g"], ["y"]),
             helper.make_node("Identity", ["y"], ["p"]),
             helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0), helper.make_node("Relu", ["g"], ["other"])]
    graph = helper.make_graph(
        nodes, "outs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 4])],
        [init("W", r.normal(size=(6, 4)))])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    X = inputs((6,))
    net = from_onnx(m)  # the only float output, p; ArgMax (unsupported) is not on its path
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {"x": X.astype(np.float32)})
    assert np.allclose(net.predict_proba(X), proba, atol=1e-5) and np.array_equal(net.predict(X), label)
    m.graph.output.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, ["N", 4]))
    refused(m, "2 float outputs", "output=")
    assert np.allclose(from_onnx(m, output="other").forward(X), session_other(m, X), atol=1e-4)
    with pytest.raises(UnsupportedModelError, match="ArgMax"):
        from_onnx(m, output="label")
    m.graph.node[0].attribute[0].i = TensorProto.INT32
    with pytest.raises(UnsupportedModelError, match="Cast.*float or double"):
        from_onnx(m, output="p")


def session_other(m, X):
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["other"], {"x": X.astype(np.float32)})[0]
