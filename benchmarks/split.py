"""Split stage at notMNIST_large scale, on several kinds of data:

    python -m benchmarks.split [--n 530000] [--sets glyphs augmented shifted templates:32 ...] [--timeout 600]

Each set is N 28x28 images, run through the real split stage in a fresh process; one row per
set: seconds per phase (hashing, candidates, verification, grouping, audit; the last two
summed over audit rounds), total, peak memory of that process, audit rounds and leaks.
  - glyphs: synthetic anti-aliased strokes with planted exact copies and near copies (mean
    |difference| <= 2: small noise, a brightness shift, a few pixels changed a lot); the
    recall of the planted pairs is printed below the table;
  - augmented: each image a random notMNIST_small image (NOTMNIST_SMALL) moved by -1, 0 or
    +1 pixel on each axis as np.roll does (wrapping around), plus Gaussian noise of sd 6
    gray levels, clipped; shifted: the same, but moved onto background (no wrapping);
  - templates:SIGMA: the ten letters' mean images (from notMNIST_small) plus Gaussian noise
    of sd SIGMA gray levels, clipped: many images close in every coarse sum but not in
    pixels, the audit's hardest kind (README's worst-case sweep: SIGMA 2 to 64).
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from notmnist.data import candidates, hashing, splitting
from notmnist.plumbing import contracts
from notmnist.plumbing.files import read_json, write_json
from notmnist.plumbing.params import load
from tests.references import real_archive

PARAMS = """split:
  seed: 0
  valid: 0.15
  test: 0.15
  near_mean_abs_diff: 2
  blank: drop
  label_conflicts: drop
  keep_one_per_group: true
"""


def glyphs(n: int, rng: np.random.Generator, strokes: int = 3, chunk: int = 8192) -> np.ndarray:
    """n images of `strokes` thick anti-aliased line segments (ink 255 on 0)."""
    py, px = (np.mgrid[0:28, 0:28].reshape(2, 1, 1, 784) + 0.5).astype(np.float32)
    out = np.empty((n, 784), dtype=np.uint8)
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        ay, ax, by, bx = rng.uniform(3, 25, (4, m, strokes, 1)).astype(np.float32)
        width = rng.uniform(1.0, 3.0, (m, strokes, 1)).astype(np.float32)
        dy, dx = by - ay, bx - ax
        t = np.clip(((py - ay) * dy + (px - ax) * dx) / (dy * dy + dx * dx + 1e-6), 0, 1)
        dist = np.sqrt((ay + t * dy - py) ** 2 + (ax + t * dx - px) ** 2)
        out[lo : lo + m] = 255 * np.clip(width + 0.5 - dist, 0, 1).max(axis=1)
    return out.reshape(n, 28, 28)


def near_copies(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Copies with mean |difference| <= 2: +-3 noise, +-2 brightness, or 5 pixels changed."""
    n = len(images)
    out = images.astype(np.int16)
    kind = np.arange(n) % 3
    noise = rng.integers(-3, 4, out.shape, dtype=np.int16)
    out[kind == 0] += noise[kind == 0]
    out[kind == 1] += rng.choice(np.array([-2, -1, 1, 2], dtype=np.int16), (int((kind == 1).sum()), 1, 1))
    few = np.flatnonzero(kind == 2)
    spots = rng.integers(0, 784, (len(few), 5))
    flat = out.reshape(n, 784)
    flat[few[:, None], spots] = rng.integers(0, 256, spots.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    assert (np.abs(out.astype(int) - images).mean(axis=(1, 2)) <= 2).all()
    return out


def make_data(n: int, planted: int, seed: int = 0):
    """images, labels, (exact source, copy), (near source, copy) index pairs."""
    rng = np.random.default_rng(seed)
    images = glyphs(n, rng)
    labels = rng.integers(0, 10, n)
    picks = rng.permutation(n)[: 4 * planted]
    exact = picks[: 2 * planted].reshape(2, planted).T
    near = picks[2 * planted :].reshape(2, planted).T
    images[exact[:, 1]] = images[exact[:, 0]]
    images[near[:, 1]] = near_copies(images[near[:, 0]], rng)
    labels[exact[:, 1]] = labels[exact[:, 0]]  # same letter: a duplicate, not a conflict
    labels[near[:, 1]] = labels[near[:, 0]]
    return images, labels, exact, near


def run_stage(folder: Path) -> None:
    """Child process: the split stage's work in `folder`, timed phase by phase; prints the
    phase seconds, peak MB and CPU seconds."""
    import os

    os.chdir(folder)
    timings: dict = {}
    start = lap = time.perf_counter()

    def phase_done(phase: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        timings[phase] = timings.get(phase, 0.0) + now - lap
        lap = now

    params = load(splitting.Split)
    data = contracts.read_ingested()
    table, metrics = splitting.split_images(
        data.images, data.labels, data.classes, **asdict(params), phase_done=phase_done
    )
    contracts.write_assignment(table)
    write_json(contracts.METRICS / "split.json", metrics)
    timings["total"] = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"timings": timings, "peak_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}))


def hash_recall(images: np.ndarray, pairs: np.ndarray) -> float:
    """Share of pairs whose DCT hashes share a 16-bit band (found directly by the hash)."""
    h = hashing.perceptual_hashes(images[pairs.ravel()]).reshape(-1, 2)
    bands = [(h >> np.uint64(s)) & np.uint64(0xFFFF) for s in range(0, 64, candidates.BAND_BITS)]
    return float(np.mean(np.any([b[:, 0] == b[:, 1] for b in bands], axis=0)))


@functools.cache  # decoded once for all the sets of a run
def small_images() -> tuple[np.ndarray, np.ndarray]:
    """notMNIST_small's images and labels, decoded from the archive in place."""
    from notmnist.data.ingestion import ingest
    from notmnist.plumbing.parallel import all_cores

    archive = real_archive()
    if not archive.exists():
        sys.exit(f"{archive}: not found; set NOTMNIST_SMALL to notMNIST_small.tar.gz for this set")
    data = ingest(archive, workers=all_cores()).data
    return data.images, data.labels


def augmented(n: int, rng: np.random.Generator, noise: float = 6.0, chunk: int = 20_000, wrap: bool = True):
    """Random notMNIST_small images, each moved by -1/0/+1 pixel per axis, plus N(0, noise):
    with `wrap`, rolled as np.roll does (the row or column pushed out comes in on the other
    side), else shifted onto background."""
    base, base_labels = small_images()
    source = rng.integers(0, len(base), n)
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for lo in range(0, n, chunk):
        picked = source[lo : lo + chunk]
        # a one-pixel frame around each image (background, or the opposite edge when wrapping),
        # then a 28 x 28 window of it
        framed = np.pad(base[picked].astype(np.float32), ((0, 0), (1, 1), (1, 1)), mode="wrap" if wrap else "constant")
        img = np.empty((len(picked), 28, 28), dtype=np.float32)
        shifts = rng.integers(-1, 2, (len(picked), 2))
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                m = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                img[m] = framed[m, 1 - dy : 29 - dy, 1 - dx : 29 - dx]
        img += rng.normal(0, noise, img.shape).astype(np.float32)
        out[lo : lo + chunk] = np.clip(np.rint(img), 0, 255)
    return out, base_labels[source]


def templates(n: int, rng: np.random.Generator, sigma: float, chunk: int = 20_000):
    """The ten letters' mean notMNIST_small images plus N(0, sigma) noise per pixel, clipped."""
    base, base_labels = small_images()
    means = np.stack([base[base_labels == k].mean(axis=0) for k in range(10)]).astype(np.float32)
    labels = rng.integers(0, 10, n)
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for lo in range(0, n, chunk):
        k = labels[lo : lo + chunk]
        noisy = means[k] + rng.normal(0, sigma, (len(k), 28, 28)).astype(np.float32)
        out[lo : lo + chunk] = np.clip(np.rint(noisy), 0, 255)
    return out, labels


def make_set(name: str, n: int, planted: int):
    """(images, labels, planted exact pairs or None, planted near pairs or None)."""
    rng = np.random.default_rng(0)
    if name == "glyphs":
        return make_data(n, planted)
    if name in ("augmented", "shifted"):
        return (*augmented(n, rng, wrap=name == "augmented"), None, None)
    if name.startswith("templates:"):
        return (*templates(n, rng, float(name.split(":", 1)[1])), None, None)
    sys.exit(f"unknown set {name!r}: glyphs, augmented, shifted or templates:SIGMA")


def run_set(folder: Path, images: np.ndarray, labels: np.ndarray, timeout: float) -> tuple[dict, dict, np.ndarray]:
    """The split stage on these images in a fresh process: (its report, metrics/split.json,
    each image's group)."""
    (folder / "data/ingested").mkdir(parents=True, exist_ok=True)
    np.save(folder / "data/ingested/images.npy", images)
    np.save(folder / "data/ingested/labels.npy", labels)
    (folder / "data/ingested/classes.json").write_text(json.dumps(list("ABCDEFGHIJ")))
    (folder / "params.yaml").write_text(PARAMS)
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.split", "--run", str(folder)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=timeout,
    )
    if child.returncode:  # e.g. every image one near-duplicate group: the split refuses
        last = child.stderr.strip().splitlines()[-1:] or [
            f"exit code {child.returncode}, nothing said (out of memory?)"
        ]
        raise RuntimeError(last[0])
    report = json.loads(child.stdout.strip().splitlines()[-1])
    table = pd.read_csv(folder / "data/split/assignment.csv", usecols=["group"])
    return report, read_json(folder / "metrics/split.json"), table["group"].to_numpy()


PHASES = ("hashing", "candidates", "verification", "grouping", "audit", "total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=530_000, help="images per set")
    parser.add_argument("--sets", nargs="+", default=["glyphs", "augmented", "templates:32"])
    parser.add_argument("--planted", type=int, default=10_000, help="glyphs: exact and near pairs each")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a set may take")
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return run_stage(args.run)

    print(f"split stage, {args.n:,} images per set; seconds per phase, peak MB of the stage process")
    header = ["set", *PHASES, "peak MB", "rounds", "leaks", "train/valid/test/dropped"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    notes = []
    for name in args.sets:
        images, labels, exact, near = make_set(name, args.n, args.planted)
        with tempfile.TemporaryDirectory() as tmp:
            folder = (args.keep / name.replace(":", "-")) if args.keep else Path(tmp)
            try:
                report, metrics, group = run_set(folder, images, labels, args.timeout)
            except RuntimeError as e:
                print(f"| {name} | failed: {e} |", flush=True)
                continue
            except subprocess.TimeoutExpired:
                print(f"| {name} | stopped after {args.timeout:.0f} s |", flush=True)
                continue
        t, leaks = report["timings"], metrics["leaks"]
        sizes = "/".join(str(metrics[k]["n"]) for k in ("train", "valid", "test", "dropped"))
        cells = [name, *(f"{t.get(p, 0.0):.1f}" for p in PHASES), f"{report['peak_mb']:.0f}"]
        cells += [str(leaks["audit_rounds"]), f"{leaks['exact']}+{leaks['near']}", sizes]
        print("| " + " | ".join(cells) + " |", flush=True)
        if exact is not None:
            planted = {"exact": exact, "near": near}
            recall = {kind: float(np.mean(group[p[:, 0]] == group[p[:, 1]])) for kind, p in planted.items()}
            notes.append(
                f"{name}: recall of {args.planted} planted exact pairs {recall['exact']:.4f}, near pairs "
                f"{recall['near']:.4f} (sharing a hash band: {hash_recall(images, near):.4f}; the rest found by "
                f"the audit: {leaks['missed_by_hash']})"
            )
    print("\n".join(["", *notes]))


if __name__ == "__main__":
    main()
