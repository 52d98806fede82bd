"""Atomic writes and pickle-free reads: the one way every output is written and read.

A writer first writes a temporary file beside its target and renames it over the target
only when everything succeeded, so an interrupted or failing writer (a full disk, a
kill) leaves the previous output as it was. Inside `all_or_nothing()` (every stage runs in
one) the renames wait for the end of the block: a stage's outputs are all new or all as
they were. Floats in JSON are rounded, so a result that did not change is written byte for
byte as before and diffs as unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from notmnist.plumbing.errors import UserError

_waiting: list[tuple[Path, Path]] | None = None  # (temporary, target) inside all_or_nothing()


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Within the block, every atomic write renames its temporary onto its target only when
    the whole block succeeds; if anything fails, no target is replaced."""
    global _waiting
    _waiting = []
    try:
        yield
        for tmp, path in _waiting:
            _replace(tmp, path)
    finally:
        for tmp, _ in _waiting:
            _remove(tmp)
        _waiting = None


def _replace(tmp: Path, path: Path) -> None:
    """Put tmp, a file or a folder, where path is; a folder replaces the old one whole."""
    if tmp.is_dir() and path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)  # left over from an interrupted run
        path.rename(old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only on success (inside
    all_or_nothing(): when the whole block succeeds).

    An interrupted or failing writer leaves the previous `path` untouched; a full disk or a
    folder that can't be written is reported as a UserError naming the file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise UserError(f"{path}: cannot write in {path.parent} ({e.strerror}); no output was replaced") from None
        raise
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs should read like any other file
    with _swapped_in(Path(tmp), path):
        yield Path(tmp)


@contextlib.contextmanager
def _swapped_in(tmp: Path, path: Path) -> Iterator[None]:
    """Put tmp where path is when the block succeeds (inside all_or_nothing(): when the
    whole of that succeeds); remove tmp otherwise."""
    kept = False
    try:
        yield
        if _waiting is None:
            _replace(tmp, path)
        else:
            _waiting.append((tmp, path))
            kept = True
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(f"{path}: the disk is full; no output of this run replaced an older one") from None
        raise
    finally:
        if not kept:
            _remove(tmp)


def write_files(folder: Path | str, files: dict[str, bytes]) -> None:
    """A folder of files (relative path -> bytes), written as one output: it replaces the
    old folder whole, or (on any failure) not at all."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; outputs should read like any other folder
    with _swapped_in(tmp, folder):
        for path, data in sorted(files.items()):
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / path).write_bytes(data)


# --- reading untrusted paths -----------------------------------------------------------------


class Unreadable(UserError):
    """A path that is not read: `reason` says why ('kind: detail'); str(e) names the path too."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a link",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a file")


def open_regular(path: Path | str, *, follow_links: bool = True) -> BinaryIO:
    """A regular file opened for reading, or Unreadable.

    A FIFO would block forever, /dev/zero never ends and a socket cannot be read, so only a
    regular file is opened; O_NONBLOCK makes the open itself return at once should the path
    turn into a FIFO after the stat. Without follow_links, a link is refused, not followed.
    """
    try:
        info = os.stat(path, follow_symlinks=follow_links)
        if stat.S_ISLNK(info.st_mode):
            raise Unreadable(path, "link: not followed")
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(path, f"not a regular file: {_kind(info.st_mode)}")
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0)))
        f = os.fdopen(fd, "rb")
    except OSError as e:
        raise Unreadable(path, f"unreadable: {e.strerror or e}") from None
    opened = os.fstat(f.fileno())
    if not stat.S_ISREG(opened.st_mode):
        f.close()
        raise Unreadable(path, f"not a regular file: {_kind(opened.st_mode)}")
    return f


def read_regular(path: Path | str, max_bytes: int, *, follow_links: bool = True) -> bytes:
    """The bytes of a regular file (see open_regular) of at most max_bytes, or Unreadable."""
    with open_regular(path, follow_links=follow_links) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise Unreadable(path, _too_large(size, max_bytes))
            # read(n) allocates n bytes: ask for what stat promised, plus one to see the end; a
            # file that holds more than it says (it grew, or /proc) is read on in bounded steps
            data = f.read(size + 1)
            if len(data) <= size:
                return data
            parts, total = [data], len(data)
            while total <= max_bytes and (part := f.read(min(2**20, max_bytes + 1 - total))):
                parts.append(part)
                total += len(part)
            if total > max_bytes:
                raise Unreadable(path, _too_large(total, max_bytes, "at least "))
            return b"".join(parts)
        except OSError as e:
            raise Unreadable(path, f"unreadable: {e.strerror or e}") from None


def _too_large(size: int, cap: int, at_least: str = "") -> str:
    return f"too large: {at_least}{size} bytes, over the cap of {cap}"


def save_npy(path: Path | str, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.save(f, array, allow_pickle=False)


def load_npy(path: Path | str, mmap: bool = False) -> np.ndarray:
    """np.load without pickles; a missing file names the stage output it should be."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; run the stage that writes it first (dvc repro)")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as e:
        raise UserError(f"{path}: not a numpy array file ({e})") from None


def write_text(path: Path | str, content: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(content, encoding="utf-8")


def rounded(obj: Any, digits: int = 6) -> Any:
    """Round floats to `digits` significant digits (also inside containers and numpy scalars);
    non-finite floats become None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return rounded(obj.tolist(), digits)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}") if value != 0 else 0.0
    return obj


def write_json(path: Path | str, obj: Any, digits: int = 6) -> None:
    """Write JSON atomically, floats rounded, in a stable layout."""
    write_text(path, json.dumps(rounded(obj, digits), indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path | str) -> Any:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; run the stage that writes it first (dvc repro)")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
