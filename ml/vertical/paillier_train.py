"""Vertical logistic regression with Paillier-encrypted gradients, FATE hetero-LR style (layer: ml).

:func:`fit_paillier` runs set-up once (keys, row and column counts, the
fixed-point budget, pair seeds), then one step per mini-batch
(:mod:`ml.vertical.paillier_steps`).

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

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from mpc.errors import ParameterError, ProtocolError
from mpc.he import paillier

from .common import _ACTIVATIONS, VerticalModel, _check_training, _standardize
from .paillier_steps import _FRAC, _gradient, _pair_seeds, _residual_share

if TYPE_CHECKING:
    from mpc.party import Party


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

    The protocol per mini-batch, its fixed-point budget, security and cost are
    described in :mod:`ml.vertical.paillier_train`.
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
    col_exp, budget = _column_budget(party, Xa, batch_size)
    keys = paillier.keygen(key_bits, insecure_for_testing=insecure_for_testing)
    with party.scope(party.fresh("vertical-paillier")), party.phase("vertical/train-paillier"):
        pubs, widths, exps = _exchange_setup(party, keys, Xa.shape, col_exp, insecure_for_testing)
        u_cap = (budget / 2.0 ** max(exps) - 1) / party.n
        w = _train(party, keys, pubs, widths, _pair_seeds(party), Xa, y if is_label else None,
                   epochs=epochs, batch_size=batch_size, lr=lr, l2=l2, activation=activation,
                   u_cap=u_cap, progress=progress)
    return VerticalModel(weights=w[:-1] if is_label else w, intercept=float(w[-1]) if is_label else 0.0,
                         mean=mean, scale=scale, method="paillier", label_party=label_party)


def _column_budget(party: Party, Xa: np.ndarray, batch_size: int) -> tuple[int, float]:
    """(power of two bounding this party's per-batch column sums of ``|X_p|``, the fixed-point budget)."""
    n = len(Xa)
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
    return col_exp, budget


def _exchange_setup(party: Party, keys: Any, shape: tuple[int, int], col_exp: int,
                    insecure_for_testing: bool) -> tuple[dict, dict, list[int]]:
    """Step 0: send this party's public key, row and column counts and column-sum exponent;
    check the others'. Returns (public keys, column counts, exponents including this party's)."""
    n, d = shape
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
    return pubs, widths, exps


def _train(party: Party, keys: Any, pubs: dict, widths: dict, seeds: dict[int, bytes], Xa: np.ndarray,
           y: np.ndarray | None, *, epochs: int, batch_size: int, lr: float, l2: float | None,
           activation: str, u_cap: float, progress: Callable[[int], None] | None) -> np.ndarray:
    """Steps 1-5 for every mini-batch of every epoch; returns this party's weights (intercept last
    at the label party, whose ``y`` is not None)."""
    is_label = y is not None
    n, d = Xa.shape
    X_int = np.rint(Xa * float(1 << _FRAC)).astype(np.int64)
    w = np.zeros(d)
    l2 = 1.0 / n if l2 is None else float(l2)
    decay = np.full(d, l2)
    if is_label:
        decay[-1] = 0.0
    y_ring = party.fixed.encode(y) if y is not None else None
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
    return w
