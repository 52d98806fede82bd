"""Exact and near-duplicate detection for uint8 images, and the independent leak audit.

Everything works on a whole batch at once (n x 28 x 28 uint8), never on all pairs:
- exact duplicates: a 64-bit BLAKE2b hash of each image's decoded pixels;
- near duplicates: a 64-bit DCT perceptual hash, candidate pairs from multi-index buckets
  on its 16-bit bands (never all pairs), each candidate verified in pixel space;
- the audit: a different method, with no false negatives: KD-trees on block sums
  (a lower bound of the pixel L1 distance) find every cross-split pair within a pixel
  L1 radius, and each candidate is verified in pixel space.

Distances are pixel L1 sums: `l1(a, b) = sum |a - b|` over the 784 pixels, i.e.
`mean absolute difference = l1 / 784` in 0-255 units.
"""
from __future__ import annotations

import hashlib
import itertools

import numpy as np
import scipy.fft
import scipy.sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

HASH_BITS = 64
BAND_BITS = 16   # 4 bands: a pair whose hashes differ in <= 3 bits shares a band (pigeonhole)
WINDOW = 8       # in a bucket larger than WINDOW + 1, pair each image with its next WINDOW only
BLOCK = 7        # audit features: sums over 7 x 7 pixel blocks (16 numbers for 28 x 28)
# audit parts: the 4 x 4 grid of block sums split like a checkerboard (block 4 * row + col)
PARTS = [[b for b in range(16) if (b // 4 + b % 4) % 2 == colour] for colour in (0, 1)]
CHUNK = 1 << 15  # images or pairs handled per vectorized step (bounds temporary memory)


def flat(images: np.ndarray) -> np.ndarray:
    """(n, h, w) or (n, h*w) uint8 -> (n, h*w) view."""
    return images.reshape(len(images), -1)


def exact_hashes(images: np.ndarray) -> np.ndarray:
    """uint64 BLAKE2b-64 of each image's pixel bytes; equal pixels <=> equal hash.

    (A collision between different images has probability about n^2 / 2^65, ~1e-8 for
    530k images; even then the audit, which compares pixels, would still hold.)
    """
    rows = np.ascontiguousarray(flat(images))
    digests = b"".join(hashlib.blake2b(row.data, digest_size=8).digest() for row in rows)
    return np.frombuffer(digests, dtype="<u8").copy()


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """uint64 DCT hash: bit k = [c_k > median(c)] over the 8 x 8 lowest frequencies c.

    c = dctn(image) (orthonormal 2-D DCT-II over the whole image, scipy.fft.dctn), the
    classic pHash recipe applied to the 28 x 28 image directly.
    """
    out = np.empty(len(images), dtype=np.uint64)
    for lo in range(0, len(images), CHUNK):
        batch = np.asarray(images[lo:lo + CHUNK], dtype=np.float32)
        low = scipy.fft.dctn(batch, axes=(1, 2), norm="ortho", workers=-1)[:, :8, :8]
        low = low.reshape(len(batch), 64)
        bits = low > np.median(low, axis=1, keepdims=True)
        out[lo:lo + CHUNK] = np.packbits(bits, axis=1).view(">u8").ravel()
    return out


def pairs_sharing_key(keys: np.ndarray, tiebreak: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """(m, 2) index pairs (i < j) with keys[i] == keys[j].

    Within a bucket sorted by (key, tiebreak), each element is paired with the next
    `window` elements: every pair in buckets of up to window + 1 elements, and only close
    neighbours (in tiebreak order) in bigger ones, so one huge bucket cannot explode.
    """
    order = np.lexsort((tiebreak, keys))
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    run_end = np.repeat(np.r_[starts[1:], len(keys)], np.diff(np.r_[starts, len(keys)]))
    active = np.arange(len(keys))
    found = []
    for offset in range(1, window + 1):
        active = active[run_end[active] - active > offset]
        if not len(active):
            break
        found.append(np.stack([order[active], order[active + offset]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    return np.stack([pairs.min(axis=1), pairs.max(axis=1)], axis=1)


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Distinct rows of an (m, 2) array of (i < j) pairs, sorted (via 1-D codes: fast)."""
    if not len(pairs):
        return np.empty((0, 2), dtype=np.int64)
    base = np.int64(pairs.max()) + 1
    codes = np.sort(pairs[:, 0].astype(np.int64) * base + pairs[:, 1])
    codes = codes[np.r_[True, codes[1:] != codes[:-1]]]  # np.unique's hash path is slower
    return np.stack([codes // base, codes % base], axis=1)


def l1_distances(images: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Pixel L1 distance sum |a - b| (int64) for each pair of row indices."""
    rows = flat(images)
    out = np.empty(len(pairs), dtype=np.int64)
    for lo in range(0, len(pairs), CHUNK):
        a = rows[pairs[lo:lo + CHUNK, 0]].astype(np.int16)
        b = rows[pairs[lo:lo + CHUNK, 1]].astype(np.int16)
        out[lo:lo + CHUNK] = np.abs(a - b).sum(axis=1, dtype=np.int64)
    return out


def hash_candidates(phashes: np.ndarray) -> np.ndarray:
    """Candidate near-duplicate pairs: equal in at least one 16-bit band of the hash.

    Within a big bucket, neighbours in full-hash order are the ones paired.
    """
    found = []
    for shift in range(0, HASH_BITS, BAND_BITS):
        band = (phashes >> np.uint64(shift)) & np.uint64((1 << BAND_BITS) - 1)
        found.append(pairs_sharing_key(band, phashes))
    return unique_pairs(np.concatenate(found))


def near_pairs(images: np.ndarray, pairs: np.ndarray, max_l1: int) -> np.ndarray:
    """The pairs whose pixel L1 distance is <= max_l1.

    Cheap block-sum lower bound first (rules out most candidates), pixels for the rest.
    """
    sums = block_sums(images)
    bound = np.concatenate([np.empty(0, dtype=np.int32)] + [
        np.abs(sums[pairs[lo:lo + CHUNK, 0]] - sums[pairs[lo:lo + CHUNK, 1]]).sum(axis=1)
        for lo in range(0, len(pairs), CHUNK)
    ])
    pairs = pairs[bound <= max_l1]
    return pairs[l1_distances(images, pairs) <= max_l1]


def block_sums(images: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """(n, (h/block) * (w/block)) sums over block x block pixel tiles, float64.

    By the triangle inequality, sum_blocks |S_a - S_b| <= sum_pixels |a - b|: the L1
    distance between block sums is a lower bound of the pixel L1 distance.
    """
    n, h, w = images.shape
    tiles = images.reshape(n, h // block, block, w // block, block)
    return tiles.sum(axis=(2, 4), dtype=np.int32).reshape(n, -1)


def close_pairs(images: np.ndarray, side: np.ndarray, max_l1: int,
                focus: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) from different sides (side[i] != side[j]) with pixel L1 distance
    <= max_l1, and those distances; with a `focus` mask, only pairs touching it.

    No false negatives, by the pigeonhole principle: if the 16 block-sum differences add
    up to <= max_l1, those of one of the two PARTS (8 blocks each, a checkerboard) add up
    to <= max_l1 / 2. KD-trees (p=1) on each part and side find those pairs; each
    candidate is then checked on all 16 block sums and finally on the pixels. The cost
    depends on the data: distinct glyphs are cheap, many similar images are not.
    """
    sums = block_sums(images)
    radius = max_l1 // len(PARTS) + 0.5  # part sums are integers
    members = [np.flatnonzero(side == s) for s in np.unique(side)]
    sources = members if focus is None else [m[focus[m]] for m in members]
    found = [np.empty((0, 2), dtype=np.int64)]
    for part in PARTS:
        trees = [cKDTree(sums[m][:, part], leafsize=64) for m in members]
        for a, b in itertools.permutations(range(len(members)), 2):
            if focus is None and (len(members[a]), a) > (len(members[b]), b):
                continue  # each pair of sides once: the smaller side queries the other's tree
            if not len(sources[a]):
                continue
            # one query per point, in parallel: faster here than the dual-tree search
            hits = trees[b].query_ball_point(sums[sources[a]][:, part], radius, p=1, workers=-1)
            counts = np.fromiter(map(len, hits), dtype=np.int64, count=len(hits))
            j = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64, count=counts.sum())
            pairs = np.stack([np.repeat(sources[a], counts), members[b][j]], axis=1)
            found.append(np.sort(pairs, axis=1))
    candidates = unique_pairs(np.concatenate(found))
    pairs = near_pairs(images, candidates, max_l1)
    return pairs, l1_distances(images, pairs)


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over n nodes and (m, 2) edges: component label of each node.

    Labels are numbered in order of each component's smallest node (deterministic).
    """
    graph = scipy.sparse.coo_matrix(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n)
    )
    _, labels = connected_components(graph, directed=False)
    # renumber by first occurrence so the numbering never depends on scipy's traversal
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[labels]
