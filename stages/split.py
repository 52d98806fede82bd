"""Stage split: deduplicate the ingested images, then a seeded, stratified, leak-free split.

Reads data/ingested/{images.npy,labels.npy,classes.json}; writes data/split/assignment.csv
(one row per ingested image) and metrics/split.json.

1. Duplicate groups: exact duplicates (same pixels) and verified near duplicates
   (pixel mean absolute difference <= split.near_mad) are joined by union-find.
2. Blank (constant) images and label conflicts (one group, several letters) are dropped
   or reduced by policy; within a split one image per group is kept by default.
3. Groups go whole to one split, stratified by class: per class, groups in a seeded
   random order fill test, then valid, then train up to the target counts.
4. Leak audit (stages.dedup.close_pairs, a different method with no false negatives):
   every cross-split pair of kept images within split.near_mad (which the hash missed)
   is merged into one group and the split is redone, until the audit finds none; the
   stage fails if that takes more than MAX_ROUNDS rounds.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from stages import dedup
from stages.io import (ParamError, UserError, boolean, choice, integer, load_npy, load_params,
                       number, read_json, run, write_json, write_text)

INGESTED = Path("data/ingested")
ASSIGNMENT = Path("data/split/assignment.csv")
METRICS = Path("metrics/split.json")
SPLITS = ("train", "valid", "test")
DROPPED = "dropped"
MAX_ROUNDS = 10
RULE_OF_30 = 30  # a change affecting 30 validation examples is significant (course notes)


def split_size(name: str, value) -> float:
    """A fraction in (0, 1) of each class, or a whole count >= 1 of each class."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            or (value >= 1 and value != int(value))):
        raise ParamError(f"{name}: bad value {value!r}; allowed: a fraction in (0, 1) "
                         "or a whole count >= 1 (per class)")
    return value


SPEC = {
    "seed": integer(0),
    "valid": split_size,
    "test": split_size,
    "near_mad": number(0, 255),
    "blank": choice("drop", "keep_one"),
    "label_conflicts": choice("drop", "majority"),
    "keep_one_per_group": boolean(),
}


def check_params(params: dict) -> dict:
    """Checks across knobs: two fractions must leave something for train."""
    valid, test = params["valid"], params["test"]
    if valid < 1 and test < 1 and valid + test >= 1:
        raise ParamError(f"split.valid + split.test: bad value {valid} + {test} = "
                         f"{valid + test:g}; allowed: fractions summing to less than 1")
    return params


def target(size: float, total: int) -> int:
    """Images of one class for a split: round(size * total) for a fraction, else size."""
    return int(size) if size >= 1 else int(np.floor(size * total + 0.5))


def resolve_labels(group, labels, eligible, policy):
    """Per-image mask of label-conflict drops, and the number of conflicting groups.

    drop: every member of a group with several labels; majority: the members whose
    label is not the group's most frequent one (ties -> smallest label).
    """
    members = pd.DataFrame({"group": group[eligible], "label": labels[eligible]})
    counts = members.value_counts(["group", "label"]).rename("count").reset_index()
    n_labels = counts.groupby("group")["label"].nunique()
    conflicted = n_labels.index[n_labels > 1].to_numpy()
    in_conflict = np.isin(group, conflicted) & eligible
    if policy == "drop":
        return in_conflict, len(conflicted)
    best = counts.sort_values(["group", "count", "label"], ascending=[True, False, True])
    majority = best.drop_duplicates("group").set_index("group")["label"]
    wrong = in_conflict & (labels != majority.reindex(group).to_numpy())
    return wrong, len(conflicted)


def drop_reasons(group, labels, exact, is_blank, blank, label_conflicts, keep_one_per_group):
    """Why each image is dropped ("" = kept), and the number of label-conflict groups.

    Order: blank (policy), label_conflict (policy), then, with keep_one_per_group, every
    member but the group's first remaining image: exact_duplicate when its pixels equal
    that image's, near_duplicate otherwise.
    """
    n = len(group)
    reason = np.full(n, "", dtype=object)
    if blank == "drop":
        reason[is_blank] = "blank"
    conflict, n_conflicts = resolve_labels(group, labels, reason == "", label_conflicts)
    reason[conflict] = "label_conflict"
    if keep_one_per_group:
        eligible = reason == ""
        first = pd.Series(np.flatnonzero(eligible)).groupby(group[eligible]).min()
        rep = np.full(group.max() + 1, -1, dtype=np.int64)
        rep[first.index.to_numpy()] = first.to_numpy()
        extra = eligible & (rep[group] != np.arange(n))
        same = exact[rep[group]] == exact
        reason[extra & same] = "exact_duplicate"
        reason[extra & ~same] = "near_duplicate"
    return reason, n_conflicts


def assign_groups(group, labels, kept, weight, classes, valid, test, seed):
    """Split code per group id (0 train, 1 valid, 2 test), stratified by class, seeded.

    Each image draws a seeded random key; a group takes the key of its first image, so
    merging two groups barely moves the others. Per class, groups sorted by key are laid
    end to end (weight = images each keeps): a group goes to test while its start is
    < n_test, then to valid while < n_test + n_valid, the rest to train.
    """
    key = np.random.default_rng(seed).random(len(group))
    _, first = np.unique(group, return_index=True)
    code = np.full(len(first), -1, dtype=np.int64)
    group_label = np.full_like(code, -1)
    group_label[group[kept]] = labels[kept]
    for c, name in enumerate(classes):
        ids = np.flatnonzero(group_label == c)
        w = weight[ids]
        total = int(w.sum())
        n_test, n_valid = target(test, total), target(valid, total)
        for param, n in (("split.test", n_test), ("split.valid", n_valid)):
            if n < 1:
                raise ParamError(f"{param}: class '{name}' would get no images "
                                 f"({total} left after deduplication); use a larger value")
        if total - n_test - n_valid < 1:
            raise ParamError(f"split.valid, split.test: class '{name}' has {total} images "
                             f"after deduplication; {n_valid} + {n_test} leave none for train")
        order = np.argsort(key[first[ids]], kind="stable")
        start = np.cumsum(w[order]) - w[order]
        code[ids[order]] = np.where(start < n_test, 2, np.where(start < n_test + n_valid, 1, 0))
    return code


def split_images(images, labels, classes, *, seed, valid, test, near_mad, blank,
                 label_conflicts, keep_one_per_group, timings=None):
    """Deduplicate and split: returns (assignment DataFrame, metrics dict).

    near pairs: same 16-bit band of the DCT hash, then mean |a - b| <= near_mad (pixels).
    timings, if a dict, receives the seconds of each phase (for benchmarks).
    """
    timings = {} if timings is None else timings
    clock = time.perf_counter()

    def lap(phase):
        nonlocal clock
        now = time.perf_counter()
        timings[phase] = timings.get(phase, 0.0) + now - clock
        clock = now

    n = len(images)
    rows = dedup.flat(images)
    max_l1 = int(np.floor(near_mad * rows.shape[1] + 1e-9))
    exact = dedup.exact_hashes(images)
    _, first, inverse = np.unique(exact, return_index=True, return_inverse=True)
    phash = dedup.perceptual_hashes(images)  # equal pixels, equal hash: no need to gather
    is_blank = rows.min(axis=1) == rows.max(axis=1)
    sums = dedup.block_sums(images)  # shared by verification and every audit round
    lap("hashing")

    distinct = np.sort(first[~is_blank[first]])
    candidates = distinct[dedup.hash_candidates(phash[distinct])]
    lap("candidates")
    near = dedup.near_pairs(images, candidates, max_l1, sums)
    lap("verification")

    exact_rep = first[inverse]
    edges = [np.stack([np.arange(n), exact_rep], axis=1), near]
    blanks = np.flatnonzero(is_blank)
    if blank == "keep_one" and len(blanks):
        edges.append(np.stack([blanks, np.full_like(blanks, blanks[0])], axis=1))
    edges = np.concatenate(edges)
    missed = 0
    split_code = None
    for rounds in range(1, MAX_ROUNDS + 1):
        group = dedup.components(n, edges)
        reason, n_conflicts = drop_reasons(group, labels, exact, is_blank, blank,
                                           label_conflicts, keep_one_per_group)
        kept = reason == ""
        weight = np.bincount(group[kept], minlength=group.max() + 1)
        code = assign_groups(group, labels, kept, weight, classes, valid, test, seed)
        new_code = np.where(kept, code[group], -1)
        changed = None if split_code is None else split_code != new_code
        split_code = new_code
        lap("grouping")
        leaks, leak_l1 = dedup.close_pairs(images, split_code, max_l1, changed, sums)  # dropped: -1
        lap("audit")
        if not len(leaks):
            break
        missed += len(leaks)
        edges = np.concatenate([edges, leaks])
    else:
        raise UserError(f"leak audit: {len(leaks)} cross-split duplicate pairs remain after "
                        f"{MAX_ROUNDS} rounds (e.g. images {leaks[0, 0]} and {leaks[0, 1]})")

    split = np.where(split_code >= 0, np.array(SPLITS, dtype=object)[split_code], DROPPED)
    table = pd.DataFrame({
        "index": np.arange(n),
        "class": np.asarray(classes, dtype=object)[labels],
        "exact_hash": [f"{h:016x}" for h in exact.tolist()],
        "phash": [f"{h:016x}" for h in phash.tolist()],
        "group": group,
        "split": split,
        "reason": reason,
    })
    sizes = np.bincount(group)
    removed = {kind: int((reason == kind).sum()) for kind in
               ("blank", "label_conflict", "exact_duplicate", "near_duplicate")}
    metrics = {
        "n_images": n,
        **{
            name: {
                "n": int((split == name).sum()),
                "per_class": {c: int(((split == name) & (labels == k)).sum())
                              for k, c in enumerate(classes)},
            }
            for name in SPLITS
        },
        "dropped": {"n": int((split == DROPPED).sum()), **removed},
        "duplicates": {
            "exact_removed": removed["exact_duplicate"],
            "near_removed": removed["near_duplicate"],
            "exact_groups": int((np.bincount(inverse) > 1).sum()),
            "near_pairs_verified": len(near),
            "groups_with_copies": int((sizes > 1).sum()),
            "blank_images": int(is_blank.sum()),
        },
        "label_conflicts": n_conflicts,
        "leaks": {"exact": int((leak_l1 == 0).sum()), "near": int((leak_l1 > 0).sum()),
                  "missed_by_hash": missed, "audit_rounds": rounds},
        "near_mad": near_mad,
    }
    metrics["valid"]["rule_of_30"] = RULE_OF_30 / max(metrics["valid"]["n"], 1)
    return table, metrics


def read_ingested(folder: Path = INGESTED):
    """images (n, 28, 28) uint8, labels (n,) int64, class names; errors name the file."""
    images = load_npy(folder / "images.npy")
    labels = load_npy(folder / "labels.npy")
    classes_path = folder / "classes.json"
    if not classes_path.exists():
        raise UserError(f"{classes_path}: not found; run the ingest stage first (dvc repro)")
    classes = read_json(classes_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise UserError(f"{folder / 'images.npy'}: expected uint8 N x 28 x 28, "
                        f"got {images.dtype} {images.shape}")
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise UserError(f"{folder / 'labels.npy'}: expected {len(images)} integer labels, "
                        f"got {labels.dtype} {labels.shape}")
    if not isinstance(classes, list) or not classes or (
            len(labels) and (labels.min() < 0 or labels.max() >= len(classes))):
        raise UserError(f"{classes_path}: must list a name for every label in labels.npy")
    return images, labels.astype(np.int64), [str(c) for c in classes]


def main(timings: dict | None = None) -> None:
    params = check_params(load_params("split", SPEC))
    images, labels, classes = read_ingested()
    table, metrics = split_images(images, labels, classes, **params, timings=timings)
    write_text(ASSIGNMENT, table.to_csv(index=False, lineterminator="\n"))
    write_json(METRICS, metrics)
    print(f"split: train {metrics['train']['n']}, valid {metrics['valid']['n']}, "
          f"test {metrics['test']['n']}, dropped {metrics['dropped']['n']}; "
          f"label conflicts {metrics['label_conflicts']}, leaks 0")


if __name__ == "__main__":
    run(main)
