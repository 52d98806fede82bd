"""What pinning the BLAS kernel costs: every stage under this CPU's own OpenBLAS kernel and
under the pinned one (notmnist/plumbing/blas.py), side by side.

    python -m benchmarks.blas_pin [--rounds 3] [--source PATH] [--workdir DIR]

A scratch git + DVC copy of the repository runs the pipeline once (`dvc repro`, built-in data
or --source), then each stage (`python -m stages.<name>`) in turn under both kernels, the two
alternating within each round, so that both see the same machine load. Prints the median
CPU seconds (user + system, the stage and its workers: what the kernel costs, whatever else
the machine does) and wall seconds of each, and the ratio of CPU seconds. On a CPU whose own
kernel is the pinned one (AMD Zen, older Intel), both run the same code: the pin costs nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from notmnist.plumbing import blas
from tests.helpers import copy_repository

STAGES = ("ingest", "split", "normalize", "sweep", "train", "optimizers", "evaluate")
NATIVE_KERNEL = "import numpy, threadpoolctl; print(threadpoolctl.threadpool_info()[0]['architecture'])"


def environment(kernel: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != blas.VARIABLE}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    return env | ({blas.VARIABLE: kernel} if kernel else {})


def native_kernel() -> str:
    """The kernel OpenBLAS picks on this CPU when nothing pins it (a process that imports
    numpy alone, not the project)."""
    command = [sys.executable, "-c", NATIVE_KERNEL]
    return subprocess.run(command, env=environment(None), capture_output=True, text=True, check=True).stdout.strip()


def seconds(root: Path, stage: str, kernel: str) -> tuple[float, float]:
    """(wall, cpu) seconds of one run of a stage: cpu (user + system, all its threads and
    workers) is what the kernel costs, whatever else the machine is doing."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", f"stages.{stage}"], cwd=root, env=environment(kernel), check=True, capture_output=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - start, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", help="ingest.source for the copy (default: the built-in data)")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary one)")
    args = parser.parse_args()

    native = native_kernel()
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        root = Path(scratch)
        copy_repository(root)
        if args.source:
            params = yaml.safe_load((root / "params.yaml").read_text())
            params["ingest"]["source"] = str(Path(args.source).resolve())
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for step in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "repro", "-q"]):
            subprocess.run(step, cwd=root, env=environment(blas.PINNED), check=True, capture_output=True)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for stage in STAGES:
                for kernel in (native, blas.PINNED):
                    times.setdefault((stage, kernel), []).append(seconds(root, stage, kernel))

    print(f"BLAS kernels: this CPU's own {native}, pinned {blas.PINNED}; median of {args.rounds} rounds, alternating")
    print("cpu: user + system seconds of the stage and its workers; wall: elapsed seconds\n")
    print(f"| stage | {native} cpu | {blas.PINNED} cpu | pinned / own, cpu | {native} wall | {blas.PINNED} wall |")
    print("|---|---|---|---|---|---|")
    totals = dict.fromkeys([(native, 0), (native, 1), (blas.PINNED, 0), (blas.PINNED, 1)], 0.0)
    for stage in STAGES:
        row = {}
        for kernel in (native, blas.PINNED):
            for kind in (0, 1):
                row[kernel, kind] = statistics.median(t[kind] for t in times[stage, kernel])
                totals[kernel, kind] += row[kernel, kind]
        print(table_row(stage, row, native))
    print(table_row("all stages", totals, native))


def table_row(name: str, row: dict, native: str) -> str:
    own, pinned = row[native, 1], row[blas.PINNED, 1]
    return (
        f"| {name} | {own:.2f} | {pinned:.2f} | {pinned / own:.2f} | {row[native, 0]:.2f} | {row[blas.PINNED, 0]:.2f} |"
    )


if __name__ == "__main__":
    main()
