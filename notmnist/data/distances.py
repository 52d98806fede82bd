"""Pixel L1 distances between images, their cheap lower bounds, and the near-duplicate threshold.

Distances are pixel L1 sums: `l1(a, b) = sum |a - b|` over the 784 pixels, so the
threshold near_mean_abs_diff (mean |a - b| in 0-255 units) is `max_l1` as a sum.

A candidate pair is verified through a cascade of lower bounds, cheapest first: the L1
distance between sums over 7 x 7 blocks, between sums over 2 x 2 blocks, then the pixels.
A sum over a block cannot differ between two images by more than their pixels in it do,
so each bound is at most the pixel distance and rules out no true pair; the 2 x 2 sums
also rule out what the coarse sums cannot (noisy copies of one glyph, one-pixel shifts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from notmnist.plumbing import parallel

BLOCK = 7  # coarse features: sums over 7 x 7 pixel blocks (16 numbers for 28 x 28)
PAIR_CHUNK = 2048  # pairs compared per vectorized step: small enough for the cache (see pair_l1)
SMALL_CHUNK = 512  # images per step of the hash and block sums, on all cores: their temporaries stay in the cache


def max_l1(near_mean_abs_diff: float, pixels: int) -> int:
    """The near-duplicate threshold as a pixel L1 sum: mean |a - b| <= near_mean_abs_diff
    over `pixels` pixels. The sums are integers, so the bound rounds down; 1e-9 keeps a
    product such as 0.29 * 784 = 227.36 - 3e-14 from losing a whole level to float error."""
    return math.floor(near_mean_abs_diff * pixels + 1e-9)


def flat(images: np.ndarray) -> np.ndarray:
    """(n, h, w) or (n, h*w) uint8 -> (n, h*w) view."""
    return images.reshape(len(images), -1)


def pair_l1(rows: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """sum |rows[i] - rows[j]| (int64) for each pair (i, j), on all cores.

    max - min is |a - b| in the rows' own dtype (uint8 pixels need no widening), and the
    sums are int32: every row here is pixels or sums of pixels, whose L1 is at most
    h x w x 255 (199,920 for 28 x 28; int32 holds up to 2^31). PAIR_CHUNK pairs at a time,
    so the temporaries stay in the cache (docs/benchmarks.md).
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


def near_pairs(images: np.ndarray, pairs: np.ndarray, max_l1: int, sk: Sketches | None = None) -> np.ndarray:
    """The pairs whose pixel L1 distance is <= max_l1, through the cascade of lower bounds
    (7 x 7 sums, 2 x 2 sums, pixels); `sk` = sketches(images) if already computed."""
    sk = sketches(images) if sk is None else sk
    for rows in (sk.coarse, sk.fine, flat(images)):
        pairs = pairs[pair_l1(rows, pairs) <= max_l1]
    return pairs
