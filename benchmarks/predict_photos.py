"""predict on letters as a person photographs or scans them, against the same glyphs in notMNIST form.

    python -m benchmarks.predict_photos [--root .] [--fonts Liberation] [--per-font 2]

Letters A-J are drawn in fonts outside the training data (the built-in data use DejaVu and
Pillow's font; Liberation comes with Chromium). Each is drawn twice:
- photo-like: dark on a light, unevenly lit ground, at a random size and place on a larger
  canvas, blurred a little, with sensor noise, saved as JPEG;
- notMNIST form: the same glyph cropped to its box, white on black, fitted into 28x28 (PNG).
Both go through tools.predict's own code, with its preprocessing and with --as-is, and so do
the test images of the pipeline run in --root (its models/model.npz and the test split of its
data/ingested images), which are in the form the model knows: the cost of the preprocessing
on them. The table shows the accuracy of each, with its 95% Wilson interval, and how many
images were warned about. Seeded: the same fonts and seed give the same images.
"""

from __future__ import annotations

import argparse
import json
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from notmnist.data.synthetic import LETTERS, find_fonts
from notmnist.learning.model import load_model
from notmnist.plumbing import contracts
from notmnist.report.statistics import wilson_interval
from tools.predict import predict_batch

DRAW_PX = 160  # glyphs are drawn this large, then scaled to their place on the canvas


def glyph_mask(font: ImageFont.FreeTypeFont, letter: str) -> np.ndarray:
    """The letter white on black, cropped to its ink (uint8)."""
    canvas = Image.new("L", (2 * DRAW_PX, 2 * DRAW_PX), 0)
    ImageDraw.Draw(canvas).text((DRAW_PX // 2, DRAW_PX // 4), letter, fill=255, font=font)
    return np.asarray(canvas.crop(canvas.getbbox()))


def encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo_like(mask: np.ndarray, rng: np.random.Generator) -> bytes:
    """The glyph dark on light at a random size and place on a larger canvas, as a JPEG."""
    width, height = int(rng.integers(160, 641)), int(rng.integers(120, 481))
    scale = rng.uniform(0.15, 0.7) * min(width, height) / max(mask.shape)
    size = (max(4, round(mask.shape[1] * scale)), max(4, round(mask.shape[0] * scale)))
    alpha = np.zeros((height, width), np.float32)
    left, top = int(rng.integers(0, width - size[0] + 1)), int(rng.integers(0, height - size[1] + 1))
    glyph = Image.fromarray(mask).resize(size, Image.Resampling.LANCZOS)
    alpha[top : top + size[1], left : left + size[0]] = np.asarray(glyph, np.float32) / 255
    # uneven light: the paper's level tilts by up to 40 gray levels across the picture
    ys, xs = np.mgrid[0:height, 0:width] / max(width, height)
    slope = rng.uniform(-40, 40, 2)
    paper = rng.uniform(180, 245) + slope[0] * (xs - 0.5) + slope[1] * (ys - 0.5)
    pixels = paper * (1 - alpha) + rng.uniform(0, 80) * alpha
    blurred = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0, 1.5))
    )
    noisy = np.asarray(blurred, np.float32) + rng.normal(0, rng.uniform(1, 6), (height, width))
    return encoded(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "JPEG", quality=int(rng.integers(50, 91)))


def notmnist_form(mask: np.ndarray) -> bytes:
    """The glyph cropped to its box, white on black, fitted into 28x28 (aspect kept), as a PNG."""
    scale = contracts.SIZE / max(mask.shape)
    size = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
    out = Image.new("L", (contracts.SIZE, contracts.SIZE), 0)
    corner = ((contracts.SIZE - size[0]) // 2, (contracts.SIZE - size[1]) // 2)
    out.paste(Image.fromarray(mask).resize(size, Image.Resampling.LANCZOS), corner)
    return encoded(np.asarray(out), "PNG")


def pictures(fonts: list[str], per_font: int, seed: int) -> tuple[list[bytes], list[bytes], list[str]]:
    """(photo-like JPEGs, notMNIST-form PNGs, letters), one pair per font, letter and draw."""
    rng = np.random.default_rng(seed)
    photos, forms, letters = [], [], []
    for path in fonts:
        font = ImageFont.truetype(path, DRAW_PX)
        for letter in LETTERS:
            mask = glyph_mask(font, letter)
            for _ in range(per_font):
                photos.append(photo_like(mask, rng))
                forms.append(notmnist_form(mask))
                letters.append(letter)
    return photos, forms, letters


def test_images(root: Path) -> tuple[list[bytes], list[str]] | None:
    """The run's test images as PNGs and their letters, or None if the run has none."""
    images, index = root / contracts.INGESTED / "images.npy", root / contracts.NORMALIZED / "test_index.npy"
    if not (images.exists() and index.exists()):
        return None
    rows = np.load(index, allow_pickle=False)
    labels = np.load(root / contracts.INGESTED / "labels.npy", allow_pickle=False)[rows]
    classes = json.loads((root / contracts.INGESTED / "classes.json").read_text())
    pixels = np.load(images, mmap_mode="r", allow_pickle=False)
    return [encoded(np.asarray(pixels[i]), "PNG") for i in rows], [classes[k] for k in labels]


def scored(images: list[bytes], letters: list[str], model, as_is: bool) -> tuple[float, tuple[float, float], int]:
    """(accuracy, its 95% interval, images warned about) of predict on `images`."""
    results = predict_batch([(str(i), data, None) for i, data in enumerate(images)], model, as_is=as_is)
    predicted = [model.classes[int(np.argmax(proba))] for _, proba, _ in results]
    right = int(np.sum(np.array(predicted) == np.array(letters)))
    return right / len(letters), wilson_interval(right, len(letters)), sum(w is not None for *_, w in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("."), help="a pipeline run's folder (default: here)")
    parser.add_argument("--fonts", default="Liberation", help="font family outside the training data")
    parser.add_argument("--per-font", type=int, default=2, help="photo-like draws per font and letter")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fonts = [f for f in find_fonts(args.fonts) if "dejavu" not in f.lower()]
    if not fonts:
        raise SystemExit(f"no {args.fonts} fonts in the system font folders (Debian: apt-get install fonts-liberation)")
    model = load_model(args.root / contracts.MODEL)
    photos, forms, letters = pictures(fonts, args.per_font, args.seed)
    sets = [
        (f"photo-like (JPEG, dark on light, on a canvas), {len(letters)}", photos, letters),
        (f"notMNIST form, the same {len(letters)}", forms, letters),
    ]
    if tests := test_images(args.root):
        sets.append((f"the run's own test images, {len(tests[0])}", *tests))
    print(f"{len(fonts)} {args.fonts} fonts; model {args.root / contracts.MODEL}\n")
    print("| pictures | predict | accuracy | 95% CI | warned |")
    print("|---|---|---|---|---|")
    for kind, images, truth in sets:
        for mode, as_is in [("default", False), ("--as-is", True)]:
            accuracy, (low, high), warned = scored(images, truth, model, as_is)
            print(f"| {kind} | {mode} | {accuracy:.1%} | {low:.1%}-{high:.1%} | {warned} |")


if __name__ == "__main__":
    main()
