"""Stage normalize: uint8 images -> float32 rows of 784 features, from train statistics only.

Every method is x' = (x - mean) / std with statistics fixed before any row is written:

    udacity      mean = 127.5, std = 255            (the course notebook; no statistics)
    standardize  mean, std of all train pixels      (one number each)
    per_pixel    mean_j, std_j of train pixel j     (784 each; std_j floored at MIN_STD)

The images stay uint8 until here and are converted chunk by chunk straight into a memory
map, so notMNIST_large (530k images) never needs more than a chunk of float memory.
Reads data/ingested/{images,labels}.npy, classes.json and data/split/assignment.csv;
writes data/normalized/{train,valid,test}_{x,y}.npy, data/normalized/stats.json and
metrics/normalize.json.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages.io import (UserError, atomic_path, choice, load_npy, load_params, read_json,
                       rounded, save_npy, write_json)

METHODS = ("udacity", "standardize", "per_pixel")
SPLITS = ("train", "valid", "test")
CHUNK = 8192  # rows converted at a time: 8192 x 784 float32 = 25 MB
MIN_STD = 1.0  # per_pixel: a pixel (nearly) constant in train is divided by at least one gray level
INGESTED = Path("data/ingested")
ASSIGNMENT = Path("data/split/assignment.csv")
OUT = Path("data/normalized")


def fit(images: np.ndarray, rows: np.ndarray, method: str) -> dict:
    """Normalization statistics of images[rows] (the train split) as a JSON-able dict.

    The sums are exact integers (a histogram of the 256 gray levels for one global mean and
    std; per-pixel sums of x and x^2 in int64), so no float conversion of the whole split.
    """
    if method == "udacity":
        return {"method": method, "mean": 127.5, "std": 255.0}
    levels = np.arange(256, dtype=np.int64)
    histogram = np.zeros(256, dtype=np.int64)
    total = np.zeros(784, dtype=np.int64)
    squares = np.zeros(784, dtype=np.int64)
    for start in range(0, len(rows), CHUNK):
        x = images[rows[start:start + CHUNK]].reshape(-1, 784)
        if method == "per_pixel":
            total += x.sum(axis=0, dtype=np.int64)
            squares += np.square(x, dtype=np.uint16).sum(axis=0, dtype=np.int64)
        else:
            histogram += np.bincount(x.ravel(), minlength=256)
    if method == "per_pixel":
        mean = total / len(rows)
        std = np.sqrt(np.maximum(squares / len(rows) - mean**2, 0.0))
        return {"method": method, "mean": mean.tolist(), "std": np.maximum(std, MIN_STD).tolist()}
    count = histogram.sum()
    mean = (histogram @ levels) / count
    std = float(np.sqrt(max((histogram @ levels**2) / count - mean**2, 0.0)))
    return {"method": method, "mean": float(mean), "std": std if std > 0 else 1.0}


def apply(images: np.ndarray, norm: dict) -> np.ndarray:
    """(x - mean) / std for uint8 images of shape (n, 28, 28) or (n, 784) -> float32 (n, 784)."""
    x = np.asarray(images).reshape(len(images), 784).astype(np.float32)
    x -= np.asarray(norm["mean"], dtype=np.float32)
    x /= np.asarray(norm["std"], dtype=np.float32)
    return x


def write_split(path_x: Path, images: np.ndarray, rows: np.ndarray, norm: dict) -> tuple[float, float]:
    """Normalize images[rows] chunk by chunk into a float32 .npy at path_x (atomically);
    returns the mean and std of the written values."""
    total, squares = 0.0, 0.0
    with atomic_path(path_x) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(rows), 784))
        for start in range(0, len(rows), CHUNK):
            x = apply(images[rows[start:start + CHUNK]], norm)
            out[start:start + len(x)] = x
            total += x.sum(dtype=np.float64)
            squares += np.square(x, dtype=np.float64).sum()
        del out  # unmapped; the page cache holds the data for the rename
    count = max(len(rows) * 784, 1)
    mean = total / count
    return mean, float(np.sqrt(max(squares / count - mean**2, 0.0)))


def read_assignment(path: Path, n_images: int) -> dict[str, np.ndarray]:
    """Row indices into images.npy for each split, in ascending order."""
    if not path.exists():
        raise UserError(f"{path}: not found; run the split stage first (dvc repro)")
    try:
        table = pd.read_csv(path, usecols=["index", "split"])
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    index = table["index"].to_numpy()
    if len(index) and (index.min() < 0 or index.max() >= n_images):
        raise UserError(f"{path}: column index outside 0..{n_images - 1}")
    rows = {name: np.sort(index[(table["split"] == name).to_numpy()]) for name in SPLITS}
    if len(rows["train"]) == 0:
        raise UserError(f"{path}: no rows with split=train")
    return rows


def main() -> None:
    params = load_params("normalize", {"method": choice(*METHODS)})
    images = load_npy(INGESTED / "images.npy", mmap=True)
    labels = load_npy(INGESTED / "labels.npy")
    classes = read_json(INGESTED / "classes.json")
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise UserError(f"{INGESTED / 'images.npy'}: expected uint8 N x 28 x 28, got "
                        f"{images.dtype} {images.shape}")
    if labels.shape != (len(images),):
        raise UserError(f"{INGESTED / 'labels.npy'}: expected {len(images)} labels, got {labels.shape}")
    rows = read_assignment(ASSIGNMENT, len(images))

    # rounded as stats.json and the model file store it, so every user applies the same numbers
    norm = rounded(fit(images, rows["train"], params["method"]), 10)
    after = {}
    for name in SPLITS:
        mean, std = write_split(OUT / f"{name}_x.npy", images, rows[name], norm)
        save_npy(OUT / f"{name}_y.npy", labels[rows[name]].astype(np.int64))
        after[name] = {"n": len(rows[name]), "mean": mean, "std": std}
    write_json(OUT / "stats.json", {**norm, "classes": classes}, digits=10)
    write_json("metrics/normalize.json", {"method": params["method"], **after})


if __name__ == "__main__":
    from stages.io import run

    run(main)
