"""Seconds per training epoch: our stage's loop, the memory-bandwidth floor, PyTorch on the CPU.

    python -m benchmarks.train [--sizes 20000 200000] [--epochs 5]

For each N (synthetic float32 N x 784 rows, 10 classes, read through a memory map exactly
as the train stage reads data/normalized), batch size 128 and 1024, and optimizer sgd,
momentum and adagrad, prints the median seconds of one epoch of
  - ours:   notmnist.learning.sgd.fit with BLAS on one thread, as the train stage runs it, with
            params.yaml's minibatch settings but a constant rate, one epoch and the batch size
            of the cell (validation excluded, as in metrics/train.json);
  - torch:  the same softmax regression, batches and optimizer with torch.optim
            (2 threads; skipped when torch is not installed);
next to the floor: the time to read the training matrix twice (an epoch must read every
row for the forward pass and again for the gradient) with two threads, the machine's
bandwidth. The floor, our epoch and torch's epoch are timed in turn, round after round, so
that the load of a shared machine falls on all three alike; ours/floor is the median of the
per-round ratios. floor1t (one thread) is shown once per N for reference. The last line
is how much faster two threads run the batch products than one, to read the ratios above
with: on a shared machine the second core is often worth less than a whole one.

    python -m benchmarks.train --process [--rounds 2]

The process-level comparison, at N = 200,000, batch 128, momentum: the wall time
of `python -m stages.train` (a fresh process, reading data/normalized from disk, validation
included) with 6 epochs minus its wall time with 1 epoch, divided by 5, against PyTorch's
reference loop (`reference_epoch`: nn.Linear, CrossEntropyLoss, SGD lr 0.05 momentum 0.9,
2 threads, median of 3 epochs after one warm-up), in turn, round after round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from notmnist.learning import sgd
from notmnist.learning.settings import Minibatch, Objective
from notmnist.plumbing import contracts, parallel
from notmnist.plumbing.params import load

OPTIMIZERS = ("sgd", "momentum", "adagrad")
BATCHES = (128, 1024)
RATES = {"sgd": 0.5, "momentum": 0.05, "adagrad": 0.05}


def synthetic(n: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A memory-mapped float32 n x 784 matrix on disk (page-cached after the first read)."""
    rng = np.random.default_rng(0)
    path = folder / f"x{n}.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 784))
    for start in range(0, n, 50_000):
        out[start : start + 50_000] = rng.standard_normal((min(50_000, n - start), 784), dtype=np.float32)
    out.flush()
    del out
    return np.load(path, mmap_mode="r"), rng.integers(0, 10, n)


def read_twice(X: np.ndarray, threads: int) -> float:
    """Seconds to stream every byte of X twice, split over `threads` threads.

    Each pass takes the max of every element: of numpy's full reads it is the cheapest, so
    the floor is the lowest we can measure (sum(axis=0) took 25% longer, X @ ones 10%).
    """
    parts = np.array_split(np.asarray(X), threads)
    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        for _ in range(2):
            list(pool.map(np.max, parts))
        return time.perf_counter() - started


def core_scaling(rounds: int = 3) -> float:
    """Throughput of two threads over one on a half batch's two products (512 x 784 x 10),
    from cache: 2.0 when the second core is worth a whole one; shared machines often give
    less."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 784), dtype=np.float32)
    W = rng.standard_normal((784, 10), dtype=np.float32)

    def products(_=None) -> None:
        for _ in range(300):
            X.T @ (X @ W)

    def seconds(threads: int) -> float:
        with ThreadPoolExecutor(threads) as pool:
            started = time.perf_counter()
            list(pool.map(products, range(threads)))
            return time.perf_counter() - started

    return statistics.median(2 * seconds(1) / seconds(2) for _ in range(rounds))


def ours(X, y, Xv, yv, optimizer: str, batch: int) -> float:
    """Seconds of one epoch of the train stage's loop."""
    minibatch = replace(load(Minibatch, contracts.REPOSITORY / "params.yaml"), schedule="constant", batch_size=batch)
    minibatch = replace(minibatch, epochs=1, patience=0)
    l2 = load(Objective, contracts.REPOSITORY / "params.yaml").l2
    with parallel.blas_threads(1):
        return sgd.fit(optimizer, RATES[optimizer], minibatch, l2, X, y, Xv, yv, 10, progress=False).seconds_per_epoch


def pytorch(torch, Xt, yt, optimizer: str, batch: int):
    """Epochs of the same model with torch.optim (gather a random batch, forward,
    cross-entropy + L2, backward, step); yields the seconds of each."""
    W = (0.01 * torch.randn(784, 10)).requires_grad_()
    b = torch.zeros(10, requires_grad=True)
    opt = {
        "sgd": lambda: torch.optim.SGD([W, b], lr=RATES["sgd"]),
        "momentum": lambda: torch.optim.SGD([W, b], lr=RATES["momentum"], momentum=0.9),
        "adagrad": lambda: torch.optim.Adagrad([W, b], lr=RATES["adagrad"]),
    }[optimizer]()
    while True:
        started = time.perf_counter()
        order = torch.randperm(len(Xt))
        for start in range(0, len(Xt), batch):
            idx = order[start : start + batch]
            loss = torch.nn.functional.cross_entropy(Xt[idx] @ W + b, yt[idx]) + 0.005 * (W * W).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        yield time.perf_counter() - started


def stage_folder(folder: Path, n: int, epochs: int) -> Path:
    """A folder as the train stage reads it: data/normalized (n synthetic train rows, 10,000
    valid rows) and params.yaml (the repository's, with momentum at 0.05, constant rate,
    batch 128, `epochs` epochs and no early stop)."""
    root = folder / f"stage{n}"
    data = root / contracts.NORMALIZED
    if not data.exists():
        data.mkdir(parents=True)
        _, y = synthetic(n, data)
        os.replace(data / f"x{n}.npy", data / "train_x.npy")
        rng = np.random.default_rng(1)
        splits = {"train": y, "valid": rng.integers(0, 10, 10_000)}
        np.save(data / "valid_x.npy", rng.standard_normal((10_000, 784), dtype=np.float32))
        for name, labels in splits.items():
            np.save(data / f"{name}_y.npy", labels.astype(np.int64))
            np.save(data / f"{name}_index.npy", np.arange(len(labels), dtype=np.int64))
        stats = {"method": "standardize", "mean": 0.0, "std": 1.0, "classes": list("ABCDEFGHIJ")}
        (data / "stats.json").write_text(json.dumps(stats))
    params = yaml.safe_load((contracts.REPOSITORY / "params.yaml").read_text())
    params["train"].update(optimizer="momentum", learning_rate=0.05, report_optimum_gap=False)
    params["minibatch"].update(schedule="constant", batch_size=128, epochs=epochs, patience=0)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def stage_seconds(root: Path) -> float:
    """Wall seconds of `python -m stages.train` in root, start-up and validation included."""
    env = {**os.environ, "PYTHONPATH": str(contracts.REPOSITORY)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stages.train"], cwd=root, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def reference_epoch(torch, X, y, batch: int = 128) -> float:
    """Median seconds of 3 epochs, after one warm-up, of the PyTorch reference loop."""
    torch.set_num_threads(2)
    model = torch.nn.Linear(784, 10)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    n = len(X)
    times = []
    for _ in range(4):
        started = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            xb, yb = X[idx], y[idx]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def process_level(rounds: int, n: int = 200_000) -> None:
    import torch

    with tempfile.TemporaryDirectory() as folder:
        root = stage_folder(Path(folder), n, 1)
        data = root / contracts.NORMALIZED
        X = torch.from_numpy(np.load(data / "train_x.npy"))
        y = torch.from_numpy(np.load(data / "train_y.npy"))
        print(f"N = {n:,}, batch 128, momentum; ours = (6 epochs - 1 epoch) / 5 of `python -m stages.train`")
        header = ("round", "1 epoch s", "6 epochs s", "ours s/epoch", "torch s/epoch", "ours/torch")
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, (5, 9, 10, 12, 13, 10))))
        ratios = []
        for r in range(1, rounds + 1):
            one = stage_seconds(stage_folder(Path(folder), n, 1))
            six = stage_seconds(stage_folder(Path(folder), n, 6))
            theirs = reference_epoch(torch, X, y)
            ours = (six - one) / 5
            ratios.append(ours / theirs)
            print(f"{r:>5} {one:>9.2f} {six:>10.2f} {ours:>12.3f} {theirs:>13.3f} {ours / theirs:>10.2f}", flush=True)
        print(f"best of {rounds} rounds: ours/torch = {min(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--epochs", type=int, default=5, help="rounds timed per cell (median)")
    parser.add_argument("--torch-threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--process", action="store_true", help="the process-level comparison with PyTorch's loop")
    parser.add_argument("--rounds", type=int, default=2, help="--process: rounds of (ours, torch)")
    args = parser.parse_args()
    if args.process:
        process_level(args.rounds)
        return
    try:
        import torch

        torch.set_num_threads(args.torch_threads)
    except ImportError:
        torch = None
    print(
        f"seconds per epoch, median of {args.epochs} rounds of (floor, ours, torch); "
        f"floor = reading the matrix twice; torch with {args.torch_threads} threads"
    )
    print(
        f"{'N':>8} {'batch':>5} {'optimizer':>9} {'ours':>7} {'torch':>7} {'ours/torch':>10} "
        f"{'floor2t':>7} {'floor1t':>7} {'ours/floor2t':>12}"
    )
    median = statistics.median
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            X, y = synthetic(n, Path(folder))
            Xv, yv = np.asarray(X[:1000]), y[:1000]
            if torch:
                Xt, yt = torch.from_numpy(np.array(X)), torch.from_numpy(y)  # in memory, writable
            read_twice(X, 2)  # page the file in
            floor1 = median(read_twice(X, 1) for _ in range(3))
            for batch in BATCHES:
                for name in OPTIMIZERS:
                    theirs = pytorch(torch, Xt, yt, name, batch) if torch else None
                    rounds = [
                        (read_twice(X, 2), ours(X, y, Xv, yv, name, batch), next(theirs) if theirs else float("nan"))
                        for _ in range(args.epochs)
                    ]
                    floor, mine, other = (median(column) for column in zip(*rounds))
                    ratio = median(m / f for f, m, _ in rounds)
                    print(
                        f"{n:>8} {batch:>5} {name:>9} {mine:>7.3f} {other:>7.3f} "
                        f"{mine / other:>10.2f} {floor:>7.3f} {floor1:>7.3f} {ratio:>12.1f}",
                        flush=True,
                    )
            del X
    print(f"two threads over one on the batch products, same run: {core_scaling():.2f}x (2.00 = a whole second core)")


if __name__ == "__main__":
    main()
