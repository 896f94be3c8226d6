"""CKKS inference: the client's input encrypted, the server's weights in the clear (layer: ml).

The server compiles its :class:`~ml.inference.layers.Network` into an
:class:`HEPlan` -- affine maps and polynomial activations -- and publishes
the plan's :class:`HERequirements` (parameters, rotation keys, input size: no
weights). The client makes the keys (:class:`HEClient`), encrypts its input,
the server evaluates (:class:`HEServer`), the client decrypts the scores.

Protocol
--------
1. Server: :func:`compile_network` merges consecutive linear layers (dense,
   convolution and average pooling are all matrices on the flattened input)
   into one affine map, appends a constant slot equal to 1 to every vector so
   that biases live in the matrices (adding a plain bias vector would break
   the slot layout of TenSEAL's diagonal matrix product), and folds each
   degree-2 activation ``a z^2 + b z + c = a (z + b/2a)^2 + c - b^2/4a``
   into one square (one level) with its shift and scale in the neighbouring
   matrices. Higher-degree polynomials use ``polyval``. The depth is then
   known and the parameters are chosen to fit the HomomorphicEncryption.org
   128-bit table (N = 8192 up to depth 3 at scale 2^38; N = 16384 beyond).
2. Client: keys for those parameters with only the ``matvec`` rotation keys;
   sends the public context (no secret key) and ``Enc([x, 1])``.
3. Server: per stage ``M @ x`` (Halevi-Shoup diagonal method, one level) or
   an activation; returns the encrypted scores.
4. Client: decrypts the scores and takes the argmax (or the sign).

Activations other than ``square``, ``identity`` and polynomials (``relu``,
``sigmoid``, ``tanh``) need a polynomial stand-in (``approximate=``, see
:func:`fit_polynomial`); otherwise compilation refuses them by name.

Security
--------
Semi-honest server; IND-CPA of CKKS at 128-bit parameters (checked by
:mod:`mpc.he.params`): the server sees only ciphertexts and learns nothing of
the input. The client learns the scores (logits) of its input, more than the
label; decryptions are never shown to the server (CKKS decryptions leak noise,
Li-Micciancio 2021). The architecture (layer sizes, activation degrees) is
public. No integrity: a malicious server can return any ciphertext.

Cost
----
One ciphertext up (``n_in + 1 <= N/2`` slots) and one down; per affine stage
of input size ``n``, ``n`` rotations and plaintext products; a square is one
ciphertext product. Public context: the relinearisation key plus
``2 ceil(log2 n)`` rotation keys. Measured figures: ``python -m bench inference``.

References: Gilad-Bachrach et al., "CryptoNets", ICML 2016 (square
activations); Halevi, Shoup, "Algorithms in HElib", CRYPTO 2014 (diagonal
matrix-vector products).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

import numpy as np

from mpc.errors import ParameterError
from mpc.he import CKKSParams, EncryptedVector, PublicContext, SecretContext
from mpc.he.params import MAX_COEFF_MODULUS_BITS

from .convert import to_network
from .layers import Activation, AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Network, Polynomial, \
    UnsupportedModelError, labels_from_scores

INTEGER_BITS = 13  # decrypted values and the last level's values stay below 2^13 in magnitude
MIN_SCALE_BITS = 36  # below, errors reach 1e-3 on values near 1 (measured at 2^31)


# -- planning ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Affine:
    """``y = A @ x + c`` on one example's flattened values."""

    matrix: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class Square:
    """Elementwise ``x * x`` (one level)."""


@dataclass(frozen=True)
class PolyEval:
    """Elementwise polynomial (``d.bit_length()`` levels)."""

    coefficients: tuple[float, ...]


Stage = Union[Affine, Square, PolyEval]
LAYOUTS = ("vector", "batch")


@dataclass(frozen=True)
class HERequirements:
    """What the client needs to know: public, no weights."""

    params: CKKSParams
    layout: str
    input_length: int  # features per input
    max_length: int  # vector layout: longest stage input with its constant slot (the rotation keys)
    n_scores: int
    head: str
    depth: int
    architecture: tuple[str, ...] = ()


@dataclass(frozen=True)
class HEPlan:
    """The server's compiled network."""

    stages: tuple[Stage, ...]
    requirements: HERequirements
    reference: Network = field(repr=False)
    matrices: tuple[np.ndarray | None, ...] = field(default=(), repr=False)  # vector layout, per stage

    def forward_plain(self, X: np.ndarray) -> np.ndarray:
        """The plan evaluated in float64 on a batch (what CKKS approximates)."""
        h = self.reference._check_input(np.asarray(X)).reshape(len(X), -1)
        for st in self.stages:
            if isinstance(st, Affine):
                h = h @ st.matrix.T + st.bias
            elif isinstance(st, Square):
                h = h * h
            else:
                h = np.polynomial.polynomial.polyval(h, np.asarray(st.coefficients))
        return h


def fit_polynomial(name: str, degree: int, bound: float, points: int = 512) -> Polynomial:
    """Least-squares polynomial of ``degree`` for ``relu``, ``sigmoid`` or ``tanh`` on ``[-bound, bound]``.

    Chebyshev nodes weight the interval ends; outside the interval the
    polynomial diverges, so ``bound`` must cover the pre-activations.
    """
    fns = {"relu": lambda z: np.maximum(z, 0.0), "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),
           "tanh": np.tanh}
    if name not in fns:
        raise UnsupportedModelError(f"no polynomial fit for activation {name!r}; choose from {', '.join(fns)}")
    if degree < 1 or not bound > 0:
        raise ParameterError("fit_polynomial needs degree >= 1 and bound > 0")
    z = bound * np.cos(np.pi * (np.arange(points) + 0.5) / points)
    coeffs = np.polynomial.polynomial.polyfit(z, fns[name](z), degree)
    return Polynomial(tuple(float(c) for c in coeffs), name)


def _linear_matrix(layer, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(A, c)`` with ``layer(x).ravel() = A @ x.ravel() + c`` for one example."""
    if isinstance(layer, Dense):
        return layer.weight.T, layer.bias
    n = int(np.prod(in_shape))
    if isinstance(layer, Flatten):
        return np.eye(n), np.zeros(n)
    basis = np.eye(n).reshape(n, *in_shape)
    c = layer.forward(np.zeros((1, *in_shape))).reshape(-1)
    return (layer.forward(basis).reshape(n, -1) - c).T, c


def _polynomial_of(layer: Activation, approximate: Mapping[str, Polynomial]) -> Polynomial | None:
    """The polynomial an activation is evaluated as, or None for the identity."""
    f = layer.function
    if isinstance(f, Polynomial):
        return f
    if f == "identity":
        return None
    if f == "square":
        return Polynomial((0.0, 0.0, 1.0), "square")
    if f in approximate:
        poly = approximate[f]
        if not isinstance(poly, Polynomial):
            raise ParameterError(f"approximate[{f!r}] must be a Polynomial (see fit_polynomial)")
        return poly
    raise UnsupportedModelError(
        f"CKKS cannot evaluate activation {f!r}: it evaluates only additions and products. Train "
        f"with 'square' (or a polynomial), or pass approximate={{{f!r}: fit_polynomial({f!r}, 2, bound)}} "
        "with a bound covering the pre-activations")


def _params_for(depth: int) -> CKKSParams:
    """The smallest ring whose 128-bit bound fits ``depth`` levels at a scale of at least 2^36.

    Primes ``[s + 14, s x depth, s + 14]``: results below 2^13 in magnitude.
    """
    for n in (8192, 16384, 32768):
        bound = MAX_COEFF_MODULUS_BITS[n]
        scale = min(40, (bound - 2 * (INTEGER_BITS + 1)) // (depth + 2))
        if scale >= MIN_SCALE_BITS:
            first = scale + INTEGER_BITS + 1
            return CKKSParams(n, (first,) + (scale,) * depth + (first,), scale)
    raise ParameterError(f"a CKKS circuit of depth {depth} does not fit the 128-bit table at "
                         f"N <= 32768 with a scale of 2^{MIN_SCALE_BITS}; use fewer or lower-degree layers")


def _items(network: Network, approximate: Mapping[str, Polynomial]) -> list:
    """Affine maps ``(A, c)`` (consecutive linear layers merged) and polynomials, alternating."""
    items: list = []
    for layer, shape in zip(network.layers, network.shapes):
        n = int(np.prod(shape))
        if isinstance(layer, MaxPool2d):
            raise UnsupportedModelError(
                "CKKS cannot evaluate layer MaxPool2d (a maximum needs comparisons, CKKS only adds and "
                "multiplies); use AvgPool2d, or secret sharing (ml.inference.secure)")
        if isinstance(layer, (Dense, Conv2d, AvgPool2d, Flatten)):
            A, c = _linear_matrix(layer, shape)
        else:
            poly = _polynomial_of(layer, approximate)
            if poly is None:
                continue
            if poly.degree >= 2:
                if not items or not isinstance(items[-1], tuple):
                    items.append((np.eye(n), np.zeros(n)))
                items.append(poly)
                continue
            c0, c1 = (tuple(poly.coefficients) + (0.0, 0.0))[:2]  # affine: merge
            A, c = c1 * np.eye(n), np.full(n, c0)
        if items and isinstance(items[-1], tuple):
            A0, c0v = items[-1]
            A, c = A @ A0, A @ c0v + c
            items[-1] = (A, c)
        else:
            items.append((A, c))
    if not isinstance(items[-1], tuple):
        n = int(np.prod(network.shapes[-1]))
        items.append((np.eye(n), np.zeros(n)))
    return items


def _stages(items: list) -> list[Stage]:
    """Degree-2 polynomials ``a z^2 + b z + c0 = a (z + b/2a)^2 + (c0 - b^2/4a)`` as one square:
    the shift goes into the previous bias, scale and offset into the next map."""
    stages: list[Stage] = []
    pending: tuple[float, float] | None = None  # the next map sees a * u + t
    for item in items:
        if isinstance(item, tuple):
            A, c = item
            if pending is not None:
                a, t = pending
                A, c = a * A, A @ np.full(A.shape[1], t) + c
                pending = None
            stages.append(Affine(A, c))
        elif item.degree == 2:
            c0, b, a = (tuple(item.coefficients) + (0.0,) * 3)[:3]
            prev = stages[-1]
            stages[-1] = Affine(prev.matrix, prev.bias + b / (2.0 * a))  # type: ignore[union-attr]
            stages.append(Square())
            pending = (a, c0 - b * b / (4.0 * a))
        else:
            stages.append(PolyEval(tuple(float(x) for x in item.coefficients[:item.degree + 1])))
    return stages


def _levels(stage: Stage) -> int:
    """Levels a stage uses: 1 for a matrix product or a square, ``d.bit_length()`` for ``polyval``."""
    if isinstance(stage, PolyEval):
        return Polynomial(stage.coefficients).degree.bit_length()
    return 1


def _constant_input(coefficients: tuple[float, ...]) -> float:
    """A value k for the constant slot with |p(k)| well away from 0 (the next map divides by it)."""
    cands = np.array([1.0, 0.5, 2.0, -1.0, -0.5, 1.5])
    vals = np.abs(np.polynomial.polynomial.polyval(cands, coefficients))
    best = int(np.argmax(vals))
    if vals[best] < 1e-3:
        raise ParameterError(f"polynomial {coefficients} is almost zero near 1; cannot carry the bias slot")
    return float(cands[best])


def _vector_matrices(stages: list[Stage]) -> list[np.ndarray | None]:
    """Vector layout: every vector carries a constant slot, so each map is one ``(out+1, in+1)`` matrix.

    The constant slot enters an activation as ``k`` and leaves as ``p(k)``
    (1 for a square); the next matrix divides its constant column by that.
    """
    out: list[np.ndarray | None] = []
    carried = out_const = 1.0
    for i, st in enumerate(stages):
        if not isinstance(st, Affine):
            out.append(None)
            if isinstance(st, PolyEval):
                carried = float(np.polynomial.polynomial.polyval(out_const, st.coefficients))
            continue
        nxt = stages[i + 1] if i + 1 < len(stages) else None
        out_const = _constant_input(nxt.coefficients) if isinstance(nxt, PolyEval) else 1.0
        A, c = st.matrix, st.bias
        M = np.zeros((A.shape[0] + 1, A.shape[1] + 1))
        M[:-1, :-1] = A
        M[:-1, -1] = c / carried
        M[-1, -1] = out_const / carried
        out.append(M)
        carried = 1.0
    return out


def compile_network(network: Network, approximate: Mapping[str, Polynomial] | None = None,
                    layout: str = "vector") -> HEPlan:
    """Compile ``network`` for CKKS (see the module docstring); refuses what CKKS cannot evaluate.

    ``layout="vector"``: one input per ciphertext, matrices by the diagonal
    method. ``layout="batch"``: one *feature* per ciphertext, inputs in the
    slots (up to N/2 per ciphertext, more are split), matrices as sums of
    ciphertext-times-scalar products; no rotation keys.
    """
    if layout not in LAYOUTS:
        raise ParameterError(f"unknown CKKS layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    stages = _stages(_items(network, dict(approximate or {})))
    depth = sum(_levels(s) for s in stages)
    params = _params_for(depth)
    matrices: list[np.ndarray | None] = []
    max_length = 0
    if layout == "vector":
        matrices = _vector_matrices(stages)
        max_length = max(m.shape[1] for m in matrices if m is not None)
        if max_length > params.slots:
            raise ParameterError(f"a layer input of {max_length} values does not fit one ciphertext of "
                                 f"{params.slots} slots; use layout='batch'")
    req = HERequirements(params, layout, int(np.prod(network.input_shape)), max_length, network.shapes[-1][0],
                         network.head, depth, tuple(network.architecture()))
    return HEPlan(tuple(stages), req, network, tuple(matrices))


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
                 layout: str = "vector") -> None:
        self.plan = compile_network(to_network(network), approximate, layout)

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
        if req.layout == "vector" and ("matvec" not in ctx.rotations or ctx.max_length < req.max_length):
            raise ParameterError(f"client context lacks matvec rotation keys for {req.max_length} slots")
        return ctx

    def evaluate(self, x: EncryptedVector) -> EncryptedVector:
        """Vector layout: encrypted ``[scores, 1]`` of an encrypted ``[input, 1]``."""
        if self.plan.requirements.layout != "vector":
            raise ParameterError("this plan uses the batch layout: call evaluate_batch")
        if len(x) != self.plan.requirements.input_length + 1:
            raise ParameterError(f"encrypted input has {len(x)} values; the network expects "
                                 f"{self.plan.requirements.input_length} features plus the constant 1")
        for st, m in zip(self.plan.stages, self.plan.matrices):
            if isinstance(st, Affine):
                x = x.matvec(m)
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
        rot = ("matvec",) if requirements.layout == "vector" else ()
        self._secret = SecretContext.create(requirements.params, rotations=rot,
                                            max_length=requirements.max_length or None)

    def public_context(self) -> bytes:
        """For the server: public and relinearisation keys (rotation keys for the vector layout);
        never the secret key."""
        return self._secret.serialize()

    def query(self, X: np.ndarray) -> list[bytes]:
        """Encrypt inputs: ``Enc([x, 1])`` for one input (vector layout), or one ciphertext per
        feature holding every input of ``X`` (batch layout)."""
        req = self.requirements
        X = np.asarray(X, dtype=np.float64)
        if req.layout == "vector":
            x = X.reshape(-1)
            if x.size != req.input_length:
                raise ParameterError(f"input has {x.size} features, the network expects {req.input_length}")
            return [self._secret.encrypt(np.append(x, 1.0)).serialize()]
        X = X.reshape(len(X), -1)
        if X.shape[1] != req.input_length:
            raise ParameterError(f"inputs have {X.shape[1]} features, the network expects {req.input_length}")
        return [self._secret.encrypt(col).serialize() for col in X.T]

    def scores(self, reply: list[bytes]) -> np.ndarray:
        """Decrypted scores: ``(k,)`` for a vector-layout reply, ``(n, k)`` for a batch reply."""
        pub = self._secret.public()
        vals = [self._secret.decrypt(pub.load_vector(r)) for r in reply]
        k = self.requirements.n_scores
        if self.requirements.layout == "vector":
            if len(vals) != 1 or vals[0].size != k + 1:
                raise ParameterError(f"reply does not hold {k} scores and the constant slot")
            return vals[0][:-1]
        if len(vals) != k:
            raise ParameterError(f"reply holds {len(vals)} score vectors, expected {k}")
        return np.stack(vals, axis=1)


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
                 approximate: Mapping[str, Polynomial] | None = None, layout: str = "vector") -> CKKSInference:
    """Run client and server in this process on the rows of ``X``; time each side.

    Setup time (once per client): key generation, serializing and loading the
    public context. Client time: encryption, decryption; server time: loading
    the queries, evaluation, serialization of the replies.
    Bytes are totals over all inputs (queries, replies) and once (context).
    The vector layout sends one query per input, the batch layout one for all.
    """
    server = network if isinstance(network, HEServer) else HEServer(network, approximate, layout)
    X = server.plan.reference._check_input(np.asarray(X)).reshape(len(X), -1)
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
