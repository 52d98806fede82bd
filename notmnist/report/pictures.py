"""Pictures of a trained model, drawn with Pillow so they open anywhere, offline.

Each function returns a PIL image; `save_png` writes one atomically. Tiles are the
28x28 glyphs scaled up with nearest-neighbour so single pixels stay visible, and every
picture carries its own title and labels (Pillow's bundled font, no system fonts).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from notmnist.plumbing.contracts import SIZE
from notmnist.plumbing.files import atomic_path

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MARGIN = 12


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def save_png(image: Image.Image, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def diverging(values: np.ndarray) -> np.ndarray:
    """Map values in [-1, 1] to RGB uint8: blue (-1) -> white (0) -> red (+1)."""
    v = np.clip(values, -1.0, 1.0)[..., None]
    white = np.array([255.0, 255.0, 255.0])
    red = np.array([200.0, 30.0, 30.0])
    blue = np.array([30.0, 70.0, 200.0])
    rgb = np.where(v >= 0, white + v * (red - white), white - v * (blue - white))
    return rgb.round().astype(np.uint8)


def montage(tiles: np.ndarray, captions: list[list[str]], *, title: list[str], columns: int, scale: int) -> Image.Image:
    """Lay out `tiles` (n, 28, 28) gray or (n, 28, 28, 3) RGB uint8 in a grid, captions under each."""
    tiles = np.asarray(tiles, dtype=np.uint8)
    if tiles.ndim == 3:
        tiles = np.repeat(tiles[..., None], 3, axis=-1)
    n = len(tiles)
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    tile = SIZE * scale
    caption_font, title_font = font(max(12, tile // 8)), font(18)
    line = int(caption_font.getbbox("Ag")[3]) + 4
    cell_w, cell_h = tile + MARGIN, tile + line * max((len(c) for c in captions), default=0) + MARGIN
    title_h = (int(title_font.getbbox("Ag")[3]) + 6) * len(title) + MARGIN
    width = max(columns * cell_w + MARGIN, max(int(title_font.getbbox(t)[2]) for t in title) + 2 * MARGIN)
    image = Image.new("RGB", (width, title_h + rows * cell_h + MARGIN), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(title):
        draw.text((MARGIN, MARGIN + i * (title_h - MARGIN) // len(title)), text, fill=INK, font=title_font)
    for i in range(n):
        x = MARGIN + (i % columns) * cell_w
        y = title_h + (i // columns) * cell_h
        image.paste(Image.fromarray(tiles[i], "RGB").resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        draw.rectangle((x - 1, y - 1, x + tile, y + tile), outline=(160, 160, 160))
        for j, text in enumerate(captions[i]):
            draw.text((x, y + tile + 3 + j * line), text, fill=INK, font=caption_font)
    return image


def weights_picture(W: np.ndarray, classes: list[str], scale: int = 7) -> Image.Image:
    """The classic softmax picture: column k of W (784,) shown as a 28x28 template.

    Each template is scaled by its own largest |w|: red pixels are evidence for the letter
    (a bright pixel there raises its score), blue pixels evidence against it.
    """
    templates = np.asarray(W, dtype=np.float64).T.reshape(len(classes), SIZE, SIZE)
    peak = np.abs(templates).max(axis=(1, 2), keepdims=True)
    tiles = diverging(templates / np.where(peak > 0, peak, 1.0))
    return montage(
        tiles,
        [[c] for c in classes],
        columns=5,
        scale=scale,
        title=[
            "Learned weights: one 28x28 template per letter (column k of W)",
            "red: a bright pixel here raises the letter's score, blue: lowers it (each scaled to its max |w|)",
        ],
    )


def mistakes_picture(
    images: np.ndarray,
    actual: list[str],
    predicted: list[str],
    confidence: np.ndarray,
    scale: int = 4,
    columns: int = 9,
) -> Image.Image:
    """The given mistakes (most confident first), each captioned with true/predicted letter."""
    title = [
        f"The {len(images)} most confident mistakes on the test set",
        "caption: true letter -> predicted letter, model confidence in its prediction",
    ]
    if len(images) == 0:
        return montage(np.zeros((0, SIZE, SIZE), np.uint8), [], columns=1, scale=scale, title=["No mistakes to show"])
    captions = [[f"true {a} -> {p}", f"{c:.0%} sure"] for a, p, c in zip(actual, predicted, confidence)]
    return montage(images, captions, columns=columns, scale=scale, title=title)


def confusion_picture(matrix: np.ndarray, classes: list[str], cell: int = 56) -> Image.Image:
    """Confusion matrix heat map: rows = actual letter, columns = predicted letter, counts in cells.

    Diagonal cells are blue with depth = recall of the letter; off-diagonal cells are red
    with depth = share of the actual letter, relative to the largest such share, so the
    most frequent confusions stand out even when they are a few percent.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    k = len(classes)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    off = np.where(np.eye(k, dtype=bool), 0.0, share)
    off_scaled = off / off.max() if off.max() > 0 else off
    colours = np.where(
        np.eye(k, dtype=bool)[..., None],
        diverging(-np.diag(share))[:, None, :].repeat(k, axis=1),
        diverging(off_scaled),
    )
    label_font, count_font, title_font = font(20), font(max(11, cell // 4)), font(18)
    title = [
        "Confusion matrix on the test set (counts)",
        "rows: actual letter, columns: predicted; blue diagonal = recall,",
        "red = share of the row, darkest red = most frequent confusion",
    ]
    title_h = len(title) * 24 + 2 * MARGIN
    top_axis = 60
    left = max(top_axis, 20 + max(int(label_font.getbbox(name)[2]) for name in classes))
    width = max(left + k * cell + MARGIN, 2 * MARGIN + max(int(title_font.getbbox(t)[2]) for t in title))
    image = Image.new("RGB", (width, title_h + top_axis + k * cell + MARGIN), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(title):
        draw.text((MARGIN, MARGIN + 24 * i), text, fill=INK, font=title_font)
    y0 = title_h + top_axis
    draw.text((left + k * cell // 2, title_h + 2), "predicted", fill=INK, font=title_font, anchor="mt")
    draw.text((MARGIN, y0 - 24), "actual", fill=INK, font=title_font)
    for j, name in enumerate(classes):
        draw.text((left + j * cell + cell // 2, y0 - 6), name, fill=INK, font=label_font, anchor="mb")
        draw.text((left - 10, y0 + j * cell + cell // 2), name, fill=INK, font=label_font, anchor="rm")
    for r in range(k):
        for c in range(k):
            x, y = left + c * cell, y0 + r * cell
            colour = tuple(int(v) for v in colours[r, c])
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=colour, outline=(220, 220, 220))
            ink = (255, 255, 255) if sum(colour) < 400 else INK
            draw.text((x + cell // 2, y + cell // 2), str(matrix[r, c]), fill=ink, font=count_font, anchor="mm")
    return image
