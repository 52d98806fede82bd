"""Stage optimizers: every optimizer on the same data, seed and budget, side by side.

    python -m stages.optimizers NAME     (DVC stages optimizers@NAME and optimum: one optimizer)
    python -m stages.optimizers --table  (DVC stage optimizers_table: the ranking)

NAME trains with the minibatch and objective sections of params.yaml at its rate from the
`optimizers` section, and writes metrics/optimizers/NAME/train.json (its results, test
accuracy included), curve.tsv (per epoch) and test_correct.npy (which test images it gets
right). `lbfgs` is the exact optimum J* of the same objective. The table ranks them all by
validation accuracy, marks which are tied with the best on the test set (notmnist/report/
comparison.py) and shows each one's gap J - J*, in metrics/optimizers.md.
"""

import numpy as np

from notmnist.learning import fitting, optimizers, softmax
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.files import load_npy, read_json, save_npy, write_json, write_text
from notmnist.plumbing.params import load_section
from notmnist.report import comparison

NAMES = (*optimizers.NAMES, "lbfgs")
NOTE = """Every optimizer on the same data, seed, epochs and batch size (params.yaml `minibatch`), each at
its rate from `optimizers`, ranked by validation accuracy; lbfgs is the exact optimum J* of the same
objective, and gap_to_optimum = J - J* on the train split. versus_best_on_test holds each against the
first on the test set: `tied` unless McNemar's p < 0.05 and the two differ by at least 30 of the
{n} test images (the rule of 30: {resolution:.4f} in accuracy). Ties in validation accuracy
are ranked by validation loss.

"""


def train_one(name: str) -> None:
    settings = {**load_section("objective", fitting.OBJECTIVE), "optimizer": name, "report_optimum_gap": False}
    if name != "lbfgs":  # the exact optimum needs only the objective
        rate = load_section("optimizers", comparison.RATES)[name]
        settings.update(load_section("minibatch", fitting.MINIBATCH), learning_rate=rate)
    _, classes = contracts.read_stats()
    train, valid, test = (contracts.read_split(split, len(classes)) for split in contracts.SPLITS)
    fit, metrics = fitting.train(settings, train.x, train.y, valid.x, valid.y, len(classes), progress=False)
    correct = softmax.scores(np.asarray(test.x), fit.W, fit.b).argmax(axis=1) == test.y
    metrics["test"] = {"n": len(test.y), "accuracy": float(correct.mean())}
    out = contracts.OPTIMIZERS / name
    write_text(out / "curve.tsv", fitting.curve_tsv(fit.curve))
    save_npy(out / "test_correct.npy", correct)
    write_json(out / "train.json", metrics)
    contracts.write_timing(f"optimizers/{name}", {"seconds_per_epoch": fit.seconds_per_epoch})
    print(f"{name}: {fit.seconds_per_epoch:.3g} s per {'iteration' if name == 'lbfgs' else 'epoch'}")


def write_table() -> None:
    import pandas as pd  # here: each training member starts faster without it

    results = {name: read_json(contracts.OPTIMIZERS / name / "train.json") for name in NAMES}
    correct = {name: load_npy(contracts.OPTIMIZERS / name / "test_correct.npy") for name in NAMES}
    n = len(correct[NAMES[0]])
    note = NOTE.format(n=n, resolution=comparison.RULE_OF_30 / n)
    table = comparison.markdown(comparison.ranking(results, correct))
    write_text(contracts.METRICS / "optimizers.md", "# Optimizer comparison\n\n" + note + table)
    per_optimizer = {name: pd.read_csv(contracts.OPTIMIZERS / name / "curve.tsv", sep="\t") for name in NAMES}
    write_text(contracts.METRICS / "optimizer_curves.csv", comparison.curves(per_optimizer).to_csv(index=False))


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
