"""The shared plumbing: params validation, atomic writes, rounded metrics."""
import json

import numpy as np
import pytest

from stages import io


SPEC = {
    "rate": io.number(0, None, lo_open=True),
    "epochs": io.integer(1, 1000),
    "optimizer": io.choice("sgd", "adam"),
    "shuffle": io.boolean(),
}


def write_params(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_valid_section_is_returned_typed(tmp_path):
    path = write_params(tmp_path, "train:\n  rate: 1\n  epochs: 3\n  optimizer: adam\n  shuffle: true\n")
    assert io.load_params("train", SPEC, path) == {
        "rate": 1.0, "epochs": 3, "optimizer": "adam", "shuffle": True}


@pytest.mark.parametrize("line, message", [
    ("rate: -0.1", "train.rate: bad value -0.1"),
    ("rate: 0", "train.rate: bad value 0"),
    ("rate: .nan", "train.rate"),
    ("epochs: 2.5", "train.epochs: bad value 2.5"),
    ("optimizer: adamw", "train.optimizer: bad value 'adamw'; allowed: one of sgd, adam"),
    ("shuffle: 1", "train.shuffle: bad value 1; allowed: true or false"),
])
def test_bad_value_names_parameter_value_and_what_is_allowed(tmp_path, line, message):
    good = {"rate": "rate: 1", "epochs": "epochs: 3", "optimizer": "optimizer: sgd",
            "shuffle": "shuffle: false"}
    good[line.split(":")[0]] = line
    path = write_params(tmp_path, "train:\n" + "".join(f"  {v}\n" for v in good.values()))
    with pytest.raises(io.ParamError, match=message.replace("(", r"\(").replace(".", r"\.")):
        io.load_params("train", SPEC, path)


def test_exponent_without_dot_is_a_number_not_a_string(tmp_path):
    # PyYAML reads `1e-4` as the string '1e-4'; users (and `dvc exp run -S`) write it anyway
    path = write_params(tmp_path, "train:\n  rate: 1e-4\n  epochs: 3\n  optimizer: sgd\n  shuffle: true\n")
    assert io.load_params("train", SPEC, path)["rate"] == 1e-4
    path.write_text(path.read_text().replace("1e-4", "fast"))
    with pytest.raises(io.ParamError, match="train.rate: bad value 'fast'"):
        io.load_params("train", SPEC, path)


def test_unknown_and_missing_keys_are_named(tmp_path):
    path = write_params(tmp_path, "train:\n  rate: 1\n  epochs: 3\n  optimizer: sgd\n"
                                  "  shuffle: true\n  learnig_rate: 2\n")
    with pytest.raises(io.ParamError, match="train.learnig_rate: unknown parameter"):
        io.load_params("train", SPEC, path)
    path = write_params(tmp_path, "train:\n  rate: 1\n")
    with pytest.raises(io.ParamError, match="train.epochs: missing"):
        io.load_params("train", SPEC, path)


def test_missing_section_and_bad_yaml_name_the_file(tmp_path):
    path = write_params(tmp_path, "other: {}\n")
    with pytest.raises(io.ParamError, match="section 'train' is missing"):
        io.load_params("train", SPEC, path)
    path = write_params(tmp_path, "train: [unclosed\n")
    with pytest.raises(io.ParamError, match="params.yaml: not valid YAML"):
        io.load_params("train", SPEC, path)


def test_failed_atomic_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_save_npy_roundtrip_without_pickles(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    io.save_npy(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(io.load_npy(tmp_path / "a.npy"), array)
    with pytest.raises(io.UserError, match="missing.npy: not found"):
        io.load_npy(tmp_path / "missing.npy")


def test_metrics_json_rounds_floats_and_nonfinite(tmp_path):
    io.write_json(tmp_path / "m.json", {"acc": np.float32(0.1) + 0, "n": np.int64(3),
                                        "ci": (0.123456789, 1 / 3), "bad": float("nan")})
    data = json.loads((tmp_path / "m.json").read_text())
    assert data == {"acc": 0.1, "n": 3, "ci": [0.123457, 0.333333], "bad": None}
