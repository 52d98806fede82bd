"""Hostile inputs at GiB scale: time and peak memory of ingest, predict and the params loader.

    python -m benchmarks.hostile [--gib 8] [--only NAME ...] [--no-limit]

Builds each bomb in a scratch folder (a few MB on disk: see tests/bombs.py), then runs the
command a user would (`python -m stages.ingest` with ingest.source pointing at it, `python
-m tools.predict`, or the Python lines shown) in a fresh process under a 4 GB address-space
limit, as the issue's check does. Prints wall seconds, the peak resident memory of the
largest process (ingest's workers included), the exit code and the last line of stderr.
Rows marked "caps off" read the same bomb with the ratio and total caps lifted, to show
what skipping or reading the bytes themselves costs. Run by hand; never by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from notmnist.learning.model import save_model
from notmnist.plumbing.contracts import REPOSITORY
from tests.bombs import END, MiB, entry, header, write_tar_gz, write_zip_of_zeros
from tests.helpers import encode, png_declaring

AS_LIMIT = 4_000_000_000
GOOD = {f"{c}/{i}.png": encode(Image.new("L", (28, 28), 40 * i)) for c in "AB" for i in range(5)}
CAPS_OFF = "Limits(ratio=float('inf'), total_bytes=2**62)"


Case = tuple[list[str], Path, Path]  # command, working folder, the hostile input


def ingest_stage(scratch: Path, source: Path, workers: int = 2) -> Case:
    """The ingest stage on `source`, as DVC runs it, in a folder of its own."""
    cwd = scratch / f"run_{source.name}"
    cwd.mkdir()
    params = {"ingest": {"source": str(source), "resize": "fit", "workers": workers, "max_pixels": 64_000_000}}
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))
    return [sys.executable, "-m", "stages.ingest"], cwd, source


def read_members(source: Path) -> Case:
    """Every member of `source` with the ratio and total caps lifted: the cost of the bytes."""
    code = (
        "from notmnist.data.members import Limits; from notmnist.data.sources import iter_members\n"
        f"rows = [m.reason for m in iter_members({str(source)!r}, {CAPS_OFF}) if not m.is_dir]\n"
        "print(len(rows), 'members;', sorted(set(r.split(':')[0] for r in rows if r)))"
    )
    return [sys.executable, "-c", code], source.parent, source


def gnu_long_name_tar_gz(path: Path, size: int, kind: bytes = b"L") -> Path:
    good = [entry(name, data) for name, data in GOOD.items()]
    bomb = [header("././@LongLink", size, kind), size, entry("A/x.png", b"")]
    return write_tar_gz(path, [*good[:5], *bomb, *good[5:], END])


def overlapping_zip(path: Path, entries: int) -> Path:
    """One deflated member of 1 MiB of noise and `entries` central-directory entries that all point at it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("A/0.png", np.random.default_rng(0).integers(0, 256, MiB, np.uint8).tobytes())
        first = z.filelist[0]
        for i in range(1, entries):
            clone = zipfile.ZipInfo(f"A/{i}.png", first.date_time)
            for slot in ("compress_type", "CRC", "compress_size", "file_size", "header_offset", "flag_bits"):
                setattr(clone, slot, getattr(first, slot))
            z.filelist.append(clone)
    return path


def strip_png(path: Path, length: int) -> Path:
    """A folder A/strip.png, 1 x length pixels of a real (tiny, deflated) image, beside good images."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    deflate = zlib.compressobj(9)
    rows = deflate.compress(b"\0" * 2 * length) + deflate.flush()  # filter byte + one pixel per row
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, length, 8, 0, 0, 0, 0))
    for name, data in {**GOOD, "A/strip.png": png + chunk(b"IDAT", rows) + chunk(b"IEND", b"")}.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def billion_laughs(levels: int = 9) -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}' if i > 1 else '*a'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\ningest: {source: *a9, resize: fit, workers: 1, max_pixels: 1000}\n"


def cases(scratch: Path, gib: float) -> dict[str, Case]:
    """name -> (command, working folder, hostile input)."""
    size = int(gib * 2**30) // 512 * 512
    member = write_tar_gz(
        scratch / "member.tar.gz",
        [*(entry(n, d) for n, d in list(GOOD.items())[:5]), header("A/zeros.png", size), size,
         *(entry(n, d) for n, d in list(GOOD.items())[5:]), END],
    )  # fmt: skip
    zip_bomb = write_zip_of_zeros(scratch / "zeros.zip", 600, 8 * MiB, GOOD)
    long_name = gnu_long_name_tar_gz(scratch / "long_name.tar.gz", int(1.5 * 2**30))
    pax = gnu_long_name_tar_gz(scratch / "pax.tar.gz", int(1.5 * 2**30), b"x")
    overlap = overlapping_zip(scratch / "overlap.zip", 10_000)
    strip = strip_png(scratch / "strip", 30_000_000)
    declared = scratch / "declared"
    (declared / "A").mkdir(parents=True)
    (declared / "A/bomb.png").write_bytes(png_declaring(100_000, 100_000))
    (scratch / "laughs").mkdir()
    (scratch / "laughs/params.yaml").write_text(billion_laughs())
    (scratch / "deep").mkdir()
    (scratch / "deep/params.yaml").write_text("a: " + "[" * 100_000 + "]" * 100_000)
    (scratch / "big").mkdir()
    (scratch / "big/params.yaml").write_text("ingest:\n  source: " + "x" * 100 * MiB + "\n")
    save_model(scratch / "model.npz", np.zeros((784, 2)), np.zeros(2), ["A", "B"], {"method": "x", "mean": 0, "std": 1})
    fifo = scratch / "fifo.png"
    predict = [sys.executable, "-m", "tools.predict", "--model", str(scratch / "model.npz"), "/dev/zero", str(fifo)]
    os.mkfifo(fifo)
    stage = [sys.executable, "-m", "stages.ingest"]
    return {
        f"tar.gz, one {gib:g} GiB member of zeros": ingest_stage(scratch, member),
        f"  the same, caps off ({gib:g} GiB skipped)": read_members(member),
        "zip, 600 members x 8 MiB of zeros": ingest_stage(scratch, zip_bomb),
        "  the same, caps off (4.7 GiB inflated)": read_members(zip_bomb),
        "tar.gz, GNU long name of 1.5 GiB": ingest_stage(scratch, long_name),
        "  the same, caps off (1.5 GiB skipped)": read_members(long_name),
        "tar.gz, PAX header of 1.5 GiB": ingest_stage(scratch, pax),
        "zip, 10,000 entries sharing 1 MiB": ingest_stage(scratch, overlap),
        "folder, PNG of 1 x 30,000,000 pixels": ingest_stage(scratch, strip),
        "folder, PNG declaring 100,000^2 pixels": ingest_stage(scratch, declared),
        "params.yaml, billion laughs": (stage, scratch / "laughs", scratch / "laughs/params.yaml"),
        "params.yaml, 100,000 nested lists": (stage, scratch / "deep", scratch / "deep/params.yaml"),
        "params.yaml, 100 MB": (stage, scratch / "big", scratch / "big/params.yaml"),
        "predict /dev/zero and a FIFO": (predict, scratch, fifo),
    }


def measure(command: list[str], cwd: Path, as_limit: int | None) -> dict:
    """Run `command` in a fresh process (this one, re-entered with --measure) and return its
    wall time, the peak RSS of its largest process, exit code and last stderr line."""
    probe = [sys.executable, "-m", "benchmarks.hostile", "--measure", str(as_limit or 0), "--", *command]
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    done = subprocess.run(probe, cwd=cwd, env=env, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def run_measured(as_limit: int, command: list[str]) -> None:
    def limit() -> None:
        if as_limit:
            resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))

    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
    last = lines[-1] if lines else ""
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "code": done.returncode, "last": last}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=8, help="size of the big tar.gz member (default: %(default)s)")
    parser.add_argument("--only", nargs="*", default=[], help="run the cases whose name holds one of these words")
    parser.add_argument("--no-limit", action="store_true", help="no 4 GB address-space limit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_hostile_") as scratch:
        start = time.perf_counter()
        built = cases(Path(scratch), args.gib)
        print(f"built {len(built)} inputs in {time.perf_counter() - start:.1f} s; each runs under "
              f"{'no limit' if args.no_limit else f'a {AS_LIMIT / 1e9:g} GB address-space limit'}")  # fmt: skip
        print(f"{'input':<42} {'on disk':>9} {'s':>6} {'peak MB':>8} {'exit':>4}  last line")
        for name, (command, cwd, hostile) in built.items():
            if args.only and not any(word in name for word in args.only):
                continue
            files = hostile.rglob("*") if hostile.is_dir() else [hostile]
            on_disk = sum(p.stat().st_size for p in files if p.is_file())
            result = measure(command, cwd, None if args.no_limit else AS_LIMIT)
            print(
                f"{name:<42} {on_disk / MiB:>7.1f}MB {result['seconds']:>6.2f} {result['peak_mb']:>8.0f} "
                f"{result['code']:>4}  {result['last'][:110]}"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        run_measured(int(sys.argv[2]), sys.argv[4:])
    else:
        main()
