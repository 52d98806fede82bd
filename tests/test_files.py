"""Atomic writes, pickle-free reads and rounded JSON (notmnist.plumbing.files)."""

import errno
import json

import numpy as np
import pytest

from notmnist.plumbing import files
from notmnist.plumbing.errors import UserError


def test_failed_atomic_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_save_npy_roundtrip_without_pickles(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    files.save_npy(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(files.load_npy(tmp_path / "a.npy"), array)
    with pytest.raises(UserError, match="missing.npy: not found"):
        files.load_npy(tmp_path / "missing.npy")


def test_an_array_of_objects_is_refused_not_unpickled(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="objects.npy: not a numpy array file"):
        files.load_npy(tmp_path / "objects.npy")


def test_metrics_json_rounds_floats_and_nonfinite(tmp_path):
    files.write_json(
        tmp_path / "m.json",
        {"acc": np.float32(0.1) + 0, "n": np.int64(3), "ci": (0.123456789, 1 / 3), "bad": float("nan")},
    )
    data = json.loads((tmp_path / "m.json").read_text())
    assert data == {"acc": 0.1, "n": 3, "ci": [0.123457, 0.333333], "bad": None}


def test_a_missing_or_broken_json_file_is_named(tmp_path):
    with pytest.raises(UserError, match="stats.json: not found"):
        files.read_json(tmp_path / "stats.json")
    (tmp_path / "stats.json").write_text("{broken")
    with pytest.raises(UserError, match="stats.json: not valid JSON"):
        files.read_json(tmp_path / "stats.json")


def test_a_folder_that_cannot_be_written_is_one_error_naming_the_file(tmp_path, monkeypatch):
    # as root, permissions don't stop a write: the refusal a read-only folder gives is simulated
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", refused)
    with pytest.raises(UserError) as error:
        files.write_text(tmp_path / "out" / "report.md", "text")
    assert str(error.value) == (
        f"{tmp_path / 'out' / 'report.md'}: cannot write in {tmp_path / 'out'} (Permission denied); "
        "no output was replaced"
    )
