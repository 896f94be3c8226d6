"""Private inference on digits: secret sharing and CKKS against plaintext, batch 1 and 256.

Name: ``inference``. Records (one per method and batch size) carry
``params = {method: "ss" | "ckks", model, batch}`` and ``seconds`` (time for
one batch), ``baseline_seconds`` (the same batch in plaintext numpy),
``bytes_per_party`` and ``rounds`` (SS: from the cost record, per batch;
CKKS: bytes the client sends and receives per batch, one round trip),
``bytes_per_inference`` (that divided by the batch), and
the extra fields ``accuracy`` (against the labels), ``agreement`` (fraction
of predictions equal to the plaintext model's), ``per_second`` (inputs per
second) and ``plaintext_per_second``.

* ``ss``: a 64-32-10 ReLU ``MLPClassifier`` (scikit-learn), weights shared by
  the model owner, inputs by the data owner, 2 parties and the trusted
  dealer (preprocessing on demand, inside the clock), argmax opened to the
  data owner. Batch 1 is timed over several single-input runs. Also: three
  parties (the third a helper without inputs) at batch 256, and two parties
  over a simulated 1 ms one-way latency (``latency_ms``) at batch 1 and 256,
  with the tournament argmax (fewest bytes) and the pairwise one (fewest
  rounds; ``argmax`` in the params).
* ``ckks``: a 64-32-10 MLP trained with a square activation
  (:func:`ml.inference.train.train_polynomial_mlp`); batch 1 uses the vector
  layout (one ciphertext per input, diagonal matrix products by baby-step
  giant-step, ``rotations`` per input and ``galois_keys`` in the record;
  timed over 20 single inputs), batch 256 the batch layout (one ciphertext
  per feature). ``setup_seconds`` (key generation, context transfer and the
  server's encoding of its diagonals, once per client) is outside ``seconds``.

``cpu_seconds`` (SS: all parties and the dealer, per batch) and
``cpu_seconds_with_setup`` (CKKS, per batch, key generation included) are
process CPU times: on a busy machine they show what the wall-clock figures
would be on an idle one.

* ``cnn`` (when the ``onnx`` extra is installed): the shipped digits CNN
  ``examples/models/digits_cnn*.onnx`` (Conv 1->8 3x3, ReLU, 2x2 pooling,
  Linear 128->10: CrypTen's benchmark model), read by
  ``ml.inference.from_onnx``. Records with ``params = {model: "cnn",
  backend: "ss", pool: "avg" | "max", parties: 2 | 3, batch: 1 | 256}`` carry
  ``inferences_per_second``, ``agreement`` (with onnxruntime on the same
  images), ``bytes_per_inference`` (all parties' bytes over the batch size),
  ``rounds`` (per batch) and ``rounds_per_inference``; batch 1 is the median
  of single-image runs. The square-activation variant under CKKS (batch
  layout, 256 images in one ciphertext per pixel; at batch 1 the vector
  layout, one image per ciphertext, 5 images timed, key setup outside):
  ``backend: "ckks"``, ``seconds_per_image``, ``agreement``.

``--quick`` checks the record format with 64-4-10 models, batch 1 and 8,
and the CKKS batch layout only.

Parties are threads of one process, so BLAS is limited to one thread
(otherwise every party's small matrix products oversubscribe the cores).
"""

from __future__ import annotations

import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench.common import median_time, record
from ml.inference.ckks import HEServer, ckks_predict
from ml.inference.convert import to_network
from ml.inference.secure import secure_predict
from ml.inference.train import train_polynomial_mlp
from mpc.optional import available


def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def relu_mlp(Xtr, ytr, iters: int = 300, hidden: int = 32):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return to_network(MLPClassifier((hidden,), max_iter=iters, random_state=0).fit(Xtr, ytr))


def _ss_records(net, Xte, yte, batches, singles: int, repeat: int, parties: int = 2,
                latency: float = 0.0, argmax: str = "tournament") -> list[dict]:
    out = []
    hidden = net.shapes[1][0]
    secure_predict(net, Xte[:2])  # warm up imports and caches outside the clock
    cpu: list[float] = []

    def timed(X):
        c0 = time.process_time()
        res = secure_predict(net, X, parties=parties, latency=latency, argmax=argmax)
        cpu.append(time.process_time() - c0)
        return res

    for batch in batches:
        cpu.clear()
        if batch == 1:
            runs = [timed(Xte[i:i + 1]) for i in range(singles)]
            X = Xte[:singles]
            preds = np.concatenate([r.outputs for r in runs])
        else:
            X = Xte[:batch]
            runs = [timed(X) for _ in range(repeat)]
            preds = runs[-1].outputs
        seconds = statistics.median(r.seconds for r in runs)
        cost = runs[-1].cost
        bytes_pp = sum(cost.bytes_sent[p] for p in range(parties)) / parties
        base, _, plain = median_time(lambda: net.predict(X[:batch]), repeat=20)
        want = net.predict(X)
        y = yte[:len(X)]
        out.append(record(
            "inference", {"method": "ss", "model": f"mlp-64-{hidden}-10-relu", "batch": batch,
                          "parties": parties, "latency_ms": latency * 1000, "argmax": argmax},
            seconds, base, bytes_per_party=bytes_pp,
            rounds=cost.rounds, accuracy=float(np.mean(preds == y)), agreement=float(np.mean(preds == want)),
            per_second=batch / seconds, plaintext_per_second=batch / base,
            plaintext_accuracy=float(np.mean(want == y)), inputs_checked=len(X),
            cpu_seconds=statistics.median(cpu), bytes_per_inference=bytes_pp / batch))
    return out


def _ckks_records(net, Xte, yte, batches, singles: int, vector: bool = True) -> list[dict]:
    out = []
    hidden = net.shapes[1][0]
    for batch in batches:
        layout = "vector" if batch == 1 and vector else "batch"
        X = Xte[:singles] if layout == "vector" else Xte[:batch]
        cpu0 = time.process_time()
        server = HEServer(net, layout=layout)
        res = ckks_predict(server, X, layout=layout)
        cpu = time.process_time() - cpu0
        scale = len(X) if layout == "vector" else 1
        per_batch = res.seconds / scale
        base, _, _ = median_time(lambda: net.predict(X[:batch]), repeat=20)
        want = net.predict(X)
        y = yte[:len(X)]
        out.append(record(
            "inference", {"method": "ckks", "model": f"mlp-64-{hidden}-10-square", "batch": batch,
                          "layout": layout},
            per_batch, base, bytes_per_party=(res.query_bytes + res.reply_bytes) / scale, rounds=1,
            bytes_per_inference=(res.query_bytes + res.reply_bytes) / scale / batch,
            accuracy=float(np.mean(res.outputs == y)), agreement=float(np.mean(res.outputs == want)),
            per_second=batch / per_batch, plaintext_per_second=batch / base,
            plaintext_accuracy=float(np.mean(want == y)), inputs_checked=len(X),
            seconds_per_input=per_batch / batch, client_seconds=res.client_seconds / scale,
            server_seconds=res.server_seconds / scale, setup_seconds=res.setup_seconds,
            context_bytes=res.context_bytes, depth=res.depth,
            rotations=sum(d.rotations for d in server.plan.diagonals if d is not None),
            galois_keys=len(server.requirements.rotation_steps), cpu_seconds_with_setup=cpu / scale, ring=res.params.poly_modulus_degree,
            max_abs_error=float(np.max(np.abs(res.scores - net.forward(X))))))
    return out


MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"


def _ort_labels(path: Path, X: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    return session.run(None, {feed.name: X.reshape(-1, *feed.shape[1:]).astype(np.float32)})[0].argmax(axis=1)


def _cnn_ss_records(pool: str, Xte, yte, batches, parties_list, singles: int, repeat: int) -> list[dict]:
    from ml.inference import from_onnx

    path = MODELS / ("digits_cnn.onnx" if pool == "avg" else "digits_cnn_maxpool.onnx")
    net = from_onnx(path)
    secure_predict(net, Xte[:2], input_bound=1.0)  # warm up outside the clock
    out = []
    for parties in parties_list:
        for batch in batches:
            if batch == 1:
                X = Xte[:singles]
                runs = [secure_predict(net, X[i:i + 1], parties=parties, input_bound=1.0) for i in range(singles)]
                preds = np.concatenate([r.outputs for r in runs])
            else:
                X = Xte[:batch]
                runs = [secure_predict(net, X, parties=parties, batch_size=batch, input_bound=1.0)
                        for _ in range(repeat)]
                preds = runs[-1].outputs
            seconds = statistics.median(r.seconds for r in runs)
            cost = runs[-1].cost
            sent = sum(cost.bytes_sent[p] for p in range(parties))
            base, _, _ = median_time(lambda: net.predict(X[:batch]), repeat=20)
            want = _ort_labels(path, X)
            out.append(record(
                "inference", {"model": "cnn", "backend": "ss", "method": "ss", "pool": pool, "parties": parties,
                              "batch": batch},
                seconds, base, bytes_per_party=sent / parties, rounds=cost.rounds,
                inferences_per_second=batch / seconds, per_second=batch / seconds,
                agreement=float(np.mean(preds == want)), accuracy=float(np.mean(preds == yte[:len(X)])),
                bytes_per_inference=sent / batch, dealer_bytes_per_inference=cost.dealer_bytes_sent / batch,
                rounds_per_inference=cost.rounds / batch, inputs_checked=len(X),
                plaintext_per_second=batch / base))
    return out


def _cnn_ckks_record(Xte, yte, batch: int, images: int = 0) -> dict:
    """Batch layout for a batch; vector layout (one image per ciphertext) for ``batch == 1``,
    timed over ``images`` single images (setup once, outside ``seconds``)."""
    from ml.inference import from_onnx

    path = MODELS / "digits_cnn_square.onnx"
    net = from_onnx(path)
    layout = "vector" if batch == 1 else "batch"
    X = Xte[:images] if batch == 1 else Xte[:batch]
    server = HEServer(net, layout=layout, input_bound=1.0)
    res = ckks_predict(server, X, layout=layout)
    base, _, _ = median_time(lambda: net.predict(X[:batch]), repeat=20)
    per_batch = res.seconds / (len(X) if batch == 1 else 1)
    return record("inference", {"model": "cnn", "backend": "ckks", "method": "ckks", "pool": "avg",
                                "activation": "square", "layout": layout, "batch": batch},
                  per_batch, base, bytes_per_party=(res.query_bytes + res.reply_bytes) * batch / len(X), rounds=1,
                  seconds_per_image=per_batch / batch, per_second=batch / per_batch,
                  galois_keys=len(server.requirements.rotation_steps), context_bytes=res.context_bytes,
                  agreement=float(np.mean(res.outputs == _ort_labels(path, X))),
                  accuracy=float(np.mean(res.outputs == yte[:len(X)])), setup_seconds=res.setup_seconds,
                  bytes_per_inference=(res.query_bytes + res.reply_bytes) / len(X), depth=res.depth,
                  ring=res.params.poly_modulus_degree, inputs_checked=len(X))


def cnn_records(quick: bool = False) -> list[dict]:
    """The digits CNN imported from ONNX: secret sharing (avg and max pooling, 2 and 3 parties) and CKKS."""
    if not (available("onnx") and available("onnxruntime") and (MODELS / "digits_cnn.onnx").is_file()):
        return []
    _, Xte, _, yte = digits_split()
    with threadpool_limits(1):
        if quick:
            return _cnn_ss_records("avg", Xte, yte, (1, 8), (2,), singles=2, repeat=1)
        records = []
        for pool in ("avg", "max"):
            records += _cnn_ss_records(pool, Xte, yte, (1, 256), (2, 3), singles=10, repeat=3)
        return records + [_cnn_ckks_record(Xte, yte, 1, images=5), _cnn_ckks_record(Xte, yte, 256)]


def bench_inference(quick: bool = False) -> list[dict]:
    """Private inference on digits, secret sharing and CKKS, batch 1 and 256: time, bytes, accuracy."""
    Xtr, Xte, ytr, yte = digits_split()
    batches = (1, 8) if quick else (1, 256)
    hidden = 4 if quick else 32  # quick: a smoke test of the record format, tiny models
    with threadpool_limits(1):
        t0 = time.perf_counter()
        ss_net = relu_mlp(Xtr, ytr, iters=30 if quick else 300, hidden=hidden)
        he_net = train_polynomial_mlp(Xtr, ytr, (hidden,), epochs=30 if quick else 300, lr=0.01, seed=1)
        train_s = time.perf_counter() - t0
        records = _ss_records(ss_net, Xte, yte, batches, singles=2 if quick else 20, repeat=1 if quick else 5)
        if not quick:  # three parties (a helper without inputs), and a simulated 1 ms LAN
            records += _ss_records(ss_net, Xte, yte, (256,), singles=0, repeat=3, parties=3)
            for argmax in ("tournament", "pairwise"):
                records += _ss_records(ss_net, Xte, yte, (1, 256), singles=5, repeat=3, latency=0.001,
                                       argmax=argmax)
        records += _ckks_records(he_net, Xte, yte, batches, singles=1 if quick else 20, vector=not quick)
    for r in records:
        r["training_seconds"] = train_s
    return records + cnn_records(quick)


BENCHMARKS = {"inference": bench_inference}
