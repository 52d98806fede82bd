"""Helpers for the end-to-end tests: a copy of the repository and commands run inside it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUTPUT_DIRS = ("data", "models", "metrics")


def run(cwd: Path, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           # the stage commands' `python` must be this interpreter
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(cwd, sys.executable, "-m", "dvc", *args, **kwargs)


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run(cwd, "git", "-c", "user.name=test", "-c", "user.email=test@example.com",
               "-c", "commit.gpgsign=false", *args)


def commit(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "--allow-empty", "-m", message)


def copy_repository(dest: Path) -> None:
    """The tracked and untracked source files (not .git, .venv, data, models, metrics, caches)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file() and not name.startswith(OUTPUT_DIRS):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
