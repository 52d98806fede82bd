"""Stage ingest: every file of `ingest.source` -> 28x28 uint8 glyphs, labels and a manifest.

The source (a folder ROOT/<class>/<files> or a .tar/.tar.gz/.tgz/.zip of it) is read
in place in one pass; the bytes are decoded in batches with stages.images.to_glyph by
`workers` processes, the reading process being one of them. Every file seen gets one
manifest row, ok or skipped with its reason. Output rows are sorted by path, so the
arrays do not depend on `workers`.
"""
from __future__ import annotations

import collections
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from stages.images import DEFAULT_MAX_PIXELS, RESIZE_POLICIES, SIZE, decode_many
from stages.io import (all_cores, atomic_path, choice, integer, load_params, run, save_npy,
                       text, write_json)
from stages.sources import class_of, iter_members, layout_depth

PARAMS = {
    "source": text(),
    "resize": choice(*RESIZE_POLICIES),
    "workers": integer(0, 256),
    "max_pixels": integer(SIZE * SIZE, 150_000_000),  # below Pillow's own hard limit
}
OUT = Path("data/ingested")
METRICS = Path("metrics/ingest.json")
BATCH = 256  # files per worker task: IPC stays cheap, the progress bar stays smooth
QUEUED = 4  # batches waiting per worker process; beyond that the reading process decodes
tqdm.monitor_interval = 0  # no monitor thread: worker processes are forked while the bar runs


@dataclass
class Ingested:
    images: np.ndarray     # uint8 (n, 28, 28), rows sorted by path
    labels: np.ndarray     # int64 (n,), index into classes
    classes: list[str]     # sorted class names that have at least one image
    manifest: pd.DataFrame  # one row per file seen: path, label, status, reason, index
    metrics: dict


def ingest(source: Path | str, resize: str = "fit", workers: int = 1,
           max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False) -> Ingested:
    """Decode every file of `source` into glyphs, labels and a manifest.

    A file's reason is the first that applies: not readable from the source (link,
    unsafe path, ...), a repeated path, outside the ROOT/<class>/<file> layout, not
    decodable (stages.images). Classes with no usable image get no label but are
    listed in metrics as `empty_classes`; fewer than two classes with images is a
    warning (metrics `warnings`), not an error, so that the manifest still gets written.
    Raises UserError only when the source itself cannot be read.
    """
    paths, dirs, glyphs, source_reasons, decode_reasons = _read_and_decode(
        source, resize, workers, max_pixels, progress)
    depth = layout_depth([p for p, r in zip(paths, source_reasons) if r is None], dirs)

    labels: list[str | None] = []
    reasons: list[str | None] = []
    seen_paths: set[str] = set()
    for path, why_source, why_decode in zip(paths, source_reasons, decode_reasons):
        label, why_layout = (None, None) if (why_source or "").startswith("unsafe") else class_of(path, depth)
        why_repeat = "duplicate path: an earlier member has the same name" if path in seen_paths else None
        seen_paths.add(path)
        labels.append(label)
        reasons.append(why_source or why_repeat or why_layout or why_decode)

    manifest = pd.DataFrame({"path": paths, "label": labels, "reason": reasons})
    manifest["status"] = np.where(manifest["reason"].isna(), "ok", "skipped")
    manifest["glyph"] = np.arange(len(paths))  # row in `glyphs` (storage order)
    manifest = manifest.sort_values("path", kind="stable").reset_index(drop=True)
    ok = manifest["status"] == "ok"

    seen_classes = sorted({p.split("/")[depth] for p in dirs if p.count("/") == depth}
                          | {label for label in labels if label})
    classes = sorted(manifest.loc[ok, "label"].unique())
    warnings = []
    if len(classes) < 2:  # reported, not refused: the manifest is what explains it to the user
        found = f"only class {classes[0]!r} has images" if classes else "no usable images"
        warnings.append(f"{found}; a classifier needs at least two class folders with images "
                        f"(layout ROOT/<class>/<files>): check ingest.source and the manifest")
    empty = [c for c in seen_classes if c not in classes]
    if empty:
        warnings.append(f"class folders without usable images get no label: {', '.join(empty)}")
    images = glyphs[manifest.loc[ok, "glyph"].to_numpy()]
    labels_array = manifest.loc[ok, "label"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    manifest["index"] = pd.Series(pd.NA, index=manifest.index, dtype="Int64")  # row in images.npy
    manifest.loc[ok, "index"] = np.arange(ok.sum())
    manifest = manifest[["path", "label", "status", "reason", "index"]]

    per_class = manifest.loc[ok, "label"].value_counts()
    skipped = manifest.loc[~ok, "reason"].str.split(":").str[0].value_counts()
    metrics = {
        "source": str(source),
        "n_files": len(manifest),
        "n_images": int(ok.sum()),
        "n_skipped": int((~ok).sum()),
        "n_classes": len(classes),
        "per_class": {c: int(per_class.get(c, 0)) for c in seen_classes},
        "empty_classes": empty,
        "skipped_by_reason": {k: int(v) for k, v in sorted(skipped.items())},
        "leading_folders_ignored": depth,
        "warnings": warnings,
    }
    return Ingested(images, labels_array, classes, manifest, metrics)


def _read_and_decode(source, resize, workers, max_pixels, progress):
    """One pass over the source: (paths, dirs, glyphs, source reasons, decode reasons).

    Lists are per file in storage order; glyphs has one row per file (zeros where not
    decoded). The reading process hands batches to workers - 1 worker processes and
    decodes a batch itself whenever they have QUEUED batches each in hand: the reading
    (one gzip stream) cannot be split, and this way `workers` processes share as many
    cores, with no idle reader and no extra process competing for a core. At most
    QUEUED x (workers - 1) batches are in flight, so raw bytes never pile up; when the
    reading ends, the batches no worker has started yet are decoded here, not waited for.
    """
    paths: list[str] = []
    dirs: list[str] = []
    source_reasons: list[str | None] = []
    decode_reasons: list[str | None] = []
    decoded: list[tuple[list[int], np.ndarray]] = []  # (file slots, their glyphs) per batch
    in_flight: collections.deque = collections.deque()
    batch: list[bytes] = []
    slots: list[int] = []

    def collect(glyphs: np.ndarray, reasons: list[str | None], batch_slots: list[int]) -> None:
        for slot, reason in zip(batch_slots, reasons):
            decode_reasons[slot] = reason
        decoded.append((batch_slots, glyphs))

    def flush() -> None:
        while in_flight and in_flight[0][0].done():
            future, batch_slots, _ = in_flight.popleft()
            collect(*future.result(), batch_slots)
        if pool is None or len(in_flight) >= QUEUED * (workers - 1):
            collect(*decode_many(batch, resize, max_pixels), list(slots))
        else:
            files = list(batch)
            in_flight.append((pool.submit(decode_many, files, resize, max_pixels), list(slots), files))
        bar.update(len(batch))
        batch.clear()
        slots.clear()

    pool = ProcessPoolExecutor(workers - 1) if workers > 1 else None
    bar = tqdm(desc="ingest", unit=" files", disable=not progress, mininterval=0.5)
    try:
        for member in iter_members(source):
            if member.is_dir:
                dirs.append(member.path)
                continue
            if member.data is None:
                bar.update(1)
            else:
                slots.append(len(paths))
                batch.append(member.data)
            paths.append(member.path)
            source_reasons.append(member.reason)
            decode_reasons.append(None)
            if len(batch) == BATCH:
                flush()
        if batch:
            flush()
        while in_flight:  # newest first: a worker takes the oldest batches first
            future, batch_slots, files = in_flight.pop()
            if future.cancel():  # not started: decoding it here beats waiting for it
                collect(*decode_many(files, resize, max_pixels), batch_slots)
            else:
                collect(*future.result(), batch_slots)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    glyphs = np.zeros((len(paths), SIZE, SIZE), np.uint8)
    for batch_slots, chunk in decoded:
        glyphs[batch_slots] = chunk
    return paths, dirs, glyphs, source_reasons, decode_reasons


def main() -> None:
    params = load_params("ingest", PARAMS)
    workers = params["workers"] or all_cores()
    result = ingest(Path(params["source"]), params["resize"], workers, params["max_pixels"],
                    progress=True)
    save_npy(OUT / "images.npy", result.images)
    save_npy(OUT / "labels.npy", result.labels)
    write_json(OUT / "classes.json", result.classes)
    with atomic_path(OUT / "manifest.csv") as tmp:
        result.manifest.to_csv(tmp, index=False)
    write_json(METRICS, result.metrics)
    m = result.metrics
    print(f"ingest: {m['n_files']} files: {m['n_images']} images (classes: {m['n_classes']}), "
          f"{m['n_skipped']} skipped (reasons in {OUT / 'manifest.csv'})", file=sys.stderr)
    for warning in m["warnings"]:
        print(f"ingest: warning: {warning}", file=sys.stderr)


if __name__ == "__main__":
    run(main)
