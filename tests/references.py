"""What tests and benchmarks hold the library against: the real notMNIST_small archive, and
J with its gradient written as the formulas read. Light imports, so benchmarks use them too."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from notmnist.plumbing.contracts import REPOSITORY


def real_archive() -> Path:
    """The real notMNIST_small archive: the path in the environment variable NOTMNIST_SMALL,
    else notMNIST_small.tar.gz at the repository root."""
    return Path(os.environ.get("NOTMNIST_SMALL") or REPOSITORY / "notMNIST_small.tar.gz")


def loss_and_grad_plain(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """The same J and gradient as softmax.loss_and_grad, written as the formulas read
    (float64): the reference that the fast, class-major, in-place version is tested against."""
    import scipy.special

    X, W, b = (np.asarray(a, dtype=np.float64) for a in (X, W, b))
    n = len(X)
    P = scipy.special.softmax(X @ W + b, axis=1)
    Y = np.eye(W.shape[1])[y]
    J = -np.log(P[np.arange(n), y]).mean() + 0.5 * l2 * np.sum(W * W)
    return float(J), X.T @ (P - Y) / n + l2 * W, (P - Y).sum(axis=0) / n
