"""Train an MLP on secret-shared data: party code, data splits and an in-process runner (layer: ml).

:func:`private_train` is party code (every party calls it, SPMD);
:func:`secure_train` runs it for 2 or more parties in this process with
:func:`mpc.run`. The data may be split three ways (``split=``):

* ``"rows"`` (horizontal): each party holds some rows ``(X_i, y_i)`` (any
  number, 0 included); the row counts are public.
* ``"columns"`` (vertical): each party holds some columns of the same rows,
  the ``label_owner`` also the labels. Rows are aligned first by DH-PSI
  (:func:`ml.vertical.align`) when the parties pass their row ``ids``.
* ``"outsourced"``: data owners hand their rows to 2 or 3 compute parties;
  here the compute parties that hold no data pass ``None`` (as rows).

Protocol
--------
1. Every party secret-shares its data in one round (``share_all``: one seed
   per peer); the labels as one-hot rows. Features are declared within the
   public ``input_bound`` (each owner checks its own).
2. The model starts from a public seeded initialization (the same as the
   float reference of :mod:`ml.training.reference`), as trivial shares.
3. For each epoch, a public permutation from the public seed orders the
   rows; each batch of ``batch_size`` rows runs a forward pass on a
   :class:`~ml.training.autograd.Tape`, the softmax cross-entropy's backward
   pass and one :class:`~ml.training.nn.SGD` step, all on shares.
4. The trained weights stay shared: :meth:`Sequential.network` opens them
   to the parties named, :meth:`Sequential.inference_weights` feeds
   :func:`ml.inference.secure.forward` without opening them.

Security
--------
Semi-honest, any ``n - 1`` parties colluding, given the preprocessing (the
trusted dealer by default, a third party that must not collude; ``"ot"``
is dealer-free). Every message is a seed, or a value masked by fresh
preprocessing (Beaver openings, truncation and comparison masks), so a
party's view is independent of the others' data (tested statistically on a
training step). Public: the architecture, the hyperparameters and schedule,
the number of rows each party holds (or the columns, for a vertical split),
``input_bound``, and the public bounds the plan derives from them. Nothing
about the data or the weights is opened until :meth:`Sequential.network`.

Cost
----
Per step of a ``d -> h -> k`` ReLU MLP, batch ``B``, ``n`` parties
(``L`` carry-save layers of a comparison, 0 for ``n = 2``): forward 2 + (L + 8)
+ 2 rounds and the softmax, ``(ceil(log2 k) + 2)(L + 8) + 35`` (for ``k = 2``
a sigmoid of the logit difference, ``L + 40``); backward 1 + 2 + 2 + 1 + 2;
SGD 1 (momentum) + 1 (lr), plus ``L + 8`` when the weights are clipped.
Measured (``python -m bench train``): 69 rounds per step for 30-64-2 with 2
parties, 112 for 64-128-10. Bytes: three matrix products per layer
(``8 (B d + d h)`` opened, ``8 B h`` truncated, per peer), about ``64`` bytes per
element of each ReLU and each clipped weight (twice), and the softmax; the
weight clip is the largest part for 64-128-10 (9,472 weights against
4,096 ReLU inputs per step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

import mpc
from mpc.errors import ParameterError
from mpc.rand import PRG, derive_seed
from mpc.sharing.tensor import SharedTensor, concatenate

from .autograd import Tape, softmax_cross_entropy
from .nn import SGD, Sequential, public_init
from .plan import Plan, plan

if TYPE_CHECKING:
    from mpc.party import Party

SPLITS = ("rows", "columns", "outsourced")


@dataclass(frozen=True)
class TrainConfig:
    """The public schedule of a training run (every party passes the same)."""

    sizes: tuple[int, ...]
    activation: str = "relu"
    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.1
    momentum: float = 0.0
    seed: int = 0
    input_bound: float = 8.0
    weight_bound: float | None = 4.0
    clip_every: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        if len(self.sizes) < 2 or min(self.sizes) < 1 or self.sizes[-1] < 2:
            raise ParameterError(f"sizes must be at least (inputs, classes >= 2), got {self.sizes}")
        if self.epochs < 1 or self.batch_size < 1 or self.clip_every < 1:
            raise ParameterError(f"need epochs, batch_size and clip_every >= 1, got {self.epochs}, "
                                 f"{self.batch_size}, {self.clip_every}")
        if not (self.lr > 0 and np.isfinite(self.lr)) or not 0 <= self.momentum < 1:
            raise ParameterError(f"need lr > 0 and 0 <= momentum < 1, got lr={self.lr}, momentum={self.momentum}")

    @property
    def classes(self) -> int:
        return self.sizes[-1]

    def plan(self, rows: int, frac_bits: int) -> Plan:
        """The worst-case bounds of this schedule on ``rows`` rows (RangeError if one overflows)."""
        init = max(float(np.max(np.abs(w), initial=0.0)) for pair in public_init(self.sizes, self.seed)
                   for w in pair)
        return plan(self.sizes, activation=self.activation, input_bound=self.input_bound, init_bound=init,
                    lr=self.lr, momentum=self.momentum, batch_size=self.batch_size,
                    steps=self.epochs * len(batches(rows, self.batch_size, self.seed, 0)),
                    frac_bits=frac_bits, weight_bound=self.weight_bound, clip_every=self.clip_every)


def batches(rows: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The public order of epoch ``epoch``: a seeded permutation cut into batches (the last may be short)."""
    prg = PRG(derive_seed(b"concilium.ml.training", f"order/{int(seed)}", epoch))
    order = np.argsort(prg.uint64((rows,)), kind="stable")
    return [order[s:s + batch_size] for s in range(0, rows, batch_size)]


def one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() >= classes or np.any(y != np.round(y)))):
        raise ParameterError(f"labels must be a 1-D array of integers in 0..{classes - 1}")
    return np.eye(classes)[y.astype(np.int64)]


@dataclass
class Data:
    """One party's part of the training data: features, labels (or None) and row IDs (or None)."""

    X: np.ndarray | None = None
    y: np.ndarray | None = None
    ids: Any = None


def _shared_rows(party: Party, data: Data, config: TrainConfig) -> tuple[SharedTensor, SharedTensor]:
    """Horizontal / outsourced: every party shares its rows and labels; rows stacked by party."""
    d, k = config.sizes[0], config.classes
    X = np.zeros((0, d)) if data.X is None else np.asarray(data.X, dtype=np.float64)
    y = np.zeros(0, dtype=np.int64) if data.y is None else np.asarray(data.y)
    if X.ndim != 2 or X.shape[1] != d or y.shape != (X.shape[0],):
        raise ParameterError(f"party {party.id}: needs X of shape (n, {d}) and y of shape (n,), got "
                             f"{X.shape} and {y.shape}")
    xs = mpc.share_all(party, X, bound=config.input_bound)
    ys = mpc.share_all(party, one_hot(y, k), bound=1.0)
    for i, (xi, yi) in enumerate(zip(xs, ys)):
        if xi.ndim != 2 or xi.shape[1] != d or yi.shape != (xi.shape[0], k):
            raise ParameterError(f"party {party.id}: party {i} shared data of shape {xi.shape} and labels "
                                 f"{yi.shape}; the model needs (n, {d}) and (n, {k})")
    keep = [i for i in range(party.n) if xs[i].shape[0]]
    if not keep:
        raise ParameterError("no party holds any training rows")
    return concatenate([xs[i] for i in keep]), concatenate([ys[i] for i in keep])


def _shared_columns(party: Party, data: Data, config: TrainConfig, label_owner: int
                    ) -> tuple[SharedTensor, SharedTensor]:
    """Vertical: every party shares its columns of the common rows (PSI-aligned if ``ids`` given)."""
    X = None if data.X is None else np.asarray(data.X, dtype=np.float64)
    y = data.y
    if data.ids is not None:
        from ml.vertical import align

        _, rows = align(party, data.ids, label_party=label_owner)
        X = None if X is None else X[rows]
        y = None if y is None else np.asarray(y)[rows]
    if X is None or X.ndim != 2:
        raise ParameterError(f"party {party.id}: a vertical split needs this party's columns as a 2-D X")
    xs = mpc.share_all(party, X, bound=config.input_bound)
    n = xs[0].shape[0]
    if any(x.shape[0] != n for x in xs) or sum(x.shape[1] for x in xs) != config.sizes[0]:
        raise ParameterError(f"party {party.id}: column blocks of shapes {[x.shape for x in xs]} do not "
                             f"make {n} aligned rows of {config.sizes[0]} features")
    if party.id == label_owner and (y is None or np.shape(y) != (n,)):
        raise ParameterError(f"party {party.id} is the label owner but has no labels for its {n} rows")
    labels = mpc.share(party, one_hot(np.asarray(y), config.classes) if party.id == label_owner else None,
                       label_owner, bound=1.0)
    return concatenate(xs, axis=1), labels


@dataclass
class Epoch:
    """What one epoch cost, as this party saw it."""

    seconds: float
    rounds: int
    bytes_sent: int
    loss: float | None = None
    cpu_seconds: float = 0.0   # process CPU time over the epoch: every party thread and the dealer


@dataclass
class Trained:
    """A party's result of :func:`private_train`: the shared model, the plan and per-epoch costs."""

    model: Sequential
    plan: Plan
    epochs: list[Epoch] = field(default_factory=list)


def private_train(party: Party, data: Data | None, config: TrainConfig, *, split: str = "rows",
                  label_owner: int = 0, track_loss: bool = False) -> Trained:
    """Party code: train ``config``'s MLP on the parties' data split by ``split``; the model stays shared.

    ``data``: this party's part (None: nothing, e.g. a compute party of an
    outsourced run). ``track_loss`` opens the mean loss of each epoch's last
    batch to every party (a leak of one number per epoch; off by default).
    """
    if split not in SPLITS:
        raise ParameterError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if not 0 <= label_owner < party.n:
        raise ParameterError(f"label_owner {label_owner} out of range: parties are 0..{party.n - 1}")
    data = data or Data()
    with party.scope("train"):
        with party.phase("train/data"):
            if split == "columns":
                X, Y = _shared_columns(party, data, config, label_owner)
            else:
                X, Y = _shared_rows(party, data, config)
        schedule = config.plan(X.shape[0], party.fixed.frac_bits)
        model = Sequential.mlp(party, config.sizes, config.activation, seed=config.seed)
        opt = SGD(model.parameters(), config.lr, config.momentum, config.weight_bound, config.clip_every)
        out = Trained(model, schedule)
        with party.phase("train"):
            _epochs(party, model, opt, X, Y, config, track_loss, out)
        return out


def _epochs(party: Party, model: Sequential, opt: SGD, X: SharedTensor, Y: SharedTensor,
            config: TrainConfig, track_loss: bool, out: Trained) -> None:
    for epoch in range(config.epochs):
        start = _clock(party)
        loss = None
        order = batches(X.shape[0], config.batch_size, config.seed, epoch)
        for j, idx in enumerate(order):
            tape = Tape()
            node = softmax_cross_entropy(model.forward(tape.leaf(X[idx], requires_grad=False)), Y[idx],
                                         with_loss=track_loss and j == len(order) - 1)
            tape.backward(node)
            model.collect()
            opt.step()
            if track_loss and j == len(order) - 1:
                loss = float(np.asarray(node.value.reveal()))
        end = _clock(party)
        out.epochs.append(Epoch(end[0] - start[0], end[1] - start[1], end[2] - start[2], loss,
                                end[3] - start[3]))


def _clock(party: Party) -> tuple[float, int, int, float]:
    """(time, this party's round counter, bytes it has sent, process CPU time): differences give an
    epoch's cost."""
    return time.perf_counter(), party.clock, sum(m.payload_bytes for m in party.log), time.process_time()


def private_accuracy(party: Party, model: Sequential, X: np.ndarray | None, y: np.ndarray | None, *,
                     owner: int = 0, input_bound: float = 8.0) -> float | None:
    """Accuracy of the *shared* model on ``owner``'s test set, run by :func:`ml.inference.secure.forward`.

    Nothing about the weights is opened; only the predicted labels, to ``owner``.
    """
    from ml.inference.secure import forward

    xs = mpc.share(party, None if X is None else np.asarray(X, dtype=np.float64), owner, bound=input_bound)
    scores = forward(model.skeleton(), model.inference_weights(), xs)
    labels = scores.argmax(axis=1).reveal(to=owner)
    if party.id != owner:
        return None
    return float(np.mean(np.asarray(labels) == np.asarray(y)))


@dataclass
class TrainResult:
    """What :func:`secure_train` returns: the opened network, test accuracy, costs and the plan."""

    network: Any
    accuracy: float | None
    cost: mpc.Cost
    epochs: list[Epoch]
    plan: Plan
    parties: int


def secure_train(parts: Sequence[Data | None], config: TrainConfig, *, split: str = "rows",
                 label_owner: int = 0, test: tuple[np.ndarray, np.ndarray] | None = None,
                 frac_bits: int = 16, preprocessing: Any = "dealer", latency: float = 0.0,
                 timeout: float = 600.0, track_loss: bool = False) -> TrainResult:
    """Run :func:`private_train` for ``len(parts)`` parties in this process, then open the model.

    ``test``: ``(X, y)`` held by party 0, scored on shares with the still-shared model
    (:func:`private_accuracy`) before the weights are opened to every party.
    """
    res = mpc.run(_program, len(parts), inputs=list(parts),
                  kwargs={"config": config, "split": split, "label_owner": label_owner, "test": test,
                          "track_loss": track_loss},
                  frac_bits=frac_bits, preprocessing=preprocessing, latency=latency, timeout=timeout)
    net, acc, trained = res.outputs[0]
    return TrainResult(net, acc, res.cost, trained.epochs, trained.plan, len(parts))


def _program(party: Party, data: Data | None, *, config: TrainConfig, split: str, label_owner: int,
             test: tuple[np.ndarray, np.ndarray] | None, track_loss: bool) -> tuple[Any, float | None, Trained]:
    trained = private_train(party, data, config, split=split, label_owner=label_owner, track_loss=track_loss)
    acc = None
    if test is not None:
        acc = private_accuracy(party, trained.model, test[0] if party.id == 0 else None,
                               test[1] if party.id == 0 else None, input_bound=config.input_bound)
    return trained.model.network(), acc, trained
