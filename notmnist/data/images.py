"""The one image decoder: any bytes -> a 28x28 8-bit gray glyph, or SkippedImage(reason).

Used by ingest (every file of a data set) and predict (a user's picture), so both see
exactly the same pixels. Pixel values are those of the file after conversion to gray;
nothing is inverted or normalized here.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from notmnist.plumbing.contracts import SIZE

RESIZE_POLICIES = ("fit", "stretch", "skip")
# Not a policy of ingest's: the gray pixels at the file's own size, for predict to find the glyph in.
NATIVE = "native"
# Refuse images with more pixels than this before decoding them: a tiny file can declare
# a huge canvas (decompression bomb). 64 MP is far above any glyph and below Pillow's own
# hard limit (2 x Image.MAX_IMAGE_PIXELS), so ours is the one that fires.
DEFAULT_MAX_PIXELS = 64_000_000
# Refuse images with a side longer than this before decoding them. Resizing costs memory
# and time in proportion to the long side (Lanczos weights for every source pixel an
# output pixel spans), so a 1 x 30,000,000 strip, well inside the pixel cap, costs
# gigabytes and seconds. WebP stops at 16383; 16384 is 585 glyphs side by side.
MAX_SIDE = 16384
# Formats a data set plausibly holds. Pillow's other plugins are not tried: some have no
# magic bytes (so random bytes "decode"), and EPS would be handed to Ghostscript.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")


class SkippedImage(Exception):
    """The bytes are not a usable image; `reason` is 'kind: detail', e.g. 'empty file'."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def to_glyph(data: bytes, *, resize: str = "fit", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to a (28, 28) uint8 gray array.

    Every mode becomes 8-bit gray: colour via Pillow's luma (L = 0.299 R + 0.587 G +
    0.114 B), transparency composited on white, 16/32-bit integers scaled by 255/65535,
    1-bit to 0/255, animations use their first frame. Sizes other than 28x28 follow
    `resize`: 'fit' scales the longer side to 28 keeping the aspect ratio and pads with
    the background (median of the image's border), 'stretch' scales to 28x28, 'skip'
    refuses, NATIVE keeps the image's own size. Images over max_pixels or with a side over
    MAX_SIDE are refused from their header, before decoding: time and memory are bounded by
    both. Raises SkippedImage, and nothing else, for anything it cannot use.
    """
    if resize not in (*RESIZE_POLICIES, NATIVE):
        raise ValueError(f"resize must be one of {RESIZE_POLICIES} or {NATIVE!r}, not {resize!r}")
    if not data:
        raise SkippedImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise SkippedImage(f"decompression bomb: {width}x{height} pixels, over the cap of {max_pixels}")
                if max(width, height) > MAX_SIDE:
                    raise SkippedImage(f"bad shape: {width}x{height} pixels, a side longer than the cap of {MAX_SIDE}")
                if resize == "skip" and im.size != (SIZE, SIZE):
                    raise SkippedImage(f"wrong size: {width}x{height}, not {SIZE}x{SIZE} (resize: skip)")
                im.seek(0)
                gray = _to_gray(im)
        sized = gray if resize == NATIVE else _to_size(gray, resize)
        return np.array(sized, dtype=np.uint8)  # writable, owns its memory
    except SkippedImage:
        raise
    except Image.UnidentifiedImageError:
        raise SkippedImage("not an image: format not recognised") from None
    except Image.DecompressionBombError as e:
        raise SkippedImage(f"decompression bomb: {e}") from None
    except MemoryError:  # an image within the caps, in a process with less memory than they allow
        raise SkippedImage(f"out of memory: lower ingest.max_pixels (now {max_pixels})") from None
    except Exception as e:  # any decoder failure on hostile bytes is a skip, not a crash
        raise SkippedImage(f"corrupt or truncated: {type(e).__name__}: {e}") from None


_SIXTEEN_TO_EIGHT = ((np.arange(65536, dtype=np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _to_gray(im: Image.Image) -> np.ndarray:
    """8-bit gray pixels of the current frame (loads the image)."""
    if im.mode == "L":
        return np.asarray(im)
    if im.mode.startswith("I"):  # I;16 variants and 32-bit I: round(v * 255 / 65535), exactly
        wide = np.asarray(im)
        if wide.dtype.kind != "u" or wide.dtype.itemsize != 2:
            wide = np.clip(wide, 0, 65535).astype(np.uint16)
        return _SIXTEEN_TO_EIGHT[wide]  # a table: no 32-bit copy and division per pixel
    if im.mode == "F":
        return np.rint(np.clip(np.asarray(im), 0, 255)).astype(np.uint8)
    if im.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in im.info:
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("L"))
    if im.mode in ("1", "P", "RGB"):
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB").convert("L"))  # CMYK, YCbCr, LAB, ...


def _to_size(gray: np.ndarray, resize: str) -> np.ndarray:
    height, width = gray.shape
    if (height, width) == (SIZE, SIZE):
        return np.ascontiguousarray(gray)
    im = Image.fromarray(gray)
    if resize == "stretch":
        return np.asarray(im.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    scale = SIZE / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    canvas = Image.new("L", (SIZE, SIZE), int(np.median(border)))
    canvas.paste(im.resize(new_size, Image.Resampling.LANCZOS), ((SIZE - new_size[0]) // 2, (SIZE - new_size[1]) // 2))
    return np.asarray(canvas)


def decode_many(
    datas: list[bytes], resize: str = "fit", max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, list[str | None]]:
    """to_glyph over a batch: (k, 28, 28) glyphs (zeros where skipped) and k reasons (None = ok).

    One call is one task for a worker process: a batch keeps the IPC per image small.
    """
    glyphs = np.zeros((len(datas), SIZE, SIZE), np.uint8)
    reasons: list[str | None] = []
    for i, data in enumerate(datas):
        try:
            glyphs[i] = to_glyph(data, resize=resize, max_pixels=max_pixels)
            reasons.append(None)
        except SkippedImage as e:
            reasons.append(e.reason)
    return glyphs, reasons
