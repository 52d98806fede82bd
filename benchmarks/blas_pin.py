"""What pinning the BLAS kernel costs: every stage under this CPU's own OpenBLAS kernel and
under the pinned one (notmnist/plumbing/blas.py), side by side.

    python -m benchmarks.blas_pin [--rounds 3] [--source PATH] [--workdir DIR]

A scratch git + DVC copy of the repository runs the pipeline once (`dvc repro`, built-in data
or --source), then each stage (`python -m stages.<name>`) in turn under both kernels, the two
alternating within each round, so that both see the same machine load. Prints the median
seconds of each and their ratio. On a CPU whose own kernel is the pinned one (AMD Zen, older
Intel), the two columns run the same code and the pin costs nothing.
"""

from __future__ import annotations

import argparse
import os
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


def seconds(root: Path, stage: str, kernel: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", f"stages.{stage}"], cwd=root, env=environment(kernel), check=True, capture_output=True
    )
    return time.perf_counter() - start


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
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for stage in STAGES:
                for kernel in (native, blas.PINNED):
                    times.setdefault((stage, kernel), []).append(seconds(root, stage, kernel))

    print(f"BLAS kernels: this CPU's own {native}, pinned {blas.PINNED}; median of {args.rounds} rounds, alternating\n")
    print(f"| stage | {native} (s) | {blas.PINNED}, pinned (s) | pinned / own |")
    print("|---|---|---|---|")
    totals = {native: 0.0, blas.PINNED: 0.0}
    for stage in STAGES:
        own, pinned = (statistics.median(times[stage, k]) for k in (native, blas.PINNED))
        totals[native] += own
        totals[blas.PINNED] += pinned
        print(f"| {stage} | {own:.2f} | {pinned:.2f} | {pinned / own:.2f} |")
    own, pinned = totals[native], totals[blas.PINNED]
    print(f"| all stages | {own:.2f} | {pinned:.2f} | {pinned / own:.2f} |")


if __name__ == "__main__":
    main()
