"""Exact and near-duplicate detection for uint8 images, and the independent leak audit.

Everything works on a whole batch at once (n x 28 x 28 uint8), never on all pairs:
- exact duplicates: a 64-bit BLAKE2b hash of each image's decoded pixels;
- near duplicates: a 64-bit DCT perceptual hash, candidate pairs from multi-index buckets
  on its 16-bit bands (never all pairs), each candidate verified in pixel space;
- the audit: a different method, with no false negatives: KD-trees on sums over pixel
  blocks (lower bounds of the pixel L1 distance) find every cross-split pair within a
  pixel L1 radius.

Every candidate pair is verified through a cascade of lower bounds, cheapest first: the L1
distance between sums over 7 x 7 blocks, between sums over 2 x 2 blocks, then the pixels.
A sum over a block cannot differ between two images by more than their pixels in it do,
so each bound is at most the pixel distance and rules out no true pair; the 2 x 2 sums
also rule out what the coarse sums cannot (noisy copies of one glyph, one-pixel shifts).

Distances are pixel L1 sums: `l1(a, b) = sum |a - b|` over the 784 pixels, i.e.
`mean absolute difference = l1 / 784` in 0-255 units.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from notmnist.plumbing import parallel

HASH_BITS = 64
BAND_BITS = 16  # 4 bands: a pair whose hashes differ in <= 3 bits shares a band (pigeonhole)
WINDOW = 8  # in a bucket larger than WINDOW + 1, pair each image with its next WINDOW only
# Hash candidates further apart than this (of 64 bits) are not verified: near copies differ
# in <= 6 bits in the benchmark, while ~90% of band-sharing pairs differ in >= 14; whatever
# this skips that matters for leaks, the audit still finds (it does not use the hash).
MAX_HAMMING = 12
BLOCK = 7  # coarse features: sums over 7 x 7 pixel blocks (16 numbers for 28 x 28)
CHUNK = 1 << 14  # images handled per vectorized step (bounds temporary memory)
PAIR_CHUNK = 2048  # pairs compared per vectorized step: small enough for the cache (see pair_l1)
SMALL_CHUNK = 512  # images per step of the hash and block sums, on all cores: their temporaries stay in the cache
MAX_CANDIDATES = 4_000_000  # candidate pairs per audit query chunk (Python lists: ~150 MB)


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


def low_dct_basis(size: int, keep: int = 8) -> np.ndarray:
    """(keep, size) float64: the first `keep` rows of the orthonormal DCT-II matrix D.

    dctn(x, norm="ortho") = D_h x D_w^T for an h x w image x, so its top-left corner is
    D_h[:keep] x D_w[:keep]^T: computing only that corner (two matrix products) costs
    about keep / size of the full transform.
    """
    return scipy.fft.dct(np.eye(size), axis=0, norm="ortho")[:keep]


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """uint64 DCT hash: bit k = [c_k > median(c)] over the 8 x 8 lowest frequencies c.

    c = dctn(image)[:8, :8] (orthonormal 2-D DCT-II over the whole image), the classic
    pHash recipe applied to the 28 x 28 image x directly; computed as D8 x D8^T
    (low_dct_basis), batched matrix products that skip the unused frequencies.
    """
    n, h, w = images.shape
    left, right = low_dct_basis(h), low_dct_basis(w).T

    def part(lo: int, hi: int) -> np.ndarray:
        batch = np.asarray(images[lo:hi], dtype=np.float64)
        # float64, rounded: coefficients that are equal in exact arithmetic (symmetric glyphs,
        # ties at the median) compare equal whatever the CPU's rounding, so the hash is the
        # same on every machine and dvc.lock's hash of assignment.csv reproduces in CI.
        # D_h x D_w^T for every image as two large products (one BLAS call each), not m small ones:
        rows = (batch.reshape(-1, w) @ right).reshape(len(batch), h, -1)  # x D_w^T: (m, h, 8)
        low = np.tensordot(rows, left, axes=([1], [1])).transpose(0, 2, 1)  # D_h (.): (m, 8, 8)
        low = np.round(low, 6).reshape(len(batch), 64)
        bits = low > np.median(low, axis=1, keepdims=True)
        return np.packbits(bits, axis=1).view(">u8").ravel()

    with parallel.blas_threads(1):  # small chunks on all cores instead: 3x faster at 530k
        return np.concatenate([np.empty(0, dtype=np.uint64), *parallel.map_chunks(part, n, SMALL_CHUNK)])


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
    first, second = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for offset in range(1, window + 1):
        active = active[run_end[active] - active > offset]
        if not len(active):
            break
        first.append(order[active])
        second.append(order[active + offset])
    # columns kept apart until the end: min/max across a 2-wide axis is slow in numpy
    a, b = np.concatenate(first), np.concatenate(second)
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)  # int64: lexsort gives intp


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Distinct rows of an (m, 2) array of (i < j) pairs, sorted (via 1-D codes: fast)."""
    if not len(pairs):
        return np.empty((0, 2), dtype=np.int64)
    base = np.int64(pairs.max()) + 1
    codes = np.sort(pairs[:, 0].astype(np.int64) * base + pairs[:, 1])
    codes = codes[np.r_[True, codes[1:] != codes[:-1]]]  # np.unique's hash path is slower
    return np.stack([codes // base, codes % base], axis=1)


def pair_l1(rows: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """sum |rows[i] - rows[j]| (int64) for each pair (i, j), on all cores.

    max - min is |a - b| in the rows' own dtype (uint8 pixels need no widening), and the
    sums are int32: every row here is pixels or sums of pixels, whose L1 is at most
    h x w x 255 (199,920 for 28 x 28; int32 holds up to 2^31). PAIR_CHUNK pairs at a time,
    so the temporaries stay in the cache (three times faster than 16k pairs at a time,
    measured on uint8 rows).
    """

    def part(lo: int, hi: int) -> np.ndarray:
        a, b = np.take(rows, pairs[lo:hi, 0], axis=0), np.take(rows, pairs[lo:hi, 1], axis=0)
        high = np.maximum(a, b)
        high -= np.minimum(a, b, out=a)
        return high.sum(axis=1, dtype=np.int32)

    parts = parallel.map_chunks(part, len(pairs), PAIR_CHUNK)
    return np.concatenate([np.empty(0, dtype=np.int32), *parts]).astype(np.int64)


def l1_distances(images: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Pixel L1 distance sum |a - b| (int64) for each pair of row indices."""
    return pair_l1(flat(images), pairs)


@dataclass
class Sketches:
    """Block sums of every image, computed once: lower bounds of pixel L1 distances."""

    coarse: np.ndarray  # (n, 16) int32: sums over 7 x 7 blocks
    fine: np.ndarray  # (n, 196) int16: sums over 2 x 2 blocks


def sketches(images: np.ndarray) -> Sketches:
    return Sketches(block_sums(images), fine_sums(images))


def fine_sums(images: np.ndarray) -> np.ndarray:
    """(n, (h/2) * (w/2)) int16 sums over 2 x 2 pixel blocks (row-major): four strided adds,
    SMALL_CHUNK images at a time on all cores."""
    n, h, w = images.shape
    out = np.empty((n, h // 2, w // 2), dtype=np.int16)

    def fill(lo: int, hi: int) -> None:
        batch, tile = images[lo:hi], out[lo:hi]
        np.add(batch[:, 0::2, 0::2], batch[:, 0::2, 1::2], out=tile, dtype=np.int16)
        tile += batch[:, 1::2, 0::2]
        tile += batch[:, 1::2, 1::2]

    parallel.map_chunks(fill, n, SMALL_CHUNK)
    return out.reshape(n, (h // 2) * (w // 2))


def hash_candidates(phashes: np.ndarray, max_hamming: int = MAX_HAMMING) -> np.ndarray:
    """Candidate near-duplicate pairs: equal in at least one 16-bit band of the hash and
    differing in at most max_hamming of its 64 bits.

    Within a big bucket, neighbours in full-hash order are the ones paired.
    """
    found = []
    for shift in range(0, HASH_BITS, BAND_BITS):
        band = (phashes >> np.uint64(shift)) & np.uint64((1 << BAND_BITS) - 1)
        pairs = pairs_sharing_key(band, phashes)
        bits_apart = np.bitwise_count(phashes[pairs[:, 0]] ^ phashes[pairs[:, 1]])
        found.append(pairs[bits_apart <= max_hamming])
    return unique_pairs(np.concatenate(found))


def near_pairs(images: np.ndarray, pairs: np.ndarray, max_l1: int, sk: Sketches | None = None) -> np.ndarray:
    """The pairs whose pixel L1 distance is <= max_l1, through the cascade of lower bounds
    (7 x 7 sums, 2 x 2 sums, pixels); `sk` = sketches(images) if already computed."""
    sk = sketches(images) if sk is None else sk
    for rows in (sk.coarse, sk.fine, flat(images)):
        pairs = pairs[pair_l1(rows, pairs) <= max_l1]
    return pairs


def block_sums(images: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """(n, (h/block) * (w/block)) int32 sums over block x block pixel tiles (row-major).

    By the triangle inequality, sum_blocks |S_a - S_b| <= sum_pixels |a - b|: the L1
    distance between block sums is a lower bound of the pixel L1 distance.
    """
    n, h, w = images.shape
    out = np.empty((n, (h // block) * (w // block)), dtype=np.int32)

    def fill(lo: int, hi: int) -> None:  # SMALL_CHUNK images at a time on all cores
        batch = images[lo:hi]
        # rows first, then columns: two cheap reductions instead of one over a 5-D view
        strips = batch.reshape(len(batch), h // block, block, w).sum(axis=2, dtype=np.int32)
        tiles = strips.reshape(len(batch), h // block, w // block, block).sum(axis=3)
        out[lo:hi] = tiles.reshape(len(batch), -1)

    parallel.map_chunks(fill, n, SMALL_CHUNK)
    return out


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
        best = min(expected, key=expected.get)
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


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over n nodes and (m, 2) edges: component label of each node.

    Labels are numbered in order of each component's smallest node (deterministic).
    """
    graph = scipy.sparse.coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber by first occurrence so the numbering never depends on scipy's traversal
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[labels]
