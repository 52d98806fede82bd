"""Stage synthesize (notmnist.data.synthetic): deterministic notMNIST-style letters with planted flaws."""

import collections

import numpy as np
import pytest
import yaml

from notmnist.data.images import SkippedImage, to_glyph
from notmnist.data.synthetic import BUNDLED, LETTERS, find_fonts, synthesize, usable_fonts
from tests.helpers import error_line, run_stage, write_params

PER_CLASS = 40


@pytest.fixture(scope="module")
def fonts():
    return usable_fonts(find_fonts())[0]


@pytest.fixture(scope="module")
def made(fonts):
    return synthesize(PER_CLASS, 7, fonts, duplicates=0.05, near_duplicates=0.05, broken_files=4)


def test_same_params_give_byte_identical_files_whatever_the_workers(fonts, made):
    again = synthesize(PER_CLASS, 7, fonts, duplicates=0.05, near_duplicates=0.05, broken_files=4, workers=2)
    assert again == made


def test_another_seed_gives_other_images(fonts, made):
    other, _ = synthesize(PER_CLASS, 8, fonts, duplicates=0.05, near_duplicates=0.05, broken_files=4)
    assert sum(other[p] != made[0][p] for p in made[0]) > 0.9 * len(made[0])


def test_every_letter_has_per_class_images_plus_the_broken_files(made):
    files, counts = made
    per_letter = collections.Counter(path.split("/")[0] for path in files)
    assert set(per_letter) == set(LETTERS) and sum(per_letter.values()) == 10 * PER_CLASS + 4
    broken = []
    for data in files.values():
        try:
            assert to_glyph(data).shape == (28, 28)
        except SkippedImage as e:
            broken.append(e.reason.split(":")[0])
    assert sorted(broken) == ["corrupt or truncated"] * 2 + ["empty file"] * 2
    assert counts["empty_files"] == counts["truncated_files"] == 2


def test_planted_exact_duplicates_are_there_including_across_letters(made):
    files, counts = made
    groups = collections.defaultdict(list)
    for path, data in files.items():
        if data:
            groups[data].append(path)
    copies = sum(len(paths) - 1 for paths in groups.values())
    across = [paths for paths in groups.values() if len({p.split("/")[0] for p in paths}) > 1]
    assert counts["exact_duplicates"] == 10 * round(0.05 * PER_CLASS)
    assert copies == counts["exact_duplicates"] + counts["cross_letter_duplicates"]
    assert len(across) == counts["cross_letter_duplicates"] == 2


def test_near_duplicates_differ_by_a_few_gray_levels_from_another_image(made):
    files, counts = made
    glyphs = {p: to_glyph(d).astype(int) for p, d in files.items() if d and not p.endswith(f"{PER_CLASS:05d}.png")}
    near = 0
    for letter in LETTERS:
        stack = np.stack([g for p, g in sorted(glyphs.items()) if p[0] == letter])
        gaps = np.abs(stack[:, None] - stack[None]).max(axis=(2, 3))
        np.fill_diagonal(gaps, 255)
        near += int(np.sum((gaps > 0) & (gaps <= 4))) // 2
    assert near >= counts["near_duplicates"] == 10 * round(0.05 * PER_CLASS)


def test_letters_are_distinct_on_average(made):
    files, _ = made
    means = {}
    for letter in LETTERS:
        stack = [
            to_glyph(d).astype(float)
            for p, d in files.items()
            if p[0] == letter and not p.endswith(f"{PER_CLASS:05d}.png")
        ]  # broken files are numbered last
        means[letter] = np.mean(stack, axis=0)
    gaps = [np.abs(means[a] - means[b]).mean() for a in LETTERS for b in LETTERS if a < b]
    assert min(gaps) > 3  # mean images of any two letters differ visibly


def test_a_font_file_that_cannot_draw_the_letters_is_refused(tmp_path):
    bogus = tmp_path / "Bogus.ttf"
    bogus.write_bytes(b"not a font")
    good, refused = usable_fonts([str(bogus)])
    assert good == [BUNDLED] and refused == [str(bogus)]


def test_fonts_are_the_named_family_all_or_none(tmp_path):
    for name in ("DejaVuSans.ttf", "dejavu/DejaVuSerif-Bold.otf", "LiberationSans.ttf", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    names = {
        family: [p.split("/")[-1] for p in find_fonts(family, dirs=[str(tmp_path)])]
        for family in ("dejavu", "all", "none")
    }
    assert names == {
        "dejavu": ["DejaVuSans.ttf", "DejaVuSerif-Bold.otf"],
        "all": ["DejaVuSans.ttf", "LiberationSans.ttf", "DejaVuSerif-Bold.otf"],
        "none": [],
    }


def test_pillows_bundled_font_alone_is_enough():
    files, _ = synthesize(10, 0, [BUNDLED], broken_files=0)
    assert len(files) == 100 and all(to_glyph(d).shape == (28, 28) for d in files.values())


def run_synthesize(cwd, **overrides):
    params = {
        "per_class": 12,
        "seed": 3,
        "fonts": "DejaVu",
        "duplicates": 0.1,
        "near_duplicates": 0.1,
        "broken_files": 2,
        **overrides,
    }
    write_params(cwd, {"synthesize": params})
    return run_stage(cwd, "synthesize")


def test_stage_run_twice_writes_identical_files_and_records_fonts(tmp_path):
    snapshots = []
    for _ in range(2):
        done = run_synthesize(tmp_path)
        assert done.returncode == 0, done.stderr
        out = tmp_path / "data/raw/synthetic"
        snapshots.append({p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.png")})
    assert snapshots[0] == snapshots[1] and len(snapshots[0]) == 10 * 12 + 2
    assert sorted(p.name for p in (tmp_path / "data/raw").iterdir()) == ["synthetic"]  # no temp left
    metrics = yaml.safe_load((tmp_path / "metrics/synthesize.json").read_text())
    assert metrics["fonts"][-1] == BUNDLED and metrics["n_fonts"] == len(metrics["fonts"])
    assert metrics["planted"]["empty_files"] + metrics["planted"]["truncated_files"] == 2


def test_stage_rejects_a_bad_parameter_in_one_line(tmp_path):
    done = run_synthesize(tmp_path, duplicates=0.9)
    assert "synthesize.duplicates" in error_line(done) and not (tmp_path / "data").exists()
