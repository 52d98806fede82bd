"""notmnist.data.glyphs: a picture of a letter brought to notMNIST form (light on dark, cropped,
centred, its longer side GLYPH_PX of 28)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from notmnist.data.glyphs import GLYPH_PX, ink_threshold, otsu_threshold, smoothed, to_notmnist, untilted


def bar_letter(height: int = 300, width: int = 400, ground: float = 220.0, ink: float = 30.0) -> np.ndarray:
    """An 'L' of two bars, dark on a light ground, off centre on a large canvas."""
    pixels = np.full((height, width), ground)
    pixels[40:160, 250:270] = ink  # the stem, 120 tall
    pixels[140:160, 250:310] = ink  # the foot, 60 wide
    return pixels.astype(np.uint8)


def ink_box(glyph: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(glyph > 128)
    return rows.min(), rows.max(), cols.min(), cols.max()


@given(st.integers(0, 150), st.integers(60, 105), st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_otsus_threshold_falls_between_two_gray_levels(low, gap, seed):
    rng = np.random.default_rng(seed)
    pixels = np.where(rng.random((40, 40)) < 0.3, low + gap, low) + rng.integers(-3, 4, (40, 40))
    assert low + 3 <= otsu_threshold(np.clip(pixels, 0, 255).astype(np.uint8)) < low + gap - 3


def test_a_dark_letter_on_a_light_canvas_becomes_a_light_letter_filling_a_dark_box():
    glyph = to_notmnist(bar_letter())
    assert glyph.warning is None and glyph.pixels.shape == (28, 28) and glyph.pixels.dtype == np.uint8
    top, bottom, left, right = ink_box(glyph.pixels)
    assert bottom - top + 1 == GLYPH_PX  # the longer side (the stem) fills the box
    assert abs((top + bottom) / 2 - 13.5) <= 1 and abs((left + right) / 2 - 13.5) <= 1  # centred
    assert glyph.pixels[0, 0] == 0 and glyph.pixels.max() == 255


def test_a_bold_light_glyph_filling_its_box_is_not_inverted():
    bold = np.full((28, 28), 10, np.uint8)  # a bold white H: most of the box and its border is ink
    bold[:, :10] = bold[:, 18:] = bold[11:17, 10:18] = 230
    glyph = to_notmnist(bold)
    assert glyph.pixels[14, 5] > 128 and glyph.pixels[3, 14] < 128


def test_a_light_letter_on_dark_is_not_inverted():
    dark_on_light = to_notmnist(bar_letter())
    light_on_dark = to_notmnist(255 - bar_letter())
    assert np.abs(dark_on_light.pixels.astype(int) - light_on_dark.pixels).max() <= 2


def test_uneven_light_and_jpeg_like_noise_do_not_move_the_crop():
    rng = np.random.default_rng(0)
    clean = to_notmnist(bar_letter())
    tilt = np.linspace(-45, 45, 400)[None, :] + np.linspace(-20, 20, 300)[:, None]
    noisy = np.clip(bar_letter() + tilt + rng.normal(0, 6, (300, 400)), 0, 255).astype(np.uint8)
    glyph = to_notmnist(noisy)
    assert glyph.warning is None
    assert np.abs(np.subtract(ink_box(glyph.pixels), ink_box(clean.pixels))).max() <= 1


def test_the_tilt_of_the_ground_is_taken_out_and_a_glyph_filling_its_box_left_alone():
    ramp = 20 + np.linspace(0, 80, 200)[None, :] + np.zeros((150, 1))
    ramp[50:100, 90:110] = 240  # a light letter on the dark, unevenly lit ground
    ramp = ramp.astype(np.uint8)
    flat = untilted(ramp, smoothed(ramp))
    ground = np.ones(ramp.shape, bool)
    ground[50:100, 90:110] = False
    assert np.ptp(flat[ground]) <= 2 and abs(flat[ground].mean() - ramp[ground].mean()) <= 2
    bold = np.full((28, 28), 230, np.uint8)
    bold[8:20, 8:20] = 10  # the dark counter of a bold light glyph: most of the border is ink
    assert untilted(bold, smoothed(bold)) is bold


def test_a_blank_picture_is_warned_about_even_with_noise_and_uneven_light():
    rng = np.random.default_rng(1)
    blank = 200 + np.linspace(0, 40, 300)[None, :] + rng.normal(0, 4, (200, 300))
    glyph = to_notmnist(np.clip(blank, 0, 255).astype(np.uint8))
    assert "blank image" in glyph.warning and glyph.pixels.shape == (28, 28)
    assert "blank image" in to_notmnist(np.full((50, 50), 255, np.uint8)).warning


def test_specks_without_a_letter_leave_nothing_after_cropping():
    pixels = np.full((200, 200), 230, np.uint8)
    pixels[tuple(np.random.default_rng(2).integers(0, 200, (2, 40)))] = 20  # single dark pixels
    glyph = to_notmnist(pixels)
    assert "nothing is left" in glyph.warning


def test_specks_beside_a_letter_are_left_out_of_the_crop():
    letter = bar_letter()
    speckled = letter.copy()
    speckled[[5, 290, 250], [5, 20, 390]] = 30
    assert np.array_equal(to_notmnist(speckled).pixels, to_notmnist(letter).pixels)


@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 2**32 - 1), st.sampled_from(["noise", "flat", "bars"]))
@settings(max_examples=60, deadline=None)
def test_any_picture_becomes_a_28x28_glyph_or_a_warned_one_never_an_error(height, width, seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        pixels = rng.integers(0, 256, (height, width))
    elif kind == "flat":
        pixels = np.full((height, width), rng.integers(0, 256))
    else:
        pixels = np.where(rng.random((height, 1)) < 0.3, 20, 230) + np.zeros((1, width), int)
    glyph = to_notmnist(pixels.astype(np.uint8))
    assert glyph.pixels.shape == (28, 28) and glyph.pixels.dtype == np.uint8
    assert glyph.warning is None or glyph.warning.split(":")[0] in ("blank image", "no letter found")


def test_a_small_letter_on_a_large_noisy_page_is_found():
    rng = np.random.default_rng(3)
    page = np.clip(215 + rng.normal(0, 5, (400, 600)), 0, 255)
    page[200:216, 300:304] = page[212:216, 300:310] = 30  # an 'L' 16 pixels tall
    glyph = to_notmnist(page.astype(np.uint8))
    assert glyph.warning is None
    top, bottom, left, right = ink_box(glyph.pixels)
    assert bottom - top + 1 >= GLYPH_PX - 1 and 14 <= right - left + 1 <= 20  # the L's 10:16 shape, filling the box


def test_when_the_ink_is_too_few_pixels_for_otsu_the_threshold_is_halfway_to_it():
    rng = np.random.default_rng(4)
    ground = np.clip(40 + rng.normal(0, 6, (400, 600)), 0, 255)
    ground[100:104, 100:105] = 220  # 20 pixels of ink among 240,000
    pixels = np.rint(ground).astype(np.uint8)
    assert otsu_threshold(pixels) < 60  # Otsu splits the ground's noise
    assert 100 < ink_threshold(pixels) < 200
