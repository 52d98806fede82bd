"""Helpers the tests share: running stages and tools as DVC and users do, repository copies,
small data sets, and image bytes."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image, ImageDraw, ImageFont

from notmnist.data.normalization import apply
from notmnist.learning.model import save_model
from notmnist.plumbing.contracts import REPOSITORY as REPO

DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())
OUTPUT_DIRS = ("data", "models", "metrics")


# --- commands ------------------------------------------------------------------------------


def run(
    cwd: Path, *args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """A command in cwd, with this interpreter first on PATH (DVC's stage commands say
    `python`) and the repository importable from anywhere; `env` adds or replaces variables."""
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def run_stage(cwd: Path, name: str, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`python -m stages.<name>` in cwd, as DVC runs a stage: cwd holds params.yaml and the data."""
    return run(cwd, sys.executable, "-m", f"stages.{name}", *args, check=check)


def run_tool(cwd: Path, name: str, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`python -m tools.<name>` in cwd, as a user runs it."""
    return run(cwd, sys.executable, "-m", f"tools.{name}", *args, check=check)


def dvc(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(cwd, sys.executable, "-m", "dvc", *args, **kwargs)


def wait_for_the_queue(root: Path, timeout: float = 900) -> list[str]:
    """Poll `dvc queue status` until no task is queued or running; the tasks' final states
    (its rows are `Task  Name  Created  Status`, the status last)."""
    deadline = time.monotonic() + timeout
    while True:
        status = dvc(root, "queue", "status").stdout
        states = [line.split()[-1] for line in status.splitlines()[1:] if " " in line.strip()]
        if not {"Queued", "Running"} & set(states):
            return states
        assert time.monotonic() < deadline, status
        time.sleep(2)


def git(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(
        cwd,
        "git",
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.com",
        "-c",
        "commit.gpgsign=false",
        *args,
        **kwargs,
    )


def commit(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "--allow-empty", "-m", message)


def copy_repository(dest: Path) -> None:
    """The tracked and untracked source files (not .git, .venv, data, models, metrics, caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file() and not name.startswith(OUTPUT_DIRS):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


def write_params(root: Path, sections: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(sections, sort_keys=False))


def read_params(root: Path) -> dict:
    return yaml.safe_load((root / "params.yaml").read_text())


def with_overrides(params: dict, overrides: dict) -> dict:
    return {section: {**values, **overrides.get(section, {})} for section, values in params.items()}


def error_line(result: subprocess.CompletedProcess) -> str:
    """The stage's one error line, checked to be the only line on stderr."""
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# --- small data sets -----------------------------------------------------------------------

CLASSES = list("ABCDEFGHIJ")


def random_set(rng, per_class=20, n_classes=10):
    """Distinct random images (no accidental duplicates), per_class of each class."""
    images = rng.integers(0, 256, (per_class * n_classes, 28, 28)).astype(np.uint8)
    labels = np.repeat(np.arange(n_classes), per_class)
    return images, labels


def near_copy(image, rng):
    """The image with every pixel moved by at most 2 gray levels."""
    return np.clip(image.astype(np.int16) + rng.integers(-2, 3, image.shape), 0, 255).astype(np.uint8)


def near_blank_pairs(rng, n_pairs):
    """Low-contrast images and copies at mean |difference| <= 2: the DCT hash is unstable here."""
    base = rng.integers(120, 124, (n_pairs, 28, 28)).astype(np.int16)
    copy = base + rng.integers(-2, 3, base.shape)
    return np.concatenate([base, copy]).astype(np.uint8)


def brute_force_pairs(images, side, max_l1):
    """Every (i < j) pair on different sides (>= 0) within pixel L1 max_l1, the slow way."""
    rows = images.reshape(len(images), -1).astype(np.int64)
    found = set()
    for i in range(len(rows)):
        dist = np.abs(rows[i + 1 :] - rows[i]).sum(axis=1)
        for j in np.flatnonzero(dist <= max_l1) + i + 1:
            if side[i] != side[j] and min(side[i], side[j]) >= 0:
                found.add((i, int(j)))
    return found


def clusters(n, k=3, seed=0):
    """n rows of 784 features: k Gaussian clusters that overlap a little."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 0.2, size=(k, 784))
    y = rng.integers(0, k, n)
    return (centers[y] + rng.normal(size=(n, 784))).astype(np.float32), y.astype(np.int64)


def write_normalized(root: Path, splits: dict, classes: list[str], norm: dict | None = None) -> None:
    """data/normalized as the normalize stage writes it: splits = {name: (x, y)}."""
    data = root / "data/normalized"
    data.mkdir(parents=True, exist_ok=True)
    offset = 0
    for name, (x, y) in splits.items():
        np.save(data / f"{name}_x.npy", np.asarray(x, np.float32))
        np.save(data / f"{name}_y.npy", np.asarray(y, np.int64))
        np.save(data / f"{name}_index.npy", np.arange(offset, offset + len(y), dtype=np.int64))
        offset += len(y)
    norm = norm or {"method": "standardize", "mean": 120.0, "std": 90.0}
    (data / "stats.json").write_text(json.dumps({**norm, "classes": classes}))


def letter_templates() -> np.ndarray:
    """(10, 28, 28) uint8: white letters A-J on black, like notMNIST."""
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


TOY_NORM = {"method": "udacity", "mean": 127.5, "std": 255.0}
TOY_EVALUATE = {"n_mistakes": 12, "calibration_bins": 10, "n_confusions": 5}


def write_toy_run(root: Path, *, n_per_class: int = 30, noise: float = 150.0, seed: int = 0) -> dict:
    """A tiny finished pipeline run under root, for the evaluate/predict/compare tests.

    Noisy letters A-J from Pillow's bundled font, a train/valid/test assignment, udacity-
    normalized test arrays and a nearest-class-mean softmax model (W[:, k] = mean_k,
    b_k = -|mean_k|^2 / 2), in the layout the stages write. Returns the arrays used.
    """
    images, labels = noisy_letters(n_per_class, noise, seed)
    split = np.array(["train", "valid", "test"])[np.arange(len(labels)) % 3]
    (root / "data/ingested").mkdir(parents=True, exist_ok=True)
    (root / "data/split").mkdir(parents=True, exist_ok=True)
    np.save(root / "data/ingested/images.npy", images)
    np.save(root / "data/ingested/labels.npy", labels)
    (root / "data/ingested/classes.json").write_text(json.dumps(CLASSES))
    pd.DataFrame({"index": np.arange(len(labels)), "split": split}).to_csv(
        root / "data/split/assignment.csv", index=False
    )
    test = np.flatnonzero(split == "test")
    write_normalized(root, {"test": (apply(images[test], TOY_NORM), labels[test])}, CLASSES, TOY_NORM)
    np.save(root / "data/normalized/test_index.npy", test)

    train_x = apply(images[split == "train"], TOY_NORM).astype(np.float64)
    train_y = labels[split == "train"]
    means = np.stack([train_x[train_y == k].mean(axis=0) for k in range(len(CLASSES))])
    W, b = means.T, -0.5 * np.square(means).sum(axis=1)
    save_model(root / "models/model.npz", W, b, CLASSES, TOY_NORM)
    write_params(root, {"evaluate": TOY_EVALUATE})
    return {"images": images, "labels": labels, "test_rows": test, "W": W, "b": b}


# --- image bytes ---------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


NOISE_PNG = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)))
