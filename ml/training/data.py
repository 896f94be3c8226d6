"""The two data sets of the training example, benchmark and tests (layer: ml).

scikit-learn's breast cancer (30 features, 2 classes) and digits (64 pixels,
10 classes), split 75/25 stratified with ``random_state=0``; breast cancer
standardized by the training rows' mean and deviation and clipped to
``[-8, 8]`` (so ``input_bound=8`` holds), digits scaled to ``[0, 1]``. Needs
scikit-learn (the ``sklearn`` extra).
"""

from __future__ import annotations

import numpy as np

from mpc.errors import ParameterError
from mpc.optional import require

DATASETS = ("cancer", "digits")


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)`` of ``"cancer"`` or ``"digits"``."""
    if name not in DATASETS:
        raise ParameterError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    require("sklearn", "sklearn", "the training data sets (ml.training.data)")
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split

    X, y = (load_breast_cancer if name == "cancer" else load_digits)(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    if name == "digits":
        return Xtr / 16.0, ytr, Xte / 16.0, yte
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    return np.clip((Xtr - mu) / sd, -8, 8), ytr, np.clip((Xte - mu) / sd, -8, 8), yte
