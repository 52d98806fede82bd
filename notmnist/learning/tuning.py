"""The learning-rate sweep: every SGD variant at every rate of a log grid, on the same data,
seed and epoch budget, and the best rate of each, chosen on the validation set.

"How quickly you learn != how well you train" (the course notes): the table shows for each
optimizer how the validation loss depends on its rate, the U between too slow and
diverging. The best rate is the one with the lowest validation loss (rates tied with it, as
notmnist/plumbing/ties.py defines, give way to the smallest); the test set plays no part.
The sweep may train on a seeded subsample of the train split (`subsample`), and score on as
many validation rows, so that it stays cheap; the comparison and `train.learning_rate: best`
then train on all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from notmnist.learning import optimizers
from notmnist.learning.runs import Result, Run
from notmnist.learning.settings import Minibatch, Objective
from notmnist.plumbing import ties
from notmnist.plumbing.errors import UserError
from notmnist.plumbing.params import choice, integer, knob, list_of, positive

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Sweep:
    """Section sweep: each optimizer at each rate, same data, seed and budget."""

    SECTION: ClassVar[str] = "sweep"
    optimizers: list[str] = knob(list_of(choice(*optimizers.NAMES), "optimizer names"))
    rates: list[float] = knob(list_of(positive(), "positive numbers", at_least=2))
    subsample: int = knob(integer(0, None))
    seed: int = knob(integer(0, 2**32 - 1))


def runs(sweep: Sweep, minibatch: Minibatch, objective: Objective) -> list[Run]:
    """One run per (optimizer, rate), with the minibatch and objective settings."""
    return [
        Run(f"{name}@{rate:g}", name, rate, minibatch, objective, sweep.subsample, sweep.seed)
        for name in sweep.optimizers
        for rate in sweep.rates
    ]


def table(results: list[Result]) -> pd.DataFrame:
    """One row per run: optimizer, learning_rate, valid_loss, valid_accuracy, best_epoch,
    diverged (a diverged run has no loss or accuracy)."""
    import pandas as pd

    rows = []
    for result in results:
        m = result.metrics
        rows.append(
            {
                "optimizer": result.run.optimizer,
                "learning_rate": result.run.rate,
                "valid_loss": np.nan if result.diverged else m["valid"]["loss"],
                "valid_accuracy": np.nan if result.diverged else m["valid"]["accuracy"],
                "best_epoch": pd.NA if result.diverged else m["best_epoch"],
                "diverged": result.diverged,
            }
        )
    return pd.DataFrame(rows).astype({"best_epoch": "Int64"})


def best_rates(sweep: pd.DataFrame) -> dict[str, float]:
    """optimizer -> the rate with the lowest validation loss; rates whose loss is within
    ties.TIE of the lowest are tied, and the smallest of them wins (so that float noise from
    another CPU cannot flip the choice)."""
    best = {}
    for name, rows in sweep.groupby("optimizer", sort=False):
        finite = rows[~rows["diverged"]].sort_values("learning_rate", kind="stable")
        if finite.empty:
            raise UserError(f"sweep.rates: every rate diverged for {name}; add smaller rates")
        best[name] = float(ties.first_within(zip(finite["learning_rate"], finite["valid_loss"])))
    return best
