"""notmnist.plumbing.parallel: rows split across threads, also inside worker processes."""

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from notmnist.plumbing import parallel


def chunk_sums(n: int = 10_000, chunk: int = 1_000) -> list[float]:
    values = np.arange(n, dtype=np.float64)
    return parallel.map_chunks(lambda lo, hi: float(values[lo:hi].sum()), n, chunk)


def threads_used(n: int = 64) -> set[int]:
    return set(parallel.map_chunks(lambda lo, hi: threading.get_ident(), n, 1))


def test_chunks_come_back_in_order():
    assert chunk_sums() == [float(sum(range(lo, lo + 1000))) for lo in range(0, 10_000, 1000)]


def report_chunk_sums(queue) -> None:
    queue.put(chunk_sums())


def test_a_forked_worker_can_split_rows_after_its_parent_did():
    chunk_sums()  # the parent's helper threads exist now; a forked child has none of them
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=report_chunk_sums, args=(queue,))
    child.start()
    child.join(60)
    if child.is_alive():  # waiting for threads it does not have
        child.terminate()
        pytest.fail("the forked child hung in map_chunks")
    assert queue.get(timeout=10) == chunk_sums()


def test_workers_that_run_one_per_core_split_rows_on_their_own_thread_only():
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context, initializer=parallel.one_thread_per_process) as pool:
        assert len(pool.submit(threads_used).result(timeout=60)) == 1
