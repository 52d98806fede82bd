"""Our softmax against scikit-learn's on the same normalized split: is ours a fair baseline?

    python -m benchmarks.reference [RUN]    (RUN: a folder where `dvc repro` ran; default .)

Reads RUN/data/normalized and RUN/metrics/evaluate.json. scikit-learn's multinomial
LogisticRegression (lbfgs) is fitted for C in a log grid; the C with the best validation
accuracy is kept (tuned on validation, never test), and its test accuracy is printed next to
ours. scikit-learn is a reference here, never a dependency of the pipeline.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", nargs="?", type=Path, default=Path("."))
    args = parser.parse_args()
    data = args.run / "data/normalized"
    X, y, Xv, yv, Xt, yt = (np.load(data / f"{s}_{k}.npy") for s in ("train", "valid", "test") for k in ("x", "y"))
    ours = json.loads((args.run / "metrics/evaluate.json").read_text())["accuracy"]
    print(f"train {len(y):,}, valid {len(yv):,}, test {len(yt):,} rows")
    print(f"{'C':>8} {'l2 = 1/(C n)':>12} {'valid acc':>9} {'test acc':>8} {'seconds':>7}")
    best = None
    for C in GRID:
        started = time.perf_counter()
        model = LogisticRegression(C=C, max_iter=2000, tol=1e-6).fit(X, y)
        valid, test = model.score(Xv, yv), model.score(Xt, yt)
        print(f"{C:>8g} {1 / (C * len(y)):>12.3g} {valid:>9.4f} {test:>8.4f} {time.perf_counter() - started:>7.1f}")
        if best is None or valid > best[1]:
            best = (C, valid, test)
    print(f"scikit-learn, C tuned on validation (C = {best[0]:g}): test accuracy {best[2]:.4f}; ours: {ours:.4f}")


if __name__ == "__main__":
    main()
