"""A person's picture of a letter brought to the notMNIST convention, the form the model knows.

notMNIST glyphs are light on dark, cropped to the letter, which nearly fills the 28x28 box,
roughly centred, its aspect kept (notmnist/data/synthetic.py draws the built-in data the same
way). A photo or scan is usually dark on light, the letter anywhere on a larger canvas, with
JPEG noise and uneven light. `to_notmnist` finds the letter by Otsu's threshold, crops to it,
and redraws it in that form; `Glyph.warning` says when nothing letter-like was found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from notmnist.plumbing.contracts import SIZE

# The letter's longer side in the 28x28 box: 22-28 pixels in the built-in data, nearly 28 in
# notMNIST; benchmarks/predict_photos.py measures the choice on both.
GLYPH_PX = 27
# Pictures are searched at most this large: a letter that is a thirtieth of a photo still has
# some 30 pixels, and the search stays fast on a 12-megapixel photo.
WORK_PX = 1024
# Fewer gray levels than this between ink and background: a blank picture, not a faint letter.
MIN_CONTRAST = 32
# Blots smaller than this share of the largest one are JPEG noise or dust, not part of the letter.
MIN_PART = 0.05
# The smallest blot a letter makes: a lone dark pixel, smoothed, covers 3x3; a letter, even in a
# 28x28 box, covers many times that. With no larger blot nothing is left after cropping.
MIN_INK_PX = 25
# At least this share of the border lighter than halfway: a light page around the letter.
LIGHT_BORDER = 0.9
# The brightest ink is taken at this percentile, so a few hot pixels do not set the white level.
INK_PERCENTILE = 90

BLANK = "blank image: no letter stands out from the background"
NOTHING_LEFT = "no letter found: nothing is left after cropping to the ink"


@dataclass(frozen=True)
class Glyph:
    """A 28x28 uint8 light-on-dark glyph; `warning` is None, or why the model may not know it."""

    pixels: np.ndarray
    warning: str | None = None


def otsu_threshold(gray: np.ndarray) -> int:
    """The gray level t that best splits `gray` (uint8) into two classes, <= t and > t.

    Otsu's method: t maximises the between-class variance w0 w1 (mu0 - mu1)^2, computed for
    every t at once from the cumulative histogram.
    """
    p = np.bincount(gray.ravel(), minlength=256) / gray.size
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0[-1] * w0 - m0) ** 2 / (w0 * (1 - w0))
    return int(np.argmax(np.nan_to_num(between[:-1], nan=-1.0)))


def untilted(gray: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """`gray`, light ink on a dark ground, with the tilt of its ground taken out: uneven light
    on a page is a slope across it.

    The slope is a plane fitted to the border pixels on the ground's side of halfway (`smooth`
    is `gray` smoothed), fitted again without those far from the first fit; the mean level
    stays. A picture whose border is less than half ground, a glyph that fills its box, has no
    page to level and comes back as it is.
    """
    edge = np.zeros(gray.shape, bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    ground = edge & (smooth <= (float(smooth.min()) + float(smooth.max())) / 2)
    if ground.sum() < edge.sum() / 2:
        return gray
    height, width = gray.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs -= (width - 1) / 2
    ys -= (height - 1) / 2
    design = np.column_stack([np.ones(ground.sum()), xs[ground], ys[ground]])
    level = gray[ground].astype(np.float64)
    fit = np.linalg.lstsq(design, level, rcond=None)[0]
    residual = np.abs(level - design @ fit)
    close = residual <= 3 * np.median(residual) + 1
    fit = np.linalg.lstsq(design[close], level[close], rcond=None)[0]
    return np.clip(np.rint(gray - (fit[1] * xs + fit[2] * ys)), 0, 255).astype(np.uint8)


def smoothed(gray: np.ndarray) -> np.ndarray:
    """`gray` blurred a little (Gaussian, 1 pixel), so JPEG noise does not split the classes."""
    return np.rint(ndimage.gaussian_filter(gray.astype(np.float32), 1.0)).astype(np.uint8)


def border(gray: np.ndarray) -> np.ndarray:
    """The outermost pixels: ground around a letter on a page, much of it ink on a bold glyph."""
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def light_on_dark(smooth: np.ndarray) -> bool:
    """False only for dark ink on a light ground: nearly all the border (LIGHT_BORDER) is
    lighter than halfway between the darkest and the lightest level.

    A page surrounds its letter, so its border is all ground; a notMNIST glyph fills its box,
    so a bold one has much of its border in ink, and is left as it is. Halfway, not Otsu's
    threshold, as Otsu splits the ground's noise when the letter is small.
    """
    halfway = (float(smooth.min()) + float(smooth.max())) / 2
    return bool(np.mean(border(smooth) > halfway) < LIGHT_BORDER)


def ink_threshold(smooth: np.ndarray) -> float:
    """Otsu's threshold of a light-on-dark picture, unless its two classes lie closer than a
    quarter of the picture's range apart.

    Then Otsu has split the ground's noise, as a small letter on a large picture is too few
    pixels to be a class, and the level halfway from the ground (the median) to the brightest
    ink is used.
    """
    otsu, darkest, brightest = otsu_threshold(smooth), float(smooth.min()), float(smooth.max())
    dark, light = smooth[smooth <= otsu], smooth[smooth > otsu]
    if light.size and dark.size and light.mean() - dark.mean() >= (brightest - darkest) / 4:
        return otsu
    return (float(np.median(smooth)) + brightest) / 2


def ink_box(ink: np.ndarray, sharp: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns holding the letter, or None if there is none.

    `ink` is the smoothed picture's ink mask: its letter is every connected blot at least
    MIN_PART of the largest one, so JPEG specks and dust are left out while the separate parts
    of a letter (a dot, a broken stroke) are kept. The box is that of the unsmoothed picture's
    ink (`sharp`) within those blots, since smoothing spreads the ink by a pixel, which for a
    small letter is a large part of its size.
    """
    labels, n = ndimage.label(ink)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    if sizes.max() < MIN_INK_PX:
        return None
    letter = np.isin(labels, np.flatnonzero(sizes >= MIN_PART * sizes.max()) + 1)
    rows, cols = np.nonzero(letter & sharp if (letter & sharp).any() else letter)
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def centred(crop: np.ndarray) -> np.ndarray:
    """The crop scaled so its longer side is GLYPH_PX, aspect kept, centred on a black 28x28."""
    height, width = crop.shape
    scale = GLYPH_PX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    out = Image.new("L", (SIZE, SIZE), 0)
    corner = ((SIZE - size[0]) // 2, (SIZE - size[1]) // 2)
    out.paste(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS), corner)
    return np.asarray(out)


def working_copy(gray: np.ndarray) -> np.ndarray:
    """`gray` shrunk (area average) so its longer side is at most WORK_PX."""
    if max(gray.shape) <= WORK_PX:
        return gray
    im = Image.fromarray(gray)
    im.thumbnail((WORK_PX, WORK_PX), Image.Resampling.BOX)
    return np.asarray(im)


def to_notmnist(gray: np.ndarray) -> Glyph:
    """A gray picture (uint8, any size) of one letter as a notMNIST glyph.

    Steps: polarity (ink made light), the ground's tilt taken out, Otsu's threshold on a
    lightly smoothed copy (so JPEG noise does not split the classes), the box of the letter's
    blots, levels stretched so the ground is 0 and the ink 255, and the crop centred with its
    longer side GLYPH_PX. A picture without a letter in it (too little contrast, or no blot
    left) comes back resized as it is, with a warning.
    """
    gray = working_copy(np.asarray(gray, dtype=np.uint8))
    if not light_on_dark(smoothed(gray)):
        gray = 255 - gray
    gray = untilted(gray, smoothed(gray))
    smooth = smoothed(gray)
    if int(smooth.max()) - int(smooth.min()) < MIN_CONTRAST:
        return Glyph(centred(gray), BLANK)
    threshold = ink_threshold(smooth)
    ink = smooth > threshold
    ground_level = float(np.median(smooth[~ink])) if (~ink).any() else 0.0
    ink_level = float(np.percentile(smooth[ink], INK_PERCENTILE)) if ink.any() else ground_level
    if ink_level - ground_level < MIN_CONTRAST:
        return Glyph(centred(gray), BLANK)
    box = ink_box(ink, gray > threshold)
    if box is None:
        return Glyph(centred(gray), NOTHING_LEFT)
    stretched = (gray[box].astype(np.float32) - ground_level) * (255 / (ink_level - ground_level))
    return Glyph(centred(np.clip(np.rint(stretched), 0, 255).astype(np.uint8)))
