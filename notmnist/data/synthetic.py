"""The built-in notMNIST-style data set, made the way notMNIST was made.

Each letter A-J is drawn in white on black from every TrueType/OpenType font found in
the system font folders plus Pillow's bundled font (so it works on any machine), with
seeded variation: font, stroke weight, rotation, shear, size, aspect, position, blur,
noise, and a few inverted. Like the real set it has planted flaws for later stages: a
few empty or truncated files, exact duplicates (two of them across letters, i.e. label
conflicts) and near duplicates.

Deterministic: image i of letter L depends only on (seed, L, i // BLOCK) and the
sorted font list, never on the number of processes; PNGs carry no time stamps.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from notmnist.plumbing.contracts import SIZE
from notmnist.plumbing.params import integer, knob, number, text


@dataclass(frozen=True)
class Synthesize:
    """Section synthesize: the built-in data set."""

    SECTION: ClassVar[str] = "synthesize"
    per_class: int = knob(integer(10, 1_000_000))
    seed: int = knob(integer(0, 2**32 - 1))
    fonts: str = knob(text())
    duplicates: float = knob(number(0, 0.2))
    near_duplicates: float = knob(number(0, 0.2))
    broken_files: int = knob(integer(0, 1000))


LETTERS = "ABCDEFGHIJ"
# Machine-wide font folders only (not the user's home), so two users of one machine agree.
FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    os.path.join(os.environ.get("WINDIR", "C:/Windows"), "Fonts"),
)
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
BUNDLED = "Pillow bundled font"
RENDER_PX = 48  # glyphs are drawn large, then transformed and scaled down (anti-aliasing)
BLOCK = 250  # images per task, each with its own generator: a constant, so output never depends on workers
CROSS_LETTER_DUPLICATES = 2
INVERTED = 0.05  # fraction drawn black on white, as some notMNIST fonts are


def find_fonts(family: str = "all", dirs: tuple[str, ...] = FONT_DIRS) -> list[str]:
    """Sorted paths of the font files under `dirs` whose file name starts with `family`
    (any case); "all": every font file, "none": no font file (Pillow's font alone is used).

    Which fonts a machine has changes the data: installing a program can bring a font
    family with it. Naming the family keeps the data the same wherever it is installed.
    """
    if family == "none":
        return []
    found: set[str] = set()
    for top in dirs:
        for folder, _, files in os.walk(top):
            found.update(
                os.path.join(folder, f)
                for f in files
                if f.lower().endswith(FONT_SUFFIXES) and (family == "all" or f.lower().startswith(family.lower()))
            )
    return sorted(found)


@functools.lru_cache(maxsize=None)
def _font(name: str) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if name == BUNDLED:
        return ImageFont.load_default(size=RENDER_PX)
    return ImageFont.truetype(name, RENDER_PX)


def usable_fonts(candidates: list[str]) -> tuple[list[str], list[str]]:
    """(fonts that draw ten distinct, non-empty letters A-J, fonts refused); bundled last."""
    good: list[str] = []
    bad: list[str] = []
    for name in candidates + [BUNDLED]:
        try:
            masks = {_draw(name, letter, 0).tobytes() for letter in LETTERS}
            ok = len(masks) == len(LETTERS) and all(any(m) for m in masks)
        except (OSError, ValueError):  # unreadable font file, or one without these glyphs
            ok = False
        (good if ok else bad).append(name)
    return good, bad


def _draw(font_name: str, letter: str, stroke: int) -> Image.Image:
    canvas = Image.new("L", (2 * RENDER_PX, 2 * RENDER_PX), 0)
    ImageDraw.Draw(canvas).text(
        (RENDER_PX // 2, RENDER_PX // 4), letter, fill=255, font=_font(font_name), stroke_width=stroke, stroke_fill=255
    )
    return canvas


@functools.lru_cache(maxsize=None)
def _padded_glyph(font_name: str, letter: str, stroke: int) -> Image.Image:
    """The drawn letter cropped to its ink plus room to rotate (cached: few distinct ones)."""
    glyph = _draw(font_name, letter, stroke)
    return ImageOps.expand(glyph.crop(glyph.getbbox()), RENDER_PX // 4)


def render(letter_index: int, rng: np.random.Generator, fonts: tuple[str, ...]) -> np.ndarray:
    """One (28, 28) uint8 glyph of a letter, its variation drawn from `rng`."""
    font = fonts[rng.integers(len(fonts))]
    glyph = _padded_glyph(font, LETTERS[letter_index], int(rng.integers(0, 3)))
    # out = A (in - c) + c with A = rotation(angle) @ shear(k) = [[cos, k cos - sin], [sin, k sin + cos]];
    # Pillow wants the inverse map, A^-1 = [[k sin + cos, sin - k cos], [-sin, cos]] (det A = 1).
    # In Python floats, not numpy: a matrix product goes through BLAS, whose kernels round
    # differently on different CPUs, and a last-bit change of the offset moves a pixel.
    angle, k = math.radians(rng.normal(0, 5)), float(rng.normal(0, 0.1))
    sin, cos = math.sin(angle), math.cos(angle)
    (a, b), (c, d) = (k * sin + cos, sin - k * cos), (-sin, cos)
    cx, cy = glyph.width / 2, glyph.height / 2
    affine = (a, b, cx - (a * cx + b * cy), c, d, cy - (c * cx + d * cy))
    glyph = glyph.transform(glyph.size, Image.Transform.AFFINE, affine, Image.Resampling.BILINEAR)
    glyph = glyph.crop(glyph.getbbox())
    # Like notMNIST, the glyph nearly fills the box, roughly centred.
    scale = rng.uniform(22, SIZE) / max(glyph.size)
    aspect = rng.uniform(0.85, 1.15)
    w = _clip(round(glyph.width * scale * aspect), 2, SIZE)
    h = _clip(round(glyph.height * scale), 2, SIZE)
    out = Image.new("L", (SIZE, SIZE), 0)
    left = _clip((SIZE - w) // 2 + int(rng.integers(-2, 3)), 0, SIZE - w)
    top = _clip((SIZE - h) // 2 + int(rng.integers(-2, 3)), 0, SIZE - h)
    out.paste(glyph.resize((w, h), Image.Resampling.LANCZOS), (left, top))
    if rng.random() < 0.5:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    pixels = np.asarray(out, dtype=np.float32) + rng.uniform(0, 15) * rng.standard_normal((SIZE, SIZE), np.float32)
    if rng.random() < INVERTED:
        pixels = 255 - pixels
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _clip(value: int, lo: int, hi: int) -> int:
    """min(max(value, lo), hi) for one int: np.clip on a scalar took a tenth of render()."""
    return min(max(value, lo), hi)


def png_bytes(glyph: np.ndarray) -> bytes:
    buffer = BytesIO()
    Image.fromarray(glyph, "L").save(buffer, format="PNG")  # no metadata chunks, no time stamp
    return buffer.getvalue()


def _render_block(
    letter_index: int, start: int, stop: int, seed: int, fonts: tuple[str, ...]
) -> tuple[np.ndarray, list[bytes]]:
    """Images start..stop-1 of a letter; one generator per block of BLOCK (fixed) images."""
    rng = np.random.default_rng([seed, letter_index, start])
    glyphs = np.stack([render(letter_index, rng, fonts) for _ in range(start, stop)])
    return glyphs, [png_bytes(g) for g in glyphs]


def synthesize(
    per_class: int,
    seed: int,
    fonts: list[str],
    duplicates: float = 0.02,
    near_duplicates: float = 0.02,
    broken_files: int = 4,
    workers: int = 1,
) -> tuple[dict[str, bytes], dict]:
    """The data set as {relative path: PNG bytes} plus counts of what was planted.

    Planted, from a generator seeded by `seed` alone: round(duplicates * per_class)
    exact copies of another image of the same letter per letter (and two across
    letters), round(near_duplicates * per_class) near copies per letter (the source
    plus noise of at most 4 gray levels), and `broken_files` extra files, alternately
    empty and truncated PNGs.
    """
    jobs = [
        (k, start, min(start + BLOCK, per_class), seed, tuple(fonts))
        for k in range(len(LETTERS))
        for start in range(0, per_class, BLOCK)
    ]
    glyphs = np.zeros((len(LETTERS), per_class, SIZE, SIZE), np.uint8)
    pngs: list[list[bytes]] = [[b""] * per_class for _ in LETTERS]
    with ProcessPoolExecutor(max(workers, 1)) as pool:
        for (k, start, stop, *_), (g, p) in zip(jobs, pool.map(_render_block, *zip(*jobs))):
            glyphs[k, start:stop] = g
            pngs[k][start:stop] = p

    rng = np.random.default_rng([seed, 2**31])
    n_exact, n_near = round(duplicates * per_class), round(near_duplicates * per_class)
    counts = {
        "exact_duplicates": 0,
        "cross_letter_duplicates": 0,
        "near_duplicates": 0,
        "empty_files": 0,
        "truncated_files": 0,
    }
    reserved: list[set[int]] = [set() for _ in LETTERS]  # a slot is planted at most once
    for j in range(CROSS_LETTER_DUPLICATES if per_class >= 10 else 0):
        src_letter, dst_letter = 2 * j, 2 * j + 1  # A -> B, C -> D
        src, dst = (int(x) for x in rng.choice(per_class, size=2, replace=False))
        pngs[dst_letter][dst] = pngs[src_letter][src]
        reserved[src_letter].add(src)
        reserved[dst_letter].add(dst)
        counts["cross_letter_duplicates"] += 1
    for k in range(len(LETTERS)):
        free = np.setdiff1d(np.arange(per_class), sorted(reserved[k]))
        picks = rng.choice(free, size=min(len(free), 2 * (n_exact + n_near)), replace=False)
        sources, targets = picks[: len(picks) // 2], picks[len(picks) // 2 :]
        for src, dst in zip(sources[:n_exact], targets[:n_exact]):
            pngs[k][dst] = pngs[k][src]
            counts["exact_duplicates"] += 1
        for src, dst in zip(sources[n_exact:], targets[n_exact:]):
            jitter = rng.integers(-4, 5, (SIZE, SIZE))
            jitter[SIZE // 2, SIZE // 2] = 4 if glyphs[k, src, SIZE // 2, SIZE // 2] < 128 else -4
            pngs[k][dst] = png_bytes(np.clip(glyphs[k, src] + jitter, 0, 255).astype(np.uint8))
            counts["near_duplicates"] += 1

    files = {f"{LETTERS[k]}/{i:05d}.png": pngs[k][i] for k in range(len(LETTERS)) for i in range(per_class)}
    for j in range(broken_files):
        path = f"{LETTERS[j % len(LETTERS)]}/{per_class + j // len(LETTERS):05d}.png"
        if j % 2 == 0:
            files[path] = b""
            counts["empty_files"] += 1
        else:
            intact = files[f"{LETTERS[j % len(LETTERS)]}/{j % per_class:05d}.png"]
            files[path] = intact[: len(intact) // 2]
            counts["truncated_files"] += 1
    return files, counts
