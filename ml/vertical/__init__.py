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

Modules: :mod:`~ml.vertical.align` (PSI alignment), :mod:`~ml.vertical.ss_train`
(:func:`fit_ss`), :mod:`~ml.vertical.paillier_train` (:func:`fit_paillier`, its
per-batch steps in :mod:`~ml.vertical.paillier_steps`), :mod:`~ml.vertical.reference`
(the plaintext references), :mod:`~ml.vertical.predict`, :mod:`~ml.vertical.common`
(the model, input checks, standardisation).

Federated *transfer* learning (different rows as well as different columns,
few rows in common): :func:`fit_ftl` in :mod:`~ml.vertical.ftl`.
"""

from .align import align
from .common import VerticalModel, sigmoid_piecewise
from .ftl import FTLModel, fit_ftl, fit_ftl_plain
from .paillier_train import fit_paillier
from .predict import predict_proba
from .reference import fit_plain, fit_plain_minibatch
from .ss_train import fit_ss

__all__ = ["FTLModel", "VerticalModel", "align", "fit_ftl", "fit_ftl_plain", "fit_paillier", "fit_plain",
           "fit_plain_minibatch", "fit_ss", "predict_proba", "sigmoid_piecewise"]
