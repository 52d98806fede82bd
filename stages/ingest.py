"""Stage ingest: every file of `ingest.source` -> 28x28 uint8 glyphs, labels and a manifest.

    python -m stages.ingest    (DVC stage `ingest`; params: ingest)

The source is a folder ROOT/<class>/<files> or a .tar/.tar.gz/.tgz/.zip of it, read in
place. Writes data/ingested/{images.npy,labels.npy,classes.json,manifest.csv} (one manifest
row per file seen: ok, or skipped with its reason) and metrics/ingest.json.
How: notmnist/data/ingestion.py.
"""

import sys

from notmnist.data import ingestion
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.parallel import all_cores
from notmnist.plumbing.params import load

# metrics/ingest.json, what DVC tracks; the rest (per class, reasons, warnings) goes to
# metrics/ingest_details.json
HEADLINE = ("n_files", "n_images", "n_skipped")


def main() -> None:
    params = load(ingestion.Ingest)
    result = ingestion.ingest(
        params.source, params.resize, params.workers or all_cores(), params.max_pixels, progress=True
    )
    contracts.write_ingested(result.data, result.manifest)
    contracts.write_metrics("ingest", result.metrics, HEADLINE)
    m = result.metrics
    print(
        f"ingest: {m['n_files']} files: {m['n_images']} images (classes: {m['n_classes']}), "
        f"{m['n_skipped']} skipped (reasons in {contracts.INGESTED / 'manifest.csv'})"
    )
    for warning in m["warnings"]:
        print(f"ingest: warning: {warning}", file=sys.stderr)


if __name__ == "__main__":
    cli.run_stage(main, __doc__)
