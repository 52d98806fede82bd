"""Stage normalize (notmnist.data.normalization): statistics from train only, float32 rows,
chunked writes, each example's image row, bad params."""

import json

import numpy as np
import pandas as pd
import pytest

from notmnist.data import normalization
from tests.helpers import error_line, run_stage, write_params


def make_inputs(root, n=120, seed=0):
    """data/ingested + data/split for n random glyphs; pixel 0 is constant (always 7)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 7
    (root / "data/ingested").mkdir(parents=True)
    (root / "data/split").mkdir(parents=True)
    np.save(root / "data/ingested/images.npy", images)
    np.save(root / "data/ingested/labels.npy", rng.integers(0, 3, n).astype(np.int64))
    (root / "data/ingested/classes.json").write_text(json.dumps(["A", "B", "C"]))
    split = np.array(["train", "valid", "test", "dropped"])[rng.integers(0, 4, n)]
    pd.DataFrame({"index": np.arange(n), "split": split}).to_csv(root / "data/split/assignment.csv", index=False)
    return images, split


def normalize(root, method="standardize"):
    write_params(root, {"normalize": {"method": method}})
    return run_stage(root, "normalize", check=True)


def test_udacity_maps_0_and_255_to_minus_and_plus_one_half():
    images = np.array([[[0] * 28] * 28, [[255] * 28] * 28], dtype=np.uint8)
    x = normalization.apply(images, normalization.fit(images, np.arange(2), "udacity"))
    assert x.dtype == np.float32 and x.shape == (2, 784)
    assert np.all(x[0] == -0.5) and np.all(x[1] == 0.5)


def test_apply_accepts_images_or_rows_alike():
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    norm = {"method": "standardize", "mean": 100.0, "std": 50.0}
    np.testing.assert_array_equal(normalization.apply(images, norm), normalization.apply(images.reshape(5, 784), norm))


@pytest.mark.parametrize("method", ["standardize", "per_pixel"])
def test_train_split_has_zero_mean_and_unit_std_and_is_finite(tmp_path, method):
    make_inputs(tmp_path)
    normalize(tmp_path, method)
    x = np.load(tmp_path / "data/normalized/train_x.npy")
    assert x.dtype == np.float32 and x.flags.c_contiguous and np.isfinite(x).all()
    if method == "standardize":
        assert abs(x.mean()) < 1e-4 and x.std() == pytest.approx(1.0, rel=1e-4)
    else:
        varying = x[:, 1:]
        np.testing.assert_allclose(varying.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(varying.std(axis=0), 1, rtol=1e-4)
        assert np.all(x[:, 0] == 0)  # the constant pixel: guarded, not divided by zero
    metrics = json.loads((tmp_path / "metrics/normalize.json").read_text())
    assert abs(metrics["train"]["mean"]) < 1e-4


def test_statistics_come_from_the_train_split_only(tmp_path):
    images, split = make_inputs(tmp_path)
    normalize(tmp_path)
    before = json.loads((tmp_path / "data/normalized/stats.json").read_text())
    images[split != "train"] = 255  # change every non-train image
    np.save(tmp_path / "data/ingested/images.npy", images)
    normalize(tmp_path)
    assert json.loads((tmp_path / "data/normalized/stats.json").read_text()) == before


def test_each_split_gets_its_rows_labels_and_image_indices_in_index_order(tmp_path):
    images, split = make_inputs(tmp_path)
    normalize(tmp_path, "udacity")
    labels = np.load(tmp_path / "data/ingested/labels.npy")
    for name in ("train", "valid", "test"):
        rows = np.flatnonzero(split == name)
        x, y, index = (np.load(tmp_path / f"data/normalized/{name}_{kind}.npy") for kind in ("x", "y", "index"))
        assert y.dtype == index.dtype == np.int64
        np.testing.assert_array_equal(index, rows)
        np.testing.assert_array_equal(y, labels[rows])
        np.testing.assert_array_equal(x, (images[rows].reshape(-1, 784) - np.float32(127.5)) / np.float32(255))


def test_chunked_conversion_gives_the_same_bytes(tmp_path, monkeypatch):
    images = np.random.default_rng(2).integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    rows = np.arange(3, 47)
    norm = normalization.fit(images, rows, "per_pixel")
    normalization.write_features(tmp_path / "whole.npy", images, rows, norm)
    monkeypatch.setattr(normalization, "CHUNK", 7)
    normalization.write_features(tmp_path / "chunked.npy", images, rows, norm)
    assert (tmp_path / "chunked.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()


def test_unknown_method_is_one_error_naming_the_parameter_before_any_output(tmp_path):
    make_inputs(tmp_path)
    write_params(tmp_path, {"normalize": {"method": "zscore"}})
    assert "normalize.method: bad value 'zscore'" in error_line(run_stage(tmp_path, "normalize"))
    assert not (tmp_path / "data/normalized").exists()


def test_same_inputs_give_bitwise_identical_outputs(tmp_path):
    make_inputs(tmp_path)
    normalize(tmp_path, "per_pixel")
    outputs = sorted((tmp_path / "data/normalized").iterdir()) + [tmp_path / "metrics/normalize.json"]
    first = [path.read_bytes() for path in outputs]
    normalize(tmp_path, "per_pixel")
    assert [path.read_bytes() for path in outputs] == first


def test_per_pixel_divides_a_nearly_constant_pixel_by_at_least_one_gray_level():
    images = np.full((50, 28, 28), 100, np.uint8)
    images[:, 0, 0] = np.arange(50) % 2  # std 0.5: dividing by it would blow noise up
    images[:, 0, 1] = np.arange(50) * 5  # std about 72: its own
    std = np.asarray(normalization.fit(images, np.arange(50), "per_pixel")["std"])
    assert std[0] == normalization.MIN_STD and std[1] == pytest.approx(np.std(np.arange(50) * 5.0), rel=1e-6)
    assert std[2] == normalization.MIN_STD  # constant: no division by zero
