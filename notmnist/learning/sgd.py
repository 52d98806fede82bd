"""Minibatch training of J(W, b) with one of the optimizers and a learning-rate schedule: the loop.

Each epoch visits the training rows in a fresh seeded random order, batch_size rows per
update (notmnist.learning.batches gathers them); after each epoch the validation loss
decides early stopping (`patience`), and the weights of the best epoch are the ones kept.
"""

from __future__ import annotations

import math
import time

import numpy as np
from tqdm import tqdm

from notmnist.learning import optimizers, schedules, softmax
from notmnist.learning.batches import Batches
from notmnist.learning.fitting import Diverged, Fit
from notmnist.learning.settings import Minibatch
from notmnist.plumbing.errors import ParamError

DIVERGED = 100.0  # a loss this many times that of a uniform guess (log K) means divergence


def fit(
    optimizer_name: str,
    rate: float,
    settings: Minibatch,
    l2: float,
    X: np.ndarray,
    y: np.ndarray,
    Xv: np.ndarray,
    yv: np.ndarray,
    n_classes: int,
    progress: bool = True,
) -> Fit:
    """Minibatch SGD with the optimizer `optimizer_name`, starting at learning rate `rate`."""
    n = X.shape[0]
    if settings.batch_size > n:
        raise ParamError(
            f"minibatch.batch_size: bad value {settings.batch_size}; allowed: at most the {n} rows of the train split"
        )
    X = np.asarray(X)  # a plain view of a memmap: fancy indexing without memmap overhead
    steps_per_epoch = math.ceil(n / settings.batch_size)
    lr_at = schedules.make_schedule(
        settings.schedule,
        rate,
        decay=settings.decay_rate,
        decay_steps=settings.decay_epochs * steps_per_epoch,
        staircase=settings.staircase,
        total_steps=settings.epochs * steps_per_epoch,
    )
    optimizer = optimizers.make(optimizer_name, settings.optimizer)
    rng = np.random.default_rng(settings.seed)
    theta, W, b = initial_weights(X.shape[1], n_classes, settings.init_sigma, rng)
    grad, dW, db = flat_zeros(W.shape)
    batches = Batches(X, y, settings.batch_size)
    limit = DIVERGED * math.log(n_classes)

    best_loss, best_epoch, best_W, best_b = math.inf, 0, W.copy(), b.copy()
    curve, seconds, t, epoch, lr = [], 0.0, 0, 0, rate
    # disable=None: a bar on a terminal only
    bar = tqdm(
        range(1, settings.epochs + 1), desc=f"train {optimizer_name}", unit="epoch", disable=not progress or None
    )
    for epoch in bar:
        started = time.perf_counter()
        total = 0.0
        for idx, rows in batches.epoch(rng.permutation(n)):
            lr = lr_at(t)
            loss = batches.gradient(idx, rows, W, b, l2, (dW, db))
            if not loss < limit:  # also catches NaN; what to change depends on who chose the rate: the caller adds it
                raise Diverged(f"training diverged in epoch {epoch} (step {t + 1}: loss {loss:.3g})")
            optimizer.step([theta], [grad], lr)  # W and b are views of theta, dW and db of grad
            total += loss * len(idx)
            t += 1
        seconds += time.perf_counter() - started

        valid_loss, valid_acc = softmax.loss_and_accuracy(Xv, yv, W, b)
        curve.append((epoch, t, lr, total / n, valid_loss, valid_acc))
        bar.set_postfix(valid_loss=f"{valid_loss:.4f}", valid_acc=f"{valid_acc:.4f}")
        if valid_loss < best_loss:
            best_loss, best_epoch, best_W, best_b = valid_loss, epoch, W.copy(), b.copy()
        elif settings.patience and epoch - best_epoch >= settings.patience:
            break
    bar.close()
    return Fit(best_W, best_b, best_epoch, epoch, seconds / epoch, curve)


def initial_weights(
    n_features: int, n_classes: int, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(theta, W, b): W ~ N(0, sigma^2) elementwise and b = 0, float32, as views of one vector
    theta, so that the optimizer updates all weights with one set of array operations per step."""
    W = rng.normal(0.0, sigma, size=(n_features, n_classes)).astype(np.float32)
    theta = np.concatenate([W.ravel(), np.zeros(n_classes, dtype=np.float32)])
    return theta, theta[: W.size].reshape(W.shape), theta[W.size :]


def flat_zeros(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat, M, v): a float32 vector and its views as a shape matrix and a shape[1] vector."""
    size = shape[0] * shape[1]
    flat = np.empty(size + shape[1], dtype=np.float32)
    return flat, flat[:size].reshape(shape), flat[size:]
