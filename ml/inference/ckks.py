"""CKKS inference: the client's input encrypted, the server's weights in the clear (layer: ml).

The server compiles its :class:`~ml.inference.layers.Network` into an
:class:`~ml.inference.plan.HEPlan` (:mod:`ml.inference.plan`) and publishes
the plan's :class:`~ml.inference.plan.HERequirements` (parameters, layout,
sizes, depth, architecture: no weights). The client makes the keys
(:class:`HEClient`), encrypts, the server evaluates (:class:`HEServer`), the
client decrypts the scores. :func:`ckks_predict` runs both in this process.

Protocol
--------
1. Server: compile the network; publish the requirements.
2. Client: keys for those parameters (for the vector layout, Galois keys
   for the plan's ``rotation_steps`` only); send the public context (never
   the secret key) and the query.
3. Server: evaluate the stages on the ciphertexts; return encrypted scores.
4. Client: decrypt; argmax (or the sign of a single score).

Two layouts:

* ``"vector"``: one input per ciphertext, ``[x, 1]`` laid out along the N/2
  slots in blocks (:func:`~ml.inference.plan.vector_input`); each affine map
  is a plain linear transform of the slots by
  :meth:`~mpc.he.EncryptedVector.linear_transform` (diagonal method,
  baby-step giant-step, one level) whose output comes out repeated as far as
  the next map reads it (:func:`~ml.inference.plan.vector_diagonals`): for
  the digits 64-32-10 MLP 17 rotations and 36 plain products per input
  instead of 98 and 98. The last map's output is zero past the scores: the
  client decrypts nothing else. Latency-oriented; Galois keys for exactly those steps.
* ``"batch"``: one ciphertext per *feature*, the inputs in the slots
  (N/2 per ciphertext, more are split); an affine map is a sum of
  ciphertext-times-scalar products, one per nonzero weight, and a scalar
  bias; no rotations, no rotation keys. Throughput-oriented: the cost is the
  same for 1 and for N/2 inputs.

Security
--------
Semi-honest server; IND-CPA of CKKS at 128-bit parameters (checked by
:mod:`mpc.he.params` when keys are made and when a context is loaded): the
server sees only ciphertexts and learns nothing of the input. The client
learns the scores (logits) of its inputs, more than the label; decryptions
are never shown to the server (CKKS decryptions leak noise, Li-Micciancio
2021). The architecture and depth are public. No integrity: a malicious
server can return any ciphertext.

Cost
----
Vector layout: one ciphertext up and one down per input; the first map of
``n`` inputs ``ceil(n/P) - 1 + log2 P`` rotations (one key switch each) and
``ceil(n/P)`` plain products for ``P`` input blocks; each later map about
``2 sqrt(n)`` rotations and ``n`` products; plaintexts encoded once per
server and context; a square is one ciphertext product. Batch layout: ``n_in`` ciphertexts up and ``k`` down per
N/2 inputs; ``nnz(A)`` scalar products per map. Measured figures:
``python -m bench inference`` and ``docs/inference.md``.

References: Gilad-Bachrach et al., "CryptoNets", ICML 2016 (square
activations, one feature per ciphertext); Halevi, Shoup, "Algorithms in
HElib", CRYPTO 2014 (diagonal matrix-vector products).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from mpc.errors import ParameterError
from mpc.he import CKKSParams, EncryptedVector, PublicContext, SecretContext

from .convert import to_network
from .layers import Network, Polynomial, labels_from_scores
from .plan import (LAYOUTS, Affine, HEPlan, HERequirements, PolyEval, Square, _levels, compile_network,
                   fit_polynomial, vector_input)

__all__ = ["CKKSInference", "HEClient", "HEPlan", "HERequirements", "HEServer", "LAYOUTS", "PolyEval",
           "Square", "ckks_predict", "compile_network", "fit_polynomial"]

# -- the two roles ------------------------------------------------------------------------------

def _affine_batch(cts: list[EncryptedVector], A: np.ndarray, c: np.ndarray) -> list[EncryptedVector]:
    """``A @ cts + c`` with one ciphertext per feature: a scalar product per nonzero weight."""
    out = []
    for i in range(A.shape[0]):
        acc = None
        for j in np.flatnonzero(A[i]):
            term = cts[j] * float(A[i, j])
            acc = term if acc is None else acc + term
        if acc is None:  # a row of zeros: the constant, at the level of the others
            acc = cts[0] * 0.0
        out.append(acc + float(c[i]))
    return out


class HEServer:
    """The model owner: holds the plaintext network, evaluates on ciphertexts, never decrypts."""

    def __init__(self, network: Network | Any, approximate: Mapping[str, Polynomial] | None = None,
                 layout: str = "vector", input_bound: Any = None) -> None:
        self.plan = compile_network(to_network(network), approximate, layout, input_bound)

    @property
    def requirements(self) -> HERequirements:
        """Published to clients: parameters, layout, sizes, depth, architecture; no weights."""
        return self.plan.requirements

    def load_context(self, public_context: bytes) -> PublicContext:
        """A client's public context, checked against the plan's parameters."""
        ctx = PublicContext.load(public_context)
        req = self.plan.requirements
        if ctx.params.poly_modulus_degree != req.params.poly_modulus_degree or \
                ctx.params.coeff_mod_bit_sizes != req.params.coeff_mod_bit_sizes:
            raise ParameterError(f"client context has parameters {ctx.params}, the plan needs {req.params}")
        if req.layout == "vector" and not set(req.rotation_steps) <= set(ctx.steps):
            missing = sorted(set(req.rotation_steps) - set(ctx.steps))
            raise ParameterError(f"client context lacks rotation keys for steps {missing}")
        if req.layout == "vector":  # encode the diagonals once, at the level each map sees
            depth = ctx.params.depth
            for st, d in zip(self.plan.stages, self.plan.diagonals):
                if d is not None:
                    d.prepare(ctx, depth)
                depth -= _levels(st)
        return ctx

    def evaluate(self, x: EncryptedVector) -> EncryptedVector:
        """Vector layout: encrypted ``[scores, 1, ...]`` (N/2 slots) of an encrypted
        ``[input, 1]`` repeated along the N/2 slots."""
        req = self.plan.requirements
        if req.layout != "vector":
            raise ParameterError("this plan uses the batch layout: call evaluate_batch")
        if len(x) != req.params.slots:
            raise ParameterError(f"encrypted input has {len(x)} values; the vector layout expects the "
                                 f"{req.input_length} features plus the constant 1 repeated along all "
                                 f"{req.params.slots} slots")
        for st, d in zip(self.plan.stages, self.plan.diagonals):
            if isinstance(st, Affine):
                x = x.linear_transform(d)  # type: ignore[arg-type]  # an affine stage has its diagonals
            elif isinstance(st, Square):
                x = x * x
            else:
                x = x.polyval(st.coefficients)
        return x

    def evaluate_batch(self, features: list[EncryptedVector]) -> list[EncryptedVector]:
        """Batch layout: one encrypted vector per score from one per feature (inputs in the slots)."""
        if self.plan.requirements.layout != "batch":
            raise ParameterError("this plan uses the vector layout: call evaluate")
        if len(features) != self.plan.requirements.input_length:
            raise ParameterError(f"got {len(features)} encrypted features; the network expects "
                                 f"{self.plan.requirements.input_length}")
        h = list(features)
        for st in self.plan.stages:
            if isinstance(st, Affine):
                h = _affine_batch(h, st.matrix, st.bias)
            elif isinstance(st, Square):
                h = [v * v for v in h]
            else:
                h = [v.polyval(st.coefficients) for v in h]
        return h

    def answer(self, context: PublicContext, query: list[bytes]) -> list[bytes]:
        """Serialized reply to a serialized query (either layout)."""
        vectors = [context.load_vector(q) for q in query]
        if self.plan.requirements.layout == "vector":
            if len(vectors) != 1:
                raise ParameterError("a vector-layout query is one ciphertext")
            return [self.evaluate(vectors[0]).serialize()]
        return [v.serialize() for v in self.evaluate_batch(vectors)]


class HEClient:
    """The data owner: makes the keys, encrypts inputs, decrypts scores."""

    def __init__(self, requirements: HERequirements) -> None:
        self.requirements = requirements
        self._secret = SecretContext.create(requirements.params, steps=requirements.rotation_steps)

    def public_context(self) -> bytes:
        """For the server: public and relinearisation keys (rotation keys for the vector layout);
        never the secret key."""
        return self._secret.serialize_public()

    def query(self, X: np.ndarray) -> list[bytes]:
        """Encrypt inputs: ``Enc([x, 1, x, 1, ...])`` over the N/2 slots for one input (vector
        layout), or one ciphertext per feature holding every input of ``X`` (batch layout)."""
        req = self.requirements
        X = np.asarray(X, dtype=np.float64)
        if not np.all(np.isfinite(X)):
            raise ParameterError("inputs must be finite")
        if req.layout == "vector":
            x = X.reshape(-1)
            if x.size != req.input_length:
                raise ParameterError(f"input has {x.size} features, the network expects {req.input_length}")
            _check_bound(req, x[None, :])
            z = vector_input(np.append(x, 1.0), req.params.slots, req.input_blocks)
            return [self._secret.encrypt(z).serialize()]
        X = X.reshape(len(X), -1)
        if X.shape[1] != req.input_length:
            raise ParameterError(f"inputs have {X.shape[1]} features, the network expects {req.input_length}")
        _check_bound(req, X)
        return [self._secret.encrypt(col).serialize() for col in X.T]

    def scores(self, reply: list[bytes]) -> np.ndarray:
        """Decrypted scores: ``(k,)`` for a vector-layout reply, ``(n, k)`` for a batch reply."""
        pub = self._secret.public()
        vals = [self._secret.decrypt(pub.load_vector(r)) for r in reply]
        k = self.requirements.n_scores
        if self.requirements.layout == "vector":
            if len(vals) != 1 or vals[0].size != self.requirements.params.slots:
                raise ParameterError(f"reply does not hold {k} scores in {self.requirements.params.slots} slots")
            return vals[0][:k]
        if len(vals) != k:
            raise ParameterError(f"reply holds {len(vals)} score vectors, expected {k}")
        return np.stack(vals, axis=1)


def _check_bound(req: HERequirements, rows: np.ndarray) -> None:
    """Refuse inputs beyond the bound the server's plan was checked for (they decrypt wrong)."""
    if req.input_bound is None or not rows.size:
        return
    over = np.abs(rows) > np.asarray(req.input_bound)
    if np.any(over):
        j = int(np.argwhere(over)[0][1])
        raise ParameterError(f"feature {j} of an input reaches {np.abs(rows[:, j]).max():.4g}, beyond "
                             f"the server's bound ±{req.input_bound[j]:g}: CKKS would decrypt wrong "
                             "scores; scale the inputs as the model expects")


@dataclass
class CKKSInference:
    """What :func:`ckks_predict` returns: labels, scores and the measured costs."""

    outputs: np.ndarray
    scores: np.ndarray
    setup_seconds: float  # once per client: key generation, context serialization and loading
    client_seconds: float
    server_seconds: float
    context_bytes: int
    query_bytes: int
    reply_bytes: int
    depth: int
    params: CKKSParams
    layout: str

    @property
    def seconds(self) -> float:
        return self.client_seconds + self.server_seconds


def ckks_predict(network: Network | HEServer | Any, X: np.ndarray,
                 approximate: Mapping[str, Polynomial] | None = None, layout: str = "vector",
                 input_bound: Any = None) -> CKKSInference:
    """Run client and server in this process on the rows of ``X``; time each side.

    ``input_bound`` (for a network; a :class:`HEServer` has its own): as for
    :class:`HEServer` (a worst-case check at compile time, and the client
    refuses inputs beyond it). Whatever the bound, the values the plan
    computes on ``X`` itself (in the clear, here) must stay below what CKKS
    decrypts correctly, or it refuses rather than return wrong scores.

    Setup time (once per client): key generation, serializing and loading the
    public context. Client time: encryption, decryption; server time: loading
    the queries, evaluation, serialization of the replies.
    Bytes are totals over all inputs (queries, replies) and once (context).
    The vector layout sends one query per input, the batch layout one for all.
    """
    server = network if isinstance(network, HEServer) else HEServer(network, approximate, layout,
                                                                     input_bound)
    X = server.plan.reference._check_input(np.asarray(X)).reshape(len(X), -1)
    if len(X):   # these inputs are known here: check the values they actually produce
        peak, stage = server.plan.peak_value(X)
        limit = server.requirements.params.max_abs_value
        if peak >= limit:
            raise ParameterError(f"on these inputs the plan's values reach {peak:.3g} at stage {stage}, "
                                 f"beyond the {limit:g} these CKKS parameters decrypt correctly; scale "
                                 "the inputs or the weights down")
    t0 = time.perf_counter()
    client = HEClient(server.requirements)
    blob = client.public_context()
    ctx = server.load_context(blob)
    setup_s = time.perf_counter() - t0
    client_s = server_s = 0.0
    batches = [row for row in X] if server.requirements.layout == "vector" else [X]
    scores, q_bytes, r_bytes = [], 0, 0
    for batch in batches:
        t0 = time.perf_counter()
        query = client.query(batch)
        t1 = time.perf_counter()
        reply = server.answer(ctx, query)
        t2 = time.perf_counter()
        scores.append(client.scores(reply))
        client_s += (t1 - t0) + (time.perf_counter() - t2)
        server_s += t2 - t1
        q_bytes += sum(map(len, query))
        r_bytes += sum(map(len, reply))
    s = np.stack(scores) if server.requirements.layout == "vector" else scores[0]
    req = server.requirements
    return CKKSInference(labels_from_scores(s, req.head), s, setup_s, client_s, server_s, len(blob), q_bytes, r_bytes,
                         req.depth, req.params, req.layout)
