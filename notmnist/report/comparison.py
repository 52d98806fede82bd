"""The optimizer comparison's table: every optimizer's result beside the exact optimum."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notmnist.learning import optimizers
from notmnist.plumbing.params import positive

if TYPE_CHECKING:  # pandas is imported by the table alone: each training member starts faster
    import pandas as pd

RATES = {name: positive() for name in optimizers.NAMES}  # section optimizers: each one's learning rate


def ranking(results: dict[str, dict]) -> pd.DataFrame:
    """One row per optimizer (results: name -> its train.json), best validation accuracy
    first (ties: lower loss); gap_to_optimum = J - J*, J* the objective lbfgs reached."""
    import pandas as pd

    optimum = results["lbfgs"]["train"]["objective"] if "lbfgs" in results else float("nan")
    table = pd.DataFrame(
        [
            {
                "optimizer": name,
                "learning_rate": m["learning_rate"],
                "valid_accuracy": m["valid"]["accuracy"],
                "valid_loss": m["valid"]["loss"],
                "gap_to_optimum": m["train"]["objective"] - optimum,
                "best_epoch": m["best_epoch"],
                "epochs_run": m["epochs_run"],
                "seconds_per_epoch": m["seconds_per_epoch"],
            }
            for name, m in results.items()
        ]
    )
    table = table.sort_values(["valid_accuracy", "valid_loss"], ascending=[False, True])
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs the extra package tabulate)."""
    import pandas as pd

    cells = table.map(lambda v: "" if pd.isna(v) else f"{v:.4g}" if isinstance(v, float) else str(v))
    lines = [list(table.columns), ["---"] * len(table.columns), *cells.values.tolist()]
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)
