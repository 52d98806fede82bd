"""The exact optimum of J(W, b) by scipy's L-BFGS-B: the yardstick the SGD variants are measured against.

J is convex, so L-BFGS-B with the analytic gradient (in float64) finds its minimum J*;
the start changes how many iterations that takes, not where it ends. Its one knob is
`objective.lbfgs_max_iter`. One curve row per iteration (the validation loss and accuracy
of the iterate); it has no learning rate, and its counts are iterations, not epochs.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from notmnist.learning import softmax
from notmnist.learning.fitting import Fit
from notmnist.plumbing.params import integer

NAME = "lbfgs"
MAX_ITER = integer(1, None)  # the check of objective.lbfgs_max_iter

Weights = tuple[np.ndarray, np.ndarray]


def minimize(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    l2: float,
    max_iter: int,
    callback: Callable[[np.ndarray, np.ndarray, float], None] | None = None,
    start: Weights | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """argmin J(W, b) from start = (W, b) (None: W = 0, b = 0); callback(W, b, J) after
    every iteration. Returns (W, b, J) at the optimum."""
    import scipy.optimize  # here, not at the top: it takes a second to import and SGD never needs it

    d = X.shape[1]

    def unpack(theta: np.ndarray) -> Weights:
        return theta[:-n_classes].reshape(d, n_classes), theta[-n_classes:]

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        loss, dW, db = softmax.objective(X, y, *unpack(theta), l2)
        return loss, np.concatenate([dW.ravel(), db])

    def each_iteration(intermediate_result: Any) -> None:
        if callback is not None:  # scipy passes the iterate by this parameter name
            callback(*unpack(intermediate_result.x), intermediate_result.fun)

    theta = np.zeros(d * n_classes + n_classes) if start is None else np.concatenate([np.ravel(start[0]), start[1]])
    result = scipy.optimize.minimize(
        fun,
        theta.astype(np.float64),
        jac=True,
        method="L-BFGS-B",
        callback=each_iteration,
        # maxcor 50 (scipy's default 10): a longer memory of curvature pairs needs fewer
        # iterations on this ill-conditioned objective (docs/benchmarks.md)
        options={"maxiter": max_iter, "maxfun": 2 * max_iter, "ftol": 1e-10, "gtol": 1e-6, "maxcor": 50},
    )
    return *unpack(result.x), float(result.fun)


def fit(
    X: np.ndarray,
    y: np.ndarray,
    Xv: np.ndarray,
    yv: np.ndarray,
    n_classes: int,
    l2: float,
    max_iter: int,
    start: Weights | None = None,
) -> Fit:
    """The exact optimum of J (from `start`, see minimize), with one curve row
    (validation loss and accuracy) per iteration."""
    curve: list[tuple] = []

    def record(W: np.ndarray, b: np.ndarray, loss: float) -> None:
        valid_loss, valid_acc = softmax.loss_and_accuracy(Xv, yv, W.astype(np.float32), b.astype(np.float32))
        curve.append((len(curve) + 1, len(curve) + 1, math.nan, loss, valid_loss, valid_acc))

    started = time.perf_counter()
    W, b, _ = minimize(X, y, n_classes, l2, max_iter, record, start)
    iterations = max(len(curve), 1)
    return Fit(
        W=W.astype(np.float32),
        b=b.astype(np.float32),
        best_epoch=iterations,
        epochs_run=iterations,
        seconds_per_epoch=(time.perf_counter() - started) / iterations,
        curve=curve,
        exact=True,
    )
