"""Is the accuracy difference between two runs real? McNemar's exact test on their predictions.

    python -m tools.compare REV_A [REV_B]

reads `metrics/predictions.csv` as committed at REV_A and at REV_B (default: the workspace;
`workspace` names it explicitly). A REV is what `git log` or `dvc exp show` shows: a git
revision (HEAD~1, a branch, a tag, a commit or an experiment's short hash), or an
experiment's name (fated-kyat), found among the experiment refs DVC keeps under refs/exps.
It pairs the predictions image by image and reports both accuracies, the disagreements,
McNemar's exact p-value and the smallest difference this test set can resolve (the rule of 30).
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pandas as pd

from notmnist.plumbing import cli
from notmnist.plumbing.contracts import PREDICTIONS
from notmnist.plumbing.errors import UserError
from notmnist.plumbing.files import read_regular
from notmnist.report.statistics import RULE_OF_30, mcnemar, resolution, wilson_interval

WORKSPACE = "workspace"
MAX_BYTES = 512 * 2**20  # a predictions table of 10 million test images; anything bigger is not one
EXPERIMENTS = "refs/exps"  # where DVC keeps experiments: refs/exps/<baseline commit>/<name>


def git(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise UserError("git not found; tools.compare reads predictions from git revisions") from None


def commit_of(rev: str) -> str:
    """The git revision `rev` names: itself if git knows it, else the ref of the experiment of
    that name. An experiment's name is the last part of its ref; run in a git repository."""
    if git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode == 0:
        return rev
    refs = git("for-each-ref", "--format=%(refname)", EXPERIMENTS).stdout.split()
    named = [ref for ref in refs if ref.rsplit("/", 1)[-1] == rev]
    if len(named) > 1:
        raise UserError(f"{rev}: {len(named)} experiments have this name; give one of {', '.join(named)}")
    if not named:
        raise UserError(f"{rev}: unknown git revision or experiment (try `git log --oneline` or `dvc exp show`)")
    return named[0]


def read_predictions(rev: str, path: Path = PREDICTIONS) -> pd.DataFrame:
    """`path` as committed at `rev`, a git revision or an experiment's name (or as it is now,
    for rev == 'workspace')."""
    if rev == WORKSPACE:
        if not path.exists():
            raise UserError(f"{path}: not found in the workspace; run `dvc repro` first")
        text = read_regular(path, MAX_BYTES).decode("utf-8", "replace")
    else:
        if git("rev-parse", "--git-dir").returncode != 0:
            raise UserError(f"{Path.cwd()}: not inside a git repository; run from the project root")
        commit = commit_of(rev)
        size = git("cat-file", "-s", f"{commit}:./{path.as_posix()}")
        if size.returncode == 0 and int(size.stdout) > MAX_BYTES:
            raise UserError(f"{path} at {rev}: {int(size.stdout)} bytes, over the cap of {MAX_BYTES}")
        shown = git("show", f"{commit}:./{path.as_posix()}")
        if shown.returncode != 0:
            raise UserError(f"{rev}: has no committed {path} (was the evaluate stage run and committed?)")
        text = shown.stdout
    try:
        table = pd.read_csv(io.StringIO(text), dtype={"label": str, "predicted": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UserError(f"{path} at {rev}: not a predictions table: {e}") from None
    missing = {"index", "label", "predicted"} - set(table.columns)
    if missing:
        raise UserError(f"{path} at {rev}: missing column(s) {', '.join(sorted(missing))}")
    if not pd.api.types.is_integer_dtype(table["index"]) or table["index"].duplicated().any():
        raise UserError(f"{path} at {rev}: the index column must hold distinct whole numbers")
    return table


def compare(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Pair two predictions tables on `index` and test whether their accuracies differ.

    `resolvable` is the rule of 30: a difference is trusted only when it amounts to at least
    30 test images, i.e. 30 / n in accuracy.
    """
    pairs = a.merge(b, on="index", how="inner", suffixes=("_a", "_b"), validate="one_to_one")
    if len(pairs) != len(a) or len(pairs) != len(b) or len(pairs) == 0:
        raise UserError(
            f"the two runs were tested on different images ({len(a)} and {len(b)} rows, "
            f"{len(pairs)} in common): a paired comparison needs the same test split"
        )
    if not (pairs["label_a"] == pairs["label_b"]).all():
        raise UserError("the two runs disagree on the true labels of the same test images")
    correct_a = (pairs["predicted_a"] == pairs["label_a"]).to_numpy()
    correct_b = (pairs["predicted_b"] == pairs["label_b"]).to_numpy()
    only_a, only_b, p = mcnemar(correct_a, correct_b)
    n = len(pairs)
    return {
        "n": n,
        "accuracy_a": correct_a.mean(),
        "ci95_a": wilson_interval(correct_a.sum(), n),
        "accuracy_b": correct_b.mean(),
        "ci95_b": wilson_interval(correct_b.sum(), n),
        "only_a": only_a,
        "only_b": only_b,
        "p_value": p,
        "resolvable": resolution(n),
    }


def report(result: dict, rev_a: str, rev_b: str, alpha: float = 0.05) -> str:
    """The comparison in plain words."""
    n, diff = result["n"], result["accuracy_b"] - result["accuracy_a"]
    width = max(len(rev_a), len(rev_b))
    lines = [
        f"{rev:<{width}}  accuracy {acc:.4f}  (95% CI {lo:.4f}-{hi:.4f})"
        for rev, acc, (lo, hi) in [
            (rev_a, result["accuracy_a"], result["ci95_a"]),
            (rev_b, result["accuracy_b"], result["ci95_b"]),
        ]
    ]
    lines += [
        f"difference {rev_b} - {rev_a}: {diff:+.4f} ({result['only_b'] - result['only_a']:+d} of {n} test images)",
        f"disagreements: {result['only_a']} right only in {rev_a}, {result['only_b']} right only in {rev_b}",
        f"McNemar exact test: p-value = {result['p_value']:.4g}",
        f"rule of 30: this test set resolves differences of {RULE_OF_30}/{n} = {result['resolvable']:.4f} or more",
    ]
    significant = result["p_value"] < alpha
    resolved = abs(diff) >= result["resolvable"]
    if significant and resolved:
        verdict = f"the difference is real (p < {alpha}) and above the rule-of-30 resolution"
    elif significant:
        verdict = (
            f"the difference is statistically significant (p < {alpha}) but smaller than "
            f"30 test images: too small to trust as a real improvement"
        )
    else:
        verdict = f"no evidence of a real difference (p >= {alpha}): treat the two runs as equally accurate"
    return "\n".join(lines + ["verdict: " + verdict])


def main(args) -> None:
    result = compare(read_predictions(args.rev_a), read_predictions(args.rev_b))
    print(report(result, args.rev_a, args.rev_b))


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument(
        "rev_a", metavar="REV_A", help="git revision or experiment name of the baseline run (e.g. HEAD~1, fated-kyat)"
    )
    parser.add_argument(
        "rev_b",
        metavar="REV_B",
        nargs="?",
        default=WORKSPACE,
        help="git revision or experiment name of the new run (default: the workspace)",
    )
    cli.run(main, parser)
