"""stages.predict: letters for image files, folders and archives, from models/model.npz alone."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import evaluate, predict
from stages.io import UserError
from tests.toy_run import CLASSES, write_toy_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy(tmp_path, monkeypatch):
    arrays = write_toy_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    return arrays


def save_pngs(folder: Path, images: np.ndarray, rows) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in rows:
        paths.append(folder / f"{row:04d}.png")
        Image.fromarray(images[row]).save(paths[-1])
    return paths


def run_json(capsys, *argv) -> tuple[int, list[dict], str]:
    code = predict.main([*map(str, argv), "--json"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_test_images_as_png_files_get_the_same_letters_as_the_evaluate_stage(toy, capsys):
    evaluate.main()
    capsys.readouterr()
    expected = pd.read_csv("metrics/predictions.csv").set_index("index")["predicted"]
    paths = save_pngs(Path("pngs"), toy["images"], toy["test_rows"])
    code, rows, _ = run_json(capsys, *paths)
    assert code == 0 and len(rows) == len(paths)
    got = pd.Series({int(Path(r["path"]).stem): r["predicted"] for r in rows})
    assert (got.sort_index() == expected.sort_index()).all()
    for r in rows:
        assert set(r["probabilities"]) == set(CLASSES)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["predicted"] == max(r["probabilities"], key=r["probabilities"].get)
        assert [c for c, _ in r["top3"]][0] == r["predicted"] and len(r["top3"]) == 3


def test_corrupt_and_empty_files_are_reported_and_the_others_still_predicted(toy, capsys):
    good = save_pngs(Path("in"), toy["images"], toy["test_rows"][:2])
    truncated = Path("in/truncated.png")
    truncated.write_bytes(good[0].read_bytes()[:60])
    empty = Path("in/empty.png")
    empty.write_bytes(b"")
    code, rows, err = run_json(capsys, good[0], truncated, empty, good[1])
    assert code == 0
    assert [r["path"] for r in rows] == [str(good[0]), str(good[1])]
    assert "truncated.png" in err and "empty.png: cannot predict: empty file" in err
    assert "Traceback" not in err


def test_nothing_predictable_exits_non_zero(toy, capsys):
    Path("text.png").write_text("not an image")
    assert predict.main(["text.png"]) == 1
    assert "text.png: cannot predict: not an image" in capsys.readouterr().err


def test_folders_are_searched_recursively_in_sorted_order_and_archives_are_read(toy, capsys):
    save_pngs(Path("data_in/b"), toy["images"], [3, 1])
    save_pngs(Path("data_in/a"), toy["images"], [2])
    Path("data_in/.hidden.png").write_bytes(b"")
    with zipfile.ZipFile("glyphs.zip", "w") as z:
        z.write("data_in/a/0002.png", "letters/A/0002.png")
    code, rows, err = run_json(capsys, "data_in", "glyphs.zip")
    assert [r["path"] for r in rows] == [os.path.join("data_in", "a", "0002.png"),
                                         os.path.join("data_in", "b", "0001.png"),
                                         os.path.join("data_in", "b", "0003.png"),
                                         "glyphs.zip:letters/A/0002.png"]
    assert rows[0]["probabilities"] == rows[3]["probabilities"]
    assert ".hidden.png" in err  # reported like ingest's manifest, not predicted


def test_text_output_shows_the_letter_and_the_top_three_probabilities(toy, capsys):
    path = save_pngs(Path("in"), toy["images"], [0])[0]
    assert predict.main([str(path)]) == 0
    line = capsys.readouterr().out.strip()
    name, letter, top = line.split("  ", 2)
    assert name == str(path) and letter in CLASSES
    assert top.startswith(f"({letter} ") and top.count("%") == 3


def test_missing_input_or_model_is_a_clear_error(toy):
    with pytest.raises(UserError, match="nope.png: no such file"):
        predict.main(["nope.png"])
    path = save_pngs(Path("in"), toy["images"], [0])[0]
    with pytest.raises(UserError, match="other.npz: not found"):
        predict.main([str(path), "--model", "other.npz"])


def test_command_line_needs_nothing_but_the_model_file(toy, tmp_path_factory):
    bare = tmp_path_factory.mktemp("bare")
    (bare / "models").mkdir()
    os.replace("models/model.npz", bare / "models/model.npz")
    save_pngs(bare / "in", toy["images"], [0, 1])
    (bare / "in/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = subprocess.run([sys.executable, "-m", "stages.predict", "in"], cwd=bare, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr.count("\n") == 1 and "broken.png: cannot predict" in result.stderr
