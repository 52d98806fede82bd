"""The files passed between stages are checked when read (notmnist.plumbing.contracts)."""

import json

import numpy as np
import pytest

from notmnist.plumbing import contracts
from notmnist.plumbing.errors import UserError
from tests.helpers import write_normalized


@pytest.mark.parametrize("top, ok", [(2, True), (3, False)])
def test_a_split_label_must_be_below_the_number_of_classes(tmp_path, monkeypatch, top, ok):
    monkeypatch.chdir(tmp_path)
    x = np.zeros((3, 784), np.float32)
    write_normalized(tmp_path, {"train": (x, [0, 1, top])}, ["A", "B", "C"])
    if ok:
        assert list(contracts.read_split("train", 3).y) == [0, 1, 2]
    else:
        with pytest.raises(UserError, match="labels outside 0..2"):
            contracts.read_split("train", 3)


@pytest.mark.parametrize("top, ok", [(2, True), (3, False)])
def test_an_ingested_label_must_name_one_of_the_classes(tmp_path, monkeypatch, top, ok):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / contracts.INGESTED
    folder.mkdir(parents=True)
    np.save(folder / "images.npy", np.zeros((3, 28, 28), np.uint8))
    np.save(folder / "labels.npy", np.array([0, 1, top], np.int64))
    (folder / "classes.json").write_text(json.dumps(["A", "B", "C"]))
    if ok:
        assert contracts.read_ingested().classes == ["A", "B", "C"]
    else:
        with pytest.raises(UserError, match="must list a name for every label"):
            contracts.read_ingested()
