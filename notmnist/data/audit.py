"""The leak audit's exact search: every cross-split pair of images within the threshold.

A different method from the hash, with no false negatives: KD-trees on sums over pixel
blocks (lower bounds of the pixel L1 distance, notmnist.data.distances) propose every pair
within a pixel L1 radius, and the cascade of bounds keeps exactly those within max_l1.
Its cost follows the candidates that block sums cannot rule out, so each side's search is
the one of two exact searches that a sample says proposes fewer.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree

from notmnist.data.candidates import unique_pairs
from notmnist.data.distances import Sketches, l1_distances, near_pairs, sketches

CHUNK = 1 << 14  # images handled per vectorized step (bounds temporary memory)
MAX_CANDIDATES = 4_000_000  # candidate pairs per audit query chunk (Python lists: ~150 MB)


def wide_blocks(sums: np.ndarray) -> np.ndarray:
    """The 7 x 7 block sums with each pair of side-by-side blocks merged: 8 sums over 7 x 14
    blocks, again block sums, so their L1 distance is a (looser) lower bound too."""
    return sums.reshape(len(sums), -1, 2).sum(axis=2)


def checkerboard_halves(sums: np.ndarray) -> list[np.ndarray]:
    """The 16 block sums (a 4 x 4 grid) split like a checkerboard's two colours: 8 sums each.
    If a pair is within max_l1 on all 16, it is within max_l1 / 2 on one of the halves."""
    colour = np.add.outer(np.arange(4), np.arange(4)).ravel() % 2
    return [sums[:, colour == c] for c in (0, 1)]


def candidate_searches(sk: Sketches, max_l1: int) -> dict[str, list[tuple[np.ndarray, float]]]:
    """Two exact ways to propose every pair within max_l1, each a list of (8 features per
    image, L1 radius) whose candidates together contain every such pair: one tree on the
    7 x 14 block sums at the full radius, which suits glyphs; or a tree on each checkerboard
    half of the 7 x 7 sums at half the radius (pigeonhole), which suits noisy copies of a
    few templates, where coarse sums of all copies look alike. +0.5: the sums are integers,
    so no rounding can lose a pair."""
    return {
        "wide": [(wide_blocks(sk.coarse), max_l1 + 0.5)],
        "halves": [(half, max_l1 // 2 + 0.5) for half in checkerboard_halves(sk.coarse)],
    }


def expected_candidates(
    parts: list[tuple[np.ndarray, float]], tree_members: np.ndarray, query: np.ndarray, sample: int = 2000
) -> float:
    """Candidates per query that a search (candidate_searches) proposes: counted for a
    sample of the queries against trees on a sample of tree_members, scaled up; cheap
    next to building the full trees of a search that is then left unused."""
    q = query[:: max(1, len(query) // sample)]
    step = max(1, len(tree_members) // (10 * sample))
    t = tree_members[::step]
    found = sum(
        cKDTree(f[t], leafsize=128, balanced_tree=False)
        .query_ball_point(f[q], r, p=1, workers=-1, return_length=True)
        .sum()
        for f, r in parts
    )
    return found * len(tree_members) / len(t) / len(q)


def close_pairs(
    images: np.ndarray, side: np.ndarray, max_l1: int, focus: np.ndarray | None = None, sk: Sketches | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) from different sides (side[i] != side[j]) with pixel L1 distance
    <= max_l1, and those distances; with a `focus` mask, only pairs touching it. Images
    with side < 0 take no part (so callers need not copy out the ones that do).

    No false negatives: each of candidate_searches proposes every pair within max_l1, and
    near_pairs' cascade keeps exactly those. Each side's trees are queried by the points
    of all the sides that pair with it (without focus each pair of sides once: the smaller
    side queries the larger), with the search that proposes fewer candidates (expected_candidates),
    in chunks that shrink where the candidates are dense, so memory stays bounded.
    `sk` = sketches(images) if already computed.
    """
    sk = sketches(images) if sk is None else sk
    searches = candidate_searches(sk, max_l1)
    members = [np.flatnonzero(side == s) for s in np.unique(side[side >= 0])]
    sources = members if focus is None else [m[focus[m]] for m in members]
    found = [np.empty((0, 2), dtype=np.int64)]
    for b, tree_members in enumerate(members):
        # without focus each pair of sides once: the smaller side queries the larger
        partners = [
            a
            for a in range(len(members))
            if a != b and (focus is not None or (len(members[a]), a) < (len(members[b]), b))
        ]
        query = np.concatenate([sources[a] for a in partners] + [np.empty(0, dtype=np.int64)])
        if not len(query):
            continue
        expected = {name: expected_candidates(parts, tree_members, query) for name, parts in searches.items()}
        best = min(expected, key=expected.__getitem__)
        # the first chunk from the expected count, so that even data where every query has
        # thousands of candidates (noisy copies of a few templates) stays within memory
        size = int(np.clip(MAX_CANDIDATES / max(expected[best], 1e-9), 1, CHUNK))
        for features, radius in searches[best]:
            tree = cKDTree(features[tree_members], leafsize=128, balanced_tree=False)
            lo = 0
            while lo < len(query):
                chunk = query[lo : lo + size]
                hits = tree.query_ball_point(features[chunk], radius, p=1, workers=-1, return_sorted=False)
                counts = np.fromiter(map(len, hits), dtype=np.int64, count=len(hits))
                j = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64, count=counts.sum())
                del hits
                pairs = np.sort(np.stack([np.repeat(chunk, counts), tree_members[j]], axis=1), axis=1)
                found.append(near_pairs(images, pairs, max_l1, sk))
                lo += len(chunk)
                # about MAX_CANDIDATES candidates a chunk: dense data asks for smaller chunks
                size = int(np.clip(size * MAX_CANDIDATES / max(len(j), 1), 1, CHUNK))
    pairs = unique_pairs(np.concatenate(found))
    return pairs, l1_distances(images, pairs)
