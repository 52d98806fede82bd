"""Deduplicate the ingested images, then a seeded, stratified, leak-free train/valid/test split.

1. Duplicate groups: exact duplicates (same pixels) and verified near duplicates (mean
   absolute pixel difference <= near_mean_abs_diff) are joined into groups
   (notmnist.data: hashing, candidates, distances, grouping).
2. Blank (constant) images and label conflicts (one group, several letters) are dropped
   or reduced by policy; within a split one image per group is kept by default.
3. Groups go whole to one split, stratified by class: per class, groups in a seeded
   random order fill test, then valid, up to their target counts; the rest is train.
4. Leak audit (audit.close_pairs, a different method with no false negatives): every
   cross-split pair of kept images within the threshold (which the hash missed) is merged
   into one group and the split is redone, until the audit finds none; after MAX_ROUNDS
   rounds with leaks left, the split fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import pandas as pd

from notmnist.data import audit, candidates, distances, grouping, hashing
from notmnist.plumbing.contracts import DROPPED, SPLITS
from notmnist.plumbing.errors import ParamError, UserError
from notmnist.plumbing.params import boolean, choice, integer, knob, number, split_size

MAX_ROUNDS = 10
TRAIN, VALID, TEST = 0, 1, 2  # split codes: index into SPLITS


@dataclass(frozen=True)
class Split:
    """Section split: duplicates, their policies, and the sizes of valid and test."""

    SECTION: ClassVar[str] = "split"
    seed: int = knob(integer(0))
    valid: float = knob(split_size())
    test: float = knob(split_size())
    near_mean_abs_diff: float = knob(number(0, 255))
    blank: str = knob(choice("drop", "keep_one"))
    label_conflicts: str = knob(choice("drop", "majority"))
    keep_one_per_group: bool = knob(boolean())

    def __post_init__(self) -> None:
        check_sizes(self.valid, self.test)


def check_sizes(valid: float, test: float) -> None:
    """Two fractions must leave something for train."""
    if valid < 1 and test < 1 and valid + test >= 1:
        raise ParamError(
            f"split.valid + split.test: bad value {valid} + {test} = {valid + test:g}; "
            "allowed: fractions summing to less than 1"
        )


def target(size: float, total: int) -> int:
    """Images of one class for a split: round(size * total) for a fraction, else size."""
    return int(size) if size >= 1 else int(np.floor(size * total + 0.5))


def resolve_labels(group: np.ndarray, labels: np.ndarray, eligible: np.ndarray, policy: str) -> tuple[np.ndarray, int]:
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


def drop_reasons(
    group: np.ndarray,
    labels: np.ndarray,
    exact: np.ndarray,
    is_blank: np.ndarray,
    blank: str,
    label_conflicts: str,
    keep_one_per_group: bool,
) -> tuple[np.ndarray, int]:
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


def assign_groups(
    group: np.ndarray,
    labels: np.ndarray,
    kept: np.ndarray,
    weight: np.ndarray,
    classes: list[str],
    valid: float,
    test: float,
    seed: int,
) -> np.ndarray:
    """Split code per group id (TRAIN, VALID, TEST), stratified by class, seeded.

    Each image draws a seeded random key; a group takes the key of its first image, so
    merging two groups barely moves the others. Per class, in key order, a group goes to
    test if it fits in what test still lacks of its target, else to valid if it fits there,
    else to train (weight = the images a group keeps). With one image per group this is
    exactly the first n_test groups to test and the next n_valid to valid; a large group
    never overshoots a target. A class whose groups leave test or valid empty is an error
    that says why.
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
                raise ParamError(
                    f"{param}: class '{name}' would get no images ({total} left after deduplication); "
                    "use a larger value"
                )
        if total - n_test - n_valid < 1:
            raise ParamError(
                f"split.valid, split.test: class '{name}' has {total} images after deduplication; "
                f"{n_valid} + {n_test} leave none for train"
            )
        order = ids[np.argsort(key[first[ids]], kind="stable")]
        code[order] = TRAIN
        filled = {TEST: 0, VALID: 0}
        wanted = {TEST: n_test, VALID: n_valid}
        for gid, size in zip(order.tolist(), weight[order].tolist()):
            where = next((s for s in (TEST, VALID) if filled[s] + size <= wanted[s]), TRAIN)
            code[gid] = where
            if where != TRAIN:
                filled[where] += size
                if filled == wanted:
                    break
        for s in (TEST, VALID):
            if filled[s] == 0:
                raise ParamError(
                    f"split.{SPLITS[s]}: class '{name}' would get no {SPLITS[s]} images: a duplicate group "
                    f"stays whole in one split, and none of its {len(ids)} groups ({w.min()} to {w.max()} "
                    f"images) fits in the {wanted[s]} it should get; use a larger value or "
                    "keep_one_per_group: true"
                )
    return code


def split_images(
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    *,
    seed: int,
    valid: float,
    test: float,
    near_mean_abs_diff: float,
    blank: str,
    label_conflicts: str,
    keep_one_per_group: bool,
    phase_done: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Deduplicate and split: returns (assignment DataFrame, metrics dict).

    Near pairs: the DCT hash proposes candidates, verified by mean |a - b| <= near_mean_abs_diff
    on the pixels. phase_done(name), if given, is called as each phase ends (for benchmarks):
    hashing, candidates, verification, then grouping and audit once per audit round.
    """
    done = phase_done or (lambda phase: None)
    n = len(images)
    rows = distances.flat(images)
    max_l1 = distances.max_l1(near_mean_abs_diff, rows.shape[1])
    exact = hashing.exact_hashes(images)
    _, first, inverse = np.unique(exact, return_index=True, return_inverse=True)
    phash = hashing.perceptual_hashes(images)  # equal pixels, equal hash: no need to gather
    is_blank = rows.min(axis=1) == rows.max(axis=1)
    sk = distances.sketches(images)  # shared by verification and every audit round
    done("hashing")

    distinct = np.sort(first[~is_blank[first]])
    proposed = distinct[candidates.hash_candidates(phash[distinct])]
    done("candidates")
    near = distances.near_pairs(images, proposed, max_l1, sk)
    done("verification")

    exact_rep = first[inverse]
    joined = [np.stack([np.arange(n), exact_rep], axis=1), near]
    blanks = np.flatnonzero(is_blank)
    if blank == "keep_one" and len(blanks):
        joined.append(np.stack([blanks, np.full_like(blanks, blanks[0])], axis=1))
    edges = np.concatenate(joined)
    missed = 0
    split_code = None
    for rounds in range(1, MAX_ROUNDS + 1):  # noqa: B007 (the count is reported after the loop)
        group = grouping.components(n, edges)
        reason, n_conflicts = drop_reasons(group, labels, exact, is_blank, blank, label_conflicts, keep_one_per_group)
        kept = reason == ""
        weight = np.bincount(group[kept], minlength=group.max() + 1)
        code = assign_groups(group, labels, kept, weight, classes, valid, test, seed)
        new_code = np.where(kept, code[group], -1)
        changed = None if split_code is None else split_code != new_code
        split_code = new_code
        done("grouping")
        leaks, leak_l1 = audit.close_pairs(images, split_code, max_l1, changed, sk)  # dropped: -1
        done("audit")
        if not len(leaks):
            break
        missed += len(leaks)
        edges = np.concatenate([edges, leaks])
    else:
        raise UserError(
            f"leak audit: {len(leaks)} cross-split duplicate pairs remain after "
            f"{MAX_ROUNDS} rounds (e.g. images {leaks[0, 0]} and {leaks[0, 1]})"
        )

    split = np.where(split_code >= 0, np.array(SPLITS, dtype=object)[split_code], DROPPED)
    table = pd.DataFrame(
        {
            "index": np.arange(n),
            "class": np.asarray(classes, dtype=object)[labels],
            "exact_hash": [f"{h:016x}" for h in exact.tolist()],
            "phash": [f"{h:016x}" for h in phash.tolist()],
            "group": group,
            "split": split,
            "reason": reason,
        }
    )
    sizes = np.bincount(group)
    removed = {
        kind: int((reason == kind).sum()) for kind in ("blank", "label_conflict", "exact_duplicate", "near_duplicate")
    }
    metrics = {
        "n_images": n,
        **{
            name: {
                "n": int((split == name).sum()),
                "per_class": {c: int(((split == name) & (labels == k)).sum()) for k, c in enumerate(classes)},
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
        "leaks": {
            "exact": int((leak_l1 == 0).sum()),
            "near": int((leak_l1 > 0).sum()),
            "missed_by_hash": missed,
            "audit_rounds": rounds,
        },
        "near_mean_abs_diff": near_mean_abs_diff,
    }
    return table, metrics
