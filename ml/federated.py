"""Federated training: FedAvg and FedProx over a pluggable secure aggregator, with DP (layer: ml).

:func:`train` runs the whole simulation in one process:

1. **Sample** ``clients_per_round`` clients uniformly without replacement.
2. **Local training**: each sampled client copies the global model and runs
   ``local_epochs`` epochs of mini-batch SGD on its own data (with ``mu > 0``
   the FedProx proximal term ``mu/2 ||w - w_global||^2``; Li et al. 2020).
3. **Upload**: the client's update ``delta_k = w_k - w_global`` is sent as
   ``[p_k * delta_k, p_k]`` with ``p_k = n_k / weight_cap`` (its sample count
   over a public cap), so the weights travel inside the secure sum and the
   server never learns one client's count. Optional: L2 clipping and DP noise
   (:class:`DPConfig`), compression with error feedback (plaintext only).
4. **Dropouts**: each sampled client drops out mid-protocol with probability
   ``dropout``; the aggregator sums the survivors. A round whose aggregation
   aborts (too few survivors) leaves the model unchanged and training goes on.
5. **Server update**: ``w_global += server_lr * sum_k p_k delta_k / sum_k p_k``
   (FedAvg, McMahan et al. 2017; server learning rate as in Reddi et al. 2021).
6. **Metrics**: loss and accuracy on the held-out set, bytes per client, time,
   epsilon so far, in a :class:`History` (JSON, PNG plot).

Sampling, shuffling and dropout simulation come from :mod:`mpc.rand` seeded by
``seed``, so two runs with the same seed and different aggregators see the same
clients, batches and dropouts: their accuracy differs only by the aggregators'
numerical error. DP noise is drawn from fresh OS randomness unless
``DPConfig.noise_seed`` is given (tests only).

Security
--------
With a secure aggregator the server learns, per round, which clients took
part, the sum of their weighted updates and the sum of their weights, and
nothing else (see each aggregator's threat model). With ``DPConfig("central")``
the server adds N(0, (z C)^2) to that sum itself, so it must be trusted to do
so (it sees the exact sum); with ``"distributed"`` each client adds discrete
Gaussian noise before the secure sum, so nobody sees a less noisy value. The
accountant composes the rounds without subsampling amplification (clients are
sampled without replacement, not by Poisson sampling): the reported epsilon is
an upper bound. Distributed noise is accounted with the round's actual number
of surviving (noise-adding) clients.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from mpc.dp import (DistributedDiscreteGaussian, GaussianMechanism, PrivacyAccountant,
                    clip_by_l2_norm, discrete_gaussian, uniform01)
from mpc.dp.accountant import noise_multiplier_for
from mpc.errors import ParameterError, ProtocolAbort
from mpc.optional import available, require
from mpc.rand import PRG, derive_seed, random_seed

from .aggregators import AggregationResult, Aggregator, make_aggregator
from .compression import Compressor, ErrorFeedback
from .models import Model

Dataset = tuple[np.ndarray, np.ndarray]

MAX_DELTA = 0.01
"""Largest delta a :class:`DPConfig` accepts (the analytics queries use the same bound)."""
MAX_EPSILON = 50.0
"""Largest target epsilon a :class:`DPConfig` accepts: beyond it the guarantee is void."""


@dataclass(frozen=True)
class DPConfig:
    """Client-level differential privacy for the training run.

    Parameters
    ----------
    mode:
        ``"central"``: the server adds N(0, (z C)^2) to the sum (DP-FedAvg;
        trusts the server to add it). ``"distributed"``: every client adds
        discrete Gaussian noise before the secure sum (no one sees a less noisy
        value; Kairouz et al. 2021).
    clip:
        L2 bound C on each client's update.
    epsilon, delta:
        Target privacy after all rounds; the noise multiplier z is solved for.
        Alternatively give ``noise_multiplier`` (then ``epsilon`` is reported).
    scale:
        Distributed mode: quantization scale (integers per unit); by default
        ``16 sqrt(d) / C`` so that rounding adds about 6% to the sensitivity.
    noise_seed:
        Fixed noise seed for reproducible tests; ``None`` (default) draws from
        the OS CSPRNG.

    With DP every client has weight 1 (each contribution is bounded by C; a
    sample-count weight would multiply the sensitivity). Distributed noise is
    planned for :func:`planned_survivors` of the round's clients (all of them
    without dropouts); a round with fewer survivors is skipped before its sum
    is revealed, so the target epsilon holds under dropouts too.

    The guarantee is user-level (McMahan et al. 2018), for one client's
    update replaced by zero ("zero-out" adjacency): the L2 sensitivity of the
    sum is C. Who took part in a round is not hidden (the server sees it, and
    the weight entry counts the survivors exactly). For replacing one
    client's data by another the sensitivity doubles, i.e. the reported
    epsilon holds for noise z / 2. Distributed mode needs a secure
    aggregator (the plaintext server would see each client's noisy update).
    """

    mode: str = "central"
    clip: float = 1.0
    epsilon: float | None = 8.0
    delta: float = 1e-5
    noise_multiplier: float | None = None
    scale: float | None = None
    noise_seed: bytes | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("central", "distributed"):
            raise ParameterError("DP mode must be 'central' or 'distributed'")
        if not (self.clip > 0 and math.isfinite(self.clip)):
            raise ParameterError(f"clip must be positive and finite, got {self.clip!r}")
        if not 0 < self.delta < MAX_DELTA:
            raise ParameterError(f"delta must be in (0, {MAX_DELTA}), got {self.delta!r}: a larger delta "
                                 "allows the mechanism to fail outright that often")
        if (self.epsilon is None) == (self.noise_multiplier is None):
            raise ParameterError("give exactly one of epsilon and noise_multiplier")
        if self.epsilon is not None and not 0 < self.epsilon <= MAX_EPSILON:
            raise ParameterError(f"epsilon must be in (0, {MAX_EPSILON}], got {self.epsilon!r}")
        if self.noise_multiplier is not None and not self.noise_multiplier > 0:
            raise ParameterError("noise_multiplier must be positive")


@dataclass
class RoundMetrics:
    """What one round produced.

    ``seconds`` is the whole round (local training included); ``server_seconds``
    the server's part of the aggregation and ``client_seconds`` one client's
    (mean); ``bytes_per_client`` what one client sent and received.
    """

    round: int
    loss: float
    accuracy: float
    sampled: int
    survivors: int
    bytes_per_client: float
    seconds: float
    server_seconds: float
    client_seconds: float = 0.0
    epsilon: float | None = None
    skipped: bool = False
    note: str = ""
    upload_bytes: int | None = None
    dense_bytes: int | None = None


@dataclass
class History:
    """Per-round metrics of a run; saves to JSON and plots to PNG."""

    aggregator: str
    config: dict[str, Any]
    rounds: list[RoundMetrics] = field(default_factory=list)
    initial: tuple[float, float] | None = None
    last_result: AggregationResult | None = field(default=None, repr=False, compare=False)
    """The last round's aggregation (with the server's transcript); not saved to JSON."""

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy if self.rounds else float("nan")

    @property
    def accuracy(self) -> list[float]:
        return [r.accuracy for r in self.rounds]

    def to_dict(self) -> dict[str, Any]:
        return {"aggregator": self.aggregator, "config": self.config,
                "initial": list(self.initial) if self.initial else None, "rounds": [asdict(r) for r in self.rounds]}

    def save_json(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2))
        return p

    @classmethod
    def load_json(cls, path: str | Path) -> "History":
        d = json.loads(Path(path).read_text())
        init = tuple(d["initial"]) if d.get("initial") else None
        return cls(d["aggregator"], d["config"], [RoundMetrics(**r) for r in d["rounds"]],
                   init)  # type: ignore[arg-type]

    def plot(self, path: str | Path, others: Sequence["History"] = (),
             title: str | None = None) -> Path:
        """Accuracy and loss against rounds (this run and ``others``) as a PNG."""
        matplotlib = require("matplotlib", "plot", "History.plot")
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for i, h in enumerate((self, *others)):
            xs = [r.round for r in h.rounds]
            acc = [100 * r.accuracy for r in h.rounds]
            loss = [r.loss for r in h.rounds]
            if h.initial is not None:  # round 0: the initial model
                xs, loss, acc = [0, *xs], [h.initial[0], *loss], [100 * h.initial[1], *acc]
            style = dict(marker="o." [i % 2], linestyle="-" if i == 0 else "--",
                         markersize=5 if i == 0 else 3, label=h.config.get("label", h.aggregator))
            ax1.plot(xs, acc, **style)
            ax2.plot(xs, loss, **style)
        ax1.set(xlabel="round", ylabel="held-out accuracy (%)", title="accuracy")
        ax2.set(xlabel="round", ylabel="held-out cross-entropy", title="loss")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        return p


def _permutation(prg: PRG, n: int) -> np.ndarray:
    return np.argsort(prg.uint64(n), kind="stable")


def local_train(model: Model, data: Dataset, epochs: int, batch_size: int, lr: float,
                prg: PRG, mu: float = 0.0) -> Model:
    """Client side: ``epochs`` of mini-batch SGD from ``model`` (copied); FedProx if mu > 0."""
    X, y = data
    local = model.copy()
    center = model.params if mu > 0 else None
    n = X.shape[0]
    for _ in range(epochs):
        order = _permutation(prg, n)
        for start in range(0, n, batch_size):
            b = order[start: start + batch_size]
            local.step(X[b], y[b], lr, prox_center=center, mu=mu)
    return local


def _ddg_epsilon(ddg: DistributedDiscreteGaussian, rounds: int, delta: float) -> float:
    acc = PrivacyAccountant()
    acc.add_zcdp(ddg.zcdp(), steps=rounds)
    return acc.epsilon(delta)


def _solve_ddg(dp: DPConfig, dim: int, n: int, rounds: int, scale: float
               ) -> DistributedDiscreteGaussian:
    def make(z: float) -> DistributedDiscreteGaussian:
        return DistributedDiscreteGaussian(dp.clip, scale, dim, z, n)

    def epsilon(z: float) -> float:
        if (z * dp.clip * scale) ** 2 / n < 0.25 * (1 + 1e-9):
            return math.inf       # each client's share of the noise is below what KLS21 covers
        return _ddg_epsilon(make(z), rounds, dp.delta)

    if dp.noise_multiplier is not None:
        return make(dp.noise_multiplier)
    target = float(dp.epsilon)  # type: ignore[arg-type]
    lo = noise_multiplier_for(target, dp.delta, rounds) * 0.5
    hi = lo * 4
    while epsilon(hi) > target:
        hi *= 2
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if epsilon(mid) <= target else (mid, hi)
    return make(hi)


def _client_uploads(deltas: dict[int, np.ndarray], sizes: list[int], cap: int,
                    dp: DPConfig | None, ddg: DistributedDiscreteGaussian | None,
                    noise_prg: PRG) -> dict[int, np.ndarray]:
    """Each client's vector for the secure sum: ``[w_k * delta_k, w_k]``.

    Without DP, w_k = n_k / cap. With DP every w_k = 1 and the update is clipped
    to C (central) or clipped, scaled, rounded and noised by the client
    (distributed). The clients' discrete Gaussian noises are drawn in one
    vectorised batch (one independent row per client) because the exact sampler
    has a large per-call overhead; each row is added before the row leaves its client.
    """
    ids = sorted(deltas)
    if dp is None:
        return {k: np.concatenate([sizes[k] / cap * deltas[k], [sizes[k] / cap]]) for k in ids}
    if ddg is None:
        return {k: np.concatenate([clip_by_l2_norm(deltas[k], dp.clip)[0], [1.0]]) for k in ids}
    rows = np.stack([clip_by_l2_norm(deltas[k], ddg.clip)[0] for k in ids]) * ddg.scale
    low = np.floor(rows)
    rounded = low + (uniform01(noise_prg, rows.size).reshape(rows.shape) < rows - low)
    noise = discrete_gaussian(noise_prg, ddg.client_variance, rows.size).reshape(rows.shape)
    noisy = rounded + noise.astype(np.float64)
    return {k: np.concatenate([noisy[i], [1.0]]) for i, k in enumerate(ids)}


def planned_survivors(m: int, dropout: float) -> int:
    """Fewest survivors of a round of ``m`` that distributed DP plans its noise for.

    About two standard deviations below the expected ``m (1 - dropout)``
    (Binomial), so that few rounds fall short; a round that does is skipped
    before the sum is revealed, and the noise of every released sum is at
    least the planned one.
    """
    if dropout <= 0:
        return m
    spread = 2.0 * math.sqrt(m * dropout * (1.0 - dropout))
    return max(1, math.floor(m * (1.0 - dropout) - spread))


def _dp_plan(dp: DPConfig | None, dim: int, m: int, rounds: int, update_clip: float
             ) -> tuple[GaussianMechanism | None, DistributedDiscreteGaussian | None, float]:
    """The run's mechanism and the public bound on every summed entry (``m``: the fewest
    noisy survivors a released round has)."""
    if dp is None:
        return None, None, update_clip
    if dp.mode == "central":
        z = dp.noise_multiplier or noise_multiplier_for(float(dp.epsilon), dp.delta, rounds)
        if dp.noise_multiplier is not None:
            acc = PrivacyAccountant()
            acc.add_gaussian(z, steps=rounds)
            _check_run_epsilon(acc.epsilon(dp.delta), z, rounds)
        return GaussianMechanism(dp.clip, z), None, dp.clip
    scale = dp.scale or 16.0 * math.sqrt(dim) / dp.clip
    ddg = _solve_ddg(dp, dim, m, rounds, scale)
    if dp.noise_multiplier is not None:
        _check_run_epsilon(_ddg_epsilon(ddg, rounds, dp.delta), dp.noise_multiplier, rounds)
    sigma = math.sqrt(float(ddg.client_variance))
    return None, ddg, dp.clip * scale + 1 + 12 * sigma  # 12 sigma: tail mass below 1e-32


def _check_run_epsilon(epsilon: float, z: float, rounds: int) -> None:
    """An explicit noise multiplier gets the same bound as a target epsilon."""
    if not epsilon <= MAX_EPSILON:
        raise ParameterError(f"noise_multiplier {z:g} gives epsilon {epsilon:.3g} over {rounds} rounds, "
                             f"above {MAX_EPSILON:g}: a guarantee in name only; add more noise")


def _server_average(res: AggregationResult, mech: GaussianMechanism | None,
                    ddg: DistributedDiscreteGaussian | None,
                    accountant: PrivacyAccountant | None, noise_prg: PRG
                    ) -> tuple[np.ndarray, float]:
    """Server side: (sum of weighted updates, sum of weights) from the aggregate, with
    central noise added or distributed noise decoded, and the round accounted."""
    total = res.total
    if ddg is not None and accountant is not None:
        accountant.add_zcdp(ddg.zcdp(len(res.survivors)))  # noise from the survivors only
        return ddg.decode(np.round(total[:-1])), float(np.round(total[-1]))
    if mech is not None and accountant is not None:
        accountant.add_gaussian(mech.noise_multiplier)
        return mech.apply(noise_prg, total[:-1]), float(np.round(total[-1]))
    return total[:-1], float(total[-1])


class _PlainProgress:
    """The fallback when tqdm is not installed: one line on stderr, rewritten on a terminal."""

    def __init__(self, rounds: int, desc: str) -> None:
        self.rounds, self.desc, self.done, self.postfix = rounds, desc, 0, ""
        self.tty = sys.stderr.isatty()

    def __iter__(self) -> Iterator[int]:
        for r in range(1, self.rounds + 1):
            yield r
            self.done = r
            if self.tty:
                sys.stderr.write(f"\r{self._line()}")
                sys.stderr.flush()

    def _line(self) -> str:
        return f"{self.desc}: round {self.done}/{self.rounds}" + (f" {self.postfix}" if self.postfix else "")

    def set_postfix(self, **values: str) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        sys.stderr.write(("\r" if self.tty else "") + self._line() + "\n")
        sys.stderr.flush()


class _NoProgress(_PlainProgress):
    def __iter__(self) -> Iterator[int]:
        return iter(range(1, self.rounds + 1))

    def close(self) -> None:
        pass


def _progress(rounds: int, desc: str, progress: bool) -> Any:
    """Rounds 1..rounds with a progress bar: tqdm's if installed, else a plain line; none if off.

    ``progress=False`` never imports tqdm (a base install has none).
    """
    if not progress:
        return _NoProgress(rounds, desc)
    if available("tqdm"):
        from tqdm.auto import tqdm
        return tqdm(range(1, rounds + 1), desc=desc)
    return _PlainProgress(rounds, desc)


def train(model: Model, clients: Sequence[Dataset], test: Dataset, *,
          aggregator: str | Aggregator = "plaintext", rounds: int = 10,
          clients_per_round: int | None = None, local_epochs: int = 1, batch_size: int = 32,
          lr: float = 0.1, server_lr: float = 1.0, mu: float = 0.0, dropout: float = 0.0,
          dp: DPConfig | None = None, compression: Compressor | None = None,
          update_clip: float = 10.0, weight_cap: int | None = None, seed: int = 0,
          progress: bool = True, aggregator_options: dict[str, Any] | None = None,
          label: str | None = None,
          on_round: Callable[[RoundMetrics, AggregationResult | None], None] | None = None
          ) -> History:
    """Train ``model`` in place by federated averaging; return the :class:`History`.

    Parameters
    ----------
    model:
        Initial global model (updated in place).
    clients:
        One (X, y) per client; the data never leaves its client's code.
    test:
        Held-out (X, y) evaluated by the server after every round.
    aggregator:
        ``"plaintext"``, ``"secagg"``, ``"secagg+"``, ``"ckks"``, ``"paillier"``
        or an :class:`~ml.aggregators.Aggregator` instance.
    mu:
        FedProx proximal coefficient (0: FedAvg).
    dropout:
        Probability that a sampled client drops out after local training.
    update_clip:
        Without DP, updates are clipped to this L2 norm (a public encoding range
        for the secure sum; generous so it rarely binds).
    weight_cap:
        Public upper bound on a client's sample count (default: the largest
        client's count), so that weights p_k = n_k / weight_cap lie in (0, 1].
        The secure aggregators have a fixed absolute precision (2^-20 to 2^-25),
        so a cap far above the clients' counts costs accuracy (warned above 64x).
    progress:
        A progress bar on stderr, one line left when training ends: tqdm's with the
        ``progress`` extra (``pip install 'concilium[progress]'``), else a plain
        ``label: round r/R acc=...`` line. ``False`` prints nothing and imports no tqdm.
    aggregator_options:
        Keyword arguments of the aggregator chosen by name.
    on_round:
        Called after every round with its metrics and aggregation result (None
        for a skipped round), e.g. to narrate what the server received.
    """
    if rounds < 1 or local_epochs < 1 or batch_size < 1:
        raise ParameterError("rounds, local_epochs and batch_size must be at least 1")
    if not lr > 0 or not server_lr > 0 or mu < 0 or not 0 <= dropout < 1:
        raise ParameterError("need lr > 0, server_lr > 0, mu >= 0, 0 <= dropout < 1")
    if not clients:
        raise ParameterError("need at least one client")
    n_clients = len(clients)
    m = n_clients if clients_per_round is None else clients_per_round
    if not 1 <= m <= n_clients:
        raise ParameterError(f"clients_per_round must be in [1, {n_clients}]")
    agg = make_aggregator(aggregator, **(aggregator_options or {}))
    if m < agg.min_survivors:
        raise ParameterError(f"{agg.name} needs at least {agg.min_survivors} clients per round "
                             "(a sum of one client is that client's update)")
    if dp is not None and dp.mode == "distributed" and agg.name == "plaintext":
        raise ParameterError("distributed DP needs a secure aggregator: the plaintext server would "
                             "see each upload with only its client's share of the noise (use "
                             "aggregator='secagg+', or DPConfig('central'))")
    if compression is not None and agg.name != "plaintext":
        raise ParameterError("compression applies to plaintext uploads; secure aggregation "
                             "sums dense vectors (use the aggregator's own encoding)")
    if compression is not None and dp is not None:
        raise ParameterError("compression and DP together are not supported")
    sizes = [int(X.shape[0]) for X, _ in clients]
    if min(sizes) < 1:
        raise ParameterError("every client needs at least one example")
    cap = max(sizes) if weight_cap is None else weight_cap
    if cap < max(sizes):
        raise ParameterError("weight_cap is below a client's sample count")
    if dp is None and cap > 64 * max(sizes):
        warnings.warn(f"weight_cap {cap} is {cap // max(sizes)}x the largest client's count: every "
                      f"weighted update is that much smaller and loses about "
                      f"{math.log2(cap / max(sizes)):.0f} bits of the secure aggregators' fixed-point "
                      "precision; choose a cap close to the largest client", stacklevel=2)
    dim = model.n_params
    master = derive_seed(b"concilium.ml.federated", "seed", int(seed) % (1 << 64))

    noisy_min = planned_survivors(m, dropout)
    mech, ddg, bound = _dp_plan(dp, dim, noisy_min, rounds, update_clip)
    accountant = PrivacyAccountant() if dp is not None else None
    noise_prg = PRG(dp.noise_seed if dp and dp.noise_seed else random_seed())
    agg.setup(n_clients, dim + 1, max(bound, 1.0))  # the weight entry is at most 1
    agg.check_round_size(m)
    feedback = {k: ErrorFeedback(compression) for k in range(n_clients)} if compression else {}
    config = dict(aggregator=agg.name, rounds=rounds, clients=n_clients, clients_per_round=m,
                  local_epochs=local_epochs, batch_size=batch_size, lr=lr, server_lr=server_lr,
                  mu=mu, dropout=dropout, seed=seed, dp=None if dp is None else dp.mode,
                  noise_multiplier=None if dp is None else (mech.noise_multiplier if mech else
                                                            ddg.noise_multiplier),
                  label=label or agg.name)
    history = History(agg.name, config, initial=model.evaluate(*test))

    bar = _progress(rounds, label or agg.name, progress)
    for r in bar:
        t0 = time.perf_counter()
        rprg = PRG(derive_seed(master, "round", r))
        chosen = np.sort(_permutation(rprg, n_clients)[:m])
        drops = {int(k) for k, u in zip(chosen, rprg.uint64(m)) if u < dropout * 2.0 ** 64}
        deltas: dict[int, np.ndarray] = {}
        upload = dense = 0
        for k in chosen:
            k = int(k)
            local = local_train(model, clients[k], local_epochs, batch_size, lr,
                                PRG(derive_seed(master, f"client/{k}", r)), mu)
            delta = local.params - model.params
            if dp is None:
                delta, _ = clip_by_l2_norm(delta, update_clip)
                if compression is not None:   # the sent vector keeps the clip bound
                    msg, delta = feedback[k].step(noise_prg, delta, clip=update_clip,
                                                  delivered=k not in drops)
                    upload += msg.nbytes
                    dense += msg.dense_bytes
            deltas[k] = delta
        vectors = _client_uploads(deltas, sizes, cap, dp, ddg, noise_prg)
        note, skipped, res = "", False, None
        if ddg is not None and len(chosen) - len(drops) < noisy_min:
            # Survivors are known once the masked inputs are in, before the sum is revealed.
            note, skipped = (f"round skipped: {len(chosen) - len(drops)} survivors, fewer than the "
                             f"{noisy_min} the distributed noise is planned for"), True
        else:
            try:
                res = agg.aggregate(vectors, dropped=drops)
            except ProtocolAbort as exc:  # too few survivors: skip the round, keep training
                note, skipped = f"round skipped: {exc}", True
        if res is not None:
            history.last_result = res
            summed, count = _server_average(res, mech, ddg, accountant, noise_prg)
            if count > 0:
                model.set_params(model.params + server_lr * summed / count)
        loss, acc = model.evaluate(*test)
        eps = accountant.epsilon(dp.delta) if accountant is not None and dp is not None else None
        metrics = RoundMetrics(
            round=r, loss=loss, accuracy=acc, sampled=m,
            survivors=len(res.survivors) if res else 0,
            bytes_per_client=res.bytes_per_client if res else 0.0,
            seconds=time.perf_counter() - t0, server_seconds=res.server_seconds if res else 0.0,
            client_seconds=res.client_seconds if res else 0.0,
            epsilon=eps, skipped=skipped, note=note,
            upload_bytes=upload if compression else None,
            dense_bytes=dense if compression else None)
        history.rounds.append(metrics)
        if on_round is not None:
            on_round(metrics, res)
        bar.set_postfix(acc=f"{acc:.3f}")
    bar.close()
    return history


__all__ = ["DPConfig", "Dataset", "History", "RoundMetrics", "local_train", "planned_survivors", "train"]
