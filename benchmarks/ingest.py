"""Ingest speed: images/s decoding PNGs from a folder and from a .tar.gz, 1 worker vs all cores.

    python -m benchmarks.ingest [--repeat 5] [--large-files 100000]

Uses the real notMNIST_small ($NOTMNIST_SMALL, README) when present, else a
synthetic set of 10,000 letters; the folder variant is the same archive unpacked into a
scratch folder. With --large-files N it also builds a .tar.gz of N PNGs (the small set's
files repeated under new names) to show that the rate holds at scale. One worker and all
cores run in turn, --repeat rounds; times are medians, the speedup is the median of the
per-round ratios; "cpu" is user+system time of the process and its workers, so a
busy machine shows up as wall >> cpu / cores, and "bound" estimates the speedup from cpu
times alone (useful when the machine is shared). Target (2 cores): all cores at
least 1.7x faster than one worker; notMNIST_small under 20 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from notmnist.data.ingestion import ingest
from notmnist.data.synthetic import BUNDLED, synthesize
from notmnist.plumbing.parallel import all_cores
from tests.references import real_archive

SMALL = real_archive()


def timed(source: Path, workers: int) -> tuple[float, float, float, int]:
    """One ingest(source): wall s, cpu s of the main process, cpu s incl. workers; images."""
    before, start = os.times(), time.perf_counter()
    result = ingest(source, workers=workers)
    after, end = os.times(), time.perf_counter()
    return end - start, sum(after[:2]) - sum(before[:2]), sum(after[:4]) - sum(before[:4]), len(result.data.images)


def paired(source: Path, cores: int, repeat: int) -> tuple[tuple, tuple, float]:
    """1 worker and all cores timed in turn, `repeat` rounds: the medians of each column
    and the median of the per-round speedups (so that a busy spell hits both alike)."""
    rounds = [(timed(source, 1), timed(source, cores)) for _ in range(repeat)]
    one = tuple(statistics.median(column) for column in zip(*(r[0] for r in rounds)))
    every = tuple(statistics.median(column) for column in zip(*(r[1] for r in rounds)))
    return one, every, statistics.median(a[0] / b[0] for a, b in rounds)


def build_sources(scratch: Path, large_files: int) -> dict[str, Path]:
    if SMALL.exists():
        archive = SMALL
    else:  # no real data: a synthetic set of the same layout
        files, _ = synthesize(1000, 0, [BUNDLED], broken_files=0, workers=all_cores())
        archive = scratch / "synthetic.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for name, data in sorted(files.items()):
                _add(tar, f"synthetic/{name}", data)
    folder = scratch / "folder"
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    sources = {f"{archive.name} (tar.gz)": archive, f"{archive.name} unpacked (folder)": folder}
    if large_files:
        large = scratch / f"large_{large_files}.tar.gz"
        pngs = sorted(p for p in folder.rglob("*.png") if p.stat().st_size)
        with tarfile.open(large, "w:gz") as tar:
            for i in range(large_files):
                png = pngs[i % len(pngs)]
                _add(tar, f"large/{png.parent.name}/{i:07d}.png", png.read_bytes())
        sources[f"{large_files} files (tar.gz)"] = large
    return sources


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds of (1 worker, all cores); medians shown")
    parser.add_argument("--large-files", type=int, default=0, help="also time a generated archive of N files")
    args = parser.parse_args()
    cores = all_cores()
    print(
        f"machine: {platform.processor() or platform.machine()}, {cores} cores available, "
        f"load average {os.getloadavg()[0]:.1f} (other work on the machine slows the wall times)"
    )
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as scratch:
        sources = build_sources(Path(scratch), args.large_files)
        header = (
            f"{'source':<40} {'images':>7} | {'1 worker s':>10} {'img/s':>7} {'cpu s':>6} | "
            f"{f'{cores} workers s':>11} {'img/s':>7} {'cpu s':>6} {'main':>5} | {'speedup':>7} {'bound':>6}"
        )
        print(header)
        print("-" * len(header))
        for name, source in sources.items():
            (wall1, _, cpu1, n), (wall_all, main_all, cpu_all, _), speedup = paired(source, cores, args.repeat)
            # What an otherwise idle machine would give: the main process reads serially,
            # the rest of the work spreads over the cores (Amdahl).
            bound = cpu1 / max(main_all, cpu_all / cores)
            print(
                f"{name:<40} {n:>7} | {wall1:>10.2f} {n / wall1:>7.0f} {cpu1:>6.1f} | "
                f"{wall_all:>11.2f} {n / wall_all:>7.0f} {cpu_all:>6.1f} {main_all:>5.1f} | "
                f"{speedup:>6.2f}x {bound:>5.2f}x"
            )
        print(
            "cpu s: user+system of ingest and its workers; main: of the reading process alone;\n"
            "bound: 1-worker cpu / max(main, all cpu / cores), the speedup an idle machine allows"
        )


if __name__ == "__main__":
    main()
