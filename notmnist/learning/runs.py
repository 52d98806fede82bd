"""Many fits of the same normalized data at once: the learning-rate sweep and the optimizer
comparison.

Each run trains in a worker process (one per core; BLAS and the row-splitting helpers on one
thread in each, see notmnist.plumbing.parallel) on the splits that notmnist.plumbing.contracts
reads, memory-mapped, so the workers share the page cache and not copies of the data. A run that
diverges is a result (`diverged`), not an error.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from notmnist.learning import fitting, lbfgs, softmax, training
from notmnist.learning.settings import Minibatch, Objective
from notmnist.plumbing import contracts, parallel


@dataclass
class Run:
    name: str
    optimizer: str  # a name of settings.NAMES
    rate: float | None  # the learning rate (None: the exact optimum has none)
    minibatch: Minibatch
    objective: Objective
    subsample: int = 0  # train on this many seeded train rows, score on as many valid rows; 0 = all
    seed: int = 0  # which rows
    test: bool = False  # also predict the test split (test_correct)
    start: lbfgs.Weights | None = None  # (W, b) where the exact optimum's search starts


@dataclass
class Result:
    run: Run
    diverged: bool
    metrics: dict  # training.train's report, plus test.accuracy when run.test
    curve: list[tuple]
    seconds_per_epoch: float  # per iteration for the exact optimum (unit)
    unit: str = "epoch"
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    test_correct: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per test image, when run.test

    @property
    def weights(self) -> lbfgs.Weights:
        """(W, b) of a fit that did not diverge."""
        if self.W is None or self.b is None:
            raise ValueError(f"{self.run.name} diverged: it has no weights")
        return self.W, self.b


def subsample_rows(n: int, subsample: int, seed: int) -> np.ndarray:
    """The seeded rows of a subsample of n rows (sorted), or all rows."""
    if not subsample or subsample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=subsample, replace=False))


def run_one(run: Run) -> Result:
    """One fit, in whatever process calls it."""
    _, classes = contracts.read_stats()
    train, valid = (contracts.read_split(name, len(classes)) for name in ("train", "valid"))
    rows = subsample_rows(len(train.y), run.subsample, run.seed)
    X = train.x if len(rows) == len(train.y) else np.asarray(train.x[rows])
    # a subsample scores on as many valid rows: at notMNIST_large size, scoring all of them
    # every epoch would cost the sweep more than its training does
    valid_rows = subsample_rows(len(valid.y), run.subsample, run.seed)
    Xv = valid.x if len(valid_rows) == len(valid.y) else np.asarray(valid.x[valid_rows])
    try:
        fit, metrics = training.train(
            run.optimizer,
            run.rate,
            run.minibatch,
            run.objective,
            X,
            train.y[rows],
            Xv,
            valid.y[valid_rows],
            len(classes),
            progress=False,
            start=run.start,
        )
    except fitting.Diverged as e:
        return Result(run, True, {"error": str(e)}, [], float("nan"))
    result = Result(run, False, metrics, fit.curve, fit.seconds_per_epoch, fit.unit, fit.W, fit.b)
    if run.test:
        test = contracts.read_split("test", len(classes))
        result.test_correct = softmax.scores(np.asarray(test.x), fit.W, fit.b).argmax(axis=1) == test.y
        metrics["test"] = {"n": len(test.y), "accuracy": float(result.test_correct.mean())}
    return result


def run_all(runs: list[Run], workers: int = 0) -> list[Result]:
    """Every run, `workers` at a time (0: one per core), results in the order of `runs`."""
    workers = min(workers or parallel.all_cores(), len(runs))
    if workers <= 1:
        return [run_one(run) for run in runs]
    with ProcessPoolExecutor(workers, initializer=parallel.one_thread_per_process) as pool:
        return list(pool.map(run_one, runs))
