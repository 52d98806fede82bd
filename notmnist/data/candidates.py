"""Candidate near-duplicate pairs from the perceptual hash, never all pairs.

Images whose 64-bit hashes share one of four 16-bit bands fall in one bucket (multi-index
hashing); within a bucket, pairs are proposed between neighbours only, so one huge bucket
cannot explode. The pixels decide afterwards (notmnist.data.distances.near_pairs).
"""

from __future__ import annotations

import numpy as np

from notmnist.data.hashing import HASH_BITS

BAND_BITS = 16  # 4 bands: a pair whose hashes differ in <= 3 bits shares a band (pigeonhole)
WINDOW = 8  # in a bucket larger than WINDOW + 1, pair each image with its next WINDOW only
# Hash candidates further apart than this (of 64 bits) are not verified: near copies differ
# in few bits, most strangers that share a band in many (docs/benchmarks.md); whatever this
# skips that matters for leaks, the audit still finds (it does not use the hash).
MAX_HAMMING = 12


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
