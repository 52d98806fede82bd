"""Stage split: duplicate groups, then a seeded, stratified, leak-free train/valid/test split.

    python -m stages.split    (DVC stage `split`; params: split)

Reads data/ingested/{images,labels}.npy and classes.json; writes data/split/assignment.csv
(one row per ingested image: its hashes, duplicate group, split and why it was dropped)
and metrics/split.json. How: notmnist/data/splitting.py.
"""

from notmnist.data import splitting
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.params import load

# metrics/split.json, what DVC tracks; the rest (per class, duplicate details, audit rounds)
# goes to metrics/split_details.json
HEADLINE = (
    "train.n",
    "valid.n",
    "test.n",
    "dropped.n",
    "duplicates.exact_removed",
    "duplicates.near_removed",
    "label_conflicts",
    "leaks.exact",
    "leaks.near",
)


def main() -> None:
    params = load(splitting.Split)
    data = contracts.read_ingested()
    table, metrics = splitting.split_images(
        data.images,
        data.labels,
        data.classes,
        seed=params.seed,
        valid=params.valid,
        test=params.test,
        near_mean_abs_diff=params.near_mean_abs_diff,
        blank=params.blank,
        label_conflicts=params.label_conflicts,
        keep_one_per_group=params.keep_one_per_group,
    )
    contracts.write_assignment(table)
    contracts.write_metrics("split", metrics, HEADLINE)
    print(
        f"split: train {metrics['train']['n']}, valid {metrics['valid']['n']}, test {metrics['test']['n']}, "
        f"dropped {metrics['dropped']['n']}; label conflicts {metrics['label_conflicts']}, leaks 0"
    )


if __name__ == "__main__":
    cli.run_stage(main, __doc__)
