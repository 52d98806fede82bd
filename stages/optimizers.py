"""Stage optimizers: every optimizer on the same data, seed and budget, side by side.

    python -m stages.optimizers NAME     # one member of the foreach stage `optimizers@NAME`
    python -m stages.optimizers --table  # stage `optimizers_table`: the ranking

Each member trains with the `train` section's settings (schedule, epochs, batch_size, l2,
seed, ...) but its own optimizer and the learning rate from the `optimizers` section, and
writes metrics/optimizers/NAME/{train.json,curve.tsv}. `lbfgs` is the exact optimum J* of
the same objective; the table ranks the others by validation accuracy and shows their gap
J - J* in metrics/optimizers.md.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

# stages.train first: it fixes the BLAS thread count before numpy is imported
from stages.train import SPEC, check_batch_size, curve_tsv, read_inputs, train  # isort: skip
from stages import optim
from stages.io import UserError, load_params, number, read_json, write_json, write_text

if TYPE_CHECKING:
    import pandas as pd

NAMES = (*optim.OPTIMIZERS, "lbfgs")
OUT = Path("metrics/optimizers")
TABLE = Path("metrics/optimizers.md")


def train_one(name: str) -> None:
    p = load_params("train", SPEC)
    rates = load_params("optimizers", {n: number(0, None, lo_open=True) for n in optim.OPTIMIZERS})
    p.update(optimizer=name, learning_rate=rates.get(name, p["learning_rate"]),
             report_optimum_gap=False)
    X, y, Xv, yv = read_inputs()
    n_classes = len(read_json(Path("data/normalized/stats.json"))["classes"])
    check_batch_size(p, len(X))
    fit, metrics = train(p, X, y, Xv, yv, n_classes, progress=False)
    write_text(OUT / name / "curve.tsv", curve_tsv(fit.curve))
    write_json(OUT / name / "train.json", metrics)


def ranking(results: dict[str, dict]) -> pd.DataFrame:
    """One row per optimizer, best validation accuracy first (ties: lower loss)."""
    import pandas as pd  # only the table needs it; each training member starts faster without

    optimum = results["lbfgs"]["train"]["objective"] if "lbfgs" in results else float("nan")
    table = pd.DataFrame([{
        "optimizer": name,
        "learning_rate": m["learning_rate"],
        "valid_accuracy": m["valid"]["accuracy"],
        "valid_loss": m["valid"]["loss"],
        "gap_to_optimum": m["train"]["objective"] - optimum,
        "best_epoch": m["best_epoch"],
        "epochs_run": m["epochs_run"],
        "seconds_per_epoch": m["seconds_per_epoch"],
    } for name, m in results.items()])
    table = table.sort_values(["valid_accuracy", "valid_loss"], ascending=[False, True])
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs the extra package tabulate)."""
    import pandas as pd

    cells = table.map(lambda v: "" if pd.isna(v) else f"{v:.4g}" if isinstance(v, float) else str(v))
    lines = [list(table.columns), ["---"] * len(table.columns), *cells.values.tolist()]
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)


def write_table() -> None:
    results = {}
    for name in NAMES:
        path = OUT / name / "train.json"
        if not path.exists():
            raise UserError(f"{path}: not found; run the stage optimizers@{name} first (dvc repro)")
        results[name] = read_json(path)
    table = ranking(results)
    note = ("Every optimizer on the same data, seed, epochs and batch size (params.yaml `train`),"
            " each at its rate from `optimizers`; lbfgs is the exact optimum J* of the same"
            " objective, gap_to_optimum = J - J* on the train split.\n\n")
    write_text(TABLE, "# Optimizer comparison\n\n" + note + markdown(table))


def main() -> None:
    args = sys.argv[1:]
    if args == ["--table"]:
        write_table()
    elif len(args) == 1 and args[0] in NAMES:
        train_one(args[0])
    else:
        raise UserError(f"usage: python -m stages.optimizers {{{','.join(NAMES)}}} | --table")


if __name__ == "__main__":
    from stages.io import run

    run(main)
