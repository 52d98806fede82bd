"""notmnist.data.sources: folders and archives are read in place, safely, and the layout is found."""

import copy
import io
import os
import tarfile
import time
import warnings
import zipfile

import pytest

from notmnist.data.members import DEFAULT_LIMITS, STOPPED_PATH, Limits
from notmnist.data.sources import archive_format, class_of, iter_members, layout_depth
from notmnist.plumbing.errors import UserError
from tests.bombs import END, MiB, entry, header, write_sparse_tar, write_tar_gz, write_zip_of_zeros


def by_path(source, limits=DEFAULT_LIMITS):
    return {m.path: m for m in iter_members(source, limits) if not m.is_dir}


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
def test_oversized_file_is_refused(tmp_path, suffix):
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
    assert by_path(source, Limits(file_bytes=1000))["A/huge.png"].reason.startswith("too large")


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


# --- hostile archives: what reading costs follows the bytes, not what the archive claims ------

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels"  # bytes to find again, not decoded here
NO_RATIO_CAP = Limits(ratio=float("inf"))


def timed_members(source, limits=DEFAULT_LIMITS):
    start = time.perf_counter()
    members = [m for m in iter_members(source, limits) if not m.is_dir]
    return members, time.perf_counter() - start


def test_skipping_a_big_compressed_member_costs_what_decompressing_it_costs(tmp_path):
    size = 256 * MiB  # at 10 KB a read, as tarfile's stream mode skips, this took 13 s
    archive = write_tar_gz(tmp_path / "big.tar.gz", [header("A/big.png", size), size, entry("A/ok.png", PNG), END])
    members, seconds = timed_members(archive, NO_RATIO_CAP)
    assert [m.path for m in members] == ["A/big.png", "A/ok.png"]
    assert members[0].reason.startswith("too large") and members[1].data == PNG
    assert seconds < 5


def test_a_compression_bomb_stops_the_archive_with_one_row_and_keeps_what_came_before(tmp_path):
    size = 128 * MiB
    archive = write_tar_gz(
        tmp_path / "bomb.tar.gz",
        [entry("A/ok.png", PNG), header("A/bomb.png", size), size, entry("B/ok.png", PNG), END],
    )
    members, seconds = timed_members(archive)
    assert [m.path for m in members] == ["A/ok.png", "A/bomb.png", STOPPED_PATH]
    assert members[0].data == PNG and members[1].reason.startswith("too large")
    assert members[2].reason.startswith("stopped: decompression bomb") and seconds < 5


def test_the_total_bytes_cap_stops_an_archive(tmp_path):
    parts = [entry(f"A/{i}.png", os.urandom(MiB)) for i in range(4)]
    archive = write_tar_gz(tmp_path / "many.tar.gz", [*parts, END])
    members = by_path(archive, Limits(total_bytes=3 * MiB // 2))
    assert list(members) == ["A/0.png", STOPPED_PATH]
    assert members[STOPPED_PATH].reason.startswith("stopped: over 1572864 bytes decompressed")


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE])
def test_a_huge_long_name_or_pax_header_is_skipped_unread_and_its_member_refused(tmp_path, kind):
    claimed = 3 * 2**30  # a hole in a sparse file: reading it would take 3 GB
    archive = write_sparse_tar(
        tmp_path / "header.tar",
        [header("././@LongLink", claimed, kind), claimed, entry("A/victim.png", PNG), entry("A/ok.png", PNG), END],
    )
    members, seconds = timed_members(archive)
    assert [m.path for m in members] == ["A/victim.png", "A/ok.png"]
    assert members[0].reason.startswith("header too large") and str(claimed) in members[0].reason
    assert members[1].data == PNG and seconds < 2


def test_a_huge_compressed_header_is_skipped_at_the_cost_of_its_bytes(tmp_path):
    claimed = 16 * MiB
    archive = write_tar_gz(
        tmp_path / "header.tar.gz",
        [header("././@LongLink", claimed, tarfile.GNUTYPE_LONGNAME), claimed, entry("A/victim.png", PNG), END],
    )
    assert by_path(archive)["A/victim.png"].reason.startswith("header too large: a GNU long name")


def test_a_tar_whose_last_member_is_a_zip_is_read_as_a_tar(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("Z/inner.png", PNG)
    archive = write_sparse_tar(
        tmp_path / "set.tar", [entry("A/1.png", PNG), entry("B/2.png", PNG), entry("C/last.zip", inner.getvalue()), END]
    )
    assert zipfile.is_zipfile(archive)  # why the name or the end of a file cannot decide
    assert set(by_path(archive)) == {"A/1.png", "B/2.png", "C/last.zip"}


def test_the_format_is_what_the_first_bytes_say_then_the_name(tmp_path):
    assert archive_format(b"PK\x03\x04" + bytes(508), "x.tar") == "zip"
    assert archive_format(bytes(257) + b"ustar" + bytes(250), "x.zip") == "tar"
    assert archive_format(b"\x1f\x8b" + bytes(510), "x") == "gz"
    assert archive_format(bytes(512), "old.TAR") == "tar"
    assert archive_format(bytes(512), "x.png") is None
    named_zip = write_sparse_tar(tmp_path / "really_a_tar.zip", [entry("A/1.png", PNG), END])
    assert by_path(named_zip)["A/1.png"].data == PNG


def test_zip_members_that_inflate_a_thousand_times_are_refused_unread(tmp_path):
    archive = write_zip_of_zeros(tmp_path / "bomb.zip", 20, 8 * MiB, {"B/ok.png": PNG})
    members, seconds = timed_members(archive)
    assert len(members) == 21 and members[-1].data == PNG
    assert all(m.reason.startswith("decompression bomb") and m.data is None for m in members[:-1])
    assert seconds < 1


def test_zip_entries_sharing_one_local_entry_are_refused(tmp_path):
    archive = tmp_path / "overlap.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("A/0.png", os.urandom(100_000))
        for i in range(1, 200):
            clone = copy.copy(z.filelist[0])
            clone.filename = clone.orig_filename = f"A/{i}.png"
            z.filelist.append(clone)
    members = by_path(archive)
    assert len(members["A/0.png"].data) == 100_000
    assert {m.reason for path, m in members.items() if path != "A/0.png"} == {
        "overlapping entry: its data overlaps another member's (a zip bomb)"
    }


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_repeated_name_is_a_duplicate_and_its_data_is_not_read_again(tmp_path, monkeypatch, kind):
    archive = tmp_path / f"dup.{kind}"
    if kind == "zip":
        with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as z:
            warnings.simplefilter("ignore", UserWarning)
            for data in (PNG, b"second", b"third"):
                z.writestr("A/x.png", data)
        opened = []
        real_open = zipfile.ZipFile.open
        monkeypatch.setattr(
            zipfile.ZipFile, "open", lambda self, info, *a: opened.append(info) or real_open(self, info)
        )
    else:
        write_sparse_tar(archive, [entry("A/x.png", PNG), entry("A/x.png", b"second"), entry("A/x.png", b"third"), END])
    members = [m for m in iter_members(archive) if not m.is_dir]
    assert members[0].data == PNG
    assert [m.reason for m in members[1:]] == ["duplicate path: an earlier member has the same name"] * 2
    assert all(m.data is None for m in members[1:])
    if kind == "zip":
        assert len(opened) == 1


def test_more_members_than_the_cap_stop_the_source_with_one_row(tmp_path):
    archive = write_sparse_tar(tmp_path / "many.tar", [*(entry(f"A/{i}.png", PNG) for i in range(5)), END])
    assert list(by_path(archive, Limits(members=3))) == ["A/0.png", "A/1.png", "A/2.png", STOPPED_PATH]
    folders = [header(f"A/{i}", 0, tarfile.DIRTYPE) for i in range(5)]
    archive = write_sparse_tar(tmp_path / "folders.tar", [*folders, entry("A/x.png", PNG), END])
    assert list(by_path(archive, Limits(members=3))) == [STOPPED_PATH]  # folders count too


# --- special files ---------------------------------------------------------------------------


def test_a_fifo_as_the_source_is_one_clear_error_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.tar")
    with pytest.raises(UserError, match="not a regular file: a FIFO"):
        list(iter_members(tmp_path / "pipe.tar"))


def test_a_class_folder_that_cannot_be_listed_gets_a_row(tmp_path, monkeypatch):
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(PNG)
    real_scandir = os.scandir

    def scandir(path):  # tests may run as root, whom chmod does not stop
        if os.path.basename(path) == "B":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    members = by_path(tmp_path)
    assert members["A/x.png"].data == PNG
    assert members["B"].reason == "unreadable folder: Permission denied"


def test_paths_nested_deeper_than_the_cap_are_not_walked_or_read(tmp_path):
    deep = tmp_path / "data" / "A" / "/".join("d" * 70)
    deep.mkdir(parents=True)
    (deep / "x.png").write_bytes(PNG)
    (tmp_path / "data" / "A" / "ok.png").write_bytes(PNG)
    members = by_path(tmp_path / "data")
    assert members["A/ok.png"].data == PNG
    assert [m.reason for m in members.values() if m.reason] == ["unsafe path: nested deeper than 64 folders"]
    archive = write_sparse_tar(tmp_path / "deep.tar", [entry("/".join("d" * 100) + "/x.png", PNG), END])
    assert list(by_path(archive).values())[0].reason == "unsafe path: nested deeper than 64 folders"


def test_a_damaged_header_after_the_first_ends_the_archive_with_a_row_not_silently(tmp_path):
    damaged = bytearray(entry("A/2.png", PNG))
    damaged[148:156] = b"9999999\0"  # the header's checksum
    parts = [entry("A/1.png", PNG), bytes(damaged), entry("A/3.png", PNG), END]
    archive = write_sparse_tar(tmp_path / "set.tar", parts)
    members = by_path(archive)
    assert list(members) == ["A/1.png", STOPPED_PATH]
    assert members[STOPPED_PATH].reason.startswith("stopped: damaged archive: invalid header at byte 1024")


def test_a_member_claiming_more_than_the_archive_cap_stops_it(tmp_path):
    archive = write_sparse_tar(tmp_path / "set.tar", [entry("A/1.png", PNG), header("A/huge.png", 2**62), END])
    members = by_path(archive)
    assert list(members) == ["A/1.png", STOPPED_PATH]
    assert members[STOPPED_PATH].reason.startswith(f"stopped: a member claims {2**62} bytes")


def test_a_header_claiming_more_than_the_archive_cap_stops_it(tmp_path):
    parts = [entry("A/1.png", PNG), header("././@LongLink", 2**62, tarfile.GNUTYPE_LONGNAME), END]
    members = by_path(write_sparse_tar(tmp_path / "set.tar", parts))
    assert list(members) == ["A/1.png", STOPPED_PATH]
    assert members[STOPPED_PATH].reason.startswith(f"stopped: header too large: a GNU long name of {2**62} bytes")
