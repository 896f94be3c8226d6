"""Private inference: a model answers questions about digits it never sees.

Run it:  python examples/private_inference.py
         python examples/private_inference.py --per-image 3   (also CKKS one image per ciphertext)
         python examples/private_inference.py --model examples/models/digits_cnn.onnx   (your ONNX model)

Two owners, two secrets:

* the **model owner** (a hospital's vendor, a bank's scoring service...) holds
  a trained neural network, a 64-32-10 MLP for scikit-learn's 8x8 digits;
* the **data owner** holds the images to classify.

The data owner should learn the predicted digit and nothing about the
weights; the model owner should learn nothing about the images. Two ways:

1. **Secret sharing** (2 parties, trusted dealer for Beaver triples): both
   owners split their secrets into random-looking shares, compute the network
   on the shares layer by layer (matrix products with Beaver triples, ReLU
   and argmax by exact secure comparisons), and open only the labels, only
   to the data owner. A ReLU MLP trained by scikit-learn, converted with
   ``ml.inference.convert.to_network``.
2. **CKKS homomorphic encryption**: the data owner (client) encrypts its
   images under its own key and sends them; the model owner (server)
   computes on the ciphertexts with its plaintext weights and returns
   encrypted scores that only the client can decrypt. CKKS only adds and
   multiplies, so this network is trained with a square activation
   (CryptoNets style) by ``ml.inference.train.train_polynomial_mlp``.

Each method prints its accuracy on the test set, the line ``agreement: X%``
(how many private predictions equal the plaintext model's) and its costs.

With ``--model FILE.onnx`` (extra ``onnx``) the model owner brings its own
model instead: ``ml.inference.from_onnx`` imports it, it answers on the
digits test set under secret sharing with 2 and 3 parties and, when it only
adds and multiplies (e.g. ``examples/models/digits_cnn_square.onnx``), under
CKKS; ``agreement`` is then against onnxruntime running the same file.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from ml.inference.ckks import HEServer, ckks_predict
from ml.inference.convert import to_network
from ml.inference.secure import secure_predict
from ml.inference.train import train_polynomial_mlp
from mpc.preprocessing.dealer import TrustedDealerWarning


def load():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def secret_sharing(Xtr, Xte, ytr, yte) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    print("== 1. Secret sharing: model owner = party 0, data owner = party 1 ==")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((32,), max_iter=300, random_state=0).fit(Xtr, ytr)
    net = to_network(clf)
    print(f"model owner: trained {net.name}: " + "; ".join(net.architecture()))
    print(f"  public to both: this architecture and the number of images ({len(Xte)})")
    res = secure_predict(net, Xte, parties=2, batch_size=len(Xte))  # one batch: the rounds do not grow
    plain = clf.predict(Xte)
    cost = res.cost
    print(f"model owner sends: a 16-byte seed for its {net.n_params} weights (the data owner's share"
          " of them is that seed's PRG expansion), then masked values only")
    print(f"data owner sends:  a 16-byte seed for its {Xte.size} pixels, then masked values only")
    print(f"together: {cost.rounds} rounds, party 0 sent {mb(cost.bytes_sent[0])}, party 1 sent "
          f"{mb(cost.bytes_sent[1])}, the dealer sent {mb(cost.dealer_bytes_sent)} of triples; "
          f"{cost.seconds:.2f} s for {len(Xte)} images ({len(Xte) / cost.seconds:.0f} per second)")
    print("model owner learns: nothing (every value it sees is masked by fresh randomness)")
    print("data owner learns:  the predicted labels, opened only to it")
    print(f"accuracy: {np.mean(res.outputs == yte):.1%} (plaintext model: {np.mean(plain == yte):.1%})")
    print(f"[secret sharing] agreement: {100 * np.mean(res.outputs == plain):.1f}% of {len(Xte)} predictions")


def ckks(Xtr, Xte, ytr, yte, per_image: int) -> None:
    print("\n== 2. CKKS: client (data owner) encrypts, server (model owner) computes ==")
    net = train_polynomial_mlp(Xtr, ytr, (32,), epochs=300, lr=0.01, seed=1)
    plain = net.predict(Xte)
    server = HEServer(net, layout="batch", input_bound=1.0)  # pixels are scaled to [0, 1]
    req = server.requirements
    p = req.params
    print(f"server: trained {'; '.join(net.architecture())}")
    print(f"server publishes: architecture, depth {req.depth} (matrix, square, matrix), CKKS N={p.poly_modulus_degree}, "
          f"primes {list(p.coeff_mod_bit_sizes)} = {p.total_bits} bits (128-bit bound for this N: 218)")
    print(f"server checks: for pixels in [0, 1] no value can exceed {server.plan.value_bound:.0f} "
          f"(CKKS decrypts correctly below {p.max_abs_value:.0f})")
    res = ckks_predict(server, Xte)
    print(f"client: makes its keys and sends the public context ({mb(res.context_bytes)}, no secret key) "
          f"in {res.setup_seconds:.2f} s")
    print(f"client sends: {req.input_length} ciphertexts, one per pixel position, each holding that pixel "
          f"of all {len(Xte)} images ({mb(res.query_bytes)})")
    print(f"server computes on ciphertexts in {res.server_seconds:.2f} s and returns {req.n_scores} "
          f"encrypted score vectors ({mb(res.reply_bytes)}); it cannot decrypt anything")
    print(f"client decrypts the scores and takes the argmax; client time {res.client_seconds:.2f} s")
    print(f"per image: {res.seconds / len(Xte) * 1000:.1f} ms; largest score error "
          f"{np.max(np.abs(res.scores - net.forward(Xte))):.1e}")
    print("server learns: nothing (IND-CPA ciphertexts); client learns: the 10 scores of each image")
    print(f"accuracy: {np.mean(res.outputs == yte):.1%} (plaintext square-activation model: "
          f"{np.mean(plain == yte):.1%})")
    print(f"[ckks] agreement: {100 * np.mean(res.outputs == plain):.1f}% of {len(Xte)} predictions")
    if per_image:
        one = ckks_predict(net, Xte[:per_image], layout="vector")
        print(f"\none image per ciphertext (diagonal matrix products, {one.context_bytes / 1e6:.0f} MB of "
              f"rotation keys made once in {one.setup_seconds:.1f} s): {one.seconds / per_image:.2f} s per "
              f"image, {mb(one.query_bytes / per_image)} up, {mb(one.reply_bytes / per_image)} down")
        print(f"[ckks per image] agreement: {100 * np.mean(one.outputs == plain[:per_image]):.1f}% "
              f"of {per_image} predictions")


def onnx_model(path: str, Xte, yte) -> None:
    import onnxruntime

    from ml.inference import from_onnx
    from ml.inference.layers import Activation, MaxPool2d

    net = from_onnx(path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    X = Xte.reshape(-1, *feed.shape[1:]).astype(np.float32)
    outs = session.run(None, {feed.name: X})  # e.g. skl2onnx: a label, then probabilities
    scores = next(o for o in outs if o.dtype.kind == "f" and o.ndim == 2)
    plain = scores.argmax(axis=1)  # a digits model: ten scores (or probabilities)
    print(f"== ONNX model {path}: " + "; ".join(net.architecture()))
    print(f"onnxruntime (plaintext reference): accuracy {np.mean(plain == yte):.1%}")
    for parties in (2, 3):
        res = secure_predict(net, Xte, parties=parties, input_bound=1.0)  # pixels are in [0, 1]
        cost = res.cost
        sent = sum(cost.bytes_sent[p] for p in range(parties))
        print(f"\nsecret sharing, {parties} parties: {cost.rounds} rounds, {mb(sent)} sent by the parties "
              f"({sent / len(Xte) / 1e3:.0f} kB per image) and {mb(cost.dealer_bytes_sent)} by the dealer; "
              f"{cost.seconds:.2f} s for {len(Xte)} images ({len(Xte) / cost.seconds:.0f} per second)")
        print(f"accuracy: {np.mean(res.outputs == yte):.1%}")
        print(f"[secret sharing, {parties} parties] agreement: {100 * np.mean(res.outputs == plain):.1f}% "
              f"of {len(Xte)} predictions")
    polynomial = not any(isinstance(layer, MaxPool2d) or (isinstance(layer, Activation) and layer.function in
                                                           ("relu", "sigmoid", "tanh"))
                         for layer in net.layers)
    if not polynomial:
        print("\nCKKS: skipped, the model compares (ReLU, max pooling) or uses sigmoid/tanh; CKKS only adds and "
              "multiplies (try examples/models/digits_cnn_square.onnx)")
        return
    res = ckks_predict(HEServer(net, layout="batch", input_bound=1.0), Xte)
    print(f"\nCKKS (batch layout, depth {res.depth}): {res.seconds:.1f} s for {len(Xte)} images "
          f"({res.seconds / len(Xte) * 1000:.0f} ms per image), {mb(res.query_bytes)} up, {mb(res.reply_bytes)} down")
    print(f"accuracy: {np.mean(res.outputs == yte):.1%}")
    print(f"[ckks] agreement: {100 * np.mean(res.outputs == plain):.1f}% of {len(Xte)} predictions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-image", type=int, default=0, metavar="K",
                        help="also run K images one per ciphertext under CKKS (slower)")
    parser.add_argument("--model", metavar="FILE.onnx",
                        help="run this ONNX model (8x8 digits in [0, 1] -> 10 scores) instead of the built-in ones")
    args = parser.parse_args()
    Xtr, Xte, ytr, yte = load()
    print("(a trusted dealer hands out the Beaver triples: a third party that must not collude)\n")
    warnings.simplefilter("ignore", TrustedDealerWarning)
    with threadpool_limits(1):  # the parties are threads: one BLAS thread each
        if args.model:
            onnx_model(args.model, Xte, yte)
            return
        secret_sharing(Xtr, Xte, ytr, yte)
        ckks(Xtr, Xte, ytr, yte, args.per_image)


if __name__ == "__main__":
    main()
