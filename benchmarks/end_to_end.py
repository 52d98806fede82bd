"""End to end: `dvc repro` on notMNIST_small and on a notMNIST_large-sized archive.

    python -m benchmarks.end_to_end [--per-class 53000] [--skip-large] [--workdir DIR]

Each run is a fresh git + DVC copy of the repository's source files in a scratch folder
with `ingest.source` pointed at an archive. notMNIST_small is timed as one whole
`dvc repro`, then stage by stage (`dvc repro --force -s <stage>`); the large archive
stage by stage only. The large archive (per_class x 10 PNGs in a .tar.gz laid out like
notMNIST_large.tar.gz) is built from the notMNIST_small glyphs, each drawn with its own
random rotation, scale, shift and noise, so that few of them are near duplicates.

Memory per stage: "max process" is the largest resident set of any one process of the
run (exact, from wait4: dvc itself is about 150-250 MB); "all processes" is the peak of
the summed resident sets of dvc, the stage and its workers, sampled 20 times a second
(shared pages are counted once per process, so it overestimates). Targets (on
2 cores): notMNIST_small whole pipeline under 45 s; the 530k archive completes with
every stage under 4 GB.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import scipy.ndimage
import yaml
from PIL import Image

from tests.helpers import copy_repository
from tests.references import real_archive

SMALL = real_archive()
CHUNK = 5000  # images transformed and encoded per batch when building the large archive
SIZE = 28


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }


def prepare(root: Path, source: Path) -> list[str]:
    """A fresh project in `root` reading `source`; returns its stage names in pipeline order
    (those of dvc.yaml: the built-in data's stage, builtin/dvc.yaml:synthesize, does not run
    when the source is an archive)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    copy_repository(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["ingest"]["source"] = str(source)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return list(yaml.safe_load((root / "dvc.yaml").read_text())["stages"])


def measure(args: list[str], cwd: Path, log: Path) -> dict:
    """Run `args`; wall seconds, largest single-process RSS and peak summed RSS (sampled)."""
    with log.open("ab") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=environment(), stdout=out, stderr=subprocess.STDOUT)
        peak_sum = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_sum
            parent = psutil.Process(proc.pid)
            while not done.is_set():
                try:
                    tree = [parent, *parent.children(recursive=True)]
                    peak_sum = max(peak_sum, sum(p.memory_info().rss for p in tree))
                except psutil.Error:
                    pass
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": seconds,
        "max process MB": usage.ru_maxrss / 1024,
        "all processes MB": peak_sum / 2**20,
        "ok": proc.returncode == 0,
    }


def benchmark(name: str, source: Path, root: Path, whole: bool) -> list[dict]:
    stages = prepare(root, source)
    dvc = [sys.executable, "-m", "dvc"]
    log = root.with_suffix(".log")
    log.unlink(missing_ok=True)
    rows = []
    if whole:
        rows.append({"run": name, "stage": "whole `dvc repro`", **measure([*dvc, "repro"], root, log)})
    for stage in stages:
        row = {"run": name, "stage": stage, **measure([*dvc, "repro", "--force", "-s", stage], root, log)}
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1 + whole), flush=True)
        if not row["ok"]:
            print(f"{stage} failed; see {log}", file=sys.stderr)
            break
    measured = [r for r in rows if r["stage"] in stages]
    rows.append(
        {
            "run": name,
            "stage": "sum of stages",
            "seconds": sum(r["seconds"] for r in measured),
            "max process MB": max(r["max process MB"] for r in measured),
            "all processes MB": max(r["all processes MB"] for r in measured),
            "ok": all(r["ok"] for r in measured),
        }
    )
    return rows


def results(root: Path) -> str:
    """The headline results of a run, as README quotes them."""
    ingest, split, train, test = (
        json.loads((root / "metrics" / f"{name}.json").read_text()) for name in ("ingest", "split", "train", "evaluate")
    )
    return "\n".join(
        [
            f"ingest: {ingest['n_files']:,} files, {ingest['n_images']:,} images, {ingest['n_skipped']} skipped",
            f"split: train {split['train']['n']:,}, valid {split['valid']['n']:,}, test {split['test']['n']:,}, "
            f"dropped {split['dropped']['n']}, exact duplicates removed {split['duplicates']['exact_removed']}, "
            f"label conflicts {split['label_conflicts']}, leaks {split['leaks']['exact'] + split['leaks']['near']}",
            f"train: valid accuracy {train['valid']['accuracy']:.4f}, best epoch {train.get('best_epoch')}",
            f"evaluate: test accuracy {test['accuracy']:.4f} (95% CI {test['accuracy_ci95_low']:.4f}-"
            f"{test['accuracy_ci95_high']:.4f}), log loss {test['log_loss']:.4f}, macro F1 {test['macro']['f1']:.4f}",
        ]
    )


def transformed(glyphs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each glyph rotated (~N(0, 7 deg)), scaled (0.85-1.1), shifted (+-2 px), plus noise."""
    n = len(glyphs)
    angle, scale = rng.normal(0, 0.12, n), rng.uniform(0.85, 1.1, n)
    shift = rng.uniform(-2, 2, (2, n))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] - (SIZE - 1) / 2
    cos, sin = (np.cos(angle) / scale)[:, None, None], (np.sin(angle) / scale)[:, None, None]
    rows = cos * yy - sin * xx + (SIZE - 1) / 2 - shift[0][:, None, None]
    cols = sin * yy + cos * xx + (SIZE - 1) / 2 - shift[1][:, None, None]
    index = np.broadcast_to(np.arange(n)[:, None, None], rows.shape)
    out = scipy.ndimage.map_coordinates(glyphs.astype(np.float32), [index, rows, cols], order=1)
    out += rng.normal(0, 1, out.shape) * rng.uniform(0, 10, n)[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def encode_pngs(glyphs: np.ndarray) -> list[bytes]:
    pngs = []
    for glyph in glyphs:
        buffer = io.BytesIO()
        Image.fromarray(glyph, "L").save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def build_large_archive(ingested: Path, per_class: int, path: Path, seed: int = 0) -> None:
    """notMNIST_large/<class>/<n>.png: per_class transformed glyphs of each class of the
    ingested arrays in `ingested` (images.npy, labels.npy, classes.json)."""
    glyphs = np.load(ingested / "images.npy", allow_pickle=False)
    labels = np.load(ingested / "labels.npy", allow_pickle=False)
    classes = json.loads((ingested / "classes.json").read_text())
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".partial")
    with (
        tarfile.open(tmp, "w:gz", compresslevel=1) as tar,
        concurrent.futures.ProcessPoolExecutor(os.cpu_count()) as pool,
    ):
        for k, name in enumerate(classes):
            base = glyphs[labels == k]
            batches = [
                transformed(base[rng.integers(len(base), size=min(CHUNK, per_class - start))], rng)
                for start in range(0, per_class, CHUNK)
            ]
            pngs = [png for batch in pool.map(encode_pngs, batches) for png in batch]
            for i, data in enumerate(pngs):
                member = tarfile.TarInfo(f"notMNIST_large/{name}/{i:06d}.png")
                member.size, member.mtime = len(data), 0
                tar.addfile(member, io.BytesIO(data))
            print(f"  {name}: {len(pngs)} images", flush=True)
    tmp.rename(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=Path, default=SMALL, help="notMNIST_small.tar.gz")
    parser.add_argument("--per-class", type=int, default=53_000, help="large archive images per letter")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "notmnist-end-to-end")
    args = parser.parse_args()
    if not args.small.exists():
        sys.exit(f"{args.small}: not found (pass --small PATH to notMNIST_small.tar.gz)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GB RAM, Python {platform.python_version()}; "
        f"scratch: {args.workdir}"
    )

    rows = benchmark("notMNIST_small", args.small.resolve(), args.workdir / "small", whole=True)
    print(f"\nresults on notMNIST_small:\n{results(args.workdir / 'small')}\n", flush=True)
    if not args.skip_large:
        archive = args.workdir / f"large-{args.per_class}.tar.gz"
        if not archive.exists():
            print(f"building {archive} ({10 * args.per_class:,} images) ...", flush=True)
            # in a fresh process, so that this one stays small: a forked child starts with
            # the parent's resident set, which would count in the stages' "max process"
            builder = multiprocessing.get_context("spawn").Process(
                target=build_large_archive, args=(args.workdir / "small" / "data" / "ingested", args.per_class, archive)
            )
            builder.start()
            builder.join()
            if builder.exitcode != 0:
                sys.exit("building the large archive failed")
        rows += benchmark(f"{10 * args.per_class // 1000}k archive", archive, args.workdir / "large", whole=False)

    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))


if __name__ == "__main__":
    main()
