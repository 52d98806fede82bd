"""notmnist.learning.model: a model file is checked whole before use; a broken one is one line."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

from notmnist.learning.model import load_model, save_model
from notmnist.plumbing.errors import UserError

CLASSES = list("ABC")
NORM = {"method": "udacity", "mean": 127.5, "std": 255.0}


def arrays(**changes) -> dict:
    good = {
        "W": np.zeros((784, 3), np.float32),
        "b": np.zeros(3, np.float32),
        "classes": np.array(CLASSES),
        "norm": np.array(json.dumps(NORM)),
    }
    return {k: v for k, v in {**good, **changes}.items() if v is not None}


def npz(path, **changes):
    with open(path, "wb") as f:
        np.savez(f, **arrays(**changes))
    return path


def npy_claiming(shape) -> bytes:
    """An .npy whose header claims `shape` of float32 with no data behind it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_a_saved_model_loads_back(tmp_path):
    save_model(tmp_path / "m.npz", np.ones((784, 3)), np.zeros(3), CLASSES, NORM)
    model = load_model(tmp_path / "m.npz")
    assert model.W.dtype == np.float32 and model.classes == CLASSES and model.norm == NORM


BROKEN = {
    "missing b": dict(b=None),
    "extra array": dict(extra=np.zeros(1)),
    "W not 784 rows": dict(W=np.zeros((783, 3), np.float32)),
    "W of ints": dict(W=np.zeros((784, 3), np.int32)),
    "W of float64": dict(W=np.zeros((784, 3))),
    "b of another K": dict(b=np.zeros(4, np.float32)),
    "classes of another K": dict(classes=np.array(list("AB"))),
    "classes as numbers": dict(classes=np.arange(3)),
    "a duplicate class": dict(classes=np.array(["A", "B", "A"])),
    "an empty class name": dict(classes=np.array(["A", "B", ""])),
    "an escape in a class name": dict(classes=np.array(["A", "B", "\x1b[2J"])),
    "NaN weights": dict(W=np.full((784, 3), np.nan, np.float32)),
    "an infinite bias": dict(b=np.array([0, np.inf, 0], np.float32)),
    "norm not JSON": dict(norm=np.array("{mean: 1")),
    "norm without std": dict(norm=np.array(json.dumps({"method": "udacity", "mean": 1.0}))),
    "std of zero": dict(norm=np.array(json.dumps({**NORM, "std": 0.0}))),
    "NaN mean": dict(norm=np.array('{"method": "x", "mean": NaN, "std": 1}')),
    "per-pixel std of the wrong length": dict(norm=np.array(json.dumps({**NORM, "std": [1.0] * 783}))),
}


@pytest.mark.parametrize("changes", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_model_is_one_clear_error(tmp_path, changes):
    with pytest.raises(UserError, match="m.npz: not a model file written by the train stage"):
        load_model(npz(tmp_path / "m.npz", **changes))


def test_a_truncated_or_foreign_file_is_one_clear_error(tmp_path):
    whole = npz(tmp_path / "m.npz").read_bytes()
    for i, data in enumerate([whole[: len(whole) // 2], b"", os.urandom(5000), b"\x93NUMPY" + whole]):
        (tmp_path / f"{i}.npz").write_bytes(data)
        with pytest.raises(UserError, match="not a model file"):
            load_model(tmp_path / f"{i}.npz")


def test_a_header_claiming_a_huge_array_is_refused_before_reading(tmp_path):
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        for name, array in arrays().items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            z.writestr(f"{name}.npy", npy_claiming((784, 2**40)) if name == "W" else buffer.getvalue())
    with pytest.raises(UserError, match=r"W has shape \(784, 1099511627776\)"):
        load_model(tmp_path / "huge.npz")


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_special_file_as_the_model_is_refused_without_reading(tmp_path, special):
    path = tmp_path / "m.npz"
    if special == "fifo":
        os.mkfifo(path)
    else:
        path = special
    with pytest.raises(UserError, match="not a regular file"):
        load_model(path)


def test_an_oversized_model_file_is_refused_unread(tmp_path):
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        f.truncate(2**31)  # a hole: nothing on disk
    with pytest.raises(UserError, match="over the cap"):
        load_model(path)
