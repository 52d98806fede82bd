"""Stage ingest (notmnist.data.ingestion): the bad-input matrix, folder and archive variants,
determinism, the real data."""

import io
import os
import tarfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from notmnist.data import ingestion
from notmnist.data.ingestion import Ingest, ingest
from notmnist.data.members import STOPPED_PATH
from notmnist.plumbing.errors import ParamError, UserError
from notmnist.plumbing.parallel import all_cores
from notmnist.plumbing.params import load
from tests.bombs import END, MiB, entry, header, write_tar_gz
from tests.helpers import NOISE_PNG, encode, error_line, png_declaring, run_stage, write_params

GRAY = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)


def animated_gif() -> bytes:
    frames = [Image.new("L", (28, 28), 0), Image.new("L", (28, 28), 255)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def palette_with_transparency() -> bytes:
    im = Image.new("P", (28, 28), 0)
    im.putpalette([0, 0, 0, 200, 200, 200] + [0] * 762)
    return encode(im, transparency=0)


# path in ROOT -> bytes, and the expected outcome: None = converted, else the reason's start.
MATRIX = {
    "A/gray.png": (encode(Image.fromarray(GRAY)), None),
    "A/rgba.png": (encode(Image.new("RGBA", (28, 28), (0, 0, 0, 0))), None),
    "A/la.png": (encode(Image.new("LA", (28, 28), (0, 128))), None),
    "A/gray16.png": (encode(Image.fromarray(np.full((28, 28), 40000, np.uint16))), None),
    "A/palette transparent.png": (palette_with_transparency(), None),
    "A/palette.gif": (encode(Image.new("P", (28, 28), 3), "GIF"), None),
    "A/one bit.png": (encode(Image.new("1", (28, 28), 1)), None),
    "A/cmyk.jpg": (encode(Image.new("CMYK", (28, 28), (0, 0, 0, 255)), "JPEG"), None),
    "A/animated.gif": (animated_gif(), None),
    "A/one pixel.png": (encode(Image.new("L", (1, 1), 9)), None),
    "A/huge 5000.png": (encode(Image.new("L", (5000, 5000), 30)), None),
    "A/photo64.jpg": (encode(Image.new("RGB", (64, 64), (10, 20, 30)), "JPEG"), None),
    "A/truncated.png": (NOISE_PNG[: len(NOISE_PNG) // 2], "corrupt or truncated"),
    "A/empty.png": (b"", "empty file"),
    "A/notes.png": (b"this is text, not a PNG\n", "not an image"),
    "A/bomb.png": (png_declaring(100_000, 100_000), "decompression bomb"),
    "B/ünïcödé ß.png": (encode(Image.fromarray(255 - GRAY)), None),
    "B/ok.png": (encode(Image.fromarray(GRAY)), None),
    "B/deeper/nested.png": (encode(Image.fromarray(GRAY)), "outside the layout"),
    "D/only broken.png": (b"", "empty file"),
    "README.txt": (b"a data set\n", "outside the layout"),
}
EXPECTED_LINKS = {"B/link out.png": "link"}
EXPECTED_ARCHIVE_ONLY = {"../escape.png": "unsafe path", "/abs.png": "unsafe path"}


def make_folder(root: Path, outside: Path) -> Path:
    for path, (data, _) in MATRIX.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    (root / "C").mkdir()  # a class folder with no images
    outside.write_bytes(encode(Image.fromarray(GRAY)))
    (root / "B" / "link out.png").symlink_to(outside)
    return root


def make_tar(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="dataset")  # keeps the symlink as a link member
        for name, data in [
            ("../escape.png", MATRIX["B/ok.png"][0]),
            ("/abs.png", b"x"),
            ("dataset/B/ok.png", b"a second member with the same name"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def make_zip(folder: Path, archive: Path) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as z:
        warnings.simplefilter("ignore", UserWarning)  # the duplicate name is on purpose
        for path in sorted(folder.rglob("*")):
            name = "dataset/" + path.relative_to(folder).as_posix()
            if path.is_symlink():
                link = zipfile.ZipInfo(name)
                link.external_attr = 0o120777 << 16
                z.writestr(link, str(path.readlink()))
            elif path.is_dir():
                z.writestr(name + "/", b"")
            else:
                z.writestr(name, path.read_bytes())
        z.writestr("../escape.png", MATRIX["B/ok.png"][0])
        z.writestr("/abs.png", b"x")
        z.writestr("dataset/B/ok.png", b"a second member with the same name")
    return archive


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    base = tmp_path_factory.mktemp("matrix")
    folder = make_folder(base / "dataset", base / "outside.png")
    return {
        "folder": folder,
        "tar.gz": make_tar(folder, base / "set.tar.gz"),
        "zip": make_zip(folder, base / "set.zip"),
    }


@pytest.mark.parametrize("variant", ["folder", "tar.gz", "zip"])
def test_every_file_of_the_bad_input_matrix_gets_its_expected_outcome(sources, variant):
    result = ingest(sources[variant])
    prefix = "" if variant == "folder" else "dataset/"
    expected = {prefix + p: why for p, (_, why) in MATRIX.items()}
    expected.update({prefix + p: why for p, why in EXPECTED_LINKS.items()})
    if variant != "folder":
        expected.update(EXPECTED_ARCHIVE_ONLY)
    rows = result.manifest
    first = rows.drop_duplicates("path", keep="first").set_index("path")
    assert set(first.index) == set(expected)
    for path, why in expected.items():
        status, reason = first.loc[path, "status"], first.loc[path, "reason"]
        if why is None:
            assert status == "ok", (path, reason)
        else:
            assert status == "skipped" and reason.startswith(why), (path, reason)
    if variant != "folder":
        repeated = rows[rows.path.duplicated(keep="first")]
        assert list(repeated.path) == ["dataset/B/ok.png"]
        assert repeated.reason.iloc[0].startswith("duplicate path")
    n_ok = sum(why is None for why in expected.values())
    assert result.data.images.shape == (n_ok, 28, 28) and result.data.images.dtype == np.uint8
    assert result.data.classes == ["A", "B"]
    assert result.metrics["empty_classes"] == ["C", "D"]
    assert result.metrics["warnings"] == ["class folders without usable images get no label: C, D"]
    assert result.metrics["per_class"] == {"A": 12, "B": 2, "C": 0, "D": 0}
    assert result.metrics["n_files"] == len(rows) == result.metrics["n_images"] + result.metrics["n_skipped"]


def test_images_and_labels_follow_the_manifest_rows_sorted_by_path(sources):
    result = ingest(sources["folder"])
    ok = result.manifest[result.manifest.status == "ok"]
    assert list(ok.path) == sorted(ok.path)
    assert list(ok["index"]) == list(range(len(ok)))
    np.testing.assert_array_equal(result.data.images[ok.path.tolist().index("A/gray.png")], GRAY)
    np.testing.assert_array_equal(result.data.images[ok.path.tolist().index("B/ünïcödé ß.png")], 255 - GRAY)
    assert [result.data.classes[i] for i in result.data.labels] == list(ok.label)


def test_nothing_is_written_while_reading_an_archive_with_escaping_members(sources):
    parent = sources["tar.gz"].parent.parent
    before = sorted(parent.rglob("*"))
    ingest(sources["tar.gz"])
    ingest(sources["zip"])
    assert sorted(parent.rglob("*")) == before


def write_folder_of(tmp_path: Path, classes: str, per_class: int) -> Path:
    rng = np.random.default_rng(1)
    for c in classes:
        (tmp_path / c).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            (tmp_path / c / f"{i}.png").write_bytes(encode(Image.fromarray(pixels)))
    return tmp_path


def test_a_data_set_with_one_class_is_ingested_with_a_clear_warning(tmp_path):
    result = ingest(write_folder_of(tmp_path / "data", "A", 3))
    assert result.data.classes == ["A"] and list(result.data.labels) == [0, 0, 0]
    assert len(result.metrics["warnings"]) == 1
    assert result.metrics["warnings"][0].startswith("only class 'A' has images; a classifier needs at least two")


def test_a_data_set_without_usable_images_still_gets_its_manifest_and_a_warning(tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "A" / "x.png").write_bytes(b"")
    result = ingest(tmp_path)
    assert result.data.images.shape == (0, 28, 28) and result.data.labels.shape == (0,)
    assert list(result.manifest.reason) == ["empty file"]
    assert result.metrics["warnings"][0].startswith("no usable images")
    assert result.metrics["empty_classes"] == ["A"]


def test_output_does_not_depend_on_the_number_of_workers_or_the_run(tmp_path):
    folder = write_folder_of(tmp_path / "data", "XYZ", 200)  # 600 files: several batches
    (folder / "Y" / "100.png").write_bytes(b"broken")
    one, two, again = ingest(folder, workers=1), ingest(folder, workers=2), ingest(folder, workers=2)
    for other in (two, again):
        np.testing.assert_array_equal(one.data.images, other.data.images)
        np.testing.assert_array_equal(one.data.labels, other.data.labels)
        pd.testing.assert_frame_equal(one.manifest, other.manifest)
        assert one.metrics == other.metrics


def run_ingest(cwd: Path, **overrides):
    params = {"source": "data/raw", "resize": "fit", "workers": 2, "max_pixels": 64_000_000, **overrides}
    write_params(cwd, {"ingest": params})
    return run_stage(cwd, "ingest")


def test_stage_writes_its_outputs_and_nothing_else(sources, tmp_path):
    done = run_ingest(tmp_path, source=str(sources["tar.gz"]))
    assert done.returncode == 0, done.stderr
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "data/ingested/classes.json",
        "data/ingested/images.npy",
        "data/ingested/labels.npy",
        "data/ingested/manifest.csv",
        "metrics/ingest.json",
        "metrics/ingest_details.json",
        "params.yaml",
    ]
    manifest = pd.read_csv(tmp_path / "data/ingested/manifest.csv", keep_default_na=False)
    assert list(manifest.columns) == ["path", "label", "status", "reason", "index"]
    assert "dataset/B/ünïcödé ß.png" in set(manifest.path)
    images = np.load(tmp_path / "data/ingested/images.npy", allow_pickle=False)
    labels = np.load(tmp_path / "data/ingested/labels.npy", allow_pickle=False)
    assert images.dtype == np.uint8 and labels.dtype == np.int64 and len(images) == len(labels)


@pytest.mark.parametrize(
    "key, value",
    [("workers", -1), ("workers", 1.5), ("resize", "crop"), ("max_pixels", 10), ("source", ""), ("extra", 1)],
)
def test_a_bad_parameter_is_an_error_naming_it(tmp_path, key, value):
    params = {"source": "data/raw", "resize": "fit", "workers": 0, "max_pixels": 64_000_000, key: value}
    write_params(tmp_path, {"ingest": params})
    with pytest.raises(ParamError, match=f"ingest.{key}"):
        load(Ingest, path=tmp_path / "params.yaml")


def test_the_stage_reports_a_bad_parameter_in_one_line_and_writes_nothing(tmp_path):
    done = run_ingest(tmp_path, workers=-1)
    assert "ingest.workers" in error_line(done)
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()


def test_a_missing_source_is_one_line_and_nothing_is_written(tmp_path):
    done = run_ingest(tmp_path, source="no/such/folder")
    assert "ingest.source" in error_line(done) and "not found" in done.stderr
    assert not (tmp_path / "data").exists()


def test_real_notmnist_small_counts_and_both_empty_files_named(notmnist_small):
    result = ingest(notmnist_small, workers=all_cores())
    m = result.metrics
    assert (m["n_files"], m["n_images"], m["n_skipped"]) == (18726, 18724, 2)
    assert result.data.classes == list("ABCDEFGHIJ")
    skipped = result.manifest[result.manifest.status == "skipped"]
    assert set(skipped.reason) == {"empty file"}
    assert set(skipped.path) == {
        "notMNIST_small/A/RGVtb2NyYXRpY2FCb2xkT2xkc3R5bGUgQm9sZC50dGY=.png",
        "notMNIST_small/F/Q3Jvc3NvdmVyIEJvbGRPYmxpcXVlLnR0Zg==.png",
    }


SMALL_SET = {"A/1.png": encode(Image.fromarray(GRAY)), "B/2.png": encode(Image.fromarray(255 - GRAY))}


def archive_bytes(kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in SMALL_SET.items():
                z.writestr(name, data)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in SMALL_SET.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


VALID_ARCHIVES = {kind: archive_bytes(kind) for kind in ("zip", "tar.gz")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["zip", "tar.gz"]),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 10**6),
)
def test_a_damaged_archive_gives_a_result_or_a_clear_error_never_a_crash(tmp_path, kind, edits, cut):
    data = bytearray(VALID_ARCHIVES[kind])
    for position, value in edits:
        data[position % len(data)] = value
    source = tmp_path / f"damaged.{kind}"
    source.write_bytes(bytes(data[: max(1, len(data) - cut % 40)]))
    try:
        result = ingest(source)
    except UserError as e:
        assert str(e).startswith("ingest.source")
    else:
        assert result.metrics["n_files"] == result.metrics["n_images"] + result.metrics["n_skipped"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_a_file_of_arbitrary_bytes_is_ingested_or_skipped_with_a_reason(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("any")
    for name, png in SMALL_SET.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(png)
    (folder / "A" / "anything.png").write_bytes(data)
    row = ingest(folder).manifest.set_index("path").loc["A/anything.png"]
    assert row.status == "ok" or (row.status == "skipped" and row.reason)


def test_class_names_with_control_characters_are_refused_with_one_warning(tmp_path):
    folder = write_folder_of(tmp_path / "data", "AB", 2)
    for name in ("C\nD", "E\x1b[31m", "F\u202e"):
        (folder / name).mkdir()
        (folder / name / "x.png").write_bytes(encode(Image.fromarray(GRAY)))
    result = ingest(folder)
    assert result.data.classes == ["A", "B"] and len(result.data.images) == 4
    refused = result.manifest[result.manifest.status == "skipped"].set_index("path")
    assert refused.loc["C\nD/x.png", "reason"] == "bad class name: C\\nD has control characters"
    assert refused.loc["E\x1b[31m/x.png", "reason"] == "bad class name: E\\x1b[31m has control characters"
    assert refused["label"].isna().all() and len(refused) == 3
    assert result.metrics["warnings"] == [
        "class folders with control characters in their names are refused: C\\nD, E\\x1b[31m, F\\u202e"
    ]
    assert set(result.metrics["per_class"]) == {"A", "B"}


def test_a_bomb_in_an_archive_ends_it_with_one_manifest_row_and_keeps_the_images_before(tmp_path):
    size = 128 * MiB
    good = [entry(name, data) for name, data in SMALL_SET.items()]
    archive = write_tar_gz(tmp_path / "bomb.tar.gz", [*good, header("A/bomb.png", size), size, *good, END])
    result = ingest(archive)
    rows = result.manifest.set_index("path")
    assert result.data.classes == ["A", "B"] and len(result.data.images) == 2
    assert rows.loc["A/bomb.png", "reason"].startswith("too large")
    assert rows.loc[STOPPED_PATH, "reason"].startswith("stopped: decompression bomb")
    assert result.metrics["n_files"] == 4 and result.metrics["skipped_by_reason"] == {"stopped": 1, "too large": 1}


def test_raw_bytes_handed_to_the_workers_are_capped_in_bytes_not_files(tmp_path, monkeypatch):
    outstanding, peak = [0], [0]

    class Recording(ThreadPoolExecutor):  # the decoding pool, counting bytes not yet collected
        def submit(self, fn, batch, *args):
            size = sum(map(len, batch))
            outstanding[0] += size
            peak[0] = max(peak[0], outstanding[0])
            future = super().submit(fn, batch, *args)
            result = future.result

            def collected(*a):
                outstanding[0] -= size
                return result(*a)

            future.result = collected
            return future

    monkeypatch.setattr(ingestion, "ProcessPoolExecutor", Recording)
    monkeypatch.setattr(ingestion, "BATCH_BYTES", 100_000)
    monkeypatch.setattr(ingestion, "IN_FLIGHT_BYTES", 300_000)
    (tmp_path / "A").mkdir()
    for i in range(40):  # 2 MB in 40 files: one batch of 256 files before
        (tmp_path / "A" / f"{i}.png").write_bytes(os.urandom(50_000))
    result = ingest(tmp_path, workers=2)
    assert result.metrics["n_files"] == 40
    assert peak[0] <= 300_000 + 100_000 + 50_000


def test_a_decoding_process_that_dies_is_one_error_not_a_traceback(tmp_path, monkeypatch):
    def killed(*_):
        raise ingestion.BrokenProcessPool("a worker was killed")

    class Dying(ThreadPoolExecutor):
        def submit(self, fn, *args):
            future = super().submit(fn, *args)
            future.result = killed
            return future

    monkeypatch.setattr(ingestion, "ProcessPoolExecutor", Dying)
    with pytest.raises(UserError, match="a decoding process died"):
        ingest(write_folder_of(tmp_path / "data", "AB", 2))


def test_ingest_refuses_images_above_its_max_pixels_unread(tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "A" / "big.png").write_bytes(encode(Image.new("L", (100, 100), 255)))
    (tmp_path / "A" / "small.png").write_bytes(encode(Image.new("L", (28, 28), 255)))
    assert list(ingest(tmp_path, max_pixels=64_000_000).manifest.status) == ["ok", "ok"]
    manifest = ingest(tmp_path, max_pixels=5_000).manifest.set_index("path")
    assert manifest.loc["A/big.png", "reason"].startswith("decompression bomb")
    assert manifest.loc["A/small.png", "status"] == "ok"
