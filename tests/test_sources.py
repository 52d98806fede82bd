"""notmnist.data.sources: folders and archives are read in place, safely, and the layout is found."""

import io
import os
import tarfile
import zipfile

import pytest

from notmnist.data import sources
from notmnist.data.sources import class_of, iter_members, layout_depth
from notmnist.plumbing.errors import UserError


def by_path(source):
    return {m.path: m for m in iter_members(source) if not m.is_dir}


def add_tar(tar: tarfile.TarFile, name: str, data: bytes = b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(
    "files, dirs, depth",
    [
        (["A/1.png", "B/2.png"], [], 0),
        (["notMNIST_small/A/1.png", "notMNIST_small/B/2.png"], ["notMNIST_small"], 1),
        (["x/y/A/1.png", "x/y/B/2.png"], [], 2),
        (["data/A/1.png", "data/A/2.png"], [], 1),  # one class: 'A' stays a class
        (["A/1.png"], [], 0),
        (["root/README", "root/A/1.png", "root/A/2.png"], [], 1),
        (["A/1.png", "A/2.png", "A/sub/3.png"], [], 0),
    ],
)
def test_leading_folders_that_hold_everything_are_skipped(files, dirs, depth):
    assert layout_depth(files, dirs) == depth


def test_class_is_the_folder_directly_above_the_file_at_layout_depth():
    assert class_of("top/A/x.png", 1) == ("A", None)
    assert class_of("top/x.png", 1)[1].startswith("outside the layout: not inside a class folder")
    assert class_of("top/A/deep/x.png", 1) == ("A", "outside the layout: nested deeper than ROOT/<class>/<file>")


def test_folder_links_devices_and_hidden_files_are_reported_not_read(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    root = tmp_path / "data"
    (root / "A").mkdir(parents=True)
    (root / "A" / "ok.png").write_bytes(b"pixels")
    (root / "A" / "link.png").symlink_to(outside)
    (root / "linked_dir").symlink_to(tmp_path)
    (root / "A" / ".DS_Store").write_bytes(b"mac")
    os.mkfifo(root / "A" / "pipe.png")  # reading it would block forever
    members = by_path(root)
    assert members["A/ok.png"].data == b"pixels"
    assert members["A/link.png"].reason.startswith("link") and members["A/link.png"].data is None
    assert members["linked_dir"].reason.startswith("link")
    assert members["A/.DS_Store"].reason.startswith("hidden file")
    assert members["A/pipe.png"].reason.startswith("not a regular file")


def test_tar_unsafe_members_are_reported_and_nothing_is_written(tmp_path):
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_tar(tar, "top/A/ok.png", b"pixels")
        add_tar(tar, "top/A/../../escape.png", b"evil")
        add_tar(tar, "/etc/abs.png", b"evil")
        add_tar(tar, "top/A/sym.png", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add_tar(tar, "top/A/hard.png", kind=tarfile.LNKTYPE, link="top/A/ok.png")
        add_tar(tar, "top/A/dev.png", kind=tarfile.CHRTYPE)
        add_tar(tar, "top/A/fifo.png", kind=tarfile.FIFOTYPE)
    before = sorted(p for p in tmp_path.parent.rglob("*") if tmp_path.parent in p.parents)
    members = by_path(archive)
    assert members["top/A/ok.png"].data == b"pixels"
    assert members["top/A/../../escape.png"].reason == "unsafe path: contains '..'"
    assert members["/etc/abs.png"].reason == "unsafe path: absolute"
    assert members["top/A/sym.png"].reason.startswith("link")
    assert members["top/A/hard.png"].reason.startswith("link")
    assert members["top/A/dev.png"].reason.startswith("not a regular file")
    assert members["top/A/fifo.png"].reason.startswith("not a regular file")
    assert sorted(p for p in tmp_path.parent.rglob("*") if tmp_path.parent in p.parents) == before


def test_zip_unsafe_members_and_symlinks_are_reported(tmp_path):
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("A/ok.png", b"pixels")
        z.writestr("../escape.png", b"evil")
        z.writestr("/abs.png", b"evil")
        link = zipfile.ZipInfo("A/link.png")
        link.external_attr = 0o120777 << 16
        z.writestr(link, "/etc/passwd")
        z.writestr("A/Ünïcödé name.png", b"pixels")
    members = by_path(archive)
    assert members["A/ok.png"].data == b"pixels"
    assert members["../escape.png"].reason.startswith("unsafe path")
    assert members["/abs.png"].reason == "unsafe path: absolute"
    assert members["A/link.png"].reason.startswith("link")
    assert members["A/Ünïcödé name.png"].data == b"pixels"


@pytest.mark.parametrize("suffix", [".tar", ".zip", ""])
def test_oversized_file_is_refused(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 1000)
    source = tmp_path / f"set{suffix}"
    if suffix == ".tar":
        with tarfile.open(source, "w") as tar:
            add_tar(tar, "A/huge.png", b"\0" * 1001)
    elif suffix == ".zip":
        with zipfile.ZipFile(source, "w") as z:
            z.writestr("A/huge.png", b"\0" * 1001)
    else:
        (source / "A").mkdir(parents=True)
        (source / "A" / "huge.png").write_bytes(b"\0" * 1001)
    assert by_path(source)["A/huge.png"].reason.startswith("too large")


def test_truncated_archive_is_one_clear_error(tmp_path):
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(50):
            add_tar(tar, f"A/{i}.png", os.urandom(2000))
    archive.write_bytes(archive.read_bytes()[:30_000])
    with pytest.raises(UserError, match="corrupt or truncated"):
        list(iter_members(archive))


@pytest.mark.parametrize("name, content", [("missing.tar", None), ("notes.txt", b"just text")])
def test_a_source_that_is_not_a_folder_or_archive_is_one_clear_error(tmp_path, name, content):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError, match="ingest.source"):
        list(iter_members(tmp_path / name))
