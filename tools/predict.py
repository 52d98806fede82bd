"""Use the trained model on image files: the predicted letter and the top-3 probabilities.

    python -m tools.predict PATH... [--json] [--model models/model.npz] [--as-is [--resize fit]]

PATHs are image files, folders (searched recursively, in sorted order) or .zip/.tar/.tar.gz
archives. Images are decoded by the same function as ingest (notmnist.data.images.to_glyph)
and brought to the notMNIST form the model was trained on (notmnist.data.glyphs): light
letter on a dark ground, cropped to the letter, centred, 28x28. So a photo or scan of a
letter, dark on light anywhere on a larger picture, works; --as-is skips this for images
already in that form. A picture with no letter found in it (blank, or nothing left after
cropping) is still predicted, with a warning on stderr (and "warning" in --json).
Normalization uses the statistics stored in the model file, so models/model.npz alone is
enough. Only regular files are read (a FIFO, device or socket is reported, never opened for
reading), each up to the size cap of ingest. A path that is missing or cannot be used is
reported on stderr and the others are still predicted; names are printed with control
characters escaped. The exit code is 0 if at least one image was predicted, 1 if none could
be, 2 if the model file is missing or broken.
"""

from __future__ import annotations

import json
import sys
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np

from notmnist.data.glyphs import Glyph, to_notmnist
from notmnist.data.images import NATIVE, RESIZE_POLICIES, SkippedImage, to_glyph
from notmnist.data.members import DEFAULT_LIMITS
from notmnist.data.normalization import apply
from notmnist.data.sources import EXTENSIONS, iter_members
from notmnist.learning.model import Model, load_model
from notmnist.learning.softmax import predict_proba
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.errors import UserError
from notmnist.plumbing.files import Unreadable, read_regular

BATCH = 1024  # images decoded and predicted at a time, so output streams for big folders
TOP = 3
ARCHIVES = tuple(extension for extension, _ in EXTENSIONS)


def inputs(paths: list[Path]) -> Iterator[tuple[str, bytes | None, str | None]]:
    """(name, bytes, None) for every file to predict, or (name, None, reason) for one not read.

    Folders and archives are read by the same code as ingest (notmnist.data.sources), so links,
    hidden files and unsafe archive members are refused in the same way.
    """
    for path in paths:
        if path.is_dir() or path.name.lower().endswith(ARCHIVES):
            try:
                for member in iter_members(path):
                    if not member.is_dir:
                        name = str(path / member.path) if path.is_dir() else f"{path}:{member.path}"
                        yield name, member.data, member.reason
            except UserError as e:
                yield str(path), None, str(e)
        elif not path.exists():
            yield str(path), None, "no such file or folder"
        else:
            try:
                yield str(path), read_regular(path, DEFAULT_LIMITS.file_bytes), None
            except Unreadable as e:
                yield str(path), None, e.reason


def glyph_of(data: bytes, as_is: bool = False, resize: str = "fit") -> Glyph:
    """The glyph the model sees: decoded, then brought to notMNIST form unless `as_is`.

    Raises SkippedImage for bytes that are not a usable image.
    """
    if as_is:
        return Glyph(to_glyph(data, resize=resize))
    return to_notmnist(to_glyph(data, resize=NATIVE))


def predict_batch(
    batch: list[tuple[str, bytes | None, str | None]], model: Model, resize: str = "fit", as_is: bool = False
) -> list[tuple[str, np.ndarray | str, str | None]]:
    """(name, class probabilities, warning or None) per input, or (name, reason, None) for one
    that cannot be used."""
    decoded: list[tuple[str, Glyph | str]] = []
    for name, data, reason in batch:
        if reason is not None:
            decoded.append((name, reason))
            continue
        assert data is not None, "an input without a reason has its bytes"
        try:
            decoded.append((name, glyph_of(data, as_is, resize)))
        except SkippedImage as e:
            decoded.append((name, e.reason))
    glyphs = [glyph for _, glyph in decoded if isinstance(glyph, Glyph)]
    x = apply(np.stack([g.pixels for g in glyphs]), model.norm) if glyphs else None
    probabilities = iter(predict_proba(x, model.W, model.b) if x is not None else [])
    return [
        (name, next(probabilities), glyph.warning) if isinstance(glyph, Glyph) else (name, glyph, None)
        for name, glyph in decoded
    ]


def line(name: str, proba: np.ndarray, classes: list[str], as_json: bool, warning: str | None = None) -> str:
    """One image's output line; nothing in it reaches the terminal as a control character."""
    top = np.argsort(-proba, kind="stable")[:TOP]
    if as_json:
        row = {
            "path": name,
            "predicted": classes[top[0]],
            "probabilities": {c: round(float(p), 6) for c, p in zip(classes, proba)},
            "top3": [[classes[k], round(float(proba[k]), 6)] for k in top],
        }
        if warning:
            row["warning"] = warning
        text = json.dumps(row, ensure_ascii=False)
        # JSON escapes C0 controls itself, not DEL, C1 or bidi overrides: then all as \uXXXX
        return text if cli.printable(text) == text else json.dumps(row)
    text = f"{name}  {classes[top[0]]}  (" + ", ".join(f"{classes[k]} {proba[k]:.1%}" for k in top) + ")"
    return cli.printable(text)


def arguments():
    parser = cli.parser(__doc__)
    parser.add_argument("paths", metavar="PATH", nargs="+", type=Path, help="image files, folders or archives")
    parser.add_argument("--json", action="store_true", help="one JSON object per line per image")
    parser.add_argument("--model", type=Path, default=contracts.MODEL, help="model file (default: %(default)s)")
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="images already in notMNIST form (light letter filling a dark square): no cropping or inverting",
    )
    parser.add_argument(
        "--resize",
        choices=RESIZE_POLICIES,
        default="fit",
        help="with --as-is, images that are not 28x28, as ingest.resize (default: %(default)s)",
    )
    return parser


def main(args) -> int:
    model = load_model(args.model)
    predicted = seen = 0
    stream = inputs(args.paths)
    while batch := list(islice(stream, BATCH)):
        for name, result, warning in predict_batch(batch, model, args.resize, args.as_is):
            seen += 1
            if isinstance(result, str):
                print(cli.printable(f"warning: {name}: cannot predict: {result}"), file=sys.stderr)
                continue
            if warning:
                print(cli.printable(f"warning: {name}: unlike the training data, a guess: {warning}"), file=sys.stderr)
            print(line(name, result, model.classes, args.json, warning))
            predicted += 1
        sys.stdout.flush()
    if not seen:
        print(cli.printable(f"warning: no files found in {', '.join(map(str, args.paths))}"), file=sys.stderr)
    return 0 if predicted else 1


if __name__ == "__main__":
    cli.run(main, arguments())
