"""Stage `evaluate`: score the trained model on the test split, with honest uncertainty.

Writes `metrics/evaluate.json` (accuracy with its Wilson 95% interval, log loss,
per-class precision/recall/F1 and macro averages, expected calibration error, the most
frequent confusions), `metrics/predictions.csv` (index, label, predicted, confidence:
one row per test image, `index` = row of data/ingested/images.npy), `metrics/confusion.csv`
(actual, predicted: DVC's confusion template counts its rows), `metrics/calibration.csv`
(the reliability curve) and the pictures `metrics/{weights,mistakes,confusion}.png`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.special

from stages import pictures
from stages.io import UserError, integer, load_npy, load_params, run, write_json, write_text
from stages.model import load_model
from stages.softmax import log_softmax, scores

MODEL = Path("models/model.npz")
NORMALIZED = Path("data/normalized")
ASSIGNMENT = Path("data/split/assignment.csv")
INGESTED = Path("data/ingested")
METRICS = Path("metrics")

SPEC = {
    "n_mistakes": integer(0, 400),
    "calibration_bins": integer(1, 100),
    "n_confusions": integer(0, 100),
}


def wilson_interval(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval for a proportion k/n.

    p_hat = k/n, z = 1.96: (p_hat + z^2/2n +- z sqrt(p_hat(1-p_hat)/n + z^2/4n^2)) / (1 + z^2/n).
    Unlike the normal approximation it stays inside [0, 1] and is sensible near 0 and 1.
    The same as scipy.stats.binomtest(k, n).proportion_ci(method="wilson") (the tests check
    it), written out because importing scipy.stats costs this stage a second.
    """
    z = float(scipy.special.ndtri(0.975))
    p, n = k / n, int(n)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


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
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                        index=pd.Index(classes, name="class"))


def calibration(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> tuple[pd.DataFrame, float]:
    """Reliability curve and expected calibration error over equal-width confidence bins.

    Bin b holds the predictions with confidence in ((b-1)/B, b/B] (the first also 0);
    ECE = sum_b (n_b / n) |accuracy_b - mean confidence_b|. A calibrated model's curve
    lies on the diagonal accuracy = confidence and its ECE is 0. Empty bins are left out.
    """
    confidence = np.asarray(confidence, np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_of = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    table = (pd.DataFrame({"bin": bin_of, "confidence": confidence, "accuracy": np.asarray(correct, float)})
             .groupby("bin").agg(confidence=("confidence", "mean"), accuracy=("accuracy", "mean"),
                                 count=("accuracy", "size")))
    table.insert(0, "bin_high", edges[table.index + 1])
    table.insert(0, "bin_low", edges[table.index])
    ece = float((table["count"] * (table["accuracy"] - table["confidence"]).abs()).sum() / len(confidence))
    return table.reset_index(drop=True), ece


def top_confusions(matrix: np.ndarray, classes: list[str], n: int) -> list[dict]:
    """The n largest off-diagonal cells, largest first (ties in row-major order), zeros left out."""
    off = np.where(np.eye(len(classes), dtype=bool), 0, matrix)
    order = np.argsort(-off, axis=None, kind="stable")[:n]
    rows, cols = np.unravel_index(order, off.shape)
    return [{"actual": classes[r], "predicted": classes[c], "count": int(off[r, c])}
            for r, c in zip(rows, cols) if off[r, c] > 0]


def prediction(log_proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class (argmax) and its probability, the model's confidence, per row."""
    return log_proba.argmax(axis=1), np.exp(log_proba.max(axis=1).astype(np.float64))


def evaluate(log_proba: np.ndarray, labels: np.ndarray, classes: list[str], *, calibration_bins: int,
             n_confusions: int) -> tuple[dict, np.ndarray, pd.DataFrame]:
    """All test-set metrics from the model's log-probabilities (n, K) and the true labels (n,).

    accuracy = mean(argmax_k log p_k == y); log loss = -mean(log p_y) (the training loss
    without L2, in nats); macro averages are plain means over classes.
    Returns (metrics dict, confusion matrix, reliability table).
    """
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    predicted, confidence = prediction(log_proba)
    correct = predicted == labels
    matrix = confusion_matrix(labels, predicted, len(classes))
    by_class = per_class_scores(matrix, classes)
    reliability, ece = calibration(confidence, correct, calibration_bins)
    metrics = {
        "n": n,
        "n_errors": int(n - correct.sum()),
        "accuracy": float(correct.mean()),
        "accuracy_ci95": list(wilson_interval(correct.sum(), n)),
        "log_loss": float(-log_proba[np.arange(n), labels].astype(np.float64).mean()),
        "ece": ece,
        "macro": by_class[["precision", "recall", "f1"]].mean().to_dict(),
        "per_class": by_class.astype({"support": int}).to_dict(orient="index"),
        "top_confusions": top_confusions(matrix, classes, n_confusions),
    }
    return metrics, matrix, reliability


def rows_of_test_split(assignment: Path, n_test: int, n_images: int) -> np.ndarray:
    """Rows of images.npy that form the test split, in the order normalize wrote them.

    main() checks them against the test labels so that a stale assignment cannot
    silently mislabel predictions.csv or the mistakes picture.
    """
    if not assignment.exists():
        raise UserError(f"{assignment}: not found; run the split stage first (dvc repro)")
    table = pd.read_csv(assignment, usecols=["index", "split"])
    rows = np.sort(table.loc[table["split"] == "test", "index"].to_numpy(np.int64))
    if len(rows) != n_test:
        raise UserError(f"{assignment}: {len(rows)} test rows but {NORMALIZED / 'test_y.npy'} "
                        f"has {n_test}; rerun normalize (dvc repro)")
    if len(rows) and (rows[0] < 0 or rows[-1] >= n_images):
        raise UserError(f"{assignment}: column index outside 0..{n_images - 1}; rerun split (dvc repro)")
    return rows


def main() -> None:
    params = load_params("evaluate", SPEC)
    model = load_model(MODEL)
    x = load_npy(NORMALIZED / "test_x.npy", mmap=True)
    y = load_npy(NORMALIZED / "test_y.npy")
    if x.ndim != 2 or x.shape[1] != model.W.shape[0] or len(x) != len(y) or len(y) == 0:
        raise UserError(f"{NORMALIZED}/test_x.npy {x.shape} and test_y.npy {y.shape} do not fit "
                        f"the model's W {model.W.shape}; rerun normalize and train (dvc repro)")
    if y.min() < 0 or y.max() >= len(model.classes):
        raise UserError(f"{NORMALIZED}/test_y.npy: labels outside 0..{len(model.classes) - 1}")
    all_labels = load_npy(INGESTED / "labels.npy", mmap=True)
    rows = rows_of_test_split(ASSIGNMENT, len(y), len(all_labels))
    if not np.array_equal(np.asarray(all_labels[rows]), y):
        raise UserError(f"{ASSIGNMENT}: test rows do not match {NORMALIZED}/test_y.npy; rerun (dvc repro)")

    log_proba = log_softmax(scores(np.asarray(x, np.float32), model.W, model.b))
    metrics, matrix, reliability = evaluate(log_proba, y, model.classes,
                                            calibration_bins=params["calibration_bins"],
                                            n_confusions=params["n_confusions"])

    classes = np.array(model.classes)
    predicted, confidence = prediction(log_proba)
    predictions = pd.DataFrame({"index": rows, "label": classes[y], "predicted": classes[predicted],
                                "confidence": confidence.round(6)})
    wrong = np.flatnonzero(predicted != y)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:params["n_mistakes"]]
    images = load_npy(INGESTED / "images.npy", mmap=True)

    write_json(METRICS / "evaluate.json", metrics)
    write_text(METRICS / "predictions.csv", predictions.to_csv(index=False))
    write_text(METRICS / "confusion.csv", predictions[["label", "predicted"]]
               .rename(columns={"label": "actual"}).to_csv(index=False))
    write_text(METRICS / "calibration.csv", reliability.round(6).to_csv(index=False))
    pictures.save_png(pictures.weights_picture(model.W, model.classes), METRICS / "weights.png")
    pictures.save_png(pictures.mistakes_picture(np.asarray(images[rows[worst]]), list(classes[y[worst]]),
                                                list(classes[predicted[worst]]), confidence[worst]),
                      METRICS / "mistakes.png")
    pictures.save_png(pictures.confusion_picture(matrix, model.classes), METRICS / "confusion.png")
    lo, hi = metrics["accuracy_ci95"]
    print(f"test accuracy {metrics['accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}, n={len(y)}), "
          f"log loss {metrics['log_loss']:.4f}, ECE {metrics['ece']:.4f}")


if __name__ == "__main__":
    run(main)
