"""Speed and scale, run by hand: `python -m benchmarks.<name>`."""

# First, before numpy loads: one BLAS kernel family for every process (notmnist/plumbing/blas.py).
from notmnist.plumbing import blas  # noqa: F401
