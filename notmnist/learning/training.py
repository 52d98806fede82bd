"""Fitting the softmax model and measuring it: minibatch SGD with one of the optimizers, or
L-BFGS to the exact optimum.

The objective J(W, b) and its gradient are in notmnist.learning.softmax; the SGD loop in
notmnist.learning.sgd, its update rules in notmnist.learning.optimizers; the exact optimum
in notmnist.learning.lbfgs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from notmnist.learning import lbfgs, optimizers, sgd, softmax
from notmnist.learning.fitting import Diverged, Fit
from notmnist.learning.settings import Minibatch, Objective
from notmnist.plumbing import parallel


def train(
    optimizer: str,
    rate: float | None,
    minibatch: Minibatch,
    objective: Objective,
    X: np.ndarray,
    y: np.ndarray,
    Xv: np.ndarray,
    yv: np.ndarray,
    n_classes: int,
    *,
    optimum_gap: bool = False,
    progress: bool = True,
    start: lbfgs.Weights | None = None,
) -> tuple[Fit, dict]:
    """Fit with `optimizer` (an SGD variant at `rate`, or L-BFGS from `start`, default zeros)
    and measure: (fit, report). The report has how far it trained (fit.counts()); the train
    objective J (with the optimum J* and the gap J - J* if optimum_gap); valid accuracy and
    loss. How long it took is in fit.seconds_per_epoch: it differs every run, so it is no metric.

    BLAS runs on one thread: the per-batch products are too small to split, and
    notmnist.plumbing.parallel splits the large ones itself.
    """
    with parallel.blas_threads(1):
        if optimizer in optimizers.REGISTRY:
            assert rate is not None, "an SGD variant needs a learning rate"
            fit = sgd.fit(optimizer, rate, minibatch, objective.l2, X, y, Xv, yv, n_classes, progress)
        else:
            fit = lbfgs.fit(X, y, Xv, yv, n_classes, objective.l2, objective.lbfgs_max_iter, start)
        if not (np.isfinite(fit.W).all() and np.isfinite(fit.b).all()):
            raise Diverged("training produced non-finite weights")
        J = softmax.objective(X, y, fit.W, fit.b, objective.l2)[0]
        valid_loss, valid_acc = softmax.loss_and_accuracy(Xv, yv, fit.W, fit.b)
        metrics: dict[str, Any] = {
            "optimizer": optimizer,
            "learning_rate": None if fit.exact else rate,
            **fit.counts(),
            "train": {"n": len(X), "objective": J},
            "valid": {"n": len(Xv), "accuracy": valid_acc, "loss": valid_loss},
        }
        if optimum_gap:
            best = J
            if not fit.exact:  # from the trained weights: fewer iterations than from zero
                limit = objective.lbfgs_max_iter
                _, _, best = lbfgs.minimize(X, y, n_classes, objective.l2, limit, start=(fit.W, fit.b))
            metrics["train"].update(optimum=best, optimum_gap=J - best)
    return fit, metrics
