"""Federated transfer learning with Paillier-encrypted cross terms (Liu et al. 2020; FATE's FTL) (layer: ml).

Two parties with different feature spaces and few common individuals:

* the **host** (party 0) is the *source*: many rows ``X_A`` with labels
  ``y`` in {0, 1};
* the **guest** (party 1) is the *target*: rows ``X_B`` in another feature
  space and (at most) a few labels of its own, and wants to label its other
  rows.

The ``m`` overlapping individuals (found beforehand, e.g. by
:func:`ml.vertical.align`) sit at rows ``overlap`` of each party's table, in
one agreed order. Each party learns a linear representation
``u = [x, 1] W`` (``W`` of shape ``(columns + 1, k)``) of its own standardised
features. The prediction for a guest row is ``phi(u_B) = Phi . u_B`` with
``Phi = (1/N_A) sum_j y_j u_A_j`` (``y`` in {-1, +1}), label 1 when positive.
The loss (Liu et al.'s, with the second-order Taylor expansion of the
logistic loss that their HE protocol uses, ``l(y, phi) ~ log 2 - y phi / 2 + phi^2 / 8``)::

    L = (1/m) sum_{i in overlap} [ -y_i phi_i / 2 + phi_i^2 / 8 + (gamma / 2) ||u_A_i - u_B_i||^2 ]
        + (l2 / 2) (||W_A||^2 + ||W_B||^2)

Its gradients split into local terms and cross terms:

* guest: ``dL/dW_B = X_Bc^T (P + U_Bc Q + gamma U_Bc) / m + l2 W_B`` with the
  host's ``P = -y_c Phi^T / 2 - gamma U_Ac`` (m x k) and ``Q = Phi Phi^T / 4``
  (k x k);
* host: ``dL/dW_A = [(X_A^T y / N_A) v^T + gamma X_Ac^T (U_Ac - U_Bc)] / m + l2 W_A``
  with ``v = -s / 2 + S Phi``, from the guest's ``U_Bc`` (m x k),
  ``s = U_Bc^T y_c`` and ``S = U_Bc^T U_Bc / 4`` (k x k).

Protocol (full batch over the overlap; ``F = 20`` fractional bits for
encrypted values, 16 for plain factors; each party holds its own Paillier
key pair, no third party)
--------------------------------------------------------------------------
0. (once) Exchange public keys and ``[m, k, columns + 1]``; both check that
   ``m`` and ``k`` agree.
1. Host encrypts ``P`` and ``Q`` under its key; guest encrypts ``U_Bc`` and
   ``S`` under its key; they exchange them (one round).
2. Guest computes ``[[X_Bc^T (P + U_Bc Q)]]_A`` (as ``X_Bc^T [[P]] +
   (X_Bc^T U_Bc) [[Q]]``) and host computes
   ``[[(X_A^T y / N_A) v^T - gamma X_Ac^T U_Bc]]_B`` (with ``s`` as
   ``y_c^T [[U_Bc]]``), each by plain-ciphertext products only (52
   fractional bits); each adds a fresh encryption of a mask ``R`` uniform
   below ``2^167`` (which also re-randomises the ciphertexts, see
   :meth:`mpc.he.EncryptedArray.rerandomize`) and sends it to the key owner
   (one round).
3. The key owner decrypts, truncates ``floor((g + R) / 2^24)`` and returns it
   modulo ``2^64``; the sender subtracts ``floor(R / 2^24)`` modulo ``2^64``
   and reads a signed 64-bit integer with 28 fractional bits (off by at most
   one unit, ``2^-28``: SecureML-style truncation of a masked value) (one
   round). Each adds its local term and takes a step ``W -= lr grad``.
4. (at the end) The host sends ``Phi`` (k numbers) to the guest, who predicts
   its rows locally with :meth:`FTLModel.predict`.

The same computation in floating point is :func:`fit_ftl_plain`; the tests
check that both agree to the fixed-point error.

Security and what is revealed
-----------------------------
Semi-honest host and guest (as in Liu et al. and FATE). Every term a party
sends in step 1 is encrypted under its own key (IND-CPA under DCR), and
what a key owner decrypts in step 3 is the other party's gradient plus a
mask uniform below ``2^167`` (within statistical distance ``2^-80`` of the
mask alone, since the gradient at 52 fractional bits is below ``2^87``).
Revealed (as in Liu et al.'s HE protocol):

* to each party, **its own gradient** every step (``dL/dW`` minus its
  regulariser): the host's is a function of ``U_Bc`` (the guest's
  representations of the common rows) projected on the host's own columns;
  the guest's, of ``y_c`` (the host's labels of the common rows), ``Phi`` and
  ``U_Ac``, projected on the guest's columns. Over many steps these are
  linear equations in the other party's terms: with ``m <= columns + 1``
  and ``X_Bc`` of rank ``m``, one step's gradient determines
  ``P + U_Bc Q`` (the host's likewise ``U_Bc``), so keep ``m`` well above
  the column count (the demo: 50 vs 16) or add noise to the gradients;
* to the guest, at the end, ``Phi`` (``k`` numbers; its predictions reveal
  it anyway after ``k`` rows);
* to both: ``m``, ``k`` and each other's column count (message shapes),
  each party's public key, and the number of steps.

Not revealed: the host's labels, features, ``N_A`` and representations; the
guest's features and representations (except through the gradients above).
A malicious party could send wrong ciphertexts (Paillier has no integrity);
malformed messages (wrong shape, key, fractional bits, dtype) are refused
with :class:`~mpc.errors.MalformedPeerData` / :class:`~mpc.errors.ProtocolError`.

Cost per step (``m`` common rows, ``k`` dimensions, ``d_A``/``d_B`` columns
+ 1, ciphertexts of ``2 * key_bits / 8`` bytes, 512 B at 2048 bits): 3
rounds; the host sends ``m k + k^2 + d_A k`` ciphertexts and ``8 d_B k`` bytes,
the guest ``m k + k^2 + d_B k`` ciphertexts and ``8 d_A k`` bytes. Work per
party: ``m k + k^2 + d k`` encryptions, ``d k`` decryptions, ``d k``
multi-exponentiations of ``m + k`` ciphertexts and (host) ``m k + d k + k^2``
modular exponentiations.

Reference: Y. Liu, Y. Kang, C. Xing, T. Chen, Q. Yang, A secure federated
transfer learning framework, IEEE Intelligent Systems 35(4), 2020.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from mpc.errors import EncodingError, IntegrityError, MalformedPeerData, ParameterError, ProtocolError
from mpc.he import paillier
from mpc.he.paillier_array import EncryptedArray
from mpc.rand import random_seed
from mpc.schema import ArraySpec

from .common import _standardize

if TYPE_CHECKING:
    from mpc.party import Party

HOST, GUEST = 0, 1
_F = 20          # fractional bits of encrypted values
_FP = 16         # fractional bits of plain factors
_TOTAL = _F + 2 * _FP   # fractional bits of an encrypted gradient (52)
_TRUNC = 24      # bits dropped by the key owner: results have _TOTAL - _TRUNC = 28
_MASK_BITS = 63 + _TRUNC + 80   # |g| < 2^(63 + _TRUNC); 80 bits of statistical hiding
_DIVERGED = 1e4   # weights beyond this: diverged (and gradients would leave the fixed-point range)


@dataclass
class FTLModel:
    """One party's result: its representation map and the shared ``Phi``.

    ``weights`` (``(columns + 1, k)``, last row the offset), ``mean``/``scale``
    (this party's standardisation), ``phi`` (the host's ``Phi``; the guest
    receives it at the end of training), ``role`` (``"host"`` or ``"guest"``).
    """

    role: str
    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    phi: np.ndarray

    def represent(self, X: Any) -> np.ndarray:
        """``u = [standardised x, 1] W`` for each row of ``X``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.mean):
            raise ParameterError(f"{self.role}: X must have {len(self.mean)} columns, got shape {X.shape}")
        return _augment((X - self.mean) / self.scale) @ self.weights

    def decision_function(self, X: Any) -> np.ndarray:
        """``Phi . u`` per row (positive: label 1)."""
        return self.represent(X) @ self.phi

    def predict(self, X: Any) -> np.ndarray:
        """Labels in {0, 1}."""
        return (self.decision_function(X) > 0).astype(np.int64)


def _augment(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((len(X), 1))])


# -- the pure algebra, shared by the plaintext reference and the protocol -----------------
def host_terms(UA: np.ndarray, y_pm: np.ndarray, overlap: np.ndarray, gamma: float):
    """The host's ``Phi``, ``P`` and ``Q`` (see the module docstring)."""
    phi = y_pm @ UA / len(UA)
    P = -0.5 * np.outer(y_pm[overlap], phi) - gamma * UA[overlap]
    return phi, P, 0.25 * np.outer(phi, phi)


def guest_terms(UBc: np.ndarray) -> np.ndarray:
    """The guest's ``S = U_Bc^T U_Bc / 4`` (it also sends ``U_Bc``)."""
    return 0.25 * UBc.T @ UBc


def loss(UA: np.ndarray, y_pm: np.ndarray, overlap_a: np.ndarray, UBc: np.ndarray, gamma: float) -> float:
    """The Taylor-approximated FTL loss without the regulariser."""
    phi = y_pm @ UA / len(UA)
    f = UBc @ phi
    yc = y_pm[overlap_a]
    align = 0.5 * gamma * np.sum((UA[overlap_a] - UBc) ** 2)
    return float((np.sum(-0.5 * yc * f + f * f / 8) + align) / len(UBc))


def gradients(XA: np.ndarray, y_pm: np.ndarray, overlap_a: np.ndarray, WA: np.ndarray, XBc: np.ndarray,
              WB: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """The gradients of :func:`loss` in ``WA`` and ``WB`` (``XA``, ``XBc`` with their columns of ones)."""
    UA, UBc = XA @ WA, XBc @ WB
    phi, P, Q = host_terms(UA, y_pm, overlap_a, gamma)
    v = -0.5 * (UBc.T @ y_pm[overlap_a]) + guest_terms(UBc) @ phi
    a = XA.T @ y_pm / len(XA)
    m = len(XBc)
    gA = (np.outer(a, v) + gamma * XA[overlap_a].T @ (UA[overlap_a] - UBc)) / m
    gB = XBc.T @ (P + UBc @ Q + gamma * UBc) / m
    return gA, gB


def fit_ftl_plain(XA: Any, y: Any, overlap_a: Any, XB: Any, overlap_b: Any, *, k: int = 8,
                  gamma: float = 0.1, l2: float = 1e-3, lr: float = 0.2, steps: int = 30,
                  seed: int = 0) -> tuple[FTLModel, FTLModel]:
    """:func:`fit_ftl` in floating point, both parties in one place: (host model, guest model)."""
    _check_schedule(gamma, l2, lr, steps)
    A = _prepare(XA, overlap_a, k, "host", seed)
    B = _prepare(XB, overlap_b, k, "guest", seed)
    y_pm = _labels(y, len(A.X))
    m = len(A.overlap)
    if len(B.overlap) != m:
        raise ParameterError(f"the overlaps differ in length ({m} vs {len(B.overlap)})")
    XBc = B.X[B.overlap]
    for _ in range(steps):
        gA, gB = gradients(A.X, y_pm, A.overlap, A.W, XBc, B.W, gamma)
        A.W = A.W - lr * (gA + l2 * A.W)
        B.W = B.W - lr * (gB + l2 * B.W)
    phi = y_pm @ (A.X @ A.W) / len(A.X)
    return (FTLModel("host", A.W, A.mean, A.scale, phi), FTLModel("guest", B.W, B.mean, B.scale, phi))


@dataclass
class _Side:
    X: np.ndarray        # standardised, with the column of ones
    overlap: np.ndarray
    W: np.ndarray
    mean: np.ndarray
    scale: np.ndarray


def _prepare(X: Any, overlap: Any, k: int, role: str, seed: int | None) -> _Side:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] < 1 or len(X) < 1 or not np.all(np.isfinite(X)):
        raise ParameterError(f"{role}: X must be a finite 2-D array with rows and columns, got shape {X.shape}")
    ov = np.asarray(overlap)
    if ov.ndim != 1 or ov.size < 1 or ov.dtype.kind not in "iu" or ov.min() < 0 or ov.max() >= len(X) \
            or len(np.unique(ov)) != ov.size:
        raise ParameterError(f"{role}: overlap must be distinct row indices of X (0..{len(X) - 1})")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a positive integer, got {k!r}")
    Xs, mean, scale = _standardize(X, True)
    # initial weights: model initialisation, not a cryptographic secret (seed None: OS entropy)
    entropy = int.from_bytes(random_seed(), "big") if seed is None else seed
    rng = np.random.default_rng([entropy, 0 if role == "host" else 1])  # noqa: TID251 -- initial weights only
    W = rng.normal(0.0, 1.0 / np.sqrt(X.shape[1] + 1), (X.shape[1] + 1, k))
    return _Side(_augment(Xs), ov.astype(np.int64), W, mean, scale)


def _check_schedule(gamma: float, l2: float, lr: float, steps: int) -> None:
    if not isinstance(steps, (int, np.integer)) or steps < 0 or not (lr > 0 and math.isfinite(lr)):
        raise ParameterError(f"steps must be a non-negative integer and lr positive, got {steps!r}, {lr!r}")
    if not (gamma >= 0 and math.isfinite(gamma) and l2 >= 0 and math.isfinite(l2)):
        raise ParameterError(f"gamma and l2 must be finite and >= 0, got gamma={gamma!r}, l2={l2!r}")


def _labels(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or not np.all((y == 0) | (y == 1)):
        raise ParameterError(f"host: y must be {n} labels in {{0, 1}}")
    return 2.0 * y.astype(np.float64) - 1.0


# -- the protocol ---------------------------------------------------------------------------
def fit_ftl(party: Party, X: Any, overlap: Any, y: Any = None, *, k: int = 8, gamma: float = 0.1,
            l2: float = 1e-3, lr: float = 0.2, steps: int = 30, seed: int | None = None,
            key_bits: int = paillier.DEFAULT_BITS, insecure_for_testing: bool = False,
            on_step: Callable[[int], None] | None = None) -> FTLModel:
    """Federated transfer learning between a host (party 0, labels ``y``) and a guest (party 1).

    Both call it with their own ``X`` and ``overlap`` (the rows of the common
    individuals, in one agreed order) and the same ``k``, ``gamma``, ``l2``,
    ``lr``, ``steps``; only the host gives ``y`` (0/1 per row of its ``X``).
    ``seed`` fixes this party's initial weights (``None``: OS entropy).
    Returns this party's :class:`FTLModel`; the guest's predicts its rows.
    ``on_step`` is called with the step's number after each step (a progress bar).
    The protocol, what it reveals and its cost: :mod:`ml.vertical.ftl`.
    """
    if party.n != 2:
        raise ParameterError(f"federated transfer learning runs between 2 parties, not {party.n}")
    role = "host" if party.id == HOST else "guest"
    if (y is None) != (party.id == GUEST):
        raise ParameterError(f"party {party.id}: the host (party 0) gives the labels y, the guest does not")
    _check_schedule(gamma, l2, lr, steps)
    me = _prepare(X, overlap, k, role, seed)
    y_pm = _labels(y, len(me.X)) if y is not None else None
    keys = paillier.keygen(key_bits, insecure_for_testing=insecure_for_testing)
    other = 1 - party.id
    with party.scope(party.fresh("ftl")), party.phase("ftl/train"):
        pub, other_cols = _setup(party, keys, me, k, insecure_for_testing)
        m = len(me.overlap)
        for step in range(steps):
            with party.scope(f"step{step}"):
                if y_pm is not None:
                    g = _host_step(party, keys, pub, me, y_pm, gamma, m, k, other_cols)
                else:
                    g = _guest_step(party, keys, pub, me, gamma, m, k, other_cols)
            me.W = me.W - lr * (g / m + l2 * me.W)
            if not np.abs(me.W).max() < _DIVERGED:
                raise ParameterError(f"party {party.id}: the training diverged at step {step} (a weight "
                                     f"reached {_DIVERGED:g}); lower lr or gamma")
            if on_step is not None:
                on_step(step + 1)
        if y_pm is not None:
            phi = y_pm @ (me.X @ me.W) / len(me.X)
            party.send(other, "phi", phi)
        else:
            (phi,) = party.recv_checked(other, "phi", [ArraySpec(np.float64, (k,), field="phi")])
            if not np.all(np.isfinite(phi)):
                raise ProtocolError(f"party {party.id}: party {other} sent a non-finite phi")
    return FTLModel(role, me.W, me.mean, me.scale, phi)


def _setup(party: Party, keys: Any, me: _Side, k: int, insecure: bool) -> tuple[Any, int]:
    """Step 0: exchange public keys and ``[m, k, columns + 1]``; returns (the other's key, its columns + 1)."""
    other = 1 - party.id
    msg = np.frombuffer(keys.public.serialize(), dtype=np.uint8)
    party.send(other, "setup", msg, np.array([len(me.overlap), k, me.X.shape[1]], dtype=np.int64))
    key_b, sizes = party.recv_checked(other, "setup", [ArraySpec(np.uint8, (None,), max_len=4096, field="key"),
                                                       ArraySpec(np.int64, (3,), field="sizes")])
    m_o, k_o, cols_o = (int(v) for v in sizes)
    if m_o != len(me.overlap) or k_o != k:
        raise ParameterError(f"party {party.id}: party {other} has {m_o} common rows and k={k_o}, "
                             f"this party {len(me.overlap)} and k={k}")
    if not 2 <= cols_o <= 1 << 20:
        raise ProtocolError(f"party {party.id}: party {other} announced {cols_o} columns")
    return paillier.PaillierPublicKey.load(key_b.tobytes(), insecure_for_testing=insecure), cols_o


def _ints(a: np.ndarray, bits: int) -> np.ndarray:
    """Fixed-point Python ints of ``a`` with ``bits`` fractional bits (an object array)."""
    return np.vectorize(lambda v: int(round(v * (1 << bits))), otypes=[object])(np.asarray(a, dtype=np.float64))


def _scaled(e: EncryptedArray, extra: int) -> EncryptedArray:
    """``e`` multiplied by fixed-point ints of ``extra`` fractional bits: record them."""
    return EncryptedArray(e.public, e.ciphertexts, e.frac_bits + extra)


def _send_ct(party: Party, name: str, *arrays: EncryptedArray) -> None:
    party.send(1 - party.id, name, *(np.frombuffer(a.serialize(), dtype=np.uint8) for a in arrays))


def _recv_ct(party: Party, name: str, public: Any, shapes: list[tuple[int, ...]], frac: int) -> list[EncryptedArray]:
    """Receive ciphertext arrays under ``public`` of the given shapes and fractional bits, or refuse them."""
    other = 1 - party.id
    got = party.recv_checked(other, name, [ArraySpec(np.uint8, (None,), field=f"{name}[{i}]")
                                           for i in range(len(shapes))])
    out = []
    for i, (raw, shape) in enumerate(zip(got, shapes)):
        def bad(why: str) -> MalformedPeerData:
            return MalformedPeerData(f"party {party.id}: party {other} sent {name}[{i}] under tag "
                                     f"{party.tag(name)!r} (round {party.last_round}): {why}",
                                     peer=other, round=party.last_round, tag=party.tag(name),
                                     field=f"{name}[{i}]")
        try:
            e = EncryptedArray.load(public, raw.tobytes())   # checks the key, digest and every ciphertext
        except (ParameterError, EncodingError, IntegrityError) as exc:
            raise bad(f"not ciphertexts under the expected key ({exc})") from exc
        if e.shape != shape or e.frac_bits != frac:
            raise bad(f"shape {e.shape} with {e.frac_bits} fractional bits, expected {shape} with {frac}")
        out.append(e)
    return out


def _mask_and_send(party: Party, enc: EncryptedArray) -> np.ndarray:
    """Step 2's mask and send; returns the masks ``floor(R / 2^_TRUNC)`` to remove."""
    R = np.array([int.from_bytes(random_seed(_MASK_BITS // 8 + 1), "big") >> (8 - _MASK_BITS % 8)
                  for _ in range(enc.ciphertexts.size)], dtype=object).reshape(enc.shape)
    masked = enc + EncryptedArray(enc.public, enc.public.encrypt(R).ciphertexts, enc.frac_bits)
    _send_ct(party, "masked-gradient", masked)
    return R >> _TRUNC


def _decrypt_for_other(party: Party, keys: Any, shape: tuple[int, int]) -> None:
    """Step 3 at the key owner: decrypt the other's masked gradient, truncate, return it mod 2^64."""
    (masked,) = _recv_ct(party, "masked-gradient", keys.public, [shape], _TOTAL)
    raw = keys.secret.decode(np.array(keys.secret.decrypt_raw(list(masked.ciphertexts.flat)), dtype=object)
                             .reshape(shape), 0)
    trunc = np.vectorize(lambda v: (int(v) >> _TRUNC) % (1 << 64), otypes=[object])(raw)
    party.send(1 - party.id, "truncated", trunc.astype(np.uint64))


def _unmask(party: Party, R_trunc: np.ndarray) -> np.ndarray:
    (got,) = party.recv_checked(1 - party.id, "truncated",
                                [ArraySpec(np.uint64, tuple(R_trunc.shape), field="gradient")])
    diff = np.vectorize(lambda a, r: (int(a) - r) % (1 << 64), otypes=[object])(got, R_trunc)
    return diff.astype(np.uint64).view(np.int64).astype(np.float64) / float(1 << (_TOTAL - _TRUNC))


def _host_step(party: Party, keys: Any, pub: Any, me: _Side, y_pm: np.ndarray, gamma: float,
               m: int, k: int, guest_cols: int) -> np.ndarray:
    """One step at the host: returns ``m`` times its loss gradient without the regulariser."""
    UA = me.X @ me.W
    phi, P, Q = host_terms(UA, y_pm, me.overlap, gamma)
    _send_ct(party, "host-terms", keys.public.encrypt(P, _F), keys.public.encrypt(Q, _F))   # step 1
    UBc, S = _recv_ct(party, "guest-terms", pub, [(m, k), (k, k)], _F)
    yc = y_pm[me.overlap].astype(np.int64)                                                   # step 2
    s = UBc.mul(yc.astype(object)[:, None]).sum(axis=0)                    # [[U_Bc^T y_c]], F bits
    v = _scaled(s.mul(-(1 << (_FP - 1))), _FP) + _scaled(S.mul(_ints(phi, _FP)[None, :]).sum(axis=1), _FP)
    a = me.X.T @ y_pm / len(me.X)
    term1 = _scaled(v.reshape(1, k).mul(_ints(a, _FP)[:, None]), _FP)       # (d, k), _TOTAL bits
    M = _ints(-gamma * me.X[me.overlap].T, 2 * _FP)                         # (d, m)
    cols = [(M @ UBc[:, c]).ciphertexts for c in range(k)]
    term2 = EncryptedArray(pub, np.stack(cols, axis=1), _TOTAL)
    R = _mask_and_send(party, term1 + term2)
    _decrypt_for_other(party, keys, (guest_cols, k))                                         # step 3
    g_enc = _unmask(party, R)
    return g_enc + gamma * me.X[me.overlap].T @ UA[me.overlap]


def _guest_step(party: Party, keys: Any, pub: Any, me: _Side, gamma: float, m: int, k: int,
                host_cols: int) -> np.ndarray:
    """One step at the guest: returns ``m`` times its loss gradient without the regulariser."""
    Xc = me.X[me.overlap]
    UBc = Xc @ me.W
    _send_ct(party, "guest-terms", keys.public.encrypt(UBc, _F), keys.public.encrypt(guest_terms(UBc), _F))
    P, Q = _recv_ct(party, "host-terms", pub, [(m, k), (k, k)], _F)                           # step 1
    # step 2: X_Bc^T (P + U_Bc Q) = X_Bc^T P + (X_Bc^T U_Bc) Q, one multi-exponentiation per entry
    Xi, Ci = _ints(Xc.T, 2 * _FP), _ints(Xc.T @ UBc, 2 * _FP)
    cols = [((Xi @ P[:, c]) + (Ci @ Q[:, c])).ciphertexts for c in range(k)]
    R = _mask_and_send(party, EncryptedArray(pub, np.stack(cols, axis=1), _TOTAL))
    _decrypt_for_other(party, keys, (host_cols, k))                                          # step 3
    g_enc = _unmask(party, R)
    return g_enc + gamma * Xc.T @ UBc


# -- the demo split ----------------------------------------------------------------------------
@dataclass
class TransferSplit:
    """Two views of one data set for FTL: the host's labelled rows, the guest's rows, their overlap.

    ``XA, yA``: host rows and labels; ``XB, yB``: guest rows (``yB`` for
    scoring only, except at ``labeled``); ``overlap_a``/``overlap_b``: the
    common rows in each table, same order; ``labeled``: the guest's few
    labelled rows; ``test``: the guest rows to label (neither common nor
    labelled).
    """

    XA: np.ndarray
    yA: np.ndarray
    XB: np.ndarray
    yB: np.ndarray
    overlap_a: np.ndarray
    overlap_b: np.ndarray
    labeled: np.ndarray
    test: np.ndarray


def breast_cancer_split(seed: int = 0, *, host_rows: int = 250, common: int = 50,
                        guest_labels: int = 6) -> TransferSplit:
    """scikit-learn's breast cancer data (569 rows, 30 columns) as two views.

    The columns are shuffled and halved (host 15, guest 15); of the shuffled
    rows the host holds the first ``host_rows``, the guest the rest plus the
    host's last ``common``; the guest knows ``guest_labels`` labels (both
    classes) among its rows outside the overlap; the other such rows are the test rows.
    """
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)  # noqa: TID251 -- a simulated split of public data
    cols, rows = rng.permutation(X.shape[1]), rng.permutation(len(y))
    ca, cb = cols[: X.shape[1] // 2], cols[X.shape[1] // 2:]
    a_rows, b_rows = rows[:host_rows], rows[host_rows - common:]
    rest = np.arange(common, len(b_rows))
    yB = y[b_rows]
    while True:
        labeled = np.sort(rng.choice(rest, guest_labels, replace=False))
        if len(np.unique(yB[labeled])) == 2:
            break
    return TransferSplit(X[a_rows][:, ca], y[a_rows], X[b_rows][:, cb], yB,
                         np.arange(host_rows - common, host_rows), np.arange(common),
                         labeled, np.setdiff1d(rest, labeled))


def guest_alone_accuracy(split: TransferSplit) -> float:
    """The guest's accuracy on ``split.test`` with logistic regression on its ``labeled`` rows alone."""
    from sklearn.linear_model import LogisticRegression

    Xs, _, _ = _standardize(split.XB, True)
    clf = LogisticRegression().fit(Xs[split.labeled], split.yB[split.labeled])
    return float(clf.score(Xs[split.test], split.yB[split.test]))
