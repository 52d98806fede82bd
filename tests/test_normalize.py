"""Stage normalize: statistics from train only, float32 rows, chunked writes, bad params."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from stages import normalize
from stages.io import ParamError


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
    pd.DataFrame({"index": np.arange(n), "split": split}).to_csv(
        root / "data/split/assignment.csv", index=False)
    return images, split


def run_stage(root, monkeypatch, method="standardize"):
    (root / "params.yaml").write_text(yaml.safe_dump({"normalize": {"method": method}}))
    monkeypatch.chdir(root)
    normalize.main()


def test_udacity_maps_0_and_255_to_minus_and_plus_one_half():
    images = np.array([[[0] * 28] * 28, [[255] * 28] * 28], dtype=np.uint8)
    x = normalize.apply(images, normalize.fit(images, np.arange(2), "udacity"))
    assert x.dtype == np.float32 and x.shape == (2, 784)
    assert np.all(x[0] == -0.5) and np.all(x[1] == 0.5)


def test_apply_accepts_images_or_rows_alike():
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    norm = {"method": "standardize", "mean": 100.0, "std": 50.0}
    np.testing.assert_array_equal(normalize.apply(images, norm),
                                  normalize.apply(images.reshape(5, 784), norm))


@pytest.mark.parametrize("method", ["standardize", "per_pixel"])
def test_train_split_has_zero_mean_and_unit_std_and_is_finite(tmp_path, monkeypatch, method):
    make_inputs(tmp_path)
    run_stage(tmp_path, monkeypatch, method)
    x = np.load("data/normalized/train_x.npy")
    assert x.dtype == np.float32 and x.flags.c_contiguous and np.isfinite(x).all()
    if method == "standardize":
        assert abs(x.mean()) < 1e-4 and x.std() == pytest.approx(1.0, rel=1e-4)
    else:
        varying = x[:, 1:]
        np.testing.assert_allclose(varying.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(varying.std(axis=0), 1, rtol=1e-4)
        assert np.all(x[:, 0] == 0)  # the constant pixel: guarded, not divided by zero
    metrics = json.loads(open("metrics/normalize.json").read())
    assert abs(metrics["train"]["mean"]) < 1e-4


def test_statistics_come_from_the_train_split_only(tmp_path, monkeypatch):
    images, split = make_inputs(tmp_path)
    run_stage(tmp_path, monkeypatch)
    before = json.loads(open("data/normalized/stats.json").read())
    images[split != "train"] = 255  # change every non-train image
    np.save("data/ingested/images.npy", images)
    normalize.main()
    after = json.loads(open("data/normalized/stats.json").read())
    assert before == after


def test_each_split_gets_its_rows_and_labels_in_index_order(tmp_path, monkeypatch):
    images, split = make_inputs(tmp_path)
    run_stage(tmp_path, monkeypatch, "udacity")
    labels = np.load("data/ingested/labels.npy")
    for name in ("train", "valid", "test"):
        rows = np.flatnonzero(split == name)
        x, y = np.load(f"data/normalized/{name}_x.npy"), np.load(f"data/normalized/{name}_y.npy")
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, labels[rows])
        np.testing.assert_array_equal(x, (images[rows].reshape(-1, 784) - np.float32(127.5)) / np.float32(255))


def test_chunked_conversion_gives_the_same_bytes(tmp_path, monkeypatch):
    make_inputs(tmp_path)
    run_stage(tmp_path, monkeypatch, "per_pixel")
    whole = (tmp_path / "data/normalized/train_x.npy").read_bytes()
    monkeypatch.setattr(normalize, "CHUNK", 7)
    normalize.main()
    assert (tmp_path / "data/normalized/train_x.npy").read_bytes() == whole


def test_unknown_method_is_one_error_naming_the_parameter_before_any_output(tmp_path, monkeypatch):
    make_inputs(tmp_path)
    with pytest.raises(ParamError, match=r"normalize\.method: bad value 'zscore'"):
        run_stage(tmp_path, monkeypatch, "zscore")
    assert not (tmp_path / "data/normalized").exists()


def test_same_inputs_give_bitwise_identical_outputs(tmp_path, monkeypatch):
    make_inputs(tmp_path)
    run_stage(tmp_path, monkeypatch, "per_pixel")
    outputs = sorted((tmp_path / "data/normalized").iterdir()) + [tmp_path / "metrics/normalize.json"]
    first = [path.read_bytes() for path in outputs]
    normalize.main()
    assert [path.read_bytes() for path in outputs] == first
