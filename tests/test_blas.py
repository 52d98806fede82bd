"""One BLAS kernel family for every process that computes results (notmnist/plumbing/blas.py):
set before numpy loads where the CPU runs it, never over the environment's own choice."""

import os
import subprocess
import sys

import pytest

from notmnist.plumbing import blas
from tests.helpers import REPO

AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2 avx512f\n"
NO_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 sse4_2 avx\n"


def test_the_pin_needs_an_x86_64_cpu_with_avx2_and_fma():
    assert blas.can_run_pinned("x86_64", AVX2)
    assert not blas.can_run_pinned("x86_64", NO_AVX2)  # an older CPU would crash in Haswell kernels
    assert not blas.can_run_pinned("aarch64", AVX2)
    assert not blas.can_run_pinned("x86_64", "")  # no /proc/cpuinfo: no pin


def kernels_in_a_new_process(environment: dict[str, str]) -> str:
    """The OpenBLAS kernels a stage's process loads, from a clean environment plus `environment`."""
    env = {k: v for k, v in os.environ.items() if k != blas.VARIABLE} | environment
    code = "import stages, numpy; from notmnist.plumbing import blas; print(sorted(blas.loaded_kernels()))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(not blas.can_run_pinned("x86_64", blas.cpuinfo()), reason="this CPU can't run the pinned kernels")
def test_a_stage_process_runs_the_pinned_kernel_and_respects_one_the_environment_sets():
    assert kernels_in_a_new_process({}) == f"['{blas.PINNED}']"
    assert kernels_in_a_new_process({blas.VARIABLE: "Sandybridge"}) == "['Sandybridge']"
