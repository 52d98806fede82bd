"""Fitting the softmax model: minibatch SGD (and its helpers) or L-BFGS to the exact optimum.

The objective J(W, b) and its gradient are in notmnist.learning.softmax; the update rules in
notmnist.learning.optimizers; the learning-rate schedules in notmnist.learning.schedules.

Each epoch visits the training rows in a fresh seeded random order, batch_size rows per
update; after each epoch the validation loss decides early stopping (`patience`), and the
weights of the best epoch are the ones kept. `lbfgs` instead minimizes the same J to its
optimum with scipy's L-BFGS-B (one curve row per iteration): the yardstick the SGD
variants are measured against.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from notmnist.learning import optimizers, schedules, softmax
from notmnist.plumbing import parallel
from notmnist.plumbing.errors import ParamError, UserError
from notmnist.plumbing.params import boolean, choice, either, integer, number, positive

TRAIN = {  # section train: the model that evaluate scores
    "optimizer": choice(*optimizers.NAMES, "lbfgs"),
    "learning_rate": either(positive(), "best"),  # best: the sweep's best rate for the optimizer
    "report_optimum_gap": boolean(),
}
MINIBATCH = {  # section minibatch
    "schedule": choice(*schedules.NAMES),
    "decay_rate": positive(),
    "decay_epochs": positive(),
    "staircase": boolean(),
    "momentum": number(0, 1, hi_open=True),
    "rho": number(0, 1, hi_open=True),
    "beta1": number(0, 1, hi_open=True),
    "beta2": number(0, 1, hi_open=True),
    "epsilon": positive(),
    "batch_size": integer(1, None),
    "epochs": integer(1, None),
    "patience": integer(0, None),
    "init_sigma": number(0, None),
    "seed": integer(0, 2**32 - 1),
}
OBJECTIVE = {  # section objective
    "l2": number(0, None),
    "lbfgs_max_iter": integer(1, None),
}

CURVE_COLUMNS = ("epoch", "step", "lr", "train_loss", "valid_loss", "valid_accuracy")
DIVERGED = 100.0  # a loss this many times that of a uniform guess (log K) means divergence
SPLIT_BATCH = 512  # a batch at least this large is differentiated in two halves at once
BLOCK_ROWS = 1024  # rows gathered at once, ahead of the batches that train on them


class Diverged(UserError):
    pass


@dataclass
class Fit:
    W: np.ndarray
    b: np.ndarray
    best_epoch: int  # for lbfgs: iterations
    epochs_run: int
    seconds_per_epoch: float
    curve: list[tuple] = field(default_factory=list)  # one row of CURVE_COLUMNS per epoch


def initial_weights(
    n_features: int, n_classes: int, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """W ~ N(0, sigma^2) elementwise, b = 0, both float32."""
    W = rng.normal(0.0, sigma, size=(n_features, n_classes)).astype(np.float32)
    return W, np.zeros(n_classes, dtype=np.float32)


class Batches:
    """An epoch's minibatches: the rows of each, gathered from X (which may be a memory map)
    into reused buffers, and their loss and gradient.

    The rows of the next BLOCK_ROWS or so are gathered in a background thread while the
    current ones train (numpy's gather releases the GIL, so it runs on the other core): on
    2 cores the gather, a third of a batch-128 step, disappears from the epoch's time
    (`gathered`). The batches are the same either way, row for row. A batch of SPLIT_BATCH rows or more is
    differentiated in two halves on two threads at once (parallel.map_chunks); the halves'
    means, weighted by their sizes, are the batch's loss and gradient.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, batch: int) -> None:
        self.X, self.y, self.batch = X, y, batch
        self.per_block = max(1, BLOCK_ROWS // batch)
        self.buffers = [np.empty((batch * self.per_block, X.shape[1]), dtype=np.float32) for _ in range(2)]

    def epoch(self, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(idx, rows) of each batch of `order`, batch_size rows at a time; idx is sorted (the
        gather then reads memory in order) and rows = X[idx], valid until the next block."""
        whole = len(order) // self.batch * self.batch  # the full batches, sorted in one call
        batches = [*np.sort(order[:whole].reshape(-1, self.batch), axis=1), np.sort(order[whole:])]
        batches = [idx for idx in batches if len(idx)]
        blocks = [batches[i : i + self.per_block] for i in range(0, len(batches), self.per_block)]
        for block, rows in zip(blocks, self.gathered(blocks)):
            at = 0
            for idx in block:
                yield idx, rows[at : at + len(idx)]
                at += len(idx)

    def gathered(self, blocks: list[list[np.ndarray]]) -> Iterator[np.ndarray]:
        """The rows of each block: gathered one block ahead by a background thread, or in
        turn in a process meant to keep one core busy (a worker of runs.run_all, one per
        core), where a second thread only competes with the other workers (with a gather
        thread each, their epochs took 4-13% longer in five rounds of four runs at 370k rows)."""
        if parallel.threads() == 1:
            for block in blocks:
                yield self.gather(block, self.buffers[0])
            return
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self.gather, blocks[0], self.buffers[0])
            for j in range(len(blocks)):
                rows = pending.result()
                if j + 1 < len(blocks):
                    pending = pool.submit(self.gather, blocks[j + 1], self.buffers[(j + 1) % 2])
                yield rows

    def gather(self, block: list[np.ndarray], buffer: np.ndarray) -> np.ndarray:
        idx = np.concatenate(block)
        # mode="clip": the indices are valid, and the default "raise" gathers into a
        # temporary first and copies that into `out`
        return np.take(self.X, idx, axis=0, out=buffer[: len(idx)], mode="clip")

    def gradient(self, idx: np.ndarray, rows: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float, out: tuple) -> float:
        """J on one batch (rows = X[idx]); its gradient goes into out = (dW, db)."""
        n = len(idx)
        if n < SPLIT_BATCH:
            return softmax.loss_and_grad(rows, self.y[idx], W, b, l2, out)[0]

        def half(lo: int, hi: int):
            loss, dW, db = softmax.loss_and_grad(rows[lo:hi], self.y[idx[lo:hi]], W, b, 0.0)
            share = (hi - lo) / n
            return share * loss, dW * np.float32(share), db * np.float32(share)

        (l0, dW0, db0), (l1, dW1, db1) = parallel.map_chunks(half, n, -(-n // 2))
        dW, db = out
        np.add(dW0, dW1, out=dW)
        dW += np.float32(l2) * W
        np.add(db0, db1, out=db)
        return l0 + l1 + 0.5 * l2 * float(np.vdot(W, W))


def fit_sgd(
    X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, n_classes: int, settings: dict, progress: bool = True
) -> Fit:
    """Minibatch training of J(W, b) with the optimizer and schedule that `settings` (the
    train section of params.yaml) name.

    Rows are gathered block by block into two reused buffers (Batches), so X may be a
    memory map larger than the memory we want to use.
    """
    n = X.shape[0]
    X = np.asarray(X)  # a plain view of a memmap: fancy indexing without memmap overhead
    batch = min(settings["batch_size"], n)
    steps_per_epoch = math.ceil(n / batch)
    lr_at = schedules.make_schedule(
        settings["schedule"],
        settings["learning_rate"],
        decay=settings["decay_rate"],
        decay_steps=settings["decay_epochs"] * steps_per_epoch,
        staircase=settings["staircase"],
        total_steps=settings["epochs"] * steps_per_epoch,
    )
    optimizer = optimizers.make_optimizer(
        settings["optimizer"],
        momentum=settings["momentum"],
        rho=settings["rho"],
        beta1=settings["beta1"],
        beta2=settings["beta2"],
        eps=settings["epsilon"],
    )
    rng = np.random.default_rng(settings["seed"])
    W, b = initial_weights(X.shape[1], n_classes, settings["init_sigma"], rng)
    # W and b are views of one vector, and so are their gradients: the optimizer updates
    # all weights with one set of array operations per step, not one per array
    theta, grad = np.concatenate([W.ravel(), b]), np.empty(W.size + b.size, dtype=np.float32)
    W, b = theta[: W.size].reshape(W.shape), theta[W.size :]
    gradients = grad[: W.size].reshape(W.shape), grad[W.size :]
    limit = DIVERGED * math.log(n_classes)
    batches = Batches(X, y, batch)

    best = (math.inf, 0, W.copy(), b.copy())
    curve, seconds, t, epoch = [], 0.0, 0, 0
    bar = tqdm(
        range(1, settings["epochs"] + 1),
        desc=f"train {settings['optimizer']}",
        unit="epoch",
        disable=None if progress else True,  # None: only on a terminal
        leave=False,
    )
    for epoch in bar:
        started = time.perf_counter()
        order = rng.permutation(n)
        total = 0.0
        for idx, rows in batches.epoch(order):
            lr = lr_at(t)
            loss = batches.gradient(idx, rows, W, b, settings["l2"], gradients)
            if not loss < limit:  # also catches NaN
                # what to change depends on who chose the rate: the caller adds it
                raise Diverged(f"training diverged in epoch {epoch} (step {t + 1}: loss {loss:.3g})")
            optimizer.step([theta], [grad], lr)
            total += loss * len(idx)
            t += 1
        seconds += time.perf_counter() - started
        valid_loss, valid_acc = softmax.loss_and_accuracy(Xv, yv, W, b)
        curve.append((epoch, t, lr, total / n, valid_loss, valid_acc))
        bar.set_postfix(valid_loss=f"{valid_loss:.4f}", valid_acc=f"{valid_acc:.4f}")
        if valid_loss < best[0]:
            best = (valid_loss, epoch, W.copy(), b.copy())
        elif settings["patience"] and epoch - best[1] >= settings["patience"]:
            break
    bar.close()
    return Fit(
        W=best[2], b=best[3], best_epoch=best[1], epochs_run=epoch, seconds_per_epoch=seconds / epoch, curve=curve
    )


def minimize_lbfgs(
    X: np.ndarray, y: np.ndarray, n_classes: int, l2: float, max_iter: int, callback=None, start=None
) -> tuple[np.ndarray, np.ndarray, float]:
    """argmin J(W, b) by scipy's L-BFGS-B with the analytic gradient, in float64, from
    start = (W, b) (default W = 0, b = 0: J is convex, so the start changes how many
    iterations it takes, not where it ends); callback(W, b, J) after every iteration.
    Returns (W, b, J) at the optimum."""
    import scipy.optimize  # here, not at the top: it takes a second to import and SGD never needs it

    d = X.shape[1]

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return theta[:-n_classes].reshape(d, n_classes), theta[-n_classes:]

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        loss, dW, db = softmax.objective(X, y, *unpack(theta), l2)
        return loss, np.concatenate([dW.ravel(), db])

    def each_iteration(intermediate_result) -> None:
        if callback is not None:  # scipy passes the iterate by this parameter name
            callback(*unpack(intermediate_result.x), intermediate_result.fun)

    theta = np.zeros(d * n_classes + n_classes) if start is None else np.concatenate([np.ravel(start[0]), start[1]])
    result = scipy.optimize.minimize(
        fun,
        theta.astype(np.float64),
        jac=True,
        method="L-BFGS-B",
        callback=each_iteration,
        # maxcor 50 (scipy's default 10): a longer memory of curvature pairs takes a third
        # fewer iterations on this ill-conditioned objective (README, "Speed and scale")
        options={"maxiter": max_iter, "maxfun": 2 * max_iter, "ftol": 1e-10, "gtol": 1e-6, "maxcor": 50},
    )
    return *unpack(result.x), float(result.fun)


def fit_lbfgs(
    X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, n_classes: int, l2: float, max_iter: int, start=None
) -> Fit:
    """The exact optimum of J (from `start`, see minimize_lbfgs), with one curve row
    (validation loss/accuracy) per iteration."""
    curve = []

    def record(W: np.ndarray, b: np.ndarray, loss: float) -> None:
        valid_loss, valid_acc = softmax.loss_and_accuracy(Xv, yv, W.astype(np.float32), b.astype(np.float32))
        curve.append((len(curve) + 1, len(curve) + 1, math.nan, loss, valid_loss, valid_acc))

    started = time.perf_counter()
    W, b, _ = minimize_lbfgs(X, y, n_classes, l2, max_iter, record, start)
    iterations = max(len(curve), 1)
    return Fit(
        W=W.astype(np.float32),
        b=b.astype(np.float32),
        best_epoch=iterations,
        epochs_run=iterations,
        seconds_per_epoch=(time.perf_counter() - started) / iterations,
        curve=curve,
    )


def train(
    settings: dict,
    X: np.ndarray,
    y: np.ndarray,
    Xv: np.ndarray,
    yv: np.ndarray,
    n_classes: int,
    progress: bool = True,
    start=None,
) -> tuple[Fit, dict]:
    """Fit with `settings` (the train section) and measure: (fit, report). The report has
    epochs_run and best_epoch, or for lbfgs its iterations; the train objective J (with the
    optimum J* and the gap J - J* if report_optimum_gap); valid accuracy and loss. How long
    it took is in fit.seconds_per_epoch: it differs every run, so it is no metric. `start`
    = (W, b): where lbfgs starts (default zeros).

    BLAS runs on one thread: the per-batch products are too small to split, and
    notmnist.plumbing.parallel splits the large ones itself.
    """
    if settings["optimizer"] != "lbfgs" and settings["batch_size"] > len(X):
        raise ParamError(
            f"minibatch.batch_size: bad value {settings['batch_size']}; allowed: at most the "
            f"{len(X)} rows of the train split"
        )
    with parallel.blas_threads(1):
        if settings["optimizer"] == "lbfgs":
            fit = fit_lbfgs(X, y, Xv, yv, n_classes, settings["l2"], settings["lbfgs_max_iter"], start)
        else:
            fit = fit_sgd(X, y, Xv, yv, n_classes, settings, progress)
        if not (np.isfinite(fit.W).all() and np.isfinite(fit.b).all()):
            raise Diverged("training produced non-finite weights")
        objective = softmax.objective(X, y, fit.W, fit.b, settings["l2"])[0]
        valid_loss, valid_acc = softmax.loss_and_accuracy(Xv, yv, fit.W, fit.b)
        lbfgs = settings["optimizer"] == "lbfgs"
        metrics = {
            "optimizer": settings["optimizer"],
            "learning_rate": None if lbfgs else settings["learning_rate"],
            **(
                {"iterations": fit.epochs_run}
                if lbfgs
                else {"epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch}
            ),
            "train": {"n": len(X), "objective": objective},
            "valid": {"n": len(Xv), "accuracy": valid_acc, "loss": valid_loss},
        }
        if settings["report_optimum_gap"]:
            best = objective
            if settings["optimizer"] != "lbfgs":  # from the trained weights: fewer iterations than from zero
                limit = settings["lbfgs_max_iter"]
                _, _, best = minimize_lbfgs(X, y, n_classes, settings["l2"], limit, start=(fit.W, fit.b))
            metrics["train"].update(optimum=best, optimum_gap=objective - best)
    return fit, metrics


def curve_tsv(curve: list[tuple]) -> str:
    """The per-epoch curve as a TSV table with CURVE_COLUMNS."""
    return (
        "\t".join(CURVE_COLUMNS)
        + "\n"
        + "".join(f"{e}\t{s}\t{lr:.6g}\t{tl:.6f}\t{vl:.6f}\t{va:.6f}\n" for e, s, lr, tl, vl, va in curve)
    )
