"""Softmax regression: scores, stable log-softmax, the regularized loss and its gradient.

The objective (the same for every optimizer, including the L-BFGS yardstick):

    J(W, b) = (1/n) * sum_i -log softmax(x_i W + b)[y_i]  +  (l2 / 2) * ||W||_F^2

mean cross-entropy over the n rows plus an L2 penalty on W only (the bias is not
regularized). scikit-learn's LogisticRegression(C) minimizes
C * sum_i loss_i + 0.5 * ||W||^2 (bias free), which is J scaled by C * n when

    l2 = 1 / (C * n)        (n = number of training rows)

so both have the same minimizer, and sklearn's objective / (C * n) equals J.

Arithmetic: scores and probabilities in float32 (the speed of an epoch is in the two
matrix products); the row sums of exp(.) and the loss accumulate in float64.
"""

from __future__ import annotations

import numpy as np

from notmnist.plumbing import parallel


def scores(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """s = X W + b, one row of K class scores per example."""
    return X @ W + b


def class_major_scores(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(X W + b)^T as a C-contiguous K x n array: numpy reduces over the K classes of every
    example faster along contiguous rows than across 10-wide ones (docs/benchmarks.md)."""
    return np.add((X @ W).T, b[:, None], order="C")


def true_class_positions(y: np.ndarray, n: int) -> np.ndarray:
    """Where s[y_i, i] sits in the flattened K x n class-major scores (intp whatever y's dtype)."""
    return np.asarray(y, dtype=np.intp) * n + np.arange(n)


def log_softmax(s: np.ndarray) -> np.ndarray:
    """log softmax(s)_k = (s_k - m) - log(sum_j exp(s_j - m)), m = max_j s_j per row.

    Subtracting the row max makes every exponent <= 0 (no overflow) and the sum >= 1
    (the log is never log 0), so any finite scores give finite log-probabilities. (This is
    scipy.special.log_softmax with the sum in float64; importing scipy.special would slow
    the start of every training process. The tests compare the two.)
    """
    s = np.asarray(s)
    # a diverging run's scores overflow float32 here: its caller sees the non-finite loss
    # and stops, so numpy's warning would only repeat that
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = s - s.max(axis=-1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True, dtype=np.float64))
    return (shifted - log_sum).astype(s.dtype if s.dtype.kind == "f" else np.float64)


def predict_proba(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """softmax(X W + b): class probabilities, rows summing to 1."""
    return np.exp(log_softmax(scores(X, W, b)))


def loss_and_grad(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float, out: tuple | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """J(W, b) on the rows (X, y) and its gradient, side by side.

        P = softmax(X W + b), Y = one_hot(y)
        J      = -(1/n) sum_i log P[i, y_i] + (l2/2) ||W||^2
        dJ/dW  = X^T (P - Y) / n + l2 W
        dJ/db  = sum_i (P - Y)[i] / n

    Returns (J as a Python float, dW with W's dtype, db with b's dtype); with out = (dW, db),
    the gradient is written into those arrays (a training loop reuses them every step).
    """
    n = X.shape[0]
    s = class_major_scores(X, W, b)
    s -= s.max(axis=0)
    e = np.exp(s)
    col_sum = e.sum(axis=0)  # in [1, K]: float32 holds it to 1e-7
    true = true_class_positions(y, n)
    # cross-entropy_i = log(sum_k exp(s_ki)) - s_{y_i, i}; both terms are finite by the shift
    loss = (np.log(col_sum).sum(dtype=np.float64) - s.ravel()[true].sum(dtype=np.float64)) / n
    delta = e
    delta /= col_sum * e.dtype.type(n)  # P / n
    delta.ravel()[true] -= e.dtype.type(1.0 / n)  # (P - Y) / n
    dW, db = (np.empty_like(W), np.empty_like(b)) if out is None else out
    np.matmul(X.T, delta.T, out=dW)
    if l2:
        loss += 0.5 * l2 * float(np.vdot(W, W))
        dW += W.dtype.type(l2) * W
    np.sum(delta, axis=1, out=db)
    return float(loss), dW, db


def objective(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float, chunk: int = 1024
) -> tuple[float, np.ndarray, np.ndarray]:
    """J and its gradient (float64) over all rows of X, read in chunks so that X may be a
    memory map larger than memory; used by L-BFGS and for the final train objective.

    The products run in float32 like training (twice as fast as float64); per-chunk sums
    are accumulated in float64, which keeps J accurate to about 1e-7 relative. Chunks are
    differentiated on all cores at once and summed in chunk order (parallel.map_chunks);
    a chunk is small enough to be still in the cache when the gradient product reads it.
    """
    n = X.shape[0]
    W64 = np.asarray(W, dtype=np.float64)
    W32, b32 = W64.astype(np.float32), np.asarray(b, dtype=np.float32)

    def part(lo: int, hi: int) -> tuple[float, np.ndarray, np.ndarray]:
        Xc = np.asarray(X[lo:hi], dtype=np.float32)
        loss, gW, gb = loss_and_grad(Xc, y[lo:hi], W32, b32, 0.0)
        return loss * len(Xc), gW * np.float32(len(Xc)), gb * np.float32(len(Xc))

    parts = parallel.map_chunks(part, n, max(1, min(chunk, -(-n // 2))))
    total = sum(p[0] for p in parts)
    dW = sum(p[1].astype(np.float64) for p in parts)
    db = sum(p[2].astype(np.float64) for p in parts)
    loss = total / n + 0.5 * l2 * float(np.vdot(W64, W64))
    return loss, dW / n + l2 * W64, db / n


def loss_and_accuracy(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, chunk: int = 1024
) -> tuple[float, float]:
    """(mean cross-entropy without the L2 term, accuracy) over all rows, in chunks on all
    cores (parallel.map_chunks), class-major as in loss_and_grad. Small chunks: every core
    gets an even share of a validation set of a few thousand rows, and each chunk's scores
    stay in the cache (docs/benchmarks.md)."""
    n = X.shape[0]

    def part(lo: int, hi: int) -> tuple[float, int]:
        yc = y[lo:hi]
        s = class_major_scores(np.asarray(X[lo:hi]), W, b)
        top = s.max(axis=0)
        log_sum = np.log(np.exp(s - top).sum(axis=0, dtype=np.float64)) + top
        true = s.ravel()[true_class_positions(yc, hi - lo)]
        return float((log_sum - true).sum()), int((s.argmax(axis=0) == yc).sum())

    parts = parallel.map_chunks(part, n, chunk)
    return sum(p[0] for p in parts) / n, sum(p[1] for p in parts) / n
