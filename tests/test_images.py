"""notmnist.data.images.to_glyph: every odd image is converted to 28x28 gray or skipped with a reason."""

import io
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from notmnist.data.images import MAX_SIDE, SkippedImage, decode_many, to_glyph
from tests.helpers import NOISE_PNG, encode, png_declaring


def reason_of(data: bytes, **kwargs) -> str:
    with pytest.raises(SkippedImage) as caught:
        to_glyph(data, **kwargs)
    return caught.value.reason


def test_a_28x28_gray_png_comes_back_pixel_for_pixel():
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    glyph = to_glyph(encode(Image.fromarray(pixels)))
    assert glyph.dtype == np.uint8 and glyph.shape == (28, 28)
    np.testing.assert_array_equal(glyph, pixels)


def test_rgb_becomes_luma():
    glyph = to_glyph(encode(Image.new("RGB", (28, 28), (255, 0, 0))))
    assert np.all(glyph == 76)  # 0.299 * 255


def test_rgba_is_composited_on_white():
    im = Image.new("RGBA", (28, 28), (0, 0, 0, 0))
    im.putpixel((5, 5), (0, 0, 0, 255))
    glyph = to_glyph(encode(im))
    assert glyph[0, 0] == 255 and glyph[5, 5] == 0


def test_la_half_transparent_black_is_mid_gray():
    glyph = to_glyph(encode(Image.new("LA", (28, 28), (0, 128))))
    assert np.all(np.abs(glyph.astype(int) - 127) <= 1)


def test_16_bit_gray_is_scaled_to_8_bit():
    wide = np.zeros((28, 28), np.uint16)
    wide[0, 0], wide[0, 1] = 65535, 32896
    glyph = to_glyph(encode(Image.fromarray(wide)))
    assert (glyph[0, 0], glyph[0, 1], glyph[1, 1]) == (255, 128, 0)


def test_palette_with_transparency_shows_white_where_transparent():
    im = Image.new("P", (28, 28), 0)
    im.putpalette([0, 0, 0, 10, 10, 10] + [0] * 762)
    im.putpixel((3, 3), 1)
    glyph = to_glyph(encode(im, transparency=0))
    assert glyph[0, 0] == 255 and glyph[3, 3] == 10


def test_one_bit_becomes_0_and_255():
    im = Image.new("1", (28, 28), 0)
    im.putpixel((2, 2), 1)
    glyph = to_glyph(encode(im))
    assert set(np.unique(glyph)) == {0, 255} and glyph[2, 2] == 255


def test_cmyk_jpeg_becomes_gray():
    glyph = to_glyph(encode(Image.new("CMYK", (28, 28), (0, 0, 0, 0)), "JPEG", quality=95))
    assert glyph.shape == (28, 28) and glyph.min() > 240  # no ink = white


def test_animated_gif_uses_its_first_frame():
    frames = [Image.new("L", (28, 28), 0), Image.new("L", (28, 28), 255)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert to_glyph(data).max() == 0


def test_one_pixel_image_fills_the_glyph():
    assert np.all(to_glyph(encode(Image.new("L", (1, 1), 77))) == 77)


def test_large_image_is_scaled_down():
    im = Image.new("L", (5000, 5000), 0)
    im.paste(255, (0, 0, 2500, 5000))  # left half white
    glyph = to_glyph(encode(im))
    assert glyph[:, :13].min() > 200 and glyph[:, 15:].max() < 50


def test_fit_keeps_the_aspect_ratio_and_pads_with_the_border_colour():
    im = Image.new("L", (84, 28), 200)
    im.paste(50, (28, 0, 56, 28))
    glyph = to_glyph(encode(im), resize="fit")
    assert np.all(glyph[:9] == 200) and np.all(glyph[-9:] == 200)  # 84x28 -> 28x9 + padding
    assert abs(int(glyph[14, 14]) - 50) <= 2


def test_stretch_fills_the_whole_glyph():
    im = Image.new("L", (84, 28), 200)
    im.paste(50, (28, 0, 56, 28))
    glyph = to_glyph(encode(im), resize="stretch")
    assert abs(int(glyph[0, 14]) - 50) <= 2 and abs(int(glyph[27, 14]) - 50) <= 2


def test_skip_policy_refuses_other_sizes_but_not_28x28():
    assert reason_of(encode(Image.new("L", (64, 64))), resize="skip").startswith("wrong size: 64x64")
    assert to_glyph(encode(Image.new("L", (28, 28))), resize="skip").shape == (28, 28)


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"", "empty file"),
        (b"hello, I am a text file named .png\n", "not an image"),
        (NOISE_PNG[: len(NOISE_PNG) // 2], "corrupt or truncated"),
        (png_declaring(100_000, 100_000), "decompression bomb"),
        (png_declaring(9_000, 9_000), "decompression bomb"),  # over our cap, under Pillow's hard limit
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n", "not an image"),  # never run Ghostscript
    ],
)
def test_unusable_bytes_are_skipped_with_a_reason(data, kind):
    assert reason_of(data).startswith(kind)


@pytest.mark.parametrize("width, height", [(1, 30_000_000), (30_000_000, 1), (16385, 28)])
def test_a_side_over_the_cap_is_refused_from_the_header_in_no_time(width, height):
    start = time.perf_counter()
    assert reason_of(png_declaring(width, height)) == (
        f"bad shape: {width}x{height} pixels, a side longer than the cap of {MAX_SIDE}"
    )
    assert time.perf_counter() - start < 0.5


def test_a_long_strip_at_the_side_cap_is_still_converted():
    strip = np.zeros((2, MAX_SIDE), np.uint8)
    strip[:, : MAX_SIDE // 2] = 255
    glyph = to_glyph(encode(Image.fromarray(strip)))
    assert glyph.shape == (28, 28) and glyph[13, :13].min() > 200 and glyph[13, 15:].max() < 50  # 28x1, centred


def test_the_pixel_cap_is_a_parameter():
    assert reason_of(encode(Image.new("L", (28, 28))), max_pixels=100).startswith("decompression bomb")


def test_decode_many_keeps_order_and_reasons():
    good = encode(Image.new("L", (28, 28), 7))
    glyphs, reasons = decode_many([good, b"", good])
    assert reasons[0] is None and reasons[1] == "empty file" and reasons[2] is None
    assert glyphs[0, 0, 0] == 7 and glyphs[1].max() == 0


VALID_PNG = encode(Image.new("LA", (28, 28), (90, 200)))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.binary(max_size=500).map(lambda tail: b"\x89PNG\r\n\x1a\n" + tail),
        st.lists(st.tuples(st.integers(0, len(VALID_PNG) - 1), st.integers(0, 255)), max_size=8).map(
            lambda edits: bytes(_edit(VALID_PNG, edits))
        ),
    )
)
def test_arbitrary_bytes_never_raise_anything_but_skipped_image(data):
    try:
        glyph = to_glyph(data)
    except SkippedImage as e:
        assert e.reason
    else:
        assert glyph.shape == (28, 28) and glyph.dtype == np.uint8


def _edit(data: bytes, edits) -> bytearray:
    out = bytearray(data)
    for position, value in edits:
        out[position] = value
    return out
