"""Speed machinery in one place: how many cores, rows split across threads, BLAS threads.

numpy releases the GIL in its gathers, reductions and BLAS products, so plain Python
threads run those at once on several cores. Threads that wait for work sleep, whereas
OpenBLAS's own threads spin, and on a busy machine spinning threads slow the small
per-batch products of training down (docs/benchmarks.md), so the fitting code runs BLAS on
one thread (`blas_threads`) and splits rows itself (`map_chunks`).
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
_helpers: ThreadPoolExecutor | None = None
_row_threads: int | None = None  # map_chunks' threads; None = all cores


def _forget_helpers() -> None:
    # a forked child has a copy of the pool but none of its threads: work sent to it would
    # wait forever, so the child starts its own
    global _helpers
    _helpers = None


os.register_at_fork(after_in_child=_forget_helpers)


def all_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads() -> int:
    """Threads this process should keep busy: all cores, or one in a worker process that
    already runs one per core (one_thread_per_process)."""
    return _row_threads or all_cores()


def one_thread_per_process() -> None:
    """For worker processes that already run one per core: map_chunks stays on its caller's
    thread, so the machine is not asked for cores x cores threads."""
    global _row_threads
    _row_threads = 1


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with the BLAS library (OpenBLAS, MKL) limited to n threads."""
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def _each(fn: Callable[[int, int], T], run: list[tuple[int, int]]) -> list[T]:
    return [fn(lo, hi) for lo, hi in run]


def map_chunks(fn: Callable[[int, int], T], n: int, chunk: int) -> list[T]:
    """[fn(lo, hi) for every chunk [lo, hi) of `chunk` rows of range(n)], on all cores at once.

    Each thread takes a contiguous run of chunks, the calling thread the last one. The chunks
    depend on n and chunk only and the results come back in chunk order, so a sum over them
    is the same on any number of cores.
    """
    global _helpers
    bounds = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    workers = min(threads(), len(bounds))
    if workers <= 1:
        return [fn(lo, hi) for lo, hi in bounds]
    if _helpers is None:
        _helpers = ThreadPoolExecutor(all_cores() - 1, thread_name_prefix="rows")
    cuts = [len(bounds) * k // workers for k in range(workers + 1)]
    runs = [bounds[a:b] for a, b in zip(cuts, cuts[1:])]
    pending = [_helpers.submit(_each, fn, run) for run in runs[:-1]]
    last = _each(fn, runs[-1])
    return [result for future in pending for result in future.result()] + last
