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


def test_a_block_that_fails_after_writing_replaces_none_of_its_outputs(tmp_path):
    first, folder = tmp_path / "a.txt", tmp_path / "letters"
    first.write_text("old")
    folder.mkdir()
    (folder / "A.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with files.all_or_nothing():
            files.write_text(first, "new")
            files.write_files(folder, {"A.png": b"new", "B/1.png": b"new"})
            raise RuntimeError("the stage fails after writing")
    assert first.read_text() == "old" and (folder / "A.png").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "letters"]  # no temporary left


def test_a_folder_written_whole_replaces_the_old_one_and_keeps_none_of_its_files(tmp_path):
    folder = tmp_path / "letters"
    files.write_files(folder, {"A/1.png": b"old", "stale.png": b"old"})
    with files.all_or_nothing():
        files.write_files(folder, {"A/1.png": b"new"})
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == ["A", "A/1.png"]
    assert (folder / "A/1.png").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["letters"]
