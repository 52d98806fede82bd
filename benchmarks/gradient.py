"""The course's rule of thumb, measured: "computing grad(L) takes 3x time than computing L".

    python -m benchmarks.gradient [--rounds 5]

For this softmax (784 pixels, 10 letters, float32, BLAS on one thread as training runs) at
the course's sizes: a minibatch of 128, a batch of 1024, the 10,000-row subset the course
trains full-batch gradient descent on, and 200,000 rows (a notMNIST_large train split).
Prints the median seconds of
  - loss:      J alone (scores, log-softmax, mean cross-entropy of the true letters);
  - gradient:  J and its gradient together, as every training step computes them
               (notmnist.learning.softmax.loss_and_grad: the gradient needs the forward pass);
and their ratio, for our in-place float32 version and for the float64 formulas as the course
writes them (loss_and_grad_plain, scipy). The loss and the gradient are timed in turn, round
after round, so a shared machine's load falls on both alike.

Why not 3x here: the forward pass costs one n x 784 x 10 product, the gradient adds one more
of the same size (X^T (P - Y)) and a few passes over the n x 10 scores; so at most 2x where the
products dominate. In a deep network each layer's backward pass has two such products to the
forward pass's one, hence 3x for loss + gradient there.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import timeit

import numpy as np
import scipy.special

from notmnist.learning import softmax
from notmnist.plumbing import parallel
from tests.references import loss_and_grad_plain

SIZES = {"minibatch": 128, "batch": 1024, "course subset": 10_000, "large split": 200_000}


def loss_only(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float) -> float:
    """J without its gradient, in the dtype of X (as training computes it)."""
    logp = softmax.log_softmax(softmax.scores(X, W, b))
    return float(-logp[np.arange(len(y)), y].mean(dtype=np.float64) + 0.5 * l2 * np.vdot(W, W))


def loss_plain(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float) -> float:
    """J as the formulas read (float64), the forward half of loss_and_grad_plain."""
    X, W, b = (np.asarray(a, dtype=np.float64) for a in (X, W, b))
    logp = scipy.special.log_softmax(X @ W + b, axis=1)
    return float(-logp[np.arange(len(y)), y].mean() + 0.5 * l2 * np.sum(W * W))


def measure(n: int, rounds: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    W = 0.01 * rng.standard_normal((784, 10), dtype=np.float32)
    b = np.zeros(10, np.float32)
    args = {"ours": (X, y, W, b, 0.01), "plain": (X.astype(np.float64), y, W, b, 0.01)}  # plain: data in float64
    assert np.isclose(loss_only(*args["ours"]), softmax.loss_and_grad(*args["ours"])[0], rtol=1e-5)  # the same J
    repeat = max(1, 500_000 // n)  # some 30 ms of work per timing
    pairs = {"ours": (loss_only, softmax.loss_and_grad), "plain": (loss_plain, loss_and_grad_plain)}
    times = {f"{name} {part}": [] for name in pairs for part in ("loss", "gradient")}
    for name, pair in pairs.items():  # warm-up: caches, page faults, scipy's import
        for fn in pair:
            fn(*args[name])
    for _ in range(rounds):
        for name, (loss_fn, grad_fn) in pairs.items():
            for part, fn in (("loss", loss_fn), ("gradient", grad_fn)):
                call = functools.partial(fn, *args[name])
                times[f"{name} {part}"].append(timeit.timeit(call, number=repeat) / repeat)
    return {key: statistics.median(values) for key, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timings per cell (median)")
    args = parser.parse_args()
    print(f"{'rows':>22}  {'loss ms':>9}  {'loss+grad ms':>12}  {'ratio':>5}  {'plain f64 ratio':>15}")
    with parallel.blas_threads(1):
        for label, n in SIZES.items():
            t = measure(n, args.rounds)
            print(
                f"{label + ' ' + format(n, ','):>22}  {1e3 * t['ours loss']:9.3f}  {1e3 * t['ours gradient']:12.3f}"
                f"  {t['ours gradient'] / t['ours loss']:5.2f}  {t['plain gradient'] / t['plain loss']:15.2f}"
            )


if __name__ == "__main__":
    main()
