"""Stage train: the softmax model, fitted by minibatch SGD (or one of its helpers) or L-BFGS.

    python -m stages.train    (DVC stage `train`; params: train, minibatch, objective)

train.learning_rate is a number, or `best`: the rate with which train.optimizer had the
lowest validation loss in the learning-rate sweep (metrics/sweep_best.json).

Reads data/normalized/{train,valid}_{x,y}.npy (features memory-mapped) and stats.json;
writes models/model.npz (weights, classes and normalization: self-contained),
metrics/train.json (what DVC tracks; optimizer, rate and sizes in train_details.json) and the
per-epoch curve metrics/train_curve.tsv. Seconds per epoch: printed, and in timings/train.json.
"""

from notmnist.learning import fitting, training
from notmnist.learning.model import save_model
from notmnist.learning.settings import Minibatch, Objective, Train
from notmnist.plumbing import cli, contracts
from notmnist.plumbing.errors import ParamError
from notmnist.plumbing.files import write_text
from notmnist.plumbing.params import load

HEADLINE = (
    "learning_rate",  # the rate used (train.learning_rate may say `best`): `dvc exp show` shows it
    "epochs_run",
    "best_epoch",
    "iterations",
    "train.objective",
    "train.optimum",
    "train.optimum_gap",
    "valid.accuracy",
    "valid.loss",
)


def main() -> None:
    minibatch, objective, train = load(Minibatch), load(Objective), load(Train)
    advice = "lower train.learning_rate"
    rate: float | None = None  # the exact optimum takes no rate
    if train.takes_rate and train.learning_rate != "best":
        rate = float(train.learning_rate)
        advice += f" (now {rate:g})"
    elif train.takes_rate:
        rates = contracts.read_best_rates()
        if train.optimizer not in rates:
            raise ParamError(
                f"train.learning_rate: best, but the sweep tried no rate for {train.optimizer} "
                "(add it to sweep.optimizers)"
            )
        rate = rates[train.optimizer]
        advice = (
            f"train.learning_rate is best, the sweep's {rate:g} for {train.optimizer}"
            " (chosen on a short run): set a smaller number, or add smaller sweep.rates"
        )
    norm, classes = contracts.read_stats()
    split, valid = (contracts.read_split(name, len(classes)) for name in ("train", "valid"))
    try:
        fit, metrics = training.train(
            train.optimizer,
            rate,
            minibatch,
            objective,
            split.x,
            split.y,
            valid.x,
            valid.y,
            len(classes),
            optimum_gap=train.report_optimum_gap,
        )
    except fitting.Diverged as e:
        raise fitting.Diverged(f"{e}; {advice}") from None
    save_model(contracts.MODEL, fit.W, fit.b, classes, norm)
    write_text(contracts.METRICS / "train_curve.tsv", fitting.curve_tsv(fit.curve))
    contracts.write_metrics("train", metrics, HEADLINE)
    contracts.write_timing("train", {"seconds_per_epoch": fit.seconds_per_epoch, "epochs": fit.epochs_run})
    if "iterations" in metrics:  # lbfgs: iterations of L-BFGS-B, not epochs
        print(f"train: {fit.epochs_run} iterations, {fit.seconds_per_epoch:.3g} s per iteration")
    else:
        print(f"train: {fit.epochs_run} epochs (best {fit.best_epoch}), {fit.seconds_per_epoch:.3g} s per epoch")


if __name__ == "__main__":
    cli.run_stage(main, __doc__)
