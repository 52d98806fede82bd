"""The model file: a self-contained, pickle-free .npz.

Arrays inside models/model.npz:
    W        float32 (784, K)   weights
    b        float32 (K,)       biases
    classes  unicode (K,)       class names; label i = classes[i]
    norm     unicode ()         the normalization stats as JSON text (notmnist.data.normalization.apply)

A model file may come from anyone: load_model checks every array's dtype and shape from its
header before reading its data, then the values (finite weights, distinct printable class
names, finite means, standard deviations > 0). Anything else is one UserError line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notmnist.plumbing.cli import printable
from notmnist.plumbing.errors import UserError
from notmnist.plumbing.files import Unreadable, atomic_path, open_regular

FEATURES = 784
MAX_CLASSES = 1000  # W is then 3 MB; the file's size cap follows
MAX_NAME = 256  # characters in a class name
MAX_NORM = 2**20  # characters of the normalization JSON (per_pixel: about 30,000)
MAX_FILE_BYTES = FEATURES * MAX_CLASSES * 4 + MAX_CLASSES * (4 + 4 * MAX_NAME) + 4 * MAX_NORM + 2**20


class BadModel(ValueError):
    """What is wrong with a model file, in a few words."""


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
    """Read and check a model file written by save_model (no pickles); UserError if it is not one."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; run the train stage first (dvc repro)")
    try:
        with open_regular(path) as f:
            size = f.seek(0, 2)
            if size > MAX_FILE_BYTES:
                raise BadModel(f"{size} bytes, over the cap of {MAX_FILE_BYTES}")
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                if not isinstance(z, np.lib.npyio.NpzFile):
                    raise BadModel("not an .npz archive")
                return _checked(z)
    except Unreadable as e:
        raise UserError(str(e)) from None
    except Exception as e:  # numpy, zipfile and zlib raise many kinds on damaged files
        detail = str(e) if isinstance(e, BadModel) else f"{type(e).__name__}: {e}"
        raise UserError(f"{path}: not a model file written by the train stage ({printable(detail)[:200]})") from None


def _checked(z: np.lib.npyio.NpzFile) -> Model:
    keys = set(z.files)
    if keys != {"W", "b", "classes", "norm"}:
        raise BadModel(f"arrays {sorted(keys)[:8]}, not W, b, classes, norm")
    W_shape = _header(z, "W", "f", 4)
    k = W_shape[1] if len(W_shape) == 2 else 0
    if W_shape[0] != FEATURES or not 1 <= k <= MAX_CLASSES:
        raise BadModel(f"W has shape {W_shape}, not ({FEATURES}, K) with 1 <= K <= {MAX_CLASSES}")
    for name, shape in (("b", _header(z, "b", "f", 4)), ("classes", _header(z, "classes", "U", 4 * MAX_NAME))):
        if shape != (k,):
            raise BadModel(f"{name} has shape {shape}, not ({k},) as W")
    if _header(z, "norm", "U", 4 * MAX_NORM) != ():
        raise BadModel("norm is not one JSON text")
    W, b = z["W"].astype(np.float32), z["b"].astype(np.float32)
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        raise BadModel("W or b holds NaN or infinite values")
    classes = [str(c) for c in z["classes"]]
    if len(set(classes)) < k or not all(classes) or any(printable(c) != c for c in classes):
        raise BadModel("class names must be distinct, non-empty and free of control characters")
    return Model(W=W, b=b, classes=classes, norm=_norm(str(z["norm"])))


def _header(z: np.lib.npyio.NpzFile, name: str, kind: str, max_itemsize: int) -> tuple:
    """An array's shape, from its header, once its dtype is of `kind` and at most max_itemsize bytes."""
    assert z.zip is not None, "an NpzFile opened from a path has its zip"
    with z.zip.open(name + ".npy") as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise BadModel(f"{name} is in .npy format {version}")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    if dtype.kind != kind or dtype.itemsize > max_itemsize or dtype.hasobject:
        raise BadModel(f"{name} has dtype {dtype}")
    return shape


def _norm(text: str) -> dict:
    """The normalization stats: mean and std, each one number or FEATURES numbers, std > 0."""
    norm = json.loads(text)
    if not isinstance(norm, dict) or not isinstance(norm.get("method"), str):
        raise BadModel("norm is not a mapping with a method")
    for key in ("mean", "std"):
        value = norm.get(key)
        values = value if isinstance(value, list) and len(value) == FEATURES else [value]
        if not all(_finite(v) for v in values):
            raise BadModel(f"norm {key} is not a finite number or {FEATURES} of them")
        if key == "std" and not all(isinstance(v, (int, float)) and v > 0 for v in values):
            raise BadModel("norm std must be > 0")
    return norm


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
