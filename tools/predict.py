"""Use the trained model on image files: the predicted letter and the top-3 probabilities.

    python -m tools.predict PATH... [--json] [--model models/model.npz] [--resize fit]

PATHs are image files, folders (searched recursively, in sorted order) or .zip/.tar/.tar.gz
archives. Images are decoded by the same function as ingest (notmnist.data.images.to_glyph) and
normalized with the statistics stored in the model file, so models/model.npz alone is
enough. A path that is missing or cannot be used is reported on stderr and the others are
still predicted; the exit code is 0 if at least one image was predicted, 1 if none could be,
2 if the model file is missing or broken.
"""

from __future__ import annotations

import json
import sys
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np

from notmnist.data.images import RESIZE_POLICIES, SkippedImage, to_glyph
from notmnist.data.normalization import apply
from notmnist.data.sources import iter_members
from notmnist.learning.model import Model, load_model
from notmnist.learning.softmax import predict_proba
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.errors import UserError

BATCH = 1024  # images decoded and predicted at a time, so output streams for big folders
TOP = 3
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")


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
                yield str(path), path.read_bytes(), None
            except OSError as e:
                yield str(path), None, f"unreadable: {e.strerror or e}"


def predict_batch(
    batch: list[tuple[str, bytes | None, str | None]], model: Model, resize: str = "fit"
) -> list[tuple[str, np.ndarray | str]]:
    """(name, class probabilities) per input, or (name, reason) for one that cannot be used."""
    decoded: list[tuple[str, np.ndarray | str]] = []
    for name, data, reason in batch:
        if reason is not None:
            decoded.append((name, reason))
            continue
        assert data is not None, "an input without a reason has its bytes"
        try:
            decoded.append((name, to_glyph(data, resize=resize)))
        except SkippedImage as e:
            decoded.append((name, e.reason))
    good = [i for i, (_, glyph) in enumerate(decoded) if not isinstance(glyph, str)]
    if good:
        x = apply(np.stack([decoded[i][1] for i in good]), model.norm)
        for i, proba in zip(good, predict_proba(x, model.W, model.b)):
            decoded[i] = (decoded[i][0], proba)
    return decoded


def line(name: str, proba: np.ndarray, classes: list[str], as_json: bool) -> str:
    top = np.argsort(-proba, kind="stable")[:TOP]
    if as_json:
        return json.dumps(
            {
                "path": name,
                "predicted": classes[top[0]],
                "probabilities": {c: round(float(p), 6) for c, p in zip(classes, proba)},
                "top3": [[classes[k], round(float(proba[k]), 6)] for k in top],
            },
            ensure_ascii=False,
        )
    return f"{name}  {classes[top[0]]}  (" + ", ".join(f"{classes[k]} {proba[k]:.1%}" for k in top) + ")"


def arguments():
    parser = cli.parser(__doc__)
    parser.add_argument("paths", metavar="PATH", nargs="+", type=Path, help="image files, folders or archives")
    parser.add_argument("--json", action="store_true", help="one JSON object per line per image")
    parser.add_argument("--model", type=Path, default=contracts.MODEL, help="model file (default: %(default)s)")
    parser.add_argument(
        "--resize",
        choices=RESIZE_POLICIES,
        default="fit",
        help="images that are not 28x28, as ingest.resize (default: %(default)s)",
    )
    return parser


def main(args) -> int:
    model = load_model(args.model)
    predicted = seen = 0
    stream = inputs(args.paths)
    while batch := list(islice(stream, BATCH)):
        for name, result in predict_batch(batch, model, args.resize):
            seen += 1
            if isinstance(result, str):
                print(f"warning: {name}: cannot predict: {result}", file=sys.stderr)
            else:
                print(line(name, result, model.classes, args.json))
                predicted += 1
        sys.stdout.flush()
    if not seen:
        print(f"warning: no files found in {', '.join(map(str, args.paths))}", file=sys.stderr)
    return 0 if predicted else 1


if __name__ == "__main__":
    cli.run(main, arguments())
