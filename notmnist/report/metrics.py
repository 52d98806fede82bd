"""Classification metrics of a model on labelled examples: accuracy with its interval, log
loss, per-class precision/recall/F1, the confusion matrix, calibration and its mistakes.

A new metric: a function here, its value added to `evaluate`'s metrics dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from notmnist.plumbing.params import integer, knob
from notmnist.report.statistics import wilson_interval


@dataclass(frozen=True)
class Evaluate:
    """Section evaluate: what the report on the test split shows."""

    SECTION: ClassVar[str] = "evaluate"
    n_mistakes: int = knob(integer(0, 400))
    calibration_bins: int = knob(integer(1, 100))
    n_confusions: int = knob(integer(0, 100))


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """C[i, j] = number of images of class i predicted as class j."""
    flat = np.asarray(actual, np.int64) * n_classes + np.asarray(predicted, np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_scores(matrix: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """precision_k = C[k,k] / sum_i C[i,k], recall_k = C[k,k] / sum_j C[k,j],
    f1_k = 2 p r / (p + r); a 0/0 is reported as 0 (as scikit-learn's zero_division=0)."""
    hits = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support}, index=pd.Index(classes, name="class")
    )


def calibration(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> tuple[pd.DataFrame, float]:
    """Reliability curve and expected calibration error over equal-width confidence bins.

    Bin b holds the predictions with confidence in ((b-1)/B, b/B] (the first also 0);
    ECE = sum_b (n_b / n) |accuracy_b - mean confidence_b|. A calibrated model's curve
    lies on the diagonal accuracy = confidence and its ECE is 0. Empty bins are left out.
    """
    confidence = np.asarray(confidence, np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_of = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    table = (
        pd.DataFrame({"bin": bin_of, "confidence": confidence, "accuracy": np.asarray(correct, float)})
        .groupby("bin")
        .agg(confidence=("confidence", "mean"), accuracy=("accuracy", "mean"), count=("accuracy", "size"))
    )
    table.insert(0, "bin_high", edges[table.index + 1])
    table.insert(0, "bin_low", edges[table.index])
    ece = float((table["count"] * (table["accuracy"] - table["confidence"]).abs()).sum() / len(confidence))
    return table.reset_index(drop=True), ece


def top_confusions(matrix: np.ndarray, classes: list[str], n: int) -> list[dict]:
    """The n largest off-diagonal cells, largest first (ties in row-major order), zeros left out."""
    off = np.where(np.eye(len(classes), dtype=bool), 0, matrix)
    order = np.argsort(-off, axis=None, kind="stable")[:n]
    rows, cols = np.unravel_index(order, off.shape)
    return [
        {"actual": classes[r], "predicted": classes[c], "count": int(off[r, c])}
        for r, c in zip(rows, cols)
        if off[r, c] > 0
    ]


@dataclass
class Evaluation:
    metrics: dict  # for metrics/evaluate.json
    predictions: pd.DataFrame  # one row per example: index, label, predicted, confidence
    confusion: np.ndarray  # C[i, j] = examples of class i predicted as class j
    reliability: pd.DataFrame  # the reliability curve (calibration)
    mistakes: np.ndarray  # rows of the most confident mistakes, most confident first


def evaluate(
    log_proba: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    index: np.ndarray,
    *,
    calibration_bins: int,
    n_confusions: int,
    n_mistakes: int,
) -> Evaluation:
    """All metrics of a model from its log-probabilities (n, K) and the true labels (n,);
    index (n,) names each example in the predictions table (its row in images.npy).

    accuracy = mean(argmax_k log p_k == y); log loss = -mean(log p_y) (the training loss
    without L2, in nats); macro averages are plain means over classes; the confidence of a
    prediction is the probability of the predicted class.
    """
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    predicted = log_proba.argmax(axis=1)
    confidence = np.exp(log_proba.max(axis=1).astype(np.float64))
    correct = predicted == labels
    interval = wilson_interval(correct.sum(), n)
    matrix = confusion_matrix(labels, predicted, len(classes))
    by_class = per_class_scores(matrix, classes)
    reliability, ece = calibration(confidence, correct, calibration_bins)
    metrics = {
        "n": n,
        "n_errors": int(n - correct.sum()),
        "accuracy": float(correct.mean()),
        "accuracy_ci95": list(interval),  # the same two numbers as _low and _high: DVC's tables drop lists
        "accuracy_ci95_low": interval[0],
        "accuracy_ci95_high": interval[1],
        "log_loss": float(-log_proba[np.arange(n), labels].astype(np.float64).mean()),
        "ece": ece,
        "macro": by_class[["precision", "recall", "f1"]].mean().to_dict(),
        "per_class": by_class.astype({"support": int}).to_dict(orient="index"),
        "top_confusions": top_confusions(matrix, classes, n_confusions),
    }
    names = np.array(classes)
    predictions = pd.DataFrame(
        {"index": index, "label": names[labels], "predicted": names[predicted], "confidence": confidence}
    )
    wrong = np.flatnonzero(~correct)
    mistakes = wrong[np.argsort(-confidence[wrong], kind="stable")][:n_mistakes]
    return Evaluation(metrics, predictions, matrix, reliability, mistakes)
