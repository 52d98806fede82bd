"""Two hashes of a uint8 image: exact (its pixels' bytes) and perceptual (its lowest frequencies).

Equal pixels give equal hashes of both kinds; the perceptual hash of a near copy (a few gray
levels of noise, a brighter scan) differs in few of its 64 bits, which is what
notmnist.data.candidates looks for.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.fft

from notmnist.data.distances import SMALL_CHUNK, flat
from notmnist.plumbing import parallel

HASH_BITS = 64


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

    with parallel.blas_threads(1):  # small chunks on all cores instead, each in the cache
        return np.concatenate([np.empty(0, dtype=np.uint64), *parallel.map_chunks(part, n, SMALL_CHUNK)])
