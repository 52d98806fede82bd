"""Stage synthesize: the built-in notMNIST-style data set (letters A-J from the machine's fonts).

    python -m stages.synthesize    (DVC stage builtin/dvc.yaml:synthesize; params: synthesize)

Writes data/raw/synthetic/<letter>/NNNNN.png (28x28 gray, with planted duplicates and
broken files) and metrics/synthesize.json (fonts used, planted counts).
How: notmnist/data/synthetic.py.
"""

from pathlib import Path

from notmnist.data import synthetic
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.files import write_files, write_json
from notmnist.plumbing.parallel import all_cores
from notmnist.plumbing.params import load


def main() -> None:
    params = load(synthetic.Synthesize)
    fonts, refused = synthetic.usable_fonts(synthetic.find_fonts(params.fonts))
    files, planted = synthetic.synthesize(
        params.per_class,
        params.seed,
        fonts,
        params.duplicates,
        params.near_duplicates,
        params.broken_files,
        workers=all_cores(),
    )
    write_files(contracts.SYNTHETIC, files)
    write_json(
        contracts.METRICS / "synthesize.json",
        {
            "n_files": len(files),
            "per_class": params.per_class,
            "n_fonts": len(fonts),
            "fonts": [Path(f).name if f != synthetic.BUNDLED else f for f in fonts],
            "fonts_refused": [Path(f).name for f in refused],
            "planted": planted,
        },
    )


if __name__ == "__main__":
    cli.run_stage(main, __doc__)
