"""Stage evaluate: score the trained model on the test split, with honest uncertainty.

    python -m stages.evaluate    (DVC stage `evaluate`; params: evaluate)

Reads models/model.npz, data/normalized/test_{x,y,index}.npy and, for the pictures of
mistakes, data/ingested/images.npy. Writes metrics/evaluate.json (what DVC tracks: accuracy
with its Wilson 95% interval, log loss, calibration error, macro F1), evaluate_details.json
(per-class precision/recall/F1, macro precision/recall, top confusions), predictions.csv
(index, label, predicted, confidence: one row per test image, index = row of images.npy),
confusion.csv (actual, predicted), calibration.csv (the reliability curve) and
metrics/{weights,mistakes,confusion}.png.
How: notmnist/report/metrics.py, notmnist/report/pictures.py.
"""

import numpy as np

from notmnist.learning.model import load_model
from notmnist.learning.softmax import log_softmax, scores
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.files import write_text
from notmnist.plumbing.params import load
from notmnist.report import metrics, pictures

OUT = contracts.METRICS
HEADLINE = (
    "n",
    "n_errors",
    "accuracy",
    "accuracy_ci95",
    "accuracy_ci95_low",
    "accuracy_ci95_high",
    "log_loss",
    "ece",
    "macro.f1",
)


def main() -> None:
    params = load(metrics.Evaluate)
    model = load_model(contracts.MODEL)
    test = contracts.read_split("test", len(model.classes))
    log_proba = log_softmax(scores(np.asarray(test.x), model.W, model.b))
    result = metrics.evaluate(
        log_proba,
        test.y,
        model.classes,
        test.index,
        calibration_bins=params.calibration_bins,
        n_confusions=params.n_confusions,
        n_mistakes=params.n_mistakes,
    )
    table = result.predictions

    contracts.write_metrics("evaluate", result.metrics, HEADLINE)
    # 4 decimals: a confidence moves by 1e-7 between CPUs' BLAS kernels; rounded, it rarely moves
    write_text(contracts.PREDICTIONS, table.round({"confidence": 4}).to_csv(index=False))
    confusion = table[["label", "predicted"]].rename(columns={"label": "actual"})
    write_text(OUT / "confusion.csv", confusion.to_csv(index=False))
    write_text(OUT / "calibration.csv", result.reliability.round(6).to_csv(index=False))
    pictures.save_png(pictures.weights_picture(model.W, model.classes), OUT / "weights.png")
    worst = table.iloc[result.mistakes]
    images = contracts.read_images()[worst["index"].to_numpy()]
    mistakes = pictures.mistakes_picture(images, list(worst["label"]), list(worst["predicted"]), worst["confidence"])
    pictures.save_png(mistakes, OUT / "mistakes.png")
    pictures.save_png(pictures.confusion_picture(result.confusion, model.classes), OUT / "confusion.png")
    m = result.metrics
    lo, hi = m["accuracy_ci95"]
    print(
        f"test accuracy {m['accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}, n={m['n']}), "
        f"log loss {m['log_loss']:.4f}, ECE {m['ece']:.4f}"
    )


if __name__ == "__main__":
    cli.run_stage(main, __doc__)
