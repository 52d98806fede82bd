"""The optimizer comparison's table: every optimizer's result beside the exact optimum, with
honest ties.

Rows are ranked by validation loss; losses within ties.TIE of each other (plumbing/ties.py) are
tied and keep the order given, so that float noise from another CPU cannot reorder them. Each
row is then held against the first on the test set: McNemar's exact test on their paired test predictions,
and the rule of 30. A row is `tied` with the best unless p < ALPHA and the two differ by at
least RULE_OF_30 test images: differences smaller than that are noise for a test set of this size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from notmnist.plumbing import ties
from notmnist.report.statistics import RULE_OF_30, mcnemar

if TYPE_CHECKING:  # pandas is imported by the tables alone: training starts faster without it
    import pandas as pd

ALPHA = 0.05


def versus(best: np.ndarray, other: np.ndarray) -> tuple[str, str]:
    """('tied' | 'better' | 'worse', why) of `other` against `best` on the same test images
    (booleans: predicted right); why: the difference in images and McNemar's p-value."""
    only_best, only_other, p_value = mcnemar(best, other)
    apart = abs(only_best - only_other)
    why = f"{apart} images apart, p = {p_value:.2g}"
    if p_value >= ALPHA:
        return "tied", why
    if apart < RULE_OF_30:
        return "tied", f"{why}: under {RULE_OF_30} images"
    return ("better" if only_other > only_best else "worse"), why


def ranking(results: dict[str, dict], correct: dict[str, np.ndarray], optimum: str) -> pd.DataFrame:
    """One row per optimizer: results maps a name to its train.json, correct to its test
    predictions (right or wrong, per test image, in the same order for all); `optimum`
    names the result whose train objective is the exact optimum J*."""
    import pandas as pd

    best_objective = results[optimum]["train"]["objective"] if optimum in results else float("nan")
    table = pd.DataFrame(
        [
            {
                "optimizer": name,
                "learning_rate": m["learning_rate"],
                "valid_accuracy": m["valid"]["accuracy"],
                "valid_loss": m["valid"]["loss"],
                "test_accuracy": float(np.mean(correct[name])),
                "gap_to_optimum": m["train"]["objective"] - best_objective,
                "trained": (
                    f"{m['iterations']} iterations"
                    if "iterations" in m
                    else f"best epoch {m['best_epoch']} of {m['epochs_run']}"
                ),
            }
            for name, m in results.items()
        ]
    )
    order = ties.ranked(zip(table.index, table["valid_loss"]))
    table = table.loc[order].reset_index(drop=True)
    best = table["optimizer"].iloc[0]
    verdicts = [
        versus(correct[best], correct[name]) if name != best else ("first", "by validation loss")
        for name in table["optimizer"]
    ]
    table.insert(1, "versus_first_on_test", [f"{verdict} ({why})" for verdict, why in verdicts])
    return table


def curves(per_optimizer: dict[str, pd.DataFrame], optimum: str) -> pd.DataFrame:
    """Every optimizer's validation loss per epoch in one long table (optimizer, epoch,
    valid_loss), for one chart with a colour per optimizer; the exact optimum (named
    `optimum`), whose rows are iterations, becomes a flat line at its loss across the same
    epochs."""
    import pandas as pd

    epochs = max((int(c["epoch"].max()) for name, c in per_optimizer.items() if name != optimum), default=1)
    rows = []
    for name, curve in per_optimizer.items():
        if name == optimum:
            curve = pd.DataFrame({"epoch": range(1, epochs + 1), "valid_loss": curve["valid_loss"].iloc[-1]})
        rows.append(curve[["epoch", "valid_loss"]].assign(optimizer=name))
    return pd.concat(rows, ignore_index=True)[["optimizer", "epoch", "valid_loss"]]


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs the extra package tabulate); accuracies and
    losses with 4 decimals, other numbers with 4 significant digits."""
    import pandas as pd

    def cell(column: str, value: object) -> str:
        if pd.isna(value):
            return ""
        if isinstance(value, float):
            return f"{value:.4f}" if column.endswith(("accuracy", "loss")) else f"{value:.4g}"
        return str(value)

    cells = table.apply(lambda column: column.map(lambda v: cell(column.name, v)))
    lines = [list(table.columns), ["---"] * len(table.columns), *cells.values.tolist()]
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)
