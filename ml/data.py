"""Data partitioning for federated simulations: IID and Dirichlet non-IID (layer: ml).

Simulated data only: the splits use ``numpy.random.default_rng(seed)``, which
is fine for simulations (never for secrets), and are reproducible from the seed.

* :func:`partition_iid` -- shuffle and cut into near-equal parts;
* :func:`partition_dirichlet` -- for every label, split its examples among the
  clients in proportions drawn from Dirichlet(alpha): small alpha gives clients
  dominated by few labels (Hsu, Qi, Brown 2019), large alpha approaches IID;
* :func:`split_clients` -- apply a partition to (X, y);
* :func:`train_test_split` -- a seeded stratified held-out split;
* :func:`standardize` -- feature scaling fitted on the training part.
"""

from __future__ import annotations

import numpy as np

from mpc.errors import ParameterError


def _simulation_rng(seed: int) -> "np.random.Generator":  # noqa: TID251 -- simulated
    """The generator of simulated data splits (simulated, never a secret)."""
    return np.random.default_rng(seed)  # noqa: TID251 -- simulated data only


def _check(n_samples: int, n_clients: int) -> None:
    if n_clients < 1:
        raise ParameterError("need at least one client")
    if n_samples < n_clients:
        raise ParameterError(f"{n_samples} samples cannot give {n_clients} non-empty clients")


def partition_iid(n_samples: int, n_clients: int, seed: int = 0) -> list[np.ndarray]:
    """Indices of ``n_samples`` shuffled and cut into ``n_clients`` near-equal parts."""
    _check(n_samples, n_clients)
    rng = _simulation_rng(seed)
    return [np.sort(p) for p in np.array_split(rng.permutation(n_samples), n_clients)]


def partition_dirichlet(labels: np.ndarray, n_clients: int, alpha: float = 0.5,
                        seed: int = 0, min_size: int = 2) -> list[np.ndarray]:
    """Non-IID partition: per label, Dirichlet(alpha) proportions over the clients.

    Draws are repeated (a bounded number of times) until every client holds at
    least ``min_size`` examples, as in the usual benchmark code.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ParameterError("labels must be 1-D")
    _check(y.size, n_clients)
    if not alpha > 0:
        raise ParameterError("alpha must be positive")
    if min_size * n_clients > y.size:
        raise ParameterError("min_size * n_clients exceeds the number of samples")
    rng = _simulation_rng(seed)
    classes = np.unique(y)
    for _ in range(1000):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            props = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(props)[:-1] * idx.size).astype(int)
            for k, piece in enumerate(np.split(idx, cuts)):
                parts[k].append(piece)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(p.size for p in out) >= min_size:
            return out
    raise ParameterError("could not reach min_size per client; raise alpha or lower min_size")


def split_clients(X: np.ndarray, y: np.ndarray,
                  parts: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Apply index parts to (X, y): one (X_k, y_k) per client."""
    X, y = np.asarray(X), np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ParameterError("X and y have different lengths")
    return [(X[p], y[p]) for p in parts]


def train_test_split(X: np.ndarray, y: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified split: (X_train, y_train, X_test, y_test).

    Each class sends ``round(test_fraction * n_c)`` of its ``n_c`` rows to the
    test set, at least one and at most ``n_c - 1`` (a class with one row stays
    in training), so small classes make the test share larger than asked.
    """
    if not 0 < test_fraction < 1:
        raise ParameterError("test_fraction must be in (0, 1)")
    X, y = np.asarray(X), np.asarray(y)
    rng = _simulation_rng(seed)
    test = [np.empty(0, dtype=np.int64)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        take = min(idx.size - 1, max(1, int(round(test_fraction * idx.size))))
        test.append(idx[:take])
    mask = np.zeros(y.size, dtype=bool)
    mask[np.concatenate(test)] = True
    if mask.all() or not mask.any():
        raise ParameterError(f"a test fraction of {test_fraction} leaves an empty "
                             f"{'training' if mask.all() else 'test'} set for these {y.size} rows")
    return X[~mask], y[~mask], X[mask], y[mask]


def standardize(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale features to zero mean, unit variance using the training statistics.

    A constant column (its float std is rounding noise, e.g. 1e-17 for 0.1)
    is only centred, not divided by that noise.
    """
    mu = X_train.mean(axis=0)
    sd = X_train.std(axis=0)
    sd[(np.ptp(X_train, axis=0) == 0) | (sd == 0)] = 1.0
    return [(X_train - mu) / sd, *[(o - mu) / sd for o in others]]
