"""Go back to the last commit's params, model and metrics.

    python -m tools.restore    (from the repository root)

For a run in this workspace that failed or that you do not want (`dvc exp run`, `dvc repro`,
`dvc exp apply`): DVC deletes a stage's outputs before it runs the stage, and leaves the
experiment's params.yaml behind. This puts back the committed params.yaml, dvc.lock,
builtin/dvc.lock and metrics/, then the data and the model they record: from DVC's cache
where it holds them, and rebuilt by `dvc repro` where it does not (in a fresh clone the
committed model may never have been built). models/ is never left emptier than it was: if
the rebuild fails, the model that was there is put back.

A queued or --temp experiment (`dvc exp run --queue`, `--temp`) runs in a copy of the
repository: your workspace is untouched, and there is nothing to restore.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from notmnist.plumbing import cli
from notmnist.plumbing.errors import UserError

COMMITTED = ("params.yaml", "dvc.lock", "builtin/dvc.lock", "metrics")
MODELS = Path("models")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True)


def _last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {result.returncode}"


def restore_committed_files() -> list[str]:
    """The committed versions of COMMITTED, whatever git's index says about them.

    `git rm --cached` first: after `dvc exp apply`, the index can hold the stat data of
    rewritten files with the committed content's hash, and a plain `git checkout HEAD --`
    would skip such files as unchanged; entries read afresh from HEAD carry no stat data."""
    files = [f for f in COMMITTED if _run("git", "cat-file", "-e", f"HEAD:{f}").returncode == 0]
    for step in (
        ("git", "rm", "-rq", "--cached", "--ignore-unmatch", *files),
        ("git", "checkout", "HEAD", "--", *files),
    ):
        result = _run(*step)
        if result.returncode != 0:
            raise UserError(f"`{' '.join(step)}` failed: {_last_line(result)}")
    return files


def restore_outputs() -> str:
    """The data and model that the restored lock files record: checked out from DVC's cache,
    and whatever the cache lacks rebuilt by `dvc repro`. How the model came back."""
    dvc = (sys.executable, "-m", "dvc")
    _run(*dvc, "checkout", "--allow-missing")  # what the cache holds; the rest is rebuilt below
    status = _run(*dvc, "status", "--quiet")
    if status.returncode == 0:
        return "from DVC's cache"
    result = _run(*dvc, "repro")
    if result.returncode != 0:
        raise UserError(f"`dvc repro` could not rebuild the committed results: {_last_line(result)}")
    return "rebuilt by `dvc repro` (DVC's cache did not hold all of it)"


def main(_) -> int:
    if not Path("dvc.yaml").is_file() or _run("git", "rev-parse", "--verify", "-q", "HEAD").returncode != 0:
        raise UserError("run it from the repository's root folder (where dvc.yaml is), in a git checkout")
    with tempfile.TemporaryDirectory(prefix="restore-") as saved:
        backup = Path(saved) / "models"
        if MODELS.is_dir():
            shutil.copytree(MODELS, backup)
        try:
            files = restore_committed_files()
            how = restore_outputs()
        except BaseException:
            if backup.is_dir():  # never emptier than before: the model that was there goes back
                shutil.copytree(backup, MODELS, dirs_exist_ok=True)
            raise
    head = _run("git", "rev-parse", "--short", "HEAD").stdout.strip()
    print(f"restored {', '.join(files)} from the last commit ({head}); the data and model {how}")
    return 0


if __name__ == "__main__":
    cli.run(main, cli.parser(__doc__))
