"""One BLAS kernel family for every process that computes results, so that results are the
same bit for bit on every x86-64 CPU with AVX2.

OpenBLAS (numpy's and scipy's) picks its kernels by CPU: Haswell kernels on AMD Zen and older
Intel, SkylakeX kernels on Intel CPUs with AVX-512. The two sum in different orders, so a
float32 model trained on one differs in its last bits from one trained on the other, and the
committed dvc.lock would not reproduce. OpenBLAS reads OPENBLAS_CORETYPE once, when it loads:
this module sets it to PINNED before numpy is imported (the `stages`, `tools`, `benchmarks`
and `tests` packages import it first), on CPUs that can run those kernels (AVX2 and FMA), and
never over a value the environment already sets (some machines set it on purpose). Child
processes inherit it. Elsewhere (ARM, other CPUs, a kernel set from outside) results agree
within the tolerances of tools/check_repro.py instead.

Stdlib only: importing numpy here would load OpenBLAS before the variable is set.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

PINNED = "Haswell"
NEEDS = frozenset({"avx2", "fma"})  # what PINNED's kernels execute
VARIABLE = "OPENBLAS_CORETYPE"


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first CPU in the text of /proc/cpuinfo."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def can_run_pinned(machine: str, cpuinfo: str) -> bool:
    """Whether a CPU runs PINNED's kernels: x86-64 with AVX2 and FMA."""
    return machine.lower() in ("x86_64", "amd64") and NEEDS <= cpu_flags(cpuinfo)


def cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux: no flags, so no pin
        return ""


def pin() -> None:
    """Set OPENBLAS_CORETYPE to PINNED unless the environment sets it or the CPU can't run it."""
    if VARIABLE in os.environ or "numpy" in sys.modules:  # too late once numpy has loaded OpenBLAS
        return
    if can_run_pinned(platform.machine(), cpuinfo()):
        os.environ[VARIABLE] = PINNED


def loaded_kernels() -> set[str]:
    """The kernel families of the OpenBLAS libraries this process has loaded (numpy's, and
    scipy's once scipy.linalg is imported)."""
    from threadpoolctl import threadpool_info

    return {lib.get("architecture") or "?" for lib in threadpool_info() if lib.get("internal_api") == "openblas"}


def is_pinned() -> bool:
    """Whether every loaded OpenBLAS runs PINNED's kernels: then results are bit for bit those
    of any other x86-64 machine running them with the pinned requirements."""
    import numpy  # noqa: F401  (loads numpy's OpenBLAS, if no one has yet)

    kernels = loaded_kernels()
    return bool(kernels) and kernels == {PINNED}


pin()
