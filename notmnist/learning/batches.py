"""An epoch's minibatches: their rows gathered ahead of time, and their loss and gradient.

The rows of the next BLOCK_ROWS or so are gathered in a background thread while the
current ones train: numpy's gather releases the GIL, so on two cores it runs beside the
training step and leaves the epoch's critical path. The batches are the same either way,
row for row. A batch of SPLIT_BATCH rows or more is differentiated in two halves on two
threads at once (parallel.map_chunks); the halves' means, weighted by their sizes, are the
batch's loss and gradient.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from notmnist.learning import softmax
from notmnist.plumbing import parallel

SPLIT_BATCH = 512  # a batch at least this large is differentiated in two halves at once
BLOCK_ROWS = 1024  # rows gathered at once, ahead of the batches that train on them


class Batches:
    """The batches of X (which may be a memory map), gathered into two reused buffers, so
    that X may be larger than the memory we want to use."""

    def __init__(self, X: np.ndarray, y: np.ndarray, batch: int) -> None:
        self.X, self.y, self.batch = X, y, batch
        self.per_block = max(1, BLOCK_ROWS // batch)
        self.buffers = [np.empty((batch * self.per_block, X.shape[1]), dtype=np.float32) for _ in range(2)]

    def epoch(self, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(idx, rows) of each batch of `order`, batch_size rows at a time; idx is sorted (the
        gather then reads memory in order) and rows = X[idx], valid until the next block."""
        whole = len(order) // self.batch * self.batch  # the full batches, sorted in one call
        batches = [*np.sort(order[:whole].reshape(-1, self.batch), axis=1), np.sort(order[whole:])]
        batches = [idx for idx in batches if len(idx)]
        blocks = [batches[i : i + self.per_block] for i in range(0, len(batches), self.per_block)]
        for block, rows in zip(blocks, self.gathered(blocks)):
            at = 0
            for idx in block:
                yield idx, rows[at : at + len(idx)]
                at += len(idx)

    def gathered(self, blocks: list[list[np.ndarray]]) -> Iterator[np.ndarray]:
        """The rows of each block: gathered one block ahead by a background thread, or in
        turn in a process meant to keep one core busy (a worker of runs.run_all, one per
        core), where a second thread would only compete with the other workers."""
        if parallel.threads() == 1:
            for block in blocks:
                yield self.gather(block, self.buffers[0])
            return
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self.gather, blocks[0], self.buffers[0])
            for j in range(len(blocks)):
                rows = pending.result()
                if j + 1 < len(blocks):
                    pending = pool.submit(self.gather, blocks[j + 1], self.buffers[(j + 1) % 2])
                yield rows

    def gather(self, block: list[np.ndarray], buffer: np.ndarray) -> np.ndarray:
        idx = np.concatenate(block)
        # mode="clip": the indices are valid, and the default "raise" gathers into a
        # temporary first and copies that into `out`
        return np.take(self.X, idx, axis=0, out=buffer[: len(idx)], mode="clip")

    def gradient(
        self,
        idx: np.ndarray,
        rows: np.ndarray,
        W: np.ndarray,
        b: np.ndarray,
        l2: float,
        out: tuple[np.ndarray, np.ndarray],
    ) -> float:
        """J on one batch (rows = X[idx]); its gradient goes into out = (dW, db)."""
        n = len(idx)
        if n < SPLIT_BATCH:
            return softmax.loss_and_grad(rows, self.y[idx], W, b, l2, out)[0]

        def half(lo: int, hi: int) -> tuple[float, np.ndarray, np.ndarray]:
            loss, dW, db = softmax.loss_and_grad(rows[lo:hi], self.y[idx[lo:hi]], W, b, 0.0)
            share = (hi - lo) / n
            return share * loss, dW * np.float32(share), db * np.float32(share)

        (l0, dW0, db0), (l1, dW1, db1) = parallel.map_chunks(half, n, -(-n // 2))
        dW, db = out
        np.add(dW0, dW1, out=dW)
        dW += np.float32(l2) * W
        np.add(db0, db1, out=db)
        return l0 + l1 + 0.5 * l2 * float(np.vdot(W, W))
