"""Read a data set in place: a folder ROOT/<class>/<files>, or a .tar/.tar.gz/.tgz/.zip of it.

Nothing is ever extracted or written: members are read into memory one at a time, in
storage order, in a single forward pass (a .tar.gz is decompressed once, as a stream). Links,
devices, absolute paths, '..' paths and hidden files are never read; they come back as
members with a reason, so that the manifest accounts for every file seen.

The layout is found from the paths alone (`layout_depth`): leading folders that hold
everything (like `notMNIST_small/`) are ignored, the next folder level names the class.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from notmnist.plumbing.errors import UserError

# A glyph file is a few hundred bytes; anything above this is not one of ours, and
# reading it (or a zip member that claims less and inflates to more) is refused.
MAX_FILE_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Member:
    path: str  # '/'-separated path inside the source, as shown in the manifest
    data: bytes | None = None  # the file's bytes; None for folders and members not read
    reason: str | None = None  # why the member was not read ('kind: detail'); None if read
    is_dir: bool = False


def iter_members(source: Path | str) -> Iterator[Member]:
    """Every file and folder in `source`, in storage order (folders: sorted by name)."""
    source = Path(source)
    if source.is_dir():
        yield from _folder_members(source)
    elif not source.exists():
        raise UserError(f"ingest.source: {source} not found")
    else:
        yield from _archive_members(source)


def layout_depth(files: list[str], dirs: list[str]) -> int:
    """How many leading folders to skip so that paths read <class>/<file>.

    A leading folder is skipped while every path lies inside that one folder and more
    files lie in sub-folders of its sub-folders than directly in its sub-folders: so
    'notMNIST_small/A/x.png' gives 1, while 'A/x.png' (a one-class data set) gives 0
    rather than losing its class.
    """
    entries = [p.split("/") for p in files + dirs]
    levels = [p.count("/") + 1 for p in files]
    depth = 0
    while len({parts[depth] for parts in entries if len(parts) > depth}) == 1 and sum(
        level >= depth + 3 for level in levels
    ) > levels.count(depth + 2):
        depth += 1
    return depth


def class_of(path: str, depth: int) -> tuple[str | None, str | None]:
    """(class name, None) for a file at ROOT/<class>/<file>, else (class or None, reason)."""
    parts = path.split("/")[depth:]
    if len(parts) == 2:
        return parts[0], None
    if len(parts) < 2:
        return None, "outside the layout: not inside a class folder (expected ROOT/<class>/<file>)"
    return parts[0], "outside the layout: nested deeper than ROOT/<class>/<file>"


# --- path checks --------------------------------------------------------------------


def _shown(name: str) -> str:
    """A printable, UTF-8-safe form of a file name (undecodable bytes as \\xNN)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_ABSOLUTE = re.compile(r"[/\\]|[A-Za-z]:")


def _clean_path(name: str) -> tuple[str, str | None]:
    """(normalised '/'-path, reason it must not be read or None)."""
    if _ABSOLUTE.match(name):
        return _shown(name), "unsafe path: absolute"
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    path = _shown("/".join(parts))
    if ".." in parts:
        return path, "unsafe path: contains '..'"
    if "/." in "/" + path or "__MACOSX" in parts:
        return path, "hidden file: name or folder starts with '.' (or __MACOSX)"
    return path, None


def _too_big(size: int) -> str:
    return f"too large: {size} bytes, over the cap of {MAX_FILE_BYTES}"


# --- folders ------------------------------------------------------------------------


def _folder_members(root: Path) -> Iterator[Member]:
    for top, dirnames, filenames in os.walk(root, followlinks=False):
        rel_top = os.path.relpath(top, root).replace(os.sep, "/")
        prefix = "" if rel_top == "." else rel_top + "/"
        dirnames.sort()
        for name in list(dirnames):
            path, reason = _clean_path(prefix + name)
            if os.path.islink(os.path.join(top, name)):
                dirnames.remove(name)
                yield Member(path, reason="link: not followed")
            elif not reason:  # a folder has no manifest row; its files do
                yield Member(path, is_dir=True)
        for name in sorted(filenames):
            path, reason = _clean_path(prefix + name)
            yield Member(path, reason=reason) if reason else _read_file(os.path.join(top, name), path)


def _read_file(full: str, path: str) -> Member:
    try:
        info = os.lstat(full)
        if stat.S_ISLNK(info.st_mode):
            return Member(path, reason="link: not followed")
        if not stat.S_ISREG(info.st_mode):
            return Member(path, reason="not a regular file: device, pipe or socket")
        if info.st_size > MAX_FILE_BYTES:
            return Member(path, reason=_too_big(info.st_size))
        with open(full, "rb") as f:  # read(n) allocates n bytes: ask for what stat promised
            return Member(path, data=f.read(info.st_size + 1))
    except OSError as e:
        return Member(path, reason=f"unreadable: {e.strerror or e}")


# --- archives -----------------------------------------------------------------------


def _archive_members(source: Path) -> Iterator[Member]:
    try:
        if zipfile.is_zipfile(source):
            entries = _zip_entries
        elif tarfile.is_tarfile(source):
            entries = _tar_entries
        else:
            raise UserError(f"ingest.source: {source} is not a folder or a .tar/.tar.gz/.tgz/.zip archive")
        for member in entries(source):
            if member.data is not None and len(member.data) > MAX_FILE_BYTES:
                member = Member(member.path, reason=_too_big(len(member.data)))
            yield member
    except UserError:
        raise
    except Exception as e:  # tarfile/zipfile/gzip raise many kinds on damaged archives
        raise UserError(f"ingest.source: {source} is corrupt or truncated: {type(e).__name__}: {e}") from None


def _tar_entries(source: Path) -> Iterator[Member]:
    # Stream mode: one forward pass through the decompressor, each member read as it comes.
    with tarfile.open(source, "r|*") as tar:
        for info in tar:
            # TarFile keeps every TarInfo it has read; nothing here looks back, and on
            # notMNIST_large's 530k members they would hold about 270 MB
            tar.members.clear()  # type: ignore[attr-defined]  # typeshed leaves the attribute out
            path, reason = _clean_path(info.name)
            if info.isdir():
                if path and not reason:  # a folder has no manifest row; its files do
                    yield Member(path, is_dir=True)
            elif reason:
                yield Member(path, reason=reason)
            elif info.issym() or info.islnk():
                yield Member(path, reason="link: not followed")
            elif not info.isfile() or info.issparse():
                yield Member(path, reason="not a regular file: device, pipe, fifo or sparse file")
            elif info.size > MAX_FILE_BYTES:
                yield Member(path, reason=_too_big(info.size))
            else:
                file = tar.extractfile(info)  # a regular file: never None
                yield Member(path, data=file.read() if file is not None else b"")


def _zip_entries(source: Path) -> Iterator[Member]:
    with zipfile.ZipFile(source) as archive:
        for info in archive.infolist():
            path, reason = _clean_path(info.filename)
            mode = info.external_attr >> 16
            if info.is_dir() and not stat.S_ISLNK(mode):
                if path and not reason:
                    yield Member(path, is_dir=True)
            elif reason:
                yield Member(path, reason=reason)
            elif stat.S_ISLNK(mode):
                yield Member(path, reason="link: not followed")
            elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no type recorded
                yield Member(path, reason="not a regular file: device, pipe or fifo")
            elif info.file_size > MAX_FILE_BYTES:
                yield Member(path, reason=_too_big(info.file_size))
            else:
                yield _read_zip_member(archive, info, path)


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> Member:
    try:
        with archive.open(info) as f:  # a member may inflate to more than it declares
            return Member(path, data=f.read(info.file_size + 1))
    except (
        zipfile.BadZipFile,
        RuntimeError,
        NotImplementedError,
        EOFError,
        zlib.error,
        OSError,
    ) as e:  # encrypted, bad CRC, unknown compression: this member only
        return Member(path, reason=f"unreadable archive member: {e}")
