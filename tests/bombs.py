"""Hostile archives of any claimed size, built in a moment and small on disk.

A gzip file may hold many gzip members, which decompress to one stream: a run of N zeros is
one member of 64 MiB of zeros compressed once and written N / 64 MiB times, so an 8 GiB
member costs 8 MB and a fraction of a second to build. A plain tar can claim a member of
any size over a hole in a sparse file. The tests use these at MB scale, benchmarks/hostile.py
at GiB scale.
"""

from __future__ import annotations

import functools
import gzip
import struct
import tarfile
import zlib
from pathlib import Path
from typing import Iterable

MiB = 2**20
RUN = 64 * MiB  # zeros per gzip member of a run
END = bytes(1024)  # a tar's end: two zero blocks


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    """One 512-byte tar header that claims `size` bytes of data follow."""
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(tarfile.GNU_FORMAT)


def entry(name: str, data: bytes) -> bytes:
    """A whole tar member: header and data padded to 512-byte blocks."""
    return header(name, len(data)) + data + bytes(-len(data) % 512)


@functools.cache
def _zeros_member(size: int) -> bytes:
    return gzip.compress(bytes(size), compresslevel=9, mtime=0)


def write_tar_gz(path: Path, parts: Iterable[bytes | int]) -> Path:
    """A .tar.gz of `parts` in order: bytes as they are, an int as that many zeros."""
    with open(path, "wb") as f:
        for part in parts:
            if isinstance(part, int):
                full, rest = divmod(part, RUN)
                for _ in range(full):
                    f.write(_zeros_member(RUN))
                if rest:
                    f.write(_zeros_member(rest))
            else:
                f.write(gzip.compress(part, mtime=0))
    return path


def write_sparse_tar(path: Path, parts: Iterable[bytes | int]) -> Path:
    """A plain .tar of `parts`: bytes as they are, an int as a hole of that many zeros."""
    with open(path, "wb") as f:
        for part in parts:
            if isinstance(part, int):
                f.seek(part, 1)
            else:
                f.write(part)
        f.truncate()
    return path


def write_zip_of_zeros(path: Path, n_members: int, size: int, extra: dict[str, bytes] | None = None) -> Path:
    """A zip of n_members deflated members of `size` zeros each (compressed once), then `extra`."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = deflate.compress(bytes(size)) + deflate.flush()
    crc = zlib.crc32(bytes(size))
    members = [(f"A/zeros{i}.png", zeros, crc, size, 8) for i in range(n_members)]
    members += [(name, data, zlib.crc32(data), len(data), 0) for name, data in (extra or {}).items()]
    local, central = bytearray(), bytearray()
    for name, data, crc, size, method in members:
        encoded = name.encode()
        sizes = (crc, len(data), size, len(encoded))
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, method, 0, 0, *sizes, 0, 0, 0, 0, 0, len(local))
        central += encoded
        local += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0, *sizes, 0) + encoded + data
    n = len(members)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, n, n, len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path
