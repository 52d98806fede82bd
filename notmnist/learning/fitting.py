"""What every way to fit returns: the weights, how far it trained, and its curve.

The SGD variants (notmnist.learning.sgd) and L-BFGS (notmnist.learning.lbfgs) both return a
Fit; notmnist.learning.training chooses between them and measures the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from notmnist.plumbing.errors import UserError

CURVE_COLUMNS = ("epoch", "step", "lr", "train_loss", "valid_loss", "valid_accuracy")


class Diverged(UserError):
    pass


@dataclass
class Fit:
    W: np.ndarray
    b: np.ndarray
    best_epoch: int  # exact: iterations
    epochs_run: int  # exact: iterations
    seconds_per_epoch: float  # exact: per iteration
    curve: list[tuple] = field(default_factory=list)  # one row of CURVE_COLUMNS per epoch (or iteration)
    exact: bool = False  # the exact optimum: counted in iterations, with no learning rate

    @property
    def unit(self) -> str:
        return "iteration" if self.exact else "epoch"

    def counts(self) -> dict[str, int]:
        """How far it trained, as the metrics report it."""
        if self.exact:
            return {"iterations": self.epochs_run}
        return {"epochs_run": self.epochs_run, "best_epoch": self.best_epoch}


def curve_tsv(curve: list[tuple]) -> str:
    """The per-epoch curve as a TSV table with CURVE_COLUMNS."""
    return (
        "\t".join(CURVE_COLUMNS)
        + "\n"
        + "".join(f"{e}\t{s}\t{lr:.6g}\t{tl:.6f}\t{vl:.6f}\t{va:.6f}\n" for e, s, lr, tl, vl, va in curve)
    )
