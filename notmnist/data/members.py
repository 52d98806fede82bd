"""What a source yields (a Member per file or folder), what reading one may cost (Limits), and
the path checks every source kind shares.

A source can claim anything about itself: a member's size, its compression ratio, how long
its name is. What reading it costs is bounded by Limits, never by those claims; the numbers
follow libarchive (1 MiB for a tar header's payload), Apache POI's zip-bomb guard (a ratio of
100 once past a grace size) and Python's tarfile data filter (no links, devices or paths
out of the root). docs/hostile-inputs.md lists every bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MiB = 2**20


@dataclass(frozen=True)
class Member:
    path: str  # '/'-separated path inside the source, as shown in the manifest
    data: bytes | None = None  # the file's bytes; None for folders and members not read
    reason: str | None = None  # why the member was not read ('kind: detail'); None if read
    is_dir: bool = False


@dataclass(frozen=True)
class Limits:
    # A glyph file is a few hundred bytes and a photo of a letter a few MB; a member above
    # this is not one of ours, and reading it (or one that inflates to more) is refused.
    file_bytes: int = 32 * MiB
    # GNU long names and PAX records are a few hundred bytes; libarchive stops at 1-2 MiB.
    header_bytes: int = 1 * MiB
    # Decompressed bytes of one archive: 16x notMNIST_large, a few seconds of gzip per GiB.
    total_bytes: int = 16 * 2**30
    # Decompressed / compressed bytes. Images are compressed already: an archive of them
    # inflates a few times, a bomb of zeros a thousand times.
    ratio: float = 100.0
    ratio_grace_stream: int = 64 * MiB  # a whole archive is judged after this much output
    ratio_grace_member: int = 1 * MiB  # a zip member is judged on its own above this size
    members: int = 1_000_000  # files and folders; notMNIST_large holds 530,000
    depth: int = 64  # folders in a path: ROOT/<class>/<file> under a few leading folders


DEFAULT_LIMITS = Limits()


class Stopped(Exception):
    """A cap on the whole source was reached; `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


STOPPED_PATH = "(rest of the source)"  # the manifest row of a source that was stopped


def stopped(reason: str) -> Member:
    """The one manifest row that ends a source: what was read before it stays."""
    return Member(STOPPED_PATH, reason=f"stopped: {reason}; the rest of the source is not read")


class Budget:
    """Bytes an archive has inflated to and the compressed bytes they came from, against Limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.compressed = 0
        self.inflated = 0

    def spend(self, compressed: int, inflated: int) -> None:
        """Count more bytes; Stopped once the archive is over its total or ratio cap."""
        self.compressed += compressed
        self.inflated += inflated
        limits = self.limits
        if self.inflated > limits.total_bytes:
            raise Stopped(f"over {limits.total_bytes} bytes decompressed (the cap)")
        if self.inflated > limits.ratio_grace_stream and self.inflated > limits.ratio * max(self.compressed, 1):
            raise Stopped(
                f"decompression bomb: {self.compressed} bytes inflated to {self.inflated}, "
                f"a ratio over the cap of {limits.ratio:g}"
            )


def too_large(size: int, cap: int) -> str:
    return f"too large: {size} bytes, over the cap of {cap}"


def duplicate(path: str) -> Member:
    return Member(path, reason="duplicate path: an earlier member has the same name")


# --- path checks --------------------------------------------------------------------


def shown(name: str) -> str:
    """A printable, UTF-8-safe form of a file name (undecodable bytes as \\xNN)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_ABSOLUTE = re.compile(r"[/\\]|[A-Za-z]:")


def clean_path(name: str, max_depth: int = DEFAULT_LIMITS.depth) -> tuple[str, str | None]:
    """(normalised '/'-path, reason it must not be read or None)."""
    if _ABSOLUTE.match(name):
        return shown(name), "unsafe path: absolute"
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    path = shown("/".join(parts))
    if ".." in parts:
        return path, "unsafe path: contains '..'"
    if len(parts) > max_depth:  # the layout search looks at every level of every path
        return path, f"unsafe path: nested deeper than {max_depth} folders"
    if "/." in "/" + path or "__MACOSX" in parts:
        return path, "hidden file: name or folder starts with '.' (or __MACOSX)"
    return path, None
