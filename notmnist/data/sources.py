"""Read a data set in place: a folder ROOT/<class>/<files>, or a .tar(.gz/.bz2/.xz)/.tgz/.zip of it.

Nothing is ever extracted or written: members are read into memory one at a time, in
storage order, in a single forward pass (a compressed tar is decompressed once, as a
stream). Links, devices, FIFOs, sockets, absolute paths, '..' paths and hidden files are
never read, and a name seen before is not read again; they come back as members with a
reason, so that the manifest accounts for every file seen. What reading costs is bounded
by Limits (notmnist.data.members), whatever a source claims about itself.

An archive's format is what its first bytes say (zip, gzip, bzip2, xz, ustar), then its
file name's extension: a tar whose last member is a zip is a tar.

The layout is found from the paths alone (`layout_depth`): leading folders that hold
everything (like `notMNIST_small/`) are ignored, the next folder level names the class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from notmnist.data.members import DEFAULT_LIMITS, Limits, Member, clean_path, stopped
from notmnist.data.tar_members import tar_members
from notmnist.data.zip_members import zip_members
from notmnist.plumbing.errors import UserError
from notmnist.plumbing.files import Unreadable, open_regular, read_regular

MAGIC = (  # (offset, bytes, format): what a file is, whatever its name
    (0, b"PK\x03\x04", "zip"),
    (0, b"PK\x05\x06", "zip"),  # an empty zip
    (0, b"\x1f\x8b", "gz"),
    (0, b"BZh", "bz2"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (257, b"ustar", "tar"),
)
EXTENSIONS = (  # for files whose first bytes say nothing: old tars, self-extracting zips
    (".zip", "zip"),
    (".tar.gz", "gz"),
    (".tgz", "gz"),
    (".tar.bz2", "bz2"),
    (".tbz2", "bz2"),
    (".tar.xz", "xz"),
    (".txz", "xz"),
    (".tar", "tar"),
)


def iter_members(source: Path | str, limits: Limits = DEFAULT_LIMITS) -> Iterator[Member]:
    """Every file and folder in `source`, in storage order (folders: sorted by name).

    A file path seen before is a duplicate, not read again. After limits.members files and
    folders, one `stopped` member ends the source. Raises UserError when the source itself cannot be read.
    """
    source = Path(source)
    seen: set[str] = set()

    def first(path: str) -> bool:
        new = path not in seen
        seen.add(path)
        return new

    if source.is_dir():
        members = _folder_members(source, limits)
    elif not source.exists():
        raise UserError(f"ingest.source: {source} not found")
    else:
        members = _archive_members(source, limits, first)
    for count, member in enumerate(members, 1):
        if count > limits.members:  # folders count too: each costs a path in memory
            yield stopped(f"more than {limits.members} files and folders (the cap)")
            return
        yield member


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


# --- folders ------------------------------------------------------------------------


def _folder_members(root: Path, limits: Limits) -> Iterator[Member]:
    errors: list[OSError] = []  # folders os.walk could not list, reported as it goes
    for top, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
        yield from _unlisted(root, errors)
        rel_top = os.path.relpath(top, root).replace(os.sep, "/")
        prefix = "" if rel_top == "." else rel_top + "/"
        dirnames.sort()
        if prefix.count("/") >= limits.depth:  # os.walk recurses once per level: go no deeper
            too_deep = f"unsafe path: nested deeper than {limits.depth} folders"
            yield from (Member(prefix + name, reason=too_deep) for name in dirnames)
            dirnames.clear()
        for name in list(dirnames):
            path, reason = clean_path(prefix + name)
            if os.path.islink(os.path.join(top, name)):
                dirnames.remove(name)
                yield Member(path, reason="link: not followed")
            elif not reason:  # a folder has no manifest row; its files do
                yield Member(path, is_dir=True)
        for name in sorted(filenames):
            path, reason = clean_path(prefix + name)
            if reason:
                yield Member(path, reason=reason)
                continue
            try:
                yield Member(path, data=read_regular(os.path.join(top, name), limits.file_bytes, follow_links=False))
            except Unreadable as e:
                yield Member(path, reason=e.reason)
    yield from _unlisted(root, errors)


def _unlisted(root: Path, errors: list[OSError]) -> Iterator[Member]:
    """A manifest row for each folder that could not be listed (its files are unknown)."""
    while errors:
        error = errors.pop(0)
        where = os.path.relpath(error.filename or root, root).replace(os.sep, "/")
        if where == ".":
            raise UserError(f"ingest.source: {root}: cannot list the folder: {error.strerror or error}")
        yield Member(clean_path(where)[0], reason=f"unreadable folder: {error.strerror or error}")


# --- archives -----------------------------------------------------------------------


def archive_format(head: bytes, name: str) -> str | None:
    """'zip', 'tar', 'gz', 'bz2' or 'xz' (a compressed tar) from a file's first 512 bytes,
    then from its name; None for anything else."""
    for offset, magic, kind in MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    return next((kind for extension, kind in EXTENSIONS if name.lower().endswith(extension)), None)


def _archive_members(source: Path, limits: Limits, first: Callable[[str], bool]) -> Iterator[Member]:
    try:
        raw = open_regular(source)
    except Unreadable as e:
        raise UserError(f"ingest.source: {e}") from None
    with raw:
        kind = archive_format(raw.read(512), source.name)
        raw.seek(0)  # a regular file: the readers start from its first byte
        if kind is None:
            raise UserError(f"ingest.source: {source} is not a folder or a .tar/.tar.gz/.tgz/.zip archive")
        try:
            yield from _members_of(raw, kind, limits, first)
        except UserError:
            raise
        except MemoryError:  # not a damaged archive: say what happened
            raise UserError(f"ingest.source: {source}: out of memory while reading it") from None
        except Exception as e:  # tarfile/zipfile/gzip/lzma raise many kinds on damaged archives
            raise UserError(f"ingest.source: {source} is corrupt or truncated: {type(e).__name__}: {e}") from None


def _members_of(raw: BinaryIO, kind: str, limits: Limits, first: Callable[[str], bool]) -> Iterator[Member]:
    if kind == "zip":
        return zip_members(raw, limits, first)
    return tar_members(raw, None if kind == "tar" else kind, limits, first)
