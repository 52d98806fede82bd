"""Stage train: softmax regression fitted by minibatch SGD (or one of its helpers) or L-BFGS.

Reads data/normalized/{train,valid}_{x,y}.npy (memory-mapped) and stats.json; writes
models/model.npz, metrics/train.json and the per-epoch curve metrics/train_curve.tsv.
The objective J(W, b) and its gradient are in stages/softmax.py; the update rules and
learning-rate schedules in stages/optim.py.

Each epoch visits the training rows in a fresh seeded random order, batch_size rows per
update; after each epoch the validation loss decides early stopping (`patience`) and the
weights of the best epoch are the ones saved. `lbfgs` instead minimizes the same J to its
optimum with scipy's L-BFGS-B (one curve row per iteration): the yardstick the SGD
variants are measured against (`report_optimum_gap`).
"""
from __future__ import annotations

import os

# One BLAS thread unless the user says otherwise: the per-batch products (128 x 784 x 10)
# are too small to split, and on a busy machine two spinning OpenBLAS threads made them
# ten times slower (benchmarks/train.py). Must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages import optim, softmax
from stages.io import (ParamError, UserError, all_cores, boolean, choice, integer, load_npy,
                       load_params, number, read_json, write_json, write_text)
from stages.model import save_model

DATA = Path("data/normalized")
MODEL = Path("models/model.npz")
METRICS = Path("metrics/train.json")
CURVE = Path("metrics/train_curve.tsv")
CURVE_COLUMNS = ("epoch", "step", "lr", "train_loss", "valid_loss", "valid_accuracy")
DIVERGED = 100.0  # a loss this many times that of a uniform guess (log K) means divergence
SPLIT_BATCH = 512  # batches at least this large are split over the cores (below: not worth it)

SPEC = {
    "optimizer": choice(*optim.OPTIMIZERS, "lbfgs"),
    "learning_rate": number(0, None, lo_open=True),
    "schedule": choice(*optim.SCHEDULES),
    "decay_rate": number(0, None, lo_open=True),
    "decay_epochs": number(0, None, lo_open=True),
    "staircase": boolean(),
    "momentum": number(0, 1, hi_open=True),
    "rho": number(0, 1, hi_open=True),
    "beta1": number(0, 1, hi_open=True),
    "beta2": number(0, 1, hi_open=True),
    "epsilon": number(0, None, lo_open=True),
    "batch_size": integer(1, None),
    "epochs": integer(1, None),
    "patience": integer(0, None),
    "l2": number(0, None),
    "init_sigma": number(0, None),
    "seed": integer(0, 2**32 - 1),
    "report_optimum_gap": boolean(),
    "lbfgs_max_iter": integer(1, None),
}


class Diverged(UserError):
    pass


@dataclass
class Fit:
    W: np.ndarray
    b: np.ndarray
    best_epoch: int
    epochs_run: int
    seconds_per_epoch: float
    curve: list[tuple] = field(default_factory=list)


def initial_weights(n_features: int, n_classes: int, sigma: float, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """W ~ N(0, sigma^2) elementwise, b = 0, both float32."""
    W = rng.normal(0.0, sigma, size=(n_features, n_classes)).astype(np.float32)
    return W, np.zeros(n_classes, dtype=np.float32)


class BatchGradient:
    """loss_and_grad on the rows X[idx], gathered into a reused buffer (X may be a memory map).

    A large batch is split in halves that two threads gather and differentiate at once (numpy
    releases the GIL in take and in the BLAS products); the mean of the halves, weighted by
    their sizes, is the batch's loss and gradient. Thread workers, unlike BLAS threads, wait
    without spinning, so a busy machine does not make them slow.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, batch: int) -> None:
        self.X, self.y = X, y
        self.buffer = np.empty((batch, X.shape[1]), dtype=np.float32)
        split = batch >= SPLIT_BATCH and all_cores() > 1
        self.pool = ThreadPoolExecutor(1) if split else None  # one helper + the calling thread

    def part(self, idx: np.ndarray, at: int, W: np.ndarray, b: np.ndarray):
        return softmax.loss_and_grad(self.gather(idx, at), self.y[idx], W, b, 0.0)

    def gather(self, idx: np.ndarray, at: int = 0) -> np.ndarray:
        # mode="clip": the indices are valid, and the default "raise" gathers into a temporary
        # and copies that into `out` (an epoch's gathers at N = 200k, batch 1024: 0.165 s
        # with "raise", 0.112 s with "clip")
        return np.take(self.X, idx, axis=0, out=self.buffer[at:at + len(idx)], mode="clip")

    def __call__(self, idx: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float):
        if self.pool is None or len(idx) < SPLIT_BATCH:
            return softmax.loss_and_grad(self.gather(idx), self.y[idx], W, b, l2)
        h = len(idx) // 2
        first = self.pool.submit(self.part, idx[:h], 0, W, b)
        l1, dW1, db1 = self.part(idx[h:], h, W, b)
        l0, dW0, db0 = first.result()
        w0, w1 = h / len(idx), (len(idx) - h) / len(idx)
        loss = w0 * l0 + w1 * l1 + 0.5 * l2 * float(np.vdot(W, W))
        dW = dW0 * np.float32(w0) + dW1 * np.float32(w1) + np.float32(l2) * W
        return loss, dW, db0 * np.float32(w0) + db1 * np.float32(w1)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def fit_sgd(X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, n_classes: int,
            p: dict, progress: bool = True) -> Fit:
    """Minibatch training of J(W, b) with optimizer p["optimizer"] and schedule p["schedule"].

    Rows are gathered batch by batch into one reused buffer (BatchGradient), so X may be a
    memory map larger than the memory we want to use.
    """
    n = X.shape[0]
    X = np.asarray(X)  # a plain view of a memmap: fancy indexing without memmap overhead
    batch = min(p["batch_size"], n)
    steps_per_epoch = math.ceil(n / batch)
    lr_at = optim.make_schedule(
        p["schedule"], p["learning_rate"], decay=p["decay_rate"],
        decay_steps=p["decay_epochs"] * steps_per_epoch, staircase=p["staircase"],
        total_steps=p["epochs"] * steps_per_epoch)
    opt = optim.make_optimizer(p["optimizer"], momentum=p["momentum"], rho=p["rho"],
                               beta1=p["beta1"], beta2=p["beta2"], eps=p["epsilon"])
    rng = np.random.default_rng(p["seed"])
    W, b = initial_weights(X.shape[1], n_classes, p["init_sigma"], rng)
    limit = DIVERGED * math.log(n_classes)
    gradient = BatchGradient(X, y, batch)

    best = (math.inf, 0, W.copy(), b.copy())
    curve, seconds, t, epoch = [], 0.0, 0, 0
    bar = tqdm(range(1, p["epochs"] + 1), desc=f"train {p['optimizer']}", unit="epoch",
               disable=not progress, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch):
            idx = np.sort(order[start:start + batch])  # sorted: the gather reads memory in order
            lr = lr_at(t)
            loss, dW, db = gradient(idx, W, b, p["l2"])
            if not loss < limit:  # also catches NaN
                raise Diverged(
                    f"training diverged in epoch {epoch} (step {t + 1}: loss {loss:.3g}); "
                    f"lower train.learning_rate (now {p['learning_rate']:g}; "
                    f"{optim.SUGGESTED_RATES[p['optimizer']]:g} suits {p['optimizer']})")
            opt.step([W, b], [dW, db], lr)
            total += loss * len(idx)
            t += 1
        seconds += time.perf_counter() - started
        valid_loss, valid_acc = softmax.evaluate(Xv, yv, W, b)
        curve.append((epoch, t, lr, total / n, valid_loss, valid_acc))
        bar.set_postfix(valid_loss=f"{valid_loss:.4f}", valid_acc=f"{valid_acc:.4f}")
        if valid_loss < best[0]:
            best = (valid_loss, epoch, W.copy(), b.copy())
        elif p["patience"] and epoch - best[1] >= p["patience"]:
            break
    bar.close()
    gradient.close()
    return Fit(W=best[2], b=best[3], best_epoch=best[1], epochs_run=epoch,
               seconds_per_epoch=seconds / epoch, curve=curve)


def minimize_lbfgs(X: np.ndarray, y: np.ndarray, n_classes: int, l2: float, max_iter: int,
                   callback=None) -> tuple[np.ndarray, np.ndarray, float]:
    """argmin J(W, b) from W = 0, b = 0 by scipy's L-BFGS-B with the analytic gradient, in
    float64; callback(W, b, J) after every iteration. Returns (W, b, J) at the optimum."""
    import scipy.optimize  # here, not at the top: it takes 1-2 s to import and SGD never needs it

    d = X.shape[1]

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return theta[:-n_classes].reshape(d, n_classes), theta[-n_classes:]

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        loss, dW, db = softmax.objective(X, y, *unpack(theta), l2)
        return loss, np.concatenate([dW.ravel(), db])

    def each_iteration(intermediate_result) -> None:
        if callback is not None:  # scipy passes the iterate by this parameter name
            callback(*unpack(intermediate_result.x), intermediate_result.fun)

    result = scipy.optimize.minimize(
        fun, np.zeros(d * n_classes + n_classes), jac=True, method="L-BFGS-B",
        callback=each_iteration,
        options={"maxiter": max_iter, "maxfun": 2 * max_iter, "ftol": 1e-10, "gtol": 1e-6})
    return *unpack(result.x), float(result.fun)


def fit_lbfgs(X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, n_classes: int,
              l2: float, max_iter: int) -> Fit:
    """The exact optimum of J, with one curve row (validation loss/accuracy) per iteration."""
    curve = []

    def record(W: np.ndarray, b: np.ndarray, loss: float) -> None:
        valid_loss, valid_acc = softmax.evaluate(Xv, yv, W.astype(np.float32), b.astype(np.float32))
        curve.append((len(curve) + 1, len(curve) + 1, math.nan, loss, valid_loss, valid_acc))

    started = time.perf_counter()
    W, b, _ = minimize_lbfgs(X, y, n_classes, l2, max_iter, record)
    iterations = max(len(curve), 1)
    return Fit(W=W.astype(np.float32), b=b.astype(np.float32), best_epoch=iterations,
               epochs_run=iterations, seconds_per_epoch=(time.perf_counter() - started) / iterations,
               curve=curve)


def read_inputs(data: Path = DATA) -> tuple[np.ndarray, ...]:
    """The train and valid arrays (features memory-mapped), checked against stats.json."""
    X = load_npy(data / "train_x.npy", mmap=True)
    y = load_npy(data / "train_y.npy")
    Xv = load_npy(data / "valid_x.npy", mmap=True)
    yv = load_npy(data / "valid_y.npy")
    classes = read_json(data / "stats.json")["classes"]
    for name, xs, ys in (("train", X, y), ("valid", Xv, yv)):
        if xs.dtype != np.float32 or xs.ndim != 2 or xs.shape[1] != 784 or ys.shape != (len(xs),):
            raise UserError(f"{data / (name + '_x.npy')}: expected float32 n x 784 with n labels")
        if len(ys) == 0:
            raise UserError(f"{data / (name + '_x.npy')}: the {name} split is empty")
        if ys.min() < 0 or ys.max() >= len(classes):
            raise UserError(f"{data / (name + '_y.npy')}: labels outside 0..{len(classes) - 1}")
    return X, y, Xv, yv


def check_batch_size(p: dict, n_train: int) -> None:
    if p["optimizer"] != "lbfgs" and p["batch_size"] > n_train:
        raise ParamError(f"train.batch_size: bad value {p['batch_size']}; allowed: at most the "
                         f"{n_train} rows of the train split")


def train(p: dict, X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, n_classes: int,
          progress: bool = True) -> tuple[Fit, dict]:
    """Fit with the params p (the train section) and measure: (fit, metrics for train.json)."""
    if p["optimizer"] == "lbfgs":
        fit = fit_lbfgs(X, y, Xv, yv, n_classes, p["l2"], p["lbfgs_max_iter"])
    else:
        fit = fit_sgd(X, y, Xv, yv, n_classes, p, progress)
    if not (np.isfinite(fit.W).all() and np.isfinite(fit.b).all()):
        raise Diverged("training produced non-finite weights; lower train.learning_rate")
    objective = softmax.objective(X, y, fit.W, fit.b, p["l2"])[0]
    valid_loss, valid_acc = softmax.evaluate(Xv, yv, fit.W, fit.b)
    metrics = {
        "optimizer": p["optimizer"],
        "learning_rate": None if p["optimizer"] == "lbfgs" else p["learning_rate"],
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "seconds_per_epoch": fit.seconds_per_epoch,
        "train": {"n": len(X), "objective": objective},
        "valid": {"n": len(Xv), "accuracy": valid_acc, "loss": valid_loss},
    }
    if p["report_optimum_gap"]:
        best = objective if p["optimizer"] == "lbfgs" else minimize_lbfgs(
            X, y, n_classes, p["l2"], p["lbfgs_max_iter"])[2]
        metrics["train"].update(optimum=best, optimum_gap=objective - best)
    return fit, metrics


def curve_tsv(curve: list[tuple]) -> str:
    return "\t".join(CURVE_COLUMNS) + "\n" + "".join(
        f"{e}\t{s}\t{lr:.6g}\t{tl:.6f}\t{vl:.6f}\t{va:.6f}\n" for e, s, lr, tl, vl, va in curve)


def main() -> None:
    p = load_params("train", SPEC)
    X, y, Xv, yv = read_inputs(DATA)
    stats = read_json(DATA / "stats.json")
    classes = stats.pop("classes")
    check_batch_size(p, len(X))
    fit, metrics = train(p, X, y, Xv, yv, len(classes))
    save_model(MODEL, fit.W, fit.b, classes, stats)
    write_text(CURVE, curve_tsv(fit.curve))
    write_json(METRICS, metrics)


if __name__ == "__main__":
    from stages.io import run

    run(main)
