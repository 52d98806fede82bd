"""The members of a .zip, in central-directory order, at bounded cost.

A zip says how big each member is before it is read, and can lie: a member's bytes are read
up to what it declares (plus one to catch a lie), and refused unread when it declares more
than Limits.file_bytes or a ratio over Limits.ratio. Entries whose data overlap an earlier
entry's (one deflate stream shared by thousands of entries: the overlapping zip bomb) are
refused unread, as CPython 3.12's zipfile does. The whole archive's inflated bytes are
charged to a Budget.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from typing import BinaryIO, Callable, Iterator

from notmnist.data.members import Budget, Limits, Member, Stopped, clean_path, duplicate, stopped, too_large

LOCAL_HEADER = 30  # bytes of a local file header before its name: the least an entry takes


def zip_members(raw: BinaryIO, limits: Limits, first: Callable[[str], bool]) -> Iterator[Member]:
    """Every member of the zip in `raw`; `first(path)` says whether a file path is new."""
    # zipfile builds a ZipInfo for every central-directory entry up front: count them first
    end = zipfile._EndRecData(raw)  # the end record's numbers; a private helper, stable since 2.x
    if end and end[zipfile._ECD_ENTRIES_TOTAL] > limits.members:
        yield stopped(f"{end[zipfile._ECD_ENTRIES_TOTAL]} entries, over the cap of {limits.members}")
        return
    with zipfile.ZipFile(raw) as archive:
        infos = archive.infolist()
        data_ends = _data_ends(infos, archive.start_dir)
        budget = Budget(limits)
        starts: set[int] = set()
        try:
            for info in infos:
                member = _member(archive, info, limits, first, budget, data_ends, starts)
                if member is not None:
                    yield member
        except Stopped as e:
            yield stopped(e.reason)


def _data_ends(infos: list[zipfile.ZipInfo], directory: int) -> dict[int, int]:
    """Where the space of the entry at each local-header offset ends: the next entry's start."""
    ends, end = {}, directory
    for offset in sorted({info.header_offset for info in infos}, reverse=True):
        ends[offset], end = end, offset
    return ends


def _member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    limits: Limits,
    first: Callable[[str], bool],
    budget: Budget,
    data_ends: dict[int, int],
    starts: set[int],
) -> Member | None:
    path, reason = clean_path(info.filename, limits.depth)
    mode = info.external_attr >> 16
    if info.is_dir() and not stat.S_ISLNK(mode):
        return Member(path, is_dir=True) if path and not reason else None
    if reason:
        first(path)
        return Member(path, reason=reason)
    if not first(path):
        return duplicate(path)
    if stat.S_ISLNK(mode):
        return Member(path, reason="link: not followed")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no type recorded
        return Member(path, reason="not a regular file: device, pipe or fifo")
    if info.file_size > limits.file_bytes:
        return Member(path, reason=too_large(info.file_size, limits.file_bytes))
    if info.header_offset >= archive.start_dir:
        return Member(path, reason="unreadable archive member: its data lies outside the archive")
    data_end = info.header_offset + LOCAL_HEADER + info.compress_size
    if info.header_offset in starts or data_end > data_ends[info.header_offset]:
        return Member(path, reason="overlapping entry: its data overlaps another member's (a zip bomb)")
    starts.add(info.header_offset)
    if info.file_size > limits.ratio_grace_member and info.file_size > limits.ratio * max(info.compress_size, 1):
        return Member(
            path,
            reason=f"decompression bomb: {info.compress_size} bytes inflate to {info.file_size}, "
            f"a ratio over the cap of {limits.ratio:g}",
        )
    try:
        with archive.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error, OSError) as e:
        return Member(path, reason=f"unreadable archive member: {e}")  # encrypted, bad CRC, ...: this one only
    budget.spend(info.compress_size, len(data))
    if len(data) > info.file_size:
        declared = info.file_size
        return Member(path, reason=f"unreadable archive member: inflates to more than the {declared} bytes it declares")
    return Member(path, data=data)
