"""Stage normalize: uint8 images -> float32 rows of 784 features, from train statistics only.

    python -m stages.normalize    (DVC stage `normalize`; params: normalize)

Reads data/ingested/{images,labels}.npy, classes.json and data/split/assignment.csv; writes
data/normalized/{train,valid,test}_{x,y,index}.npy (features, labels, and each example's
row in images.npy), data/normalized/stats.json and metrics/normalize.json.
How: notmnist/data/normalization.py.
"""

from notmnist.data import normalization
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.files import write_json
from notmnist.plumbing.params import load


def main() -> None:
    method = load(normalization.Normalize).method
    data = contracts.read_ingested(mmap=True)
    rows = contracts.read_assignment(len(data.images))
    norm = normalization.fit(data.images, rows["train"], method)
    after = {}
    for name in contracts.SPLITS:
        path = contracts.normalized_file(name, "x")
        mean, std = normalization.write_features(path, data.images, rows[name], norm)
        contracts.write_labels(name, data.labels[rows[name]], rows[name])
        after[name] = {"n": len(rows[name]), "mean": mean, "std": std}
    contracts.write_stats(norm, data.classes)
    write_json(contracts.METRICS / "normalize.json", {"method": method, **after})


if __name__ == "__main__":
    cli.run_stage(main, __doc__)
