"""A tiny finished pipeline run on disk, for the evaluate/predict/compare tests.

Letters A-J drawn with Pillow's bundled font plus noise, a train/valid/test assignment,
udacity-normalized test arrays and a nearest-class-mean softmax model (W[:, k] = mean_k,
b_k = -|mean_k|^2 / 2), written in the layout the stages use, so a stage can run with
the toy directory as its working directory.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from stages.model import save_model
from stages.normalize import apply

CLASSES = list("ABCDEFGHIJ")
NORM = {"method": "udacity", "mean": 127.5, "std": 255.0}
EVALUATE_PARAMS = "evaluate:\n  n_mistakes: 12\n  calibration_bins: 10\n  n_confusions: 5\n"


def letter_templates() -> np.ndarray:
    """(10, 28, 28) uint8: white letters on black, like notMNIST."""
    font = ImageFont.load_default(size=22)
    out = []
    for letter in CLASSES:
        im = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(im).text((14, 14), letter, fill=255, font=font, anchor="mm")
        out.append(np.asarray(im))
    return np.stack(out)


def noisy_letters(n_per_class: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    rng.shuffle(labels)
    images = letter_templates()[labels] + rng.normal(0, noise, (len(labels), 28, 28))
    return np.clip(images, 0, 255).round().astype(np.uint8), labels.astype(np.int64)


def write_toy_run(root: Path, *, n_per_class: int = 30, noise: float = 150.0, seed: int = 0,
                  temperature: float = 1.0) -> dict:
    """Write data/, models/model.npz and params.yaml under root; returns the arrays used."""
    images, labels = noisy_letters(n_per_class, noise, seed)
    split = np.array(["train", "valid", "test"])[np.arange(len(labels)) % 3]
    (root / "data/ingested").mkdir(parents=True, exist_ok=True)
    (root / "data/split").mkdir(parents=True, exist_ok=True)
    (root / "data/normalized").mkdir(parents=True, exist_ok=True)
    np.save(root / "data/ingested/images.npy", images)
    np.save(root / "data/ingested/labels.npy", labels)
    (root / "data/ingested/classes.json").write_text(json.dumps(CLASSES))
    pd.DataFrame({"index": np.arange(len(labels)), "split": split}).to_csv(
        root / "data/split/assignment.csv", index=False)
    test = np.flatnonzero(split == "test")
    np.save(root / "data/normalized/test_x.npy", apply(images[test], NORM))
    np.save(root / "data/normalized/test_y.npy", labels[test])

    train_x = apply(images[split == "train"], NORM).astype(np.float64)
    train_y = labels[split == "train"]
    means = np.stack([train_x[train_y == k].mean(axis=0) for k in range(len(CLASSES))])
    W = means.T / temperature
    b = -0.5 * np.square(means).sum(axis=1) / temperature
    save_model(root / "models/model.npz", W, b, CLASSES, NORM)
    (root / "params.yaml").write_text(EVALUATE_PARAMS)
    return {"images": images, "labels": labels, "test_rows": test, "W": W, "b": b}
