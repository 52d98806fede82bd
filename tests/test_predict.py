"""tools.predict: the trained model on a user's image files, folders and archives, and on
pictures of letters as a person takes them."""

import json
import os
import shlex
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from notmnist.data.images import to_glyph
from notmnist.data.normalization import apply
from notmnist.learning.model import load_model, save_model
from notmnist.learning.softmax import predict_proba
from tests.helpers import CLASSES, TOY_NORM, encode, error_line, run, run_stage, run_tool, write_toy_run


@pytest.fixture
def toy(tmp_path):
    return {**write_toy_run(tmp_path), "root": tmp_path}


def save_pngs(folder: Path, images: np.ndarray, rows) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in rows:
        paths.append(folder / f"{row:04d}.png")
        Image.fromarray(images[row]).save(paths[-1])
    return paths


def predict_json(root: Path, *paths) -> tuple[int, list[dict], str]:
    result = run_tool(root, "predict", *map(str, paths), "--json")
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def predict_json_as_is(root: Path, *paths) -> tuple[int, list[dict], str]:
    result = run_tool(root, "predict", *map(str, paths), "--json", "--as-is")
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_test_images_as_png_files_get_the_same_letters_as_the_evaluate_stage(toy):
    root = toy["root"]
    assert run_stage(root, "evaluate").returncode == 0
    expected = pd.read_csv(root / "metrics/predictions.csv").set_index("index")["predicted"]
    paths = save_pngs(root / "pngs", toy["images"], toy["test_rows"])
    code, rows, _ = predict_json_as_is(root, *paths)  # the test images are in notMNIST form
    assert code == 0 and len(rows) == len(paths)
    got = pd.Series({int(Path(r["path"]).stem): r["predicted"] for r in rows})
    assert (got.sort_index() == expected.sort_index()).all()
    for r in rows:
        assert set(r["probabilities"]) == set(CLASSES)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["predicted"] == max(r["probabilities"], key=r["probabilities"].get)
        assert [c for c, _ in r["top3"]][0] == r["predicted"] and len(r["top3"]) == 3


def test_corrupt_and_empty_files_are_reported_and_the_others_still_predicted(toy):
    root = toy["root"]
    good = save_pngs(root / "in", toy["images"], toy["test_rows"][:2])
    (root / "in/truncated.png").write_bytes(good[0].read_bytes()[:60])
    (root / "in/empty.png").write_bytes(b"")
    code, rows, err = predict_json(root, good[0], "in/truncated.png", "in/empty.png", good[1])
    assert code == 0
    assert [r["path"] for r in rows] == [str(good[0]), str(good[1])]
    assert "truncated.png" in err and "empty.png: cannot predict: empty file" in err
    assert "Traceback" not in err


def test_nothing_predictable_exits_non_zero(toy):
    (toy["root"] / "text.png").write_text("not an image")
    result = run_tool(toy["root"], "predict", "text.png")
    assert result.returncode == 1
    assert "text.png: cannot predict: not an image" in result.stderr


def test_folders_are_searched_recursively_in_sorted_order_and_archives_are_read(toy):
    root = toy["root"]
    save_pngs(root / "data_in/b", toy["images"], [3, 1])
    save_pngs(root / "data_in/a", toy["images"], [2])
    (root / "data_in/.hidden.png").write_bytes(b"")
    with zipfile.ZipFile(root / "glyphs.zip", "w") as z:
        z.write(root / "data_in/a/0002.png", "letters/A/0002.png")
    code, rows, err = predict_json(root, "data_in", "glyphs.zip")
    assert [r["path"] for r in rows] == [
        os.path.join("data_in", "a", "0002.png"),
        os.path.join("data_in", "b", "0001.png"),
        os.path.join("data_in", "b", "0003.png"),
        "glyphs.zip:letters/A/0002.png",
    ]
    assert rows[0]["probabilities"] == rows[3]["probabilities"]
    assert ".hidden.png" in err  # reported like ingest's manifest, not predicted


def test_text_output_shows_the_letter_and_the_top_three_probabilities(toy):
    path = save_pngs(toy["root"] / "in", toy["images"], [0])[0]
    result = run_tool(toy["root"], "predict", str(path))
    assert result.returncode == 0
    name, letter, top = result.stdout.strip().split("  ", 2)
    assert name == str(path) and letter in CLASSES
    assert top.startswith(f"({letter} ") and top.count("%") == 3


def test_a_missing_path_is_warned_about_and_the_other_files_still_predicted(toy):
    good = save_pngs(toy["root"] / "in", toy["images"], [0])[0]
    result = run_tool(toy["root"], "predict", str(good), "/missing.png")
    assert result.returncode == 0
    assert result.stdout.startswith(str(good)) and len(result.stdout.splitlines()) == 1
    assert result.stderr == "warning: /missing.png: cannot predict: no such file or folder\n"
    assert run_tool(toy["root"], "predict", "/missing.png").returncode == 1


def test_a_missing_model_is_one_error_line_with_exit_code_2(toy):
    path = save_pngs(toy["root"] / "in", toy["images"], [0])[0]
    assert "other.npz: not found" in error_line(run_tool(toy["root"], "predict", str(path), "--model", "other.npz"))


def test_command_line_needs_nothing_but_the_model_file(toy, tmp_path_factory):
    bare = tmp_path_factory.mktemp("bare")
    (bare / "models").mkdir()
    os.replace(toy["root"] / "models/model.npz", bare / "models/model.npz")
    save_pngs(bare / "in", toy["images"], [0, 1])
    (bare / "in/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = run_tool(bare, "predict", "in", "--as-is")  # the toy images are in notMNIST form
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr.count("\n") == 1 and "broken.png: cannot predict" in result.stderr


def test_output_piped_into_head_ends_quietly(toy):
    # more output than a pipe holds, so predict is still writing when `head` stops reading
    root = toy["root"]
    paths = save_pngs(root / "pngs", toy["images"], toy["test_rows"]) * 3
    result = run(root, "bash", "-c", f"python -m tools.predict --json --as-is {shlex.join(map(str, paths))} | head -1")
    assert json.loads(result.stdout)["path"] == str(paths[0]), result.stderr
    assert result.stderr == ""


def test_fifos_and_devices_are_warned_about_not_read_and_the_others_still_predicted(toy):
    root = toy["root"]
    good = save_pngs(root / "in", toy["images"], [0])[0]
    os.mkfifo(root / "in" / "pipe.png")  # inside a folder and given by name: reading would hang
    result = run_tool(root, "predict", "in", "in/pipe.png", "/dev/zero")
    assert result.returncode == 0 and result.stdout.startswith(os.path.join("in", good.name))
    warnings = result.stderr.splitlines()
    assert len(warnings) == 3 and "Traceback" not in result.stderr
    assert all("cannot predict: not a regular file" in w for w in warnings)


def test_control_characters_in_names_are_escaped_in_text_and_json_output(toy):
    root = toy["root"]
    image = save_pngs(root / "in", toy["images"], [0])[0]
    hostile = root / "in" / "x\x1b[2J\u009b\u202eevil.png"
    os.replace(image, hostile)
    text = run_tool(root, "predict", "in")
    assert text.returncode == 0
    assert "x\\x1b[2J\\x9b\\u202eevil.png" in text.stdout
    assert not {"\x1b", "\u009b", "\u202e"} & set(text.stdout + text.stderr)
    as_json = run_tool(root, "predict", "in", "--json")
    assert json.loads(as_json.stdout)["path"] == str(Path("in") / hostile.name)
    assert not {"\x1b", "\u009b", "\u202e"} & set(as_json.stdout)


def test_a_broken_model_is_one_error_line_with_exit_code_2(toy):
    root = toy["root"]
    path = save_pngs(root / "in", toy["images"], [0])[0]
    with np.load(root / "models/model.npz") as z:
        arrays = dict(z)
    arrays["W"] = np.full_like(arrays["W"], np.nan)
    np.savez(root / "models/nan.npz", **arrays)
    line = error_line(run_tool(root, "predict", str(path), "--model", "models/nan.npz"))
    assert "NaN" in line
    (root / "models/cut.npz").write_bytes((root / "models/model.npz").read_bytes()[:3000])
    assert "not a model file" in error_line(run_tool(root, "predict", str(path), "--model", "models/cut.npz"))


# --- a person's own pictures ------------------------------------------------------------------


def letter_ink(letter: str, size: int = 120) -> np.ndarray:
    """The letter in Pillow's font, white on black, cropped to its ink."""
    canvas = Image.new("L", (2 * size, 2 * size), 0)
    ImageDraw.Draw(canvas).text((size // 2, size // 4), letter, fill=255, font=ImageFont.load_default(size=size))
    return np.asarray(canvas.crop(canvas.getbbox()))


def in_notmnist_form(ink: np.ndarray, px: int = 28) -> np.ndarray:
    """The cropped glyph scaled to a longer side of px, aspect kept, centred on a black 28x28."""
    scale = px / max(ink.shape)
    size = (round(ink.shape[1] * scale), round(ink.shape[0] * scale))
    out = Image.new("L", (28, 28), 0)
    out.paste(Image.fromarray(ink).resize(size, Image.Resampling.LANCZOS), ((28 - size[0]) // 2, (28 - size[1]) // 2))
    return np.asarray(out)


def as_photographed(ink: np.ndarray, corner: tuple[int, int], seed: int) -> bytes:
    """The letter dark on light paper, lit unevenly, on a 400x300 canvas, blurred, noisy, JPEG."""
    rng = np.random.default_rng(seed)
    alpha = np.zeros((300, 400), np.float32)
    alpha[corner[1] : corner[1] + ink.shape[0], corner[0] : corner[0] + ink.shape[1]] = ink / 255
    paper = 230 - 30 * np.linspace(0, 1, 400)[None, :]
    pixels = paper * (1 - alpha) + 40 * alpha
    im = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    noisy = np.asarray(im, np.float32) + rng.normal(0, 4, (300, 400))
    return encode(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), "JPEG", quality=70)


@pytest.fixture
def letters(tmp_path):
    """A nearest-mean model of the ten letters in notMNIST form (longer side 22-28 pixels, as the
    built-in data), and each letter as a photo and in notMNIST form, as files under tmp_path."""
    forms = np.stack([[in_notmnist_form(letter_ink(c), px) for px in range(22, 29)] for c in CLASSES])
    means = apply(forms.reshape(-1, 28, 28), TOY_NORM).reshape(len(CLASSES), 7, -1).mean(axis=1).astype(np.float64)
    save_model(tmp_path / "models/model.npz", means.T, -0.5 * np.square(means).sum(axis=1), CLASSES, TOY_NORM)
    (tmp_path / "photos").mkdir()
    (tmp_path / "forms").mkdir()
    for k, c in enumerate(CLASSES):
        ink = letter_ink(c, size=60 + 10 * k)
        (tmp_path / f"photos/{c}.jpg").write_bytes(as_photographed(ink, (20 + 25 * k, 150 - 12 * k), seed=k))
        Image.fromarray(in_notmnist_form(ink)).save(tmp_path / f"forms/{c}.png")
    return tmp_path


def test_a_dark_letter_on_a_big_light_canvas_predicts_as_its_notmnist_form(letters):
    code, photos, err = predict_json(letters, "photos")
    assert code == 0 and err == ""
    _, forms, _ = predict_json_as_is(letters, "forms")
    assert [r["predicted"] for r in photos] == [r["predicted"] for r in forms] == CLASSES
    assert all("warning" not in r for r in photos)


def test_as_is_skips_the_preprocessing(letters):
    model = load_model(letters / "models/model.npz")
    paths = sorted((letters / "photos").iterdir())
    glyphs = np.stack([to_glyph(p.read_bytes()) for p in paths])  # decoded and fitted, nothing else
    expected = predict_proba(apply(glyphs, model.norm), model.W, model.b)
    _, rows, _ = predict_json_as_is(letters, *paths)
    got = np.array([[r["probabilities"][c] for c in CLASSES] for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    _, preprocessed, _ = predict_json(letters, *paths)
    assert [r["predicted"] for r in rows] != [r["predicted"] for r in preprocessed]


def test_a_blank_picture_is_predicted_with_a_warning(letters):
    noise = np.random.default_rng(0).normal(0, 3, (200, 300))
    Image.fromarray(np.clip(235 + noise, 0, 255).astype(np.uint8)).save(letters / "blank.jpg", quality=80)
    code, rows, err = predict_json(letters, "blank.jpg", "photos/A.jpg")
    assert code == 0 and [r["path"] for r in rows] == ["blank.jpg", "photos/A.jpg"]
    assert "blank image" in rows[0]["warning"] and "warning" not in rows[1]
    assert err.startswith("warning: blank.jpg: ") and "blank image" in err and err.count("\n") == 1
