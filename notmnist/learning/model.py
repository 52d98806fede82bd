"""The model file: a self-contained, pickle-free .npz.

Arrays inside models/model.npz:
    W        float32 (784, K)   weights
    b        float32 (K,)       biases
    classes  unicode (K,)       class names; label i = classes[i]
    norm     unicode ()         the normalization stats as JSON text (notmnist.data.normalization.apply)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from notmnist.plumbing.errors import UserError
from notmnist.plumbing.files import atomic_path


@dataclass
class Model:
    W: np.ndarray
    b: np.ndarray
    classes: list[str]
    norm: dict


def save_model(path: Path | str, W: np.ndarray, b: np.ndarray, classes: list[str], norm: dict) -> None:
    """Write the model atomically; a failed or interrupted save leaves the old file intact."""
    W = np.asarray(W, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if W.shape != (784, len(classes)) or b.shape != (len(classes),):
        raise ValueError(f"W {W.shape} and b {b.shape} do not match {len(classes)} classes")
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        # np.savez stamps no dates, so the same arrays give the same bytes
        np.savez(f, W=W, b=b, classes=np.array(classes, dtype=str), norm=np.array(json.dumps(norm, sort_keys=True)))


def load_model(path: Path | str) -> Model:
    """Read a model file written by save_model (no pickles)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; run the train stage first (dvc repro)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return Model(W=z["W"], b=z["b"], classes=[str(c) for c in z["classes"]], norm=json.loads(str(z["norm"])))
    except (KeyError, ValueError, OSError) as e:
        raise UserError(f"{path}: not a model file written by the train stage ({e})") from None
