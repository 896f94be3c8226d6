"""Vertical federated logistic regression: PSI alignment, then training on split features (layer: ml).

Two or three parties hold different *columns* (features) of the same
individuals, each under its own list of IDs; one of them, the *label party*,
also holds the labels. They want one logistic-regression model over all the
columns, without showing anyone their customer lists beyond the common IDs,
their features, or (except the label party) the labels.

1. :func:`align` finds the common IDs by DH-PSI (:mod:`protocols.psi`) and
   gives every party the row of each common ID in its own table, in one
   agreed order (sorted IDs).
2. Training, by one of two methods:

   * :func:`fit_ss` -- additive secret sharing (:class:`mpc.SharedTensor`):
     every party shares its block of columns, the label party its labels, and
     full-batch gradient descent runs on the shares with the piecewise-linear
     sigmoid of SecureML ``clip(z/4 + 1/2, 0, 1)`` (two exact secure
     comparisons). Each party then opens only its own block of weights.
   * :func:`fit_paillier` -- Paillier-encrypted gradients in the style of
     FATE's hetero logistic regression (see its docstring).

3. :func:`predict_proba`: each party's partial logits ``X_p w_p`` are
   secret-shared and summed; only the label party opens the sum.

Every party standardises its own columns with its own training statistics
(kept in its :class:`VerticalModel` and reused for prediction): those never
leave the party.

Security
--------
Semi-honest parties. ``fit_ss``: dishonest majority (any one party's view is
simulatable from its inputs and outputs), with a trusted dealer for Beaver
triples, binary triples and daBits unless another preprocessing source is
given to :func:`mpc.run`. What leaks, by design: the common IDs (to every
party; a host also learns its intersection with the label party's IDs before
the other hosts' IDs are taken into account), the number of rows and of each
party's columns, each party's own trained weight block (to that party only,
as in FATE), and the predicted logits (to the label party). ``fit_paillier``:
no third party (its secure comparisons need a dealer-free preprocessing
source such as ``"ot"``, or ``activation="taylor"``); in addition each party
learns its own gradient per mini-batch, as FATE's hosts and guest do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

import mpc
from mpc.errors import EncodingError, IntegrityError, ParameterError, ProtocolError
from mpc.he import paillier
from mpc.he.packing import PackedArray, Packing, decrypt_packed, pack_encrypted
from mpc.rand import PRG, derive_seed, random_seed
from mpc.schema import ArraySpec
from mpc.sharing.tensor import SharedTensor, concatenate
from protocols.psi import psi

if TYPE_CHECKING:
    from mpc.party import Party

__all__ = ["VerticalModel", "align", "fit_paillier", "fit_plain", "fit_plain_minibatch", "fit_ss",
           "predict_proba", "sigmoid_piecewise"]


# -- alignment ------------------------------------------------------------------------------
def _row_index(ids: Any) -> tuple[Any, Any]:
    """(sorted distinct ids, function mapping a sorted subset to row numbers); ids must be distinct."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ParameterError(f"ids must be 1-D, got shape {ids.shape}")
        order = np.argsort(ids, kind="stable")
        if len(ids) and np.any(ids[order][1:] == ids[order][:-1]):
            raise ParameterError("ids must be distinct: one row per ID")

        def rows(common: Any) -> np.ndarray:
            common = np.asarray(common, dtype=ids.dtype)
            return order[np.searchsorted(ids[order], common)].astype(np.int64)
        return ids, rows
    ids = [bytes(v) if isinstance(v, (bytearray, memoryview)) else v for v in ids]  # hashable
    where = {v: k for k, v in enumerate(ids)}
    if len(where) != len(ids):
        raise ParameterError("ids must be distinct: one row per ID")
    return ids, lambda common: np.array([where[v] for v in common], dtype=np.int64)


def align(party: Party, ids: Any, *, label_party: int = 0,
          workers: int | None = None) -> tuple[Any, np.ndarray]:
    """Find the IDs all parties hold; return (common IDs, sorted; this party's row of each).

    Every party of the session calls it. ``ids`` are this party's row IDs
    (distinct): a 1-D integer array, or a list of ints, str or bytes.

    Protocol: the label party ``L`` runs DH-PSI (both parties learn the
    result) with each other party in turn, each time with the set that is
    left; then it tells the earlier parties, by positions, which of their
    common IDs survived. Cost: ``k - 1`` PSIs on the shrinking set, plus
    ``k - 2`` messages of ``8 |common|`` bytes.
    """
    if not 0 <= label_party < party.n:
        raise ParameterError(f"label_party {label_party!r} is not a party (0..{party.n - 1})")
    ids, rows_of = _row_index(ids)
    hosts = [p for p in range(party.n) if p != label_party]
    with party.scope(party.fresh("align")), party.phase("vertical/align"):
        if party.id == label_party:
            chain = []
            current = ids
            for h in hosts:
                current = psi(party, current, peer=h, receiver=label_party, both=True,
                              workers=workers)
                chain.append(current)
            for h, seen in zip(hosts[:-1], chain[:-1]):
                _, pos_in = _row_index(seen)
                party.send(h, "survivors", pos_in(current))
            return current, rows_of(current)
        common = psi(party, ids, peer=label_party, receiver=label_party, both=True, workers=workers)
        if party.id != hosts[-1]:
            (pos,) = party.recv(label_party, "survivors")
            if (pos.dtype != np.int64 or pos.ndim != 1 or len(pos) > len(common)
                    or (len(pos) and (pos.min() < 0 or pos.max() >= len(common)
                                      or np.any(np.diff(pos) <= 0)))):
                raise ProtocolError(f"party {party.id}: malformed survivor positions from "
                                    f"party {label_party}")
            common = common[pos] if isinstance(common, np.ndarray) else [common[k] for k in pos]
        return common, rows_of(common)


# -- the model ------------------------------------------------------------------------------
@dataclass
class VerticalModel:
    """One party's part of a vertical model: its weight block and its own standardisation.

    ``intercept`` is non-zero only at the label party.
    """

    weights: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    method: str
    label_party: int

    def partial_logits(self, X: np.ndarray) -> np.ndarray:
        """This party's share of the logits, ``standardise(X) @ w (+ b)``, in the clear."""
        X = _check_X(X, len(self.weights))
        return (X - self.mean) / self.scale @ self.weights + self.intercept


def sigmoid_piecewise(z: np.ndarray) -> np.ndarray:
    """SecureML's sigmoid: ``clip(z/4 + 1/2, 0, 1)``, the tangent at 0 cut at 0 and 1."""
    return np.clip(np.asarray(z, dtype=np.float64) / 4 + 0.5, 0.0, 1.0)


def _check_X(X: Any, d: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ParameterError(f"features must be a 2-D array (rows x columns), got shape {X.shape}")
    if d is not None and X.shape[1] != d:
        raise ParameterError(f"expected {d} feature columns, got {X.shape[1]}")
    if not np.all(np.isfinite(X)):
        raise ParameterError("features must be finite")
    return X


def _check_y(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ParameterError(f"labels must be a 1-D array of {n} entries, got shape {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ParameterError("labels must be 0 or 1")
    return y.astype(np.float64)


def _standardize(X: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not standardize:
        return X, np.zeros(X.shape[1]), np.ones(X.shape[1])
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[(np.ptp(X, axis=0) == 0) | (scale == 0)] = 1.0   # constant columns: std is rounding noise
    return (X - mean) / scale, mean, scale


def _check_training(party: Party, X: Any, y: Any, label_party: int, iterations: int,
                    lr: float, what: str = "iterations") -> tuple[np.ndarray, np.ndarray | None]:
    if not 0 <= label_party < party.n:
        raise ParameterError(f"label_party {label_party!r} is not a party (0..{party.n - 1})")
    if not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ParameterError(f"{what} must be a non-negative integer, got {iterations!r}")
    if not lr > 0:
        raise ParameterError(f"the learning rate must be positive, got {lr!r}")
    X = _check_X(X)
    if len(X) == 0:
        raise ParameterError(f"party {party.id}: no rows to train on (is the aligned ID set empty?)")
    if party.id == label_party:
        if y is None:
            raise ParameterError(f"party {party.id} is the label party but passed no labels")
        return X, _check_y(y, len(X))
    if y is not None:
        raise ParameterError(f"party {party.id} is not the label party ({label_party}): pass y=None")
    return X, None


# -- training on secret shares ------------------------------------------------------------------
def fit_ss(party: Party, X: Any, y: Any = None, *, label_party: int = 0, iterations: int = 300,
           lr: float = 1.0, l2: float | None = None, standardize: bool = True,
           activation: str = "piecewise") -> VerticalModel:
    """Train on additive secret shares; every party calls it with its aligned columns.

    Parameters
    ----------
    X:
        This party's columns for the aligned rows (``n x d_p``), same row order
        at every party (as :func:`align` returns).
    y:
        The 0/1 labels at the label party; None elsewhere.
    iterations, lr, l2:
        Full-batch gradient descent on the mean cross-entropy plus
        ``l2/2 ||w||^2`` (default ``l2 = 1/n``, scikit-learn's ``C = 1``).
    activation:
        ``"piecewise"`` (SecureML's ``clip(z/4 + 1/2, 0, 1)``, one batched
        comparison) or ``"sigmoid"`` (:func:`mpc.sharing.approx.sigmoid`,
        error < 5e-5, about 40 rounds).

    Protocol (``[v]`` is a secret-shared value)
    -------------------------------------------
    1. Each party shares its standardised block; the label party shares ``y``;
       ``[X] = [X_0 | X_1 | ...]``; ``[w] = 0``, ``[b] = 0``.
    2. Per iteration: ``[z] = [X][w] + [b]`` (Beaver matmul);
       ``[s] = clip([z]/4 + 1/2, 0, 1)`` (two secure comparisons);
       ``[r] = [s] - [y]``; ``[w] -= lr/n [X]^T [r] + lr l2 [w]``;
       ``[b] -= lr/n sum [r]``.
    3. Party ``p`` opens its own block of ``[w]``; the label party opens ``[b]``.

    Cost per iteration, for ``n`` rows, ``d`` columns in all, 2 parties: 16
    rounds; about ``8 (2 n d + 3 d + 12 n)`` bytes to the peer plus the
    comparisons (~``94 n``), i.e. ``~16 n d`` bytes. The trusted dealer sends
    the triples (see :mod:`mpc.sharing`).
    """
    X, y = _check_training(party, X, y, label_party, iterations, lr)
    if activation not in ("piecewise", "sigmoid"):
        raise ParameterError(f"activation must be 'piecewise' or 'sigmoid', not {activation!r}")
    X, mean, scale = _standardize(X, standardize)
    with party.scope(party.fresh("vertical-ss")), party.phase("vertical/train-ss"):
        # Public bounds: a standardised column (population std) has |z| <= sqrt(n - 1); raw
        # columns get the session's input bound; labels are 0/1.
        x_bound = math.sqrt(len(X)) if standardize else None
        blocks = [mpc.share(party, X if party.id == p else None, p, bound=x_bound) for p in range(party.n)]
        n = blocks[0].shape[0]
        if any(b.shape[0] != n for b in blocks) or n == 0:
            raise ParameterError(f"party {party.id}: the parties' row counts differ or are zero: "
                                 f"{[b.shape[0] for b in blocks]} (align the rows first)")
        widths = [b.shape[1] for b in blocks]
        shared_x = concatenate(blocks, axis=1)
        shared_y = mpc.share(party, y.reshape(-1, 1) if y is not None else None, label_party, bound=1.0)
        l2 = 1.0 / n if l2 is None else float(l2)
        frac = party.fixed.frac_bits
        w = SharedTensor(party, np.zeros((sum(widths), 1), np.uint64), frac, 0.0)
        b = SharedTensor(party, np.zeros((1, 1), np.uint64), frac, 0.0)
        step, decay = lr / n, 1.0 - lr * l2
        for _ in range(iterations):
            z = shared_x @ w + b
            s = (z * 0.25 + 0.5).clip(0.0, 1.0) if activation == "piecewise" else z.sigmoid()
            r = (s - shared_y).assume_bound(s.bound)     # s in [0, 1] and y in {0, 1}
            w = w * decay - (shared_x.T @ r) * step
            b = b - r.sum(axis=0, keepdims=True) * step
        offsets = np.concatenate([[0], np.cumsum(widths)])
        opened = [w[int(offsets[p]):int(offsets[p + 1])].reveal(to=p) for p in range(party.n)]
        intercept = b.reveal(to=label_party)
    mine = opened[party.id]
    assert mine is not None  # reveal(to=p) opens party p's block to party p
    return VerticalModel(weights=mine.ravel(), mean=mean, scale=scale, method="ss",
                         intercept=float(intercept[0, 0]) if intercept is not None else 0.0,
                         label_party=label_party)


def fit_plain(blocks: Sequence[np.ndarray], y: np.ndarray, *, iterations: int = 300, lr: float = 1.0,
              l2: float | None = None, standardize: bool = True,
              activation: str = "piecewise") -> tuple[np.ndarray, float]:
    """The same training in the clear on all columns (a reference): returns (w, b).

    ``w`` is over the standardised columns of ``blocks`` concatenated.
    """
    X = np.concatenate([_standardize(_check_X(b), standardize)[0] for b in blocks], axis=1)
    y = _check_y(y, len(X))
    n = len(X)
    l2 = 1.0 / n if l2 is None else float(l2)
    if activation not in ("piecewise", "sigmoid"):
        raise ParameterError(f"activation must be 'piecewise' or 'sigmoid', not {activation!r}")
    act = sigmoid_piecewise if activation == "piecewise" else (lambda z: 1 / (1 + np.exp(-z)))
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(iterations):
        r = act(X @ w + b) - y
        w = w * (1.0 - lr * l2) - lr / n * (X.T @ r)
        b -= lr / n * r.sum()
    return w, b


# -- training with Paillier-encrypted gradients ---------------------------------------------------
_FRAC = 16                 # fixed-point bits of the plain features in the encrypted products
_RING = 1 << 64            # residual shares and returned gradient entries live in Z_2^64
_OFFSET = 1 << 255         # keeps every masked slot positive: |X^T d_q| < 2^(64+62-f) << 2^255
_MASK_BITS = 296           # slot masks below 2^296: statistical distance < 2^(127-296) = 2^-169
_MASKED = Packing(value_bits=_MASK_BITS + 1, signed=False)   # slot: v + _OFFSET + mask < 2^297
_ACTIVATIONS = ("piecewise", "taylor")


def fit_paillier(party: Party, X: Any, y: Any = None, *, label_party: int = 0, epochs: int = 20,
                 batch_size: int = 64, lr: float | None = None, l2: float | None = None,
                 standardize: bool = True, activation: str = "piecewise",
                 key_bits: int = paillier.DEFAULT_BITS,
                 insecure_for_testing: bool = False,
                 progress: Callable[[int], None] | None = None) -> VerticalModel:
    """Train with Paillier-encrypted gradients (FATE hetero-LR style); every party calls it.

    Mini-batch gradient descent in which the residuals ``d = sigma(z) - y`` are
    additively shared among the parties and every cross term ``X_p^T d_q`` of
    the gradients is computed under party q's Paillier key. No third party:
    every party holds its own key pair (instead of FATE's arbiter).

    activation:
        ``"piecewise"`` (default, as FATE's SSHE-LR combines secret sharing and
        HE): ``sigma(z) = clip(z/4 + 1/2, 0, 1)`` computed on secret shares with
        one batched secure comparison (:meth:`mpc.SharedTensor.clip`), so it
        needs a preprocessing source: ``mpc.run(..., preprocessing="ot")``
        keeps two parties free of any third party; ``"dealer"`` also works
        (and is needed for three parties). Accuracy matches centralised
        logistic regression (see ``python -m bench vertical``).
        ``"taylor"``: FATE's coordinated LR (Hardy et al. 2017), the
        first-order Taylor expansion ``sigma(z) ~ z/4 + 1/2`` makes ``d`` a sum
        of local terms, so no preprocessing is needed; it is a least-squares
        fit and costs a few points of accuracy (0.947 vs 0.982 on breast
        cancer).
    lr:
        Step size; default 1.0 for ``"piecewise"`` and 0.5 for ``"taylor"``
        (whose unbounded residual diverges at 1.0 on standardised data).
    epochs, batch_size, l2:
        Passes over the rows in order, rows per step, and the L2 penalty
        ``l2/2 ||w||^2`` (default ``1/n``, scikit-learn's ``C = 1``).
    progress:
        Called as ``progress(1)`` after each of the ``epochs * ceil(n / batch_size)``
        mini-batch steps (a tqdm bar's ``update`` fits).

    Protocol (per mini-batch, the same rows at every party; ``f`` = the
    fixed-point bits of :attr:`party.fixed`)
    -----------------------------------------------------------------------
    0. (once) Every party sends its public key, its row and column counts and
       the power of two bounding its largest per-batch column sum of ``|X_p|``
       (the fixed-point budget below); each pair of parties agrees a 16-byte
       seed (for 3 or more parties).
    1. Party p computes ``u_p = X_p w_p / 4`` (the label party adds
       ``b/4 + 1/2``), so ``sum_p u_p = z/4 + 1/2``, and its share ``d_p`` in
       ``Z_2^64`` of ``d``: with ``"piecewise"`` the ``u_p`` are fixed-point
       shares of ``u``, ``clip(u, 0, 1)`` is computed on them, and the label
       party subtracts ``y`` from its share; with ``"taylor"``,
       ``d_p = u_p`` (label party: ``u_p - y``) locally.
    2. Party q encrypts ``d_q`` (integers below 2^64) under its own key and
       sends ``[[d_q]]_q`` to every other party.
    3. Party p computes ``[[X_p^T d_q + 2^255 + R_pq]]_q`` for each q
       (``X_p`` rounded to 16 fractional bits; plain-ciphertext products;
       ``R_pq`` uniform below 2^296), packed six 297-bit slots to a 2048-bit
       plaintext by Horner's rule (:func:`mpc.he.packing.pack_encrypted`),
       the masks added as one fresh encryption per packed ciphertext, which
       also re-randomises it (otherwise q could
       recover on decryption the product's randomness, a function of
       ``X_p``), and sends them to q.
    4. Party q decrypts, unpacks, reduces each slot modulo 2^64 (the slot hid
       ``X_p^T d_q``, below 2^127 in absolute value, up to statistical
       distance 2^-169; modulo 2^64 the shares' wrap-arounds cancel), adds a zero-sum mask shared with the
       other decryptors (so that p learns only the sum over q, not each term)
       and returns 8 bytes per entry to p.
    5. p removes its masks and adds its own ``X_p^T d_p``: the sum modulo 2^64
       is ``X_p^T d`` scaled by ``2^(16+f)``; ``g_p = X_p^T d / B`` and
       ``w_p -= lr (g_p + l2 w_p)`` (no decay on the intercept).

    Fixed-point budget: the sums modulo 2^64 are exact while
    ``|X_p^T d| 2^(16+f) < 2^62``. Batches whose column sums break it even for
    ``|d| <= 1`` are refused; with ``"taylor"`` (``d`` unbounded) a party
    whose ``|u_p|`` outgrows its share of the budget stops the training with
    "the training diverged" rather than let a gradient wrap.

    Security: semi-honest, no third party (with ``"taylor"``, or
    ``"piecewise"`` on a dealer-free preprocessing source). A party sees the
    others' residual shares only under their keys (IND-CPA), what it decrypts
    only under uniform masks, and the secure comparison only as uniform
    openings. What leaks, as in FATE: each party learns its own gradient
    ``X_p^T d`` per batch (which says something about the residuals, hence
    the labels, projected on its own columns), and its own weights; and every
    party learns the others' row and column counts and the power of two of
    their largest per-batch column sum.

    Cost per mini-batch of B rows, k parties, d_p columns, 2048-bit keys
    (512-byte ciphertexts): 3 rounds, plus the comparison's with
    ``"piecewise"`` (8 for 2 parties, 9 for 3; on an on-demand OT source as
    many again to make its preprocessing); party p sends each other party q
    ``512 B + 512 ceil(d_p / 6) + 8 d_q`` bytes, plus about ``130 B`` per row
    for the comparison. Work: B encryptions, ``(k-1) B d_p``
    plain-ciphertext products, ``(k-1) ceil(d_p/6)`` re-randomising
    encryptions, ``sum_q ceil(d_q/6)`` decryptions.
    """
    if activation not in _ACTIVATIONS:
        raise ParameterError(f"activation must be one of {_ACTIVATIONS}, not {activation!r}")
    lr = (1.0 if activation == "piecewise" else 0.5) if lr is None else lr
    X, y = _check_training(party, X, y, label_party, epochs, lr, "epochs")
    if activation == "piecewise" and party.preprocessing is None:
        raise ParameterError("activation='piecewise' compares on secret shares and needs a "
                             "preprocessing source: mpc.run(..., preprocessing='ot') for two parties "
                             "without a third, or 'dealer'; or use activation='taylor'")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    X, mean, scale = _standardize(X, standardize)
    is_label = party.id == label_party
    Xa = np.hstack([X, np.ones((len(X), 1))]) if is_label else X  # last column: the intercept
    n, d = Xa.shape
    # |X_p^T d| 2^(16+f) must stay below 2^62 for the sums modulo 2^64 to be exact. With
    # "piecewise" |d| <= 1; with "taylor" |d| <= sum_q |u_q| + 1, so every |u_q| is capped
    # using the largest column sum of any party (each announces only its power of two).
    batch_sums = np.add.reduceat(np.abs(Xa), np.arange(0, n, batch_size), axis=0)
    col_exp = max(0, math.ceil(math.log2(max(float(batch_sums.max(initial=0.0)), 1.0))))
    budget = 2.0 ** (62 - _FRAC - party.fixed.frac_bits)
    if 2.0 ** col_exp >= budget:
        raise ParameterError(f"party {party.id}: a column of a batch sums to about 2^{col_exp} in "
                             f"absolute value, beyond the fixed-point budget 2^{math.log2(budget):.0f}; "
                             "use smaller batches or standardize=True")
    X_int = np.rint(Xa * float(1 << _FRAC)).astype(np.int64)
    keys = paillier.keygen(key_bits, insecure_for_testing=insecure_for_testing)
    with party.scope(party.fresh("vertical-paillier")), party.phase("vertical/train-paillier"):
        key_msg = np.frombuffer(keys.public.serialize(), dtype=np.uint8)
        got = party.exchange("setup", key_msg, np.array([n, d, col_exp], dtype=np.int64))
        pubs, widths, exps = {}, {}, [col_exp]
        for q, msg in got.items():
            if len(msg) != 2 or msg[1].dtype != np.int64 or msg[1].shape != (3,):
                raise ProtocolError(f"party {party.id}: malformed setup message from party {q}")
            kq, (rows_q, width_q, exp_q) = msg[0], (int(v) for v in msg[1])
            if rows_q != n:
                raise ParameterError(f"party {party.id}: party {q} has a different row count "
                                     f"({rows_q} vs {n}); align the rows first")
            if width_q < 1 or not 0 <= exp_q < 62:
                raise ProtocolError(f"party {party.id}: party {q} announced {width_q} columns "
                                    f"and column sums of 2^{exp_q}")
            if kq.dtype != np.uint8 or kq.ndim != 1:
                raise ProtocolError(f"party {party.id}: malformed public key from party {q}")
            pubs[q] = paillier.PaillierPublicKey.load(kq.tobytes(),
                                                      insecure_for_testing=insecure_for_testing)
            widths[q] = width_q
            exps.append(exp_q)
        u_cap = (budget / 2.0 ** max(exps) - 1) / party.n
        seeds = _pair_seeds(party)
        w = np.zeros(d)
        l2 = 1.0 / n if l2 is None else float(l2)
        decay = np.full(d, l2)
        if is_label:
            decay[-1] = 0.0
        y_ring = party.fixed.encode(y) if is_label else None
        scale_out = 2.0 ** -(_FRAC + party.fixed.frac_bits)
        step = 0
        for _ in range(epochs):
            for start in range(0, n, batch_size):
                rows = slice(start, start + batch_size)
                u = Xa[rows] @ w / 4 + (0.5 if is_label else 0.0)                   # step 1
                if activation == "taylor" and np.abs(u).max(initial=0.0) >= u_cap:
                    raise ParameterError(f"party {party.id}: the training diverged (|z_p/4| reached "
                                         f"{np.abs(u).max():.3g}); lower lr")
                share = _residual_share(party, u, y_ring[rows] if y_ring is not None else None, activation)
                grad = _gradient(party, keys, pubs, widths, seeds, X_int[rows], share, step)
                w -= lr * (grad * scale_out / len(u) + decay * w)
                step += 1
                if progress is not None:
                    progress(1)
    return VerticalModel(weights=w[:-1] if is_label else w, intercept=float(w[-1]) if is_label else 0.0,
                         mean=mean, scale=scale, method="paillier", label_party=label_party)


def _residual_share(party: Party, u: np.ndarray, y_ring: np.ndarray | None, activation: str) -> np.ndarray:
    """This party's share in ``Z_2^64`` of ``sigma(z) - y`` (step 1 of :func:`fit_paillier`)."""
    try:
        encoded = party.fixed.encode(u)
    except EncodingError as exc:
        raise ParameterError(f"party {party.id}: the training diverged ({exc}); lower lr") from None
    if activation == "taylor":
        share = encoded
    else:
        share = SharedTensor(party, encoded, party.fixed.frac_bits).clip(0.0, 1.0).share
    return share - y_ring if y_ring is not None else share


def _pair_seeds(party: Party) -> dict[int, bytes]:
    """A fresh 16-byte seed shared with each other party (the smaller id draws it)."""
    seeds: dict[int, Any] = {}
    if party.n < 3:
        return seeds
    for q in party.peers:
        if party.id < q:
            seeds[q] = random_seed()
            party.send(q, "pair-seed", np.frombuffer(seeds[q], dtype=np.uint8))
    for q in party.peers:
        if q < party.id:
            (s,) = party.recv(q, "pair-seed")
            if s.dtype != np.uint8 or s.shape != (16,):
                raise ProtocolError(f"party {party.id}: malformed seed from party {q}")
            seeds[q] = s.tobytes()
    return seeds


def _zero_sum_mask(party: Party, seeds: dict[int, bytes], target: int, step: int,
                   count: int) -> np.ndarray:
    """This decryptor's part of masks that sum to 0 mod 2^64 over all decryptors for ``target``."""
    total = np.zeros(count, dtype=np.uint64)
    for r, seed in seeds.items():
        if r == target:
            continue
        vals = PRG(derive_seed(seed, "vertical-mask", step * party.n + target)).uint64(count)
        total = total + vals if party.id < r else total - vals
    return total


def _gradient(party: Party, keys: Any, pubs: dict, widths: dict, seeds: dict[int, bytes],
              x_int: np.ndarray, share: np.ndarray, step: int) -> np.ndarray:
    """``X_p^T d`` scaled by ``2^(16+f)``, by steps 2-5 of :func:`fit_paillier` (float64)."""
    rows, d = x_int.shape
    enc = keys.public.encrypt(share)                                            # step 2
    party.send_many(party.peers, "residual", np.frombuffer(enc.serialize(), dtype=np.uint8))
    masks = {}
    for q in party.peers:                                                       # step 3
        raw = _recv_one(party, q, "residual")
        theirs = _load_cts(pubs[q], raw, (rows,), f"party {party.id}: residuals of party {q}")
        prod = theirs.__rmatmul__(x_int.T)
        masks[q] = [_OFFSET + r for r in _random_bits(party.prg, d, _MASK_BITS)]
        packed = pack_encrypted(prod, _MASKED, masks[q])
        party.send(q, "masked-gradient", np.frombuffer(packed.serialize(), dtype=np.uint8))
    for p in party.peers:                                                       # step 4
        raw = _recv_one(party, p, "masked-gradient")
        slots = _open_masked(keys, raw, widths[p], f"party {party.id}: gradient of party {p}")
        party.send(p, "unmasked", slots + _zero_sum_mask(party, seeds, p, step, widths[p]))
    total = x_int.T.view(np.uint64) @ share                                     # step 5
    for q in party.peers:
        back = _recv_one(party, q, "unmasked")
        if back.dtype != np.uint64 or back.shape != (d,):
            raise ProtocolError(f"party {party.id}: from party {q}: expected ({d},) uint64, "
                                f"got {back.dtype} {back.shape}")
        total = total + back - np.array([m % _RING for m in masks[q]], dtype=np.uint64)
    return total.view(np.int64).astype(np.float64)


def _recv_one(party: Party, frm: int, name: str) -> np.ndarray:
    return party.recv_checked(frm, name, [ArraySpec()])[0]


def _load_cts(public: Any, arr: np.ndarray, shape: tuple[int, ...], what: str) -> Any:
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ProtocolError(f"{what}: expected serialized ciphertexts (1-D uint8)")
    try:
        enc = public.load_ciphertexts(arr.tobytes())
    except (IntegrityError, EncodingError) as exc:
        raise ProtocolError(f"{what}: {exc}") from exc
    if enc.shape != shape:
        raise ProtocolError(f"{what}: expected {shape} ciphertexts, got {enc.shape}")
    return enc


def _random_bits(prg: PRG, count: int, bits: int) -> list[int]:
    width = (bits + 7) // 8
    raw = prg.bytes(width * count)
    return [int.from_bytes(raw[k:k + width], "big") >> (8 * width - bits)
            for k in range(0, len(raw), width)]


def _open_masked(keys: Any, raw: np.ndarray, count: int, what: str) -> np.ndarray:
    """Decrypt a peer's packed masked gradient: its ``count`` slots modulo 2^64 (uint64)."""
    try:
        packed = PackedArray.load(keys.public, raw.tobytes())
    except (IntegrityError, EncodingError) as exc:
        raise ProtocolError(f"{what}: {exc}") from exc
    if packed.packing != _MASKED or packed.length != count or packed.weight != 1:
        raise ProtocolError(f"{what}: expected {count} masked values in {_MASKED}, got "
                            f"{packed.length} in {packed.packing} (weight {packed.weight})")
    try:
        slots = decrypt_packed(keys.secret, packed)
    except EncodingError as exc:
        raise ProtocolError(f"{what}: a packed value is out of range (a slot overflowed)") from exc
    return np.array([int(v) % _RING for v in slots], dtype=np.uint64)


def fit_plain_minibatch(blocks: Sequence[np.ndarray], y: np.ndarray, *, epochs: int = 20,
                        batch_size: int = 64, lr: float | None = None, l2: float | None = None,
                        standardize: bool = True, activation: str = "piecewise") -> tuple[np.ndarray, float]:
    """:func:`fit_paillier`'s algorithm in the clear (mini-batches, same defaults): (w, b)."""
    if activation not in _ACTIVATIONS:
        raise ParameterError(f"activation must be one of {_ACTIVATIONS}, not {activation!r}")
    lr = (1.0 if activation == "piecewise" else 0.5) if lr is None else lr
    X = np.concatenate([_standardize(_check_X(b), standardize)[0] for b in blocks], axis=1)
    y = _check_y(y, len(X))
    n = len(X)
    l2 = 1.0 / n if l2 is None else float(l2)
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(epochs):
        for start in range(0, n, batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            u = (xb @ w + b) / 4 + 0.5
            r = (np.clip(u, 0.0, 1.0) if activation == "piecewise" else u) - yb
            w = w - lr * (xb.T @ r / len(xb) + l2 * w)
            b -= lr * r.mean()
    return w, b


# -- prediction -----------------------------------------------------------------------------------
def predict_proba(party: Party, X: Any, model: VerticalModel) -> np.ndarray | None:
    """P(y = 1) for aligned rows ``X`` (this party's columns); the label party gets it, others None.

    Each party secret-shares its partial logits, the shares are summed and only
    the label party opens the sum (1 round to share, 1 to open; ``8 n`` bytes
    per peer each), then applies the exact sigmoid.
    """
    u = model.partial_logits(X)
    with party.scope(party.fresh("vertical-predict")), party.phase("vertical/predict"):
        # only summed and opened: any bound whose n-fold sum fits the fixed-point range
        parts = mpc.share_all(party, u, bound=party.fixed.max_abs / (2 * party.n))
        if any(p.shape != parts[0].shape for p in parts):
            raise ParameterError(f"party {party.id}: the parties predict different numbers of rows: "
                                 f"{[p.shape for p in parts]}")
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        z = total.reveal(to=model.label_party)
    if z is None:
        return None
    return 1.0 / (1.0 + np.exp(-z))
