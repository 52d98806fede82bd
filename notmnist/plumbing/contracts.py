"""The files that pass between stages: their paths, and typed, validated readers and writers.

docs/design.md describes each file; this module is where a stage reads and writes them,
so a file's shape is checked in one place and a missing, stale or foreign file is one
clear error naming it and what to run. All paths are relative to the repository root,
where DVC runs every stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from notmnist.plumbing.errors import UserError
from notmnist.plumbing.files import atomic_path, load_npy, read_json, save_npy, write_json, write_text

if TYPE_CHECKING:  # pandas is imported where a table is read: training never pays for it
    import pandas as pd

REPOSITORY = Path(__file__).resolve().parents[2]  # for tests and benchmarks; stages use relative paths

SPLITS = ("train", "valid", "test")
DROPPED = "dropped"  # the `split` of an image that takes part in none
SIZE = 28  # a glyph is SIZE x SIZE gray pixels
FEATURES = SIZE * SIZE

SYNTHETIC = Path("data/raw/synthetic")
INGESTED = Path("data/ingested")
ASSIGNMENT = Path("data/split/assignment.csv")
NORMALIZED = Path("data/normalized")
MODEL = Path("models/model.npz")
METRICS = Path("metrics")
PREDICTIONS = METRICS / "predictions.csv"
OPTIMIZERS = METRICS / "optimizers"
SWEEP_BEST = METRICS / "sweep_best.json"  # the learning-rate sweep's best rate per optimizer
TIMINGS = Path("timings")  # wall-clock seconds of the last runs: git-ignored, they differ every run


def _rerun(stage: str) -> str:
    return f"run `dvc repro {stage}`"


# --- ingest: data/ingested/{images.npy, labels.npy, classes.json, manifest.csv} --------------


@dataclass
class Ingested:
    images: np.ndarray  # uint8 (n, 28, 28)
    labels: np.ndarray  # int64 (n,): index into classes
    classes: list[str]  # label i is classes[i]


def write_ingested(data: Ingested, manifest: pd.DataFrame) -> None:
    save_npy(INGESTED / "images.npy", data.images)
    save_npy(INGESTED / "labels.npy", data.labels)
    write_json(INGESTED / "classes.json", data.classes)
    with atomic_path(INGESTED / "manifest.csv") as tmp:
        manifest.to_csv(tmp, index=False)


def read_images(mmap: bool = True) -> np.ndarray:
    """data/ingested/images.npy: uint8 (n, 28, 28), memory-mapped by default."""
    path = INGESTED / "images.npy"
    images = load_npy(path, mmap=mmap)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
        raise UserError(f"{path}: expected uint8 N x {SIZE} x {SIZE}, got {images.dtype} {images.shape}")
    return images


def read_ingested(mmap: bool = False) -> Ingested:
    """The ingested images, labels and class names, checked against each other."""
    images = read_images(mmap)
    labels = load_npy(INGESTED / "labels.npy")
    classes = read_json(INGESTED / "classes.json")
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise UserError(
            f"{INGESTED / 'labels.npy'}: expected {len(images)} integer labels, got {labels.dtype} {labels.shape}"
        )
    if (
        not isinstance(classes, list)
        or not classes
        or (len(labels) and (labels.min() < 0 or labels.max() >= len(classes)))
    ):
        raise UserError(f"{INGESTED / 'classes.json'}: must list a name for every label in labels.npy")
    return Ingested(images, labels.astype(np.int64), [str(c) for c in classes])


# --- split: data/split/assignment.csv -------------------------------------------------------


def write_assignment(table: pd.DataFrame) -> None:
    write_text(ASSIGNMENT, table.to_csv(index=False, lineterminator="\n"))


def read_assignment(n_images: int) -> dict[str, np.ndarray]:
    """Rows of images.npy in each split, ascending: {"train": rows, "valid": ..., "test": ...}."""
    import pandas as pd

    if not ASSIGNMENT.exists():
        raise UserError(f"{ASSIGNMENT}: not found; {_rerun('split')}")
    try:
        table = pd.read_csv(ASSIGNMENT, usecols=["index", "split"])
    except ValueError as e:
        raise UserError(f"{ASSIGNMENT}: {e}") from None
    index = table["index"].to_numpy(np.int64)
    if len(index) and (index.min() < 0 or index.max() >= n_images):
        raise UserError(f"{ASSIGNMENT}: column index outside 0..{n_images - 1}; {_rerun('split')}")
    rows = {name: np.sort(index[(table["split"] == name).to_numpy()]) for name in SPLITS}
    if len(rows["train"]) == 0:
        raise UserError(f"{ASSIGNMENT}: no rows with split=train")
    return rows


# --- normalize: data/normalized/{split}_{x,y,index}.npy, stats.json -------------------------


@dataclass
class Split:
    x: np.ndarray  # float32 (n, 784), memory-mapped
    y: np.ndarray  # int64 (n,)
    index: np.ndarray  # int64 (n,): row of each example in data/ingested/images.npy


def normalized_file(split: str, kind: str) -> Path:
    """data/normalized/{split}_{kind}.npy, kind x (features), y (labels) or index (image rows)."""
    return NORMALIZED / f"{split}_{kind}.npy"


def write_labels(split: str, y: np.ndarray, index: np.ndarray) -> None:
    save_npy(normalized_file(split, "y"), np.asarray(y, dtype=np.int64))
    save_npy(normalized_file(split, "index"), np.asarray(index, dtype=np.int64))


def write_stats(norm: dict, classes: list[str]) -> None:
    """The normalization statistics (already rounded as the model file stores them) and classes."""
    write_json(NORMALIZED / "stats.json", {**norm, "classes": classes}, digits=10)


def read_stats() -> tuple[dict, list[str]]:
    """(normalization statistics, class names) from data/normalized/stats.json."""
    stats = read_json(NORMALIZED / "stats.json")
    if not isinstance(stats, dict) or not isinstance(stats.get("classes"), list) or "method" not in stats:
        raise UserError(f"{NORMALIZED / 'stats.json'}: not written by the normalize stage; {_rerun('normalize')}")
    classes = [str(c) for c in stats.pop("classes")]
    return stats, classes


def read_split(split: str, n_classes: int) -> Split:
    """One normalized split, features memory-mapped (they may be larger than memory)."""
    x = load_npy(normalized_file(split, "x"), mmap=True)
    y = load_npy(normalized_file(split, "y"))
    index = load_npy(normalized_file(split, "index"))
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != FEATURES:
        raise UserError(f"{normalized_file(split, 'x')}: expected float32 n x {FEATURES}, got {x.dtype} {x.shape}")
    if y.shape != (len(x),) or index.shape != (len(x),):
        raise UserError(
            f"{NORMALIZED}/{split}_*.npy: {len(x)} rows of features but {len(y)} labels and "
            f"{len(index)} indices; {_rerun('normalize')}"
        )
    if len(y) == 0:
        raise UserError(f"{normalized_file(split, 'x')}: the {split} split is empty")
    if y.min() < 0 or y.max() >= n_classes:
        raise UserError(f"{normalized_file(split, 'y')}: labels outside 0..{n_classes - 1}; {_rerun('normalize')}")
    return Split(x, y.astype(np.int64), index.astype(np.int64))


# --- metrics/<stage>.json: the headline scalars DVC tracks; the rest beside them -------------


def split_report(report: dict, headline: tuple[str, ...]) -> tuple[dict, dict]:
    """(the headline keys of a nested report, everything else), both nested as in report;
    headline keys are dotted paths ("valid.accuracy") and may be missing from the report."""
    top, rest = {}, {}
    for key, value in report.items():
        inner = tuple(h.split(".", 1)[1] for h in headline if h.startswith(key + "."))
        if key in headline:
            top[key] = value
        elif inner and isinstance(value, dict):
            top[key], rest[key] = split_report(value, inner)
        else:
            rest[key] = value
    return {k: v for k, v in top.items() if v != {}}, {k: v for k, v in rest.items() if v != {}}


def write_metrics(stage: str, report: dict, headline: tuple[str, ...]) -> None:
    """metrics/<stage>.json: the headline scalars that `dvc metrics` and `dvc exp show` list;
    metrics/<stage>_details.json: the rest of the report (per class, lists), a plain file."""
    top, rest = split_report(report, headline)
    write_json(METRICS / f"{stage}.json", top)
    write_json(METRICS / f"{stage}_details.json", rest)


def write_timing(name: str, seconds: dict) -> None:
    """timings/<name>.json (git-ignored): a run's wall-clock seconds, which differ every run
    and so stay out of every file that git or DVC tracks."""
    write_json(TIMINGS / f"{name}.json", seconds, digits=3)


def write_best_rates(rates: dict[str, float]) -> None:
    """metrics/sweep_best.json, a DVC metric: {"best_rate": {optimizer: rate}} (nested, so
    that `dvc exp show` names its columns best_rate.sgd, ...)."""
    write_json(SWEEP_BEST, {"best_rate": rates})


def read_best_rates() -> dict[str, float]:
    """metrics/sweep_best.json: optimizer -> the sweep's best learning rate."""
    rates = (read_json(SWEEP_BEST) or {}).get("best_rate")
    if not isinstance(rates, dict) or not rates or not all(isinstance(r, (int, float)) for r in rates.values()):
        raise UserError(f"{SWEEP_BEST}: not written by the sweep stage; {_rerun('sweep')}")
    return {str(name): float(rate) for name, rate in rates.items()}
