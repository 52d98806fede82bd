"""The members of a .tar, .tar.gz, .tar.bz2 or .tar.xz, in one forward pass, at bounded cost.

tarfile's own stream mode ("r|*") is not used: it skips a member in 10 KB reads, each
slicing a buffer that one compressed read can fill with a thousand times more, so a skip
costs far more than decompressing; and it reads a GNU long name or PAX header whole,
whatever size it claims. Here the
decompressor (gzip, bz2, lzma) is read through `Inflated`, which never asks it for more than
1 MiB at a time, skips forward in such reads and charges every byte to a Budget; tarfile
only parses headers ("r:" mode over that stream), through `BoundedTarInfo`, which refuses
a header payload over Limits.header_bytes before reading it.
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import zlib
from typing import Any, BinaryIO, Callable, Iterator

from notmnist.data.members import Budget, Limits, Member, Stopped, clean_path, duplicate, stopped, too_large

SKIP = 2**20  # bytes per read when skipping: a skip costs what decompressing costs
RAW_READ = 2**17  # compressed bytes per read from the file


class GzipStream(io.RawIOBase):
    """The gzip members of a file, one after another, as one stream, inflated at most `size`
    bytes at a time. zlib checks each member's CRC and length itself, so this does not
    compute them a second time as gzip.GzipFile does. Read it through a buffer: each call
    copies the compressed input it leaves for the next."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._inflate: Any = None  # None between members
        self._input = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inflated(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _inflated(self, size: int) -> bytes:
        while size > 0:
            if not self._input:
                self._input = self._raw.read(RAW_READ)
                if not self._input:
                    if self._inflate is not None:
                        raise EOFError("compressed file ended before the end-of-stream marker")
                    return b""
            if self._inflate is None:
                self._input = self._input.lstrip(b"\0")  # gzip allows zero padding between members
                if not self._input:
                    continue
                self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = self._inflate.decompress(self._input, size)
            self._input = self._inflate.unconsumed_tail
            if self._inflate.eof:
                self._input, self._inflate = self._inflate.unused_data, None
            if out:
                return out
        return b""


DECOMPRESSORS: dict[str, Callable[[BinaryIO], Any]] = {
    "gz": lambda raw: io.BufferedReader(GzipStream(raw), buffer_size=2**16),
    "bz2": lambda raw: bz2.BZ2File(raw),
    "xz": lambda raw: lzma.LZMAFile(raw),
}
_HEADERS = {
    tarfile.GNUTYPE_LONGNAME: "GNU long name",
    tarfile.GNUTYPE_LONGLINK: "GNU long link name",
    tarfile.XHDTYPE: "PAX header",
    tarfile.SOLARIS_XHDTYPE: "PAX header",
    tarfile.XGLTYPE: "PAX global header",
}


class _Counted:
    """A file's read(), counting the bytes it has returned (tell() on a file is a system call)."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


class Inflated:
    """A decompressed stream as tarfile's "r:" mode reads it: read, tell, and seek forward.

    Every read charges the bytes it returns, and the compressed bytes they took, to `budget`.
    """

    def __init__(self, raw: BinaryIO, compression: str, budget: Budget):
        self._raw, self._budget = _Counted(raw), budget
        self._file = DECOMPRESSORS[compression](self._raw)
        self._position = self._raw_seen = 0

    def read(self, size: int) -> bytes:
        """`size` bytes, fewer only at the end: tarfile takes a short read for a damaged archive."""
        parts, wanted = [], size
        while wanted > 0 and (part := self._file.read(wanted)):
            parts.append(part)
            wanted -= len(part)
        data = b"".join(parts)
        self._position += len(data)
        self._budget.spend(self._raw.count - self._raw_seen, len(data))
        self._raw_seen = self._raw.count
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or position < self._position:
            raise io.UnsupportedOperation("a compressed stream is read forward only")
        while self._position < position and self.read(min(SKIP, position - self._position)):
            pass
        return self._position

    def seekable(self) -> bool:
        return True


class BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that checks a header's claimed payload before tarfile reads it.

    An oversized long name or PAX header is skipped unread, and the member it describes is
    refused (`refused`), so the members after it are still read; an oversized global header
    or sparse map stops the archive, as every member after it would be misread, and so does
    a header claiming more than the whole archive may hold.
    """

    limits = Limits()
    refused: str | None = None

    @classmethod
    def fromtarfile(cls, tar: tarfile.TarFile) -> tarfile.TarInfo:
        # tarfile ends an archive quietly at a damaged header after the first; here the
        # manifest says so, as the members after it are lost
        try:
            return super().fromtarfile(tar)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as e:
            if tar.offset == 0:
                raise
            raise Stopped(f"damaged archive: {e} at byte {tar.offset}") from None

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        cap = self.limits.header_bytes
        if self.type in _HEADERS and self.size > cap:
            what = f"a {_HEADERS[self.type]} of {self.size} bytes, over the cap of {cap}"
            if self.type == tarfile.XGLTYPE or self.size > self.limits.total_bytes:
                raise Stopped(f"header too large: {what}")
            tar.fileobj.seek(tar.fileobj.tell() + self._block(self.size))
            try:
                member = self.fromtarfile(tar)
            except tarfile.HeaderError as e:
                raise tarfile.SubsequentHeaderError(str(e)) from None
            member.offset = self.offset
            member.refused = f"header too large: {what}"
            return member
        member = super()._proc_member(tar)
        if member.size > self.limits.total_bytes:  # skipping it would pass the archive's cap anyway
            raise Stopped(f"a member claims {member.size} bytes, over the cap of {self.limits.total_bytes} in all")
        if self.type == tarfile.XGLTYPE and sum(len(k) + len(v) for k, v in tar.pax_headers.items()) > cap:
            raise Stopped(f"header too large: PAX global headers over the cap of {cap} bytes")
        return member

    def _proc_sparse(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        # a sparse member is never read, so its map is skipped, not kept: up to the header cap
        _, extended, original_size = self._sparse_structs
        del self._sparse_structs
        skipped = 0
        while extended:
            block = tar.fileobj.read(tarfile.BLOCKSIZE)
            skipped += len(block)
            if len(block) < tarfile.BLOCKSIZE:
                raise tarfile.ReadError("unexpected end of data")
            if skipped > self.limits.header_bytes:
                raise Stopped(f"header too large: a sparse map over the cap of {self.limits.header_bytes} bytes")
            extended = bool(block[504])
        self.sparse = []
        self.offset_data = tar.fileobj.tell()
        tar.offset = self.offset_data + self._block(self.size)
        self.size = original_size
        return self

    def _proc_gnusparse_10(self, member: tarfile.TarInfo, pax_headers: dict, tar: tarfile.TarFile) -> None:
        member.sparse = []  # the map is in the data, which a sparse member never has read


def tar_members(
    raw: BinaryIO, compression: str | None, limits: Limits, first: Callable[[str], bool]
) -> Iterator[Member]:
    """Every member of the tar in `raw` (compression: None, 'gz', 'bz2' or 'xz').

    `first(path)` says whether a file path is new; a repeated one is not read again. A cap
    on the whole archive ends it with one `stopped` member. tarfile's errors propagate.
    """
    stream = raw if compression is None else Inflated(raw, compression, Budget(limits))
    info_class = type("Bounded", (BoundedTarInfo,), {"limits": limits})
    try:
        with tarfile.open(fileobj=stream, mode="r:", tarinfo=info_class) as tar:
            while (info := tar.next()) is not None:
                tar.members.clear()  # TarFile keeps every TarInfo; nothing here looks back
                member = _member(tar, info, limits, first)
                if member is not None:
                    yield member
    except Stopped as e:
        yield stopped(e.reason)


def _member(tar: tarfile.TarFile, info: tarfile.TarInfo, limits: Limits, first: Callable[[str], bool]) -> Member | None:
    path, reason = clean_path(info.name, limits.depth)
    if info.isdir():  # a folder has no manifest row; its files do
        return Member(path, is_dir=True) if path and not reason else None
    if reason:
        first(path)
        return Member(path, reason=reason)
    if not first(path):
        return duplicate(path)
    if info.refused:
        return Member(path, reason=info.refused)
    if info.issym() or info.islnk():
        return Member(path, reason="link: not followed")
    if not info.isfile() or info.issparse():
        return Member(path, reason="not a regular file: device, pipe, fifo or sparse file")
    if info.size > limits.file_bytes:
        return Member(path, reason=too_large(info.size, limits.file_bytes))
    return Member(path, data=tar.extractfile(info).read() if info.size else b"")
