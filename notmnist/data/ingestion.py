"""Ingestion: every file of a data set -> 28x28 uint8 glyphs, labels and a manifest.

The source (a folder ROOT/<class>/<files> or a .tar/.tar.gz/.tgz/.zip of it) is read in
place in one pass (notmnist.data.sources); its files are decoded in batches by `workers`
processes with notmnist.data.images.to_glyph. Every file seen gets one manifest row, ok or
skipped with its reason. Output rows are sorted by path, so the arrays do not depend on
`workers`.
"""

from __future__ import annotations

import collections
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from notmnist.data.images import DEFAULT_MAX_PIXELS, RESIZE_POLICIES, decode_many
from notmnist.data.sources import class_of, iter_members, layout_depth
from notmnist.plumbing.cli import printable
from notmnist.plumbing.contracts import SIZE, Ingested
from notmnist.plumbing.errors import UserError
from notmnist.plumbing.params import choice, integer, knob, text


@dataclass(frozen=True)
class Ingest:
    """Section ingest: where the images are, and how odd ones are read."""

    SECTION: ClassVar[str] = "ingest"
    source: str = knob(text())
    resize: str = knob(choice(*RESIZE_POLICIES))
    workers: int = knob(integer(0, 256))
    max_pixels: int = knob(integer(SIZE * SIZE, 150_000_000))  # below Pillow's own hard limit


BATCH = 256  # files per worker task: IPC stays cheap, the progress bar stays smooth
BATCH_BYTES = 8 * 2**20  # ... or fewer, so that a batch of big files is a few MB, not GB
IN_FLIGHT = 4  # batches handed out per worker: enough to keep it busy
IN_FLIGHT_BYTES = 64 * 2**20  # raw bytes handed out and not yet decoded: memory follows bytes
tqdm.monitor_interval = 0  # no monitor thread: worker processes are forked while the bar runs


@dataclass
class Ingestion:
    data: Ingested  # images sorted by path, labels, classes that have at least one image
    manifest: pd.DataFrame  # one row per file seen: path, label, status, reason, index
    metrics: dict


def ingest(
    source: Path | str,
    resize: str = "fit",
    workers: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = False,
) -> Ingestion:
    """Decode every file of `source` into glyphs, labels and a manifest.

    A file's reason is the first that applies: not readable from the source (link,
    unsafe path, repeated path, ...), outside the ROOT/<class>/<file> layout, a class
    name with control characters (a newline or ESC in a label would reach every table,
    picture and terminal after this stage; the class is refused with one warning), not
    decodable (notmnist.data.images). Classes with no usable image get no label but are
    listed in metrics as `empty_classes`; fewer than two classes with images is a
    warning (metrics `warnings`), not an error, so that the manifest still gets written.
    Raises UserError only when the source itself cannot be read.
    """
    paths, dirs, glyphs, source_reasons, decode_reasons = _read_and_decode(
        source, resize, workers, max_pixels, progress
    )
    depth = layout_depth([p for p, r in zip(paths, source_reasons) if r is None], dirs)

    labels: list[str | None] = []
    reasons: list[str | None] = []
    refused: set[str] = set()  # class names with control characters
    for path, why_source, why_decode in zip(paths, source_reasons, decode_reasons):
        label, why_layout = (None, None) if (why_source or "").startswith("unsafe") else class_of(path, depth)
        if label is not None and printable(label) != label:
            refused.add(label)
            why_layout = why_layout or f"bad class name: {printable(label)} has control characters"
            label = None
        labels.append(label)
        reasons.append(why_source or why_layout or why_decode)

    manifest = pd.DataFrame({"path": paths, "label": labels, "reason": reasons})
    manifest["status"] = np.where(manifest["reason"].isna(), "ok", "skipped")
    manifest["glyph"] = np.arange(len(paths))  # row in `glyphs` (storage order)
    manifest = manifest.sort_values("path", kind="stable").reset_index(drop=True)
    ok = manifest["status"] == "ok"

    folders = {p.split("/")[depth] for p in dirs if p.count("/") == depth}
    refused |= {c for c in folders if printable(c) != c}
    seen_classes = sorted((folders - refused) | {label for label in labels if label})
    classes = sorted(manifest.loc[ok, "label"].unique())
    warnings = []
    if len(classes) < 2:  # reported, not refused: the manifest is what explains it to the user
        found = f"only class {classes[0]!r} has images" if classes else "no usable images"
        warnings.append(
            f"{found}; a classifier needs at least two class folders with images "
            f"(layout ROOT/<class>/<files>): check ingest.source and the manifest"
        )
    empty = [c for c in seen_classes if c not in classes]
    if empty:
        warnings.append(f"class folders without usable images get no label: {', '.join(empty)}")
    if refused:
        names = ", ".join(printable(c) for c in sorted(refused))
        warnings.append(f"class folders with control characters in their names are refused: {names}")
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
    return Ingestion(Ingested(images, labels_array, classes), manifest, metrics)


def _read_and_decode(
    source: Path | str, resize: str, workers: int, max_pixels: int, progress: bool
) -> tuple[list[str], list[str], np.ndarray, list[str | None], list[str | None]]:
    """One pass over the source: (paths, dirs, glyphs, source reasons, decode reasons).

    Lists are per file in storage order; glyphs has one row per file (zeros where not
    decoded). This process reads (one compressed stream cannot be split) while `workers`
    processes decode; at most IN_FLIGHT batches per worker are handed out at a time, so
    raw bytes never pile up.
    """
    paths: list[str] = []
    dirs: list[str] = []
    source_reasons: list[str | None] = []
    decode_reasons: list[str | None] = []
    decoded: list[tuple[list[int], np.ndarray]] = []  # (file slots, their glyphs) per batch
    pending: collections.deque = collections.deque()  # (future, slots, raw bytes)
    in_flight = 0

    def collect() -> None:
        nonlocal in_flight
        future, slots, size = pending.popleft()
        in_flight -= size
        try:
            glyphs, reasons = future.result()
        except BrokenProcessPool:  # killed from outside (out of memory, a signal): no traceback
            raise UserError("ingest: a decoding process died (out of memory?); no output was written") from None
        for slot, reason in zip(slots, reasons):
            decode_reasons[slot] = reason
        decoded.append((slots, glyphs))
        bar.update(len(slots))

    def hand_out(batch: list[bytes], slots: list[int], size: int) -> None:
        nonlocal in_flight
        pending.append((pool.submit(decode_many, batch, resize, max_pixels), slots, size))
        in_flight += size
        while pending and (len(pending) >= IN_FLIGHT * workers or in_flight > IN_FLIGHT_BYTES):
            collect()

    batch: list[bytes] = []
    slots: list[int] = []
    batch_bytes = 0
    with (
        ProcessPoolExecutor(workers) as pool,
        tqdm(desc="ingest", unit=" files", disable=None if progress else True, mininterval=0.5) as bar,
    ):
        for member in iter_members(source):
            if member.is_dir:
                dirs.append(member.path)
                continue
            if member.data is None:
                bar.update(1)
            else:
                slots.append(len(paths))
                batch.append(member.data)
                batch_bytes += len(member.data)
            paths.append(member.path)
            source_reasons.append(member.reason)
            decode_reasons.append(None)
            if len(batch) == BATCH or batch_bytes >= BATCH_BYTES:
                hand_out(batch, slots, batch_bytes)
                batch, slots, batch_bytes = [], [], 0
        if batch:
            hand_out(batch, slots, batch_bytes)
        while pending:
            collect()

    glyphs = np.zeros((len(paths), SIZE, SIZE), np.uint8)
    for batch_slots, chunk in decoded:
        glyphs[batch_slots] = chunk
    return paths, dirs, glyphs, source_reasons, decode_reasons
