"""Normalization: uint8 images -> float32 rows of 784 features, from train statistics only.

Every method is x' = (x - mean) / std with statistics fixed before any row is written:

    udacity      mean = 127.5, std = 255            (the course notebook; no statistics)
    standardize  mean, std of all train pixels      (one number each)
    per_pixel    mean_j, std_j of train pixel j     (784 each; std_j floored at MIN_STD)

The images stay uint8 until here and are converted chunk by chunk straight into a memory
map, so notMNIST_large (530k images) never needs more than a chunk of float memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from notmnist.plumbing.files import atomic_path, rounded
from notmnist.plumbing.params import choice, knob

METHODS = ("udacity", "standardize", "per_pixel")
CHUNK = 8192  # rows converted at a time: 8192 x 784 float32 = 25 MB
MIN_STD = 1.0  # per_pixel: a pixel (nearly) constant in train is divided by at least one gray level


@dataclass(frozen=True)
class Normalize:
    """Section normalize."""

    SECTION: ClassVar[str] = "normalize"
    method: str = knob(choice(*METHODS))


def fit(images: np.ndarray, rows: np.ndarray, method: str) -> dict:
    """Normalization statistics of images[rows] (the train split) as a JSON-able dict,
    rounded to 10 digits as stats.json and the model file store them, so that every user
    of the model applies the same numbers.

    The sums are exact integers (a histogram of the 256 gray levels for one global mean and
    std; per-pixel sums of x and x^2 in int64), so no float conversion of the whole split.
    """
    return rounded(_statistics(images, rows, method), 10)


def _statistics(images: np.ndarray, rows: np.ndarray, method: str) -> dict:
    if method == "udacity":
        return {"method": method, "mean": 127.5, "std": 255.0}
    levels = np.arange(256, dtype=np.int64)
    histogram = np.zeros(256, dtype=np.int64)
    total = np.zeros(784, dtype=np.int64)
    squares = np.zeros(784, dtype=np.int64)
    for start in range(0, len(rows), CHUNK):
        x = images[rows[start : start + CHUNK]].reshape(-1, 784)
        if method == "per_pixel":
            total += x.sum(axis=0, dtype=np.int64)
            squares += np.square(x, dtype=np.uint16).sum(axis=0, dtype=np.int64)
        else:
            histogram += np.bincount(x.ravel(), minlength=256)
    if method == "per_pixel":
        pixel_mean = total / len(rows)
        pixel_std = np.sqrt(np.maximum(squares / len(rows) - pixel_mean**2, 0.0))
        return {"method": method, "mean": pixel_mean.tolist(), "std": np.maximum(pixel_std, MIN_STD).tolist()}
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


def write_features(path_x: Path, images: np.ndarray, rows: np.ndarray, norm: dict) -> tuple[float, float]:
    """Normalize images[rows] chunk by chunk into a float32 .npy at path_x (atomically);
    returns the mean and std of the written values."""
    total, squares = 0.0, 0.0
    with atomic_path(path_x) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(rows), 784))
        if hasattr(os, "posix_fallocate"):  # claim the disk now: a full disk is an error here, not a crash later
            with open(tmp, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, os.path.getsize(tmp))
        for start in range(0, len(rows), CHUNK):
            x = apply(images[rows[start : start + CHUNK]], norm)
            out[start : start + len(x)] = x
            total += x.sum(dtype=np.float64)
            squares += np.square(x, dtype=np.float64).sum()
        del out  # unmapped; the page cache holds the data for the rename
    count = max(len(rows) * 784, 1)
    mean = total / count
    return mean, float(np.sqrt(max(squares / count - mean**2, 0.0)))
