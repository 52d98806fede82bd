"""Stage sweep: every SGD variant at every learning rate of a log grid, and each one's best rate.

    python -m stages.sweep    (DVC stage `sweep`; params: sweep, minibatch, objective)

Trains sweep.optimizers x sweep.rates runs (the minibatch and objective settings, on
seeded subsamples of sweep.subsample train and valid rows), on all cores. Writes
metrics/sweep.csv (optimizer, learning_rate, valid_loss, valid_accuracy, best_epoch,
diverged) and metrics/sweep_best.json (each optimizer's rate with the lowest validation
loss), which the optimizer comparison and `train.learning_rate: best` use. How:
notmnist/learning/tuning.py.
"""

from notmnist.learning import runs, tuning
from notmnist.learning.settings import Minibatch, Objective
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.files import write_text
from notmnist.plumbing.params import load


def main() -> None:
    sweep, minibatch, objective = load(tuning.Sweep), load(Minibatch), load(Objective)
    results = runs.run_all(tuning.runs(sweep, minibatch, objective))
    table = tuning.table(results)
    best = tuning.best_rates(table)
    write_text(contracts.METRICS / "sweep.csv", table.round(6).to_csv(index=False))
    contracts.write_best_rates(best)
    diverged = int(table["diverged"].sum())
    print(
        f"sweep: {len(table)} runs ({diverged} diverged); best rates: "
        + ", ".join(f"{k} {v:g}" for k, v in best.items())
    )


if __name__ == "__main__":
    cli.run_stage(main, __doc__)
