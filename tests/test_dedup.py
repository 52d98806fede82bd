"""Hashing, candidate search, the audit's exact pair search and union-find (notmnist.data: hashing, candidates,
distances, audit, grouping)."""

import numpy as np
import pytest
import scipy.fft
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from notmnist.data import audit, candidates, distances, grouping, hashing
from tests.helpers import brute_force_pairs, near_blank_pairs


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.just(28), st.just(28)), elements=st.integers(0, 3)), st.data())
def test_exact_hashes_are_equal_exactly_for_equal_pixels(images, data):
    copies = data.draw(st.lists(st.integers(0, len(images) - 1), max_size=5))
    images = np.concatenate([images, images[copies]])
    hashes = hashing.exact_hashes(images)
    rows = images.reshape(len(images), -1)
    same_pixels = (rows[:, None, :] == rows[None, :, :]).all(axis=2)
    assert ((hashes[:, None] == hashes[None, :]) == same_pixels).all()


def test_perceptual_hash_ignores_brightness_shift_but_not_another_glyph():
    rng = np.random.default_rng(0)
    images = rng.integers(20, 230, (50, 28, 28)).astype(np.uint8)
    brighter = images + np.uint8(5)
    h, h_brighter = hashing.perceptual_hashes(images), hashing.perceptual_hashes(brighter)
    assert (h == h_brighter).all()
    assert len(np.unique(h)) == len(images)


def test_low_dct_basis_gives_the_low_corner_of_dctn():
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (5, 28, 28)).astype(np.float64)
    basis = hashing.low_dct_basis(28).astype(np.float64)
    expected = scipy.fft.dctn(images, axes=(1, 2), norm="ortho")[:, :8, :8]
    assert np.allclose(basis @ images @ basis.T, expected, atol=1e-3)


def test_hash_candidates_skip_pairs_too_many_bits_apart():
    base = np.uint64(0x0123456789ABCDEF)
    near = base ^ np.uint64(0b111 << 60)  # 3 bits apart, in band 3
    far = base ^ np.uint64(((1 << candidates.MAX_HAMMING + 1) - 1) << 16)  # 13 bits, in band 1
    pairs = candidates.hash_candidates(np.array([base, near, far], dtype=np.uint64))
    assert pairs.tolist() == [[0, 1]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=0, max_size=40))
def test_pairs_sharing_key_finds_every_pair_in_small_buckets(keys):
    keys = np.array(keys, dtype=np.int64)
    if len(keys) and np.bincount(keys).max() > candidates.WINDOW + 1:
        keys = keys[: candidates.WINDOW + 1]
    pairs = candidates.unique_pairs(candidates.pairs_sharing_key(keys, np.zeros_like(keys)))
    expected = {(i, j) for i in range(len(keys)) for j in range(i + 1, len(keys)) if keys[i] == keys[j]}
    assert set(map(tuple, pairs.tolist())) == expected


def test_pairs_sharing_key_caps_a_huge_bucket_to_window_neighbours():
    keys = np.zeros(5000, dtype=np.int64)
    pairs = candidates.pairs_sharing_key(keys, np.arange(5000))
    assert len(pairs) <= 5000 * candidates.WINDOW
    assert (pairs[:, 1] - pairs[:, 0] <= candidates.WINDOW).all()
    # still one connected chain: union-find joins the whole bucket
    assert len(np.unique(grouping.components(5000, pairs))) == 1


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, (2, 28, 28)))
def test_block_sum_distance_is_a_lower_bound_of_pixel_distance(pair):
    assert distances.block_sums(pair)[0, 5] == pair[0, 7:14, 7:14].sum()
    sums = distances.block_sums(pair).astype(np.int64)
    pixel_l1 = np.abs(pair[0].astype(np.int64) - pair[1]).sum()
    assert np.abs(sums[0] - sums[1]).sum() <= pixel_l1


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, (2, 28, 28)))
def test_two_by_two_sums_are_the_pixel_sums_and_a_lower_bound_of_pixel_distance(pair):
    fine = distances.fine_sums(pair).astype(np.int64)
    assert fine.shape == (2, 196) and fine[0, 14 * 3 + 5] == pair[0, 6:8, 10:12].sum()
    pixel_l1 = np.abs(pair[0].astype(np.int64) - pair[1]).sum()
    assert np.abs(fine[0] - fine[1]).sum() <= pixel_l1


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3 * 784))
def test_the_bound_cascade_keeps_exactly_the_pairs_within_the_pixel_threshold(seed, max_l1):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (20, 28, 28))
    images = np.clip(np.concatenate([base, base + rng.integers(-4, 5, base.shape)]), 0, 255).astype(np.uint8)
    pairs = np.array([(i, j) for i in range(40) for j in range(i + 1, 40)])
    brute = np.abs(images[pairs[:, 0]].astype(np.int64) - images[pairs[:, 1]]).sum(axis=(1, 2))
    assert distances.near_pairs(images, pairs, max_l1).tolist() == pairs[brute <= max_l1].tolist()


@pytest.mark.parametrize(
    "chunk, candidates, pair_chunk", [(audit.CHUNK, audit.MAX_CANDIDATES, distances.PAIR_CHUNK), (7, 5, 3)]
)  # and many small chunks
def test_close_pairs_finds_every_cross_side_pair_that_brute_force_finds(chunk, candidates, pair_chunk, monkeypatch):
    monkeypatch.setattr(audit, "CHUNK", chunk)
    monkeypatch.setattr(audit, "MAX_CANDIDATES", candidates)
    monkeypatch.setattr(distances, "PAIR_CHUNK", pair_chunk)
    rng = np.random.default_rng(1)
    glyphs = rng.integers(0, 256, (60, 28, 28)).astype(np.uint8)
    shifted = np.clip(glyphs[:20].astype(np.int16) + rng.integers(-3, 4, (20, 28, 28)), 0, 255)
    images = np.concatenate([glyphs, shifted.astype(np.uint8), near_blank_pairs(rng, 30)])
    side = rng.integers(-1, 3, len(images))  # -1: takes no part (a dropped image)
    for max_l1 in (0, 784, 2 * 784, 3 * 784):
        pairs, dist = audit.close_pairs(images, side, max_l1)
        expected = brute_force_pairs(images, side, max_l1)
        assert set(map(tuple, pairs.tolist())) == expected
        assert (dist <= max_l1).all()
        focus = rng.random(len(images)) < 0.3
        pairs, _ = audit.close_pairs(images, side, max_l1, focus)
        assert set(map(tuple, pairs.tolist())) == {p for p in expected if focus[list(p)].any()}
    assert len(expected) > 10  # the test data really has cross-side pairs


def test_close_pairs_finds_a_pair_exactly_at_the_threshold_spread_over_two_blocks():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 200, (28, 28)).astype(np.uint8)
    at, beyond = a.copy(), a.copy()
    at[:7, 7:21] += 16  # 7 x 7 blocks 1 and 2, +784 each: L1 1568
    beyond[:7, 7:21] += 16
    beyond[27, 27] += 1  # L1 = 1569
    images = np.stack([a, at, a, beyond])
    pairs, dist = audit.close_pairs(images, np.array([0, 1, 0, 1]), max_l1=1568)
    assert pairs.tolist() == [[0, 1], [1, 2]] and dist.tolist() == [1568, 1568]


def test_l1_distances_are_exact_up_to_the_largest_possible():
    black, white = np.zeros((1, 28, 28), np.uint8), np.full((1, 28, 28), 255, np.uint8)
    images = np.concatenate([black, white, black])
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    assert distances.l1_distances(images, pairs).tolist() == [784 * 255, 0, 784 * 255]


def test_near_pairs_keeps_only_pairs_within_the_pixel_threshold():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)
    close = a.copy()
    close[0, :2, :] ^= 1  # L1 = 56
    far = 255 - a
    images = np.concatenate([a, close, far])
    pairs = distances.near_pairs(images, np.array([[0, 1], [0, 2], [1, 2]]), max_l1=56)
    assert pairs.tolist() == [[0, 1]]


def test_wide_blocks_are_sums_over_7_by_14_pixels():
    images = np.random.default_rng(5).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    wide = audit.wide_blocks(distances.block_sums(images))
    expected = images.reshape(3, 4, 7, 2, 14).sum(axis=(2, 4)).reshape(3, 8)
    assert (wide == expected).all()


def test_components_are_numbered_by_their_first_image():
    labels = grouping.components(6, np.array([[4, 5], [1, 3], [3, 0]]))
    assert labels.tolist() == [0, 0, 1, 0, 2, 2]


def test_hash_candidates_keep_pairs_exactly_max_hamming_bits_apart():
    base = np.uint64(0x0123456789ABCDEF)
    edge = base ^ np.uint64(((1 << candidates.MAX_HAMMING) - 1) << 16)  # 12 bits, in band 1: band 3 shared
    assert candidates.hash_candidates(np.array([base, edge], dtype=np.uint64)).tolist() == [[0, 1]]


@pytest.mark.parametrize("mean_abs_diff, l1", [(2, 1568), (0.29, 227), (1 / 784, 1), (0, 0)])
def test_the_threshold_as_an_l1_sum_rounds_down_but_never_loses_a_level_to_float_error(mean_abs_diff, l1):
    # 1/784 * 784 is 0.9999999999999999 in floats: the pair one gray level apart still counts
    assert distances.max_l1(mean_abs_diff, 784) == l1
