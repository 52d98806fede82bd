"""Stage optimizers: every optimizer on the same data, seed and budget, side by side.

    python -m stages.optimizers NAME     (DVC stages optimizers@NAME and optimum: one optimizer)
    python -m stages.optimizers --table  (DVC stage optimizers_table: the ranking)

NAME trains with the minibatch and objective sections of params.yaml at its rate from the
`optimizers` section, and writes metrics/optimizers/NAME/{train.json,curve.tsv}. `lbfgs`
is the exact optimum J* of the same objective; the table ranks them all by validation
accuracy, with each one's gap J - J*, in metrics/optimizers.md.
"""

from notmnist.learning import fitting, optimizers
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.files import read_json, write_json, write_text
from notmnist.plumbing.params import load_section
from notmnist.report import comparison

NAMES = (*optimizers.NAMES, "lbfgs")
NOTE = (
    "Every optimizer on the same data, seed, epochs and batch size (params.yaml `minibatch`), each at its"
    " rate from `optimizers`; lbfgs is the exact optimum J* of the same objective, gap_to_optimum = J - J*"
    " on the train split.\n\n"
)


def train_one(name: str) -> None:
    settings = {**load_section("objective", fitting.OBJECTIVE), "optimizer": name, "report_optimum_gap": False}
    if name != "lbfgs":  # the exact optimum needs only the objective
        rate = load_section("optimizers", comparison.RATES)[name]
        settings.update(load_section("minibatch", fitting.MINIBATCH), learning_rate=rate)
    _, classes = contracts.read_stats()
    train, valid = (contracts.read_split(split, len(classes)) for split in ("train", "valid"))
    fit, metrics = fitting.train(settings, train.x, train.y, valid.x, valid.y, len(classes), progress=False)
    write_text(contracts.OPTIMIZERS / name / "curve.tsv", fitting.curve_tsv(fit.curve))
    write_json(contracts.OPTIMIZERS / name / "train.json", metrics)


def write_table() -> None:
    results = {name: read_json(contracts.OPTIMIZERS / name / "train.json") for name in NAMES}
    table = comparison.markdown(comparison.ranking(results))
    write_text(contracts.METRICS / "optimizers.md", "# Optimizer comparison\n\n" + NOTE + table)


def main(args) -> None:
    if args.table:
        write_table()
    else:
        train_one(args.name)


if __name__ == "__main__":
    arguments = cli.parser(__doc__)
    which = arguments.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", choices=NAMES, help="the optimizer to train")
    which.add_argument("--table", action="store_true", help="rank the optimizers trained so far")
    cli.run(main, arguments)
