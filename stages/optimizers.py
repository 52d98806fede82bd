"""Stage optimizers: every SGD variant at its best rate, and the exact optimum, side by side.

    python -m stages.optimizers    (DVC stage `optimizers`; params: minibatch, objective)

Each optimizer of metrics/sweep_best.json trains on the whole train split with the
minibatch and objective settings at its best rate from the sweep (all on the same data,
seed and budget, on all cores); then lbfgs finds the exact optimum J* of the same objective,
starting from the one that came closest (the lowest train objective; ties, as defined in
notmnist/plumbing/ties.py: the first in sweep.optimizers). Writes
metrics/optimizers/NAME/train.json (its results, test accuracy included), curve.tsv (per
epoch; per iteration for lbfgs) and test_correct.npy (which test images it gets right);
metrics/optimizers.md, the ranking by validation loss with which optimizers are tied
with the first on the test set (notmnist/report/comparison.py); and
metrics/optimizer_curves.csv, every validation curve in one table.
"""

import pandas as pd

from notmnist.learning import fitting, lbfgs, runs
from notmnist.learning.settings import Minibatch, Objective
from notmnist.plumbing import cli, contracts, ties
from notmnist.plumbing.errors import UserError
from notmnist.plumbing.files import save_npy, write_json, write_text
from notmnist.plumbing.params import load
from notmnist.report import comparison

NOTE = """Every optimizer on the same data, seed, epochs and batch size (params.yaml `minibatch`), each at
its best rate from the sweep (metrics/sweep.csv), ranked by validation loss (losses within {tie:.1%}
are tied and keep the sweep's order); {optimum} is the exact optimum J* of the same objective, and
gap_to_optimum = J - J* on the train split. versus_first_on_test holds each against the first on
the test set: `tied` unless McNemar's p < {alpha} and the two differ by at least {rule} of the {n} test
images (the rule of 30: {resolution:.4f} in accuracy).

"""


def main() -> None:
    minibatch, objective = load(Minibatch), load(Objective)
    rates = contracts.read_best_rates()
    fits = runs.run_all([runs.Run(name, name, rate, minibatch, objective, test=True) for name, rate in rates.items()])
    # the sweep's rate was best on a short run: on the whole split it may still diverge
    diverged = {r.run.name: r.metrics["error"] for r in fits if r.diverged}
    sgd = [r for r in fits if not r.diverged]
    if not sgd:
        named = ", ".join(f"{name} at {rates[name]:g}" for name in diverged)
        raise UserError(f"every optimizer diverged at its sweep rate ({named}); add smaller sweep.rates")
    # the closest to the optimum (ties: the first in sweep.optimizers, whatever the float noise)
    best = ties.first_within((r, r.metrics["train"]["objective"]) for r in sgd)
    optimum = runs.run_one(runs.Run(lbfgs.NAME, lbfgs.NAME, None, minibatch, objective, test=True, start=best.weights))
    results = {r.run.name: r for r in (*sgd, optimum)}
    for name, result in results.items():
        out = contracts.OPTIMIZERS / name
        write_text(out / "curve.tsv", fitting.curve_tsv(result.curve))
        save_npy(out / "test_correct.npy", result.test_correct)
        start = best.run.name if result.run.start is not None else "random"  # SGD: W ~ N(0, init_sigma^2), b = 0
        write_json(out / "train.json", {**result.metrics, "started_from": start})
        print(f"{name}: {result.seconds_per_epoch:.3g} s per {result.unit}")
    metrics = {name: r.metrics for name, r in results.items()}
    correct = {name: r.test_correct for name, r in results.items()}
    n = len(optimum.test_correct)
    table = comparison.markdown(comparison.ranking(metrics, correct, optimum=lbfgs.NAME))
    note = NOTE.format(
        n=n,
        resolution=comparison.RULE_OF_30 / n,
        tie=ties.TIE,
        alpha=comparison.ALPHA,
        rule=comparison.RULE_OF_30,
        optimum=lbfgs.NAME,
    )
    for name, error in diverged.items():
        write_json(contracts.OPTIMIZERS / name / "train.json", {"diverged": True, "learning_rate": rates[name]})
        table += f"\n{name} is not ranked: at the sweep's rate {rates[name]:g}, {error}; add smaller sweep.rates\n"
        print(f"{name}: diverged at {rates[name]:g}")
    write_text(contracts.METRICS / "optimizers.md", "# Optimizer comparison\n\n" + note + table)
    curves = {name: pd.DataFrame(r.curve, columns=fitting.CURVE_COLUMNS) for name, r in results.items()}
    write_text(
        contracts.METRICS / "optimizer_curves.csv", comparison.curves(curves, optimum=lbfgs.NAME).to_csv(index=False)
    )


if __name__ == "__main__":
    cli.run_stage(main, __doc__)
