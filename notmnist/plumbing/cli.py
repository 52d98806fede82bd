"""The command line of every entry point (`python -m stages.X`, `python -m tools.X`).

`--help` prints the module's docstring and exits 0 without touching any output; an unknown
argument is a usage error (exit 2). A UserError becomes one line on stderr, `error: ...`,
with any name in it made printable (`printable`), and exit code 2; running out of memory
is one line and exit code 1; Ctrl-C exits 130. A stage writes all its outputs or none
(notmnist.plumbing.files.all_or_nothing). But DVC deletes a stage's outputs before it runs
it, so under DVC a second line gives the command that brings the last committed params,
model and metrics back (tools/restore.py), or says that a queued run left the workspace alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata
from pathlib import Path
from typing import Callable

from notmnist.plumbing.errors import UserError
from notmnist.plumbing.files import all_or_nothing

# What a terminal acts on or hides: controls (newline, ESC, the C1 CSI), format characters
# (bidi overrides, zero-width), line and paragraph separators.
HIDDEN = ("Cc", "Cf", "Zl", "Zp")


def printable(text: str) -> str:
    """`text` with each character a terminal would act on or hide written as a Python escape
    (ESC as \\x1b, a newline as \\n, U+202E as \\u202e): file names are data, not commands."""
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape").decode() if unicodedata.category(c) in HIDDEN else c for c in text)


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose --help is the calling module's docstring."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    prog = f"python -m {spec.name}" if spec is not None else None
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def run(main: Callable[[argparse.Namespace], int | None], arguments: argparse.ArgumentParser, hint: str = "") -> None:
    """Parse the command line, call main(args) and exit with its code (None = 0); a failure
    is one line on stderr, with `hint` after it."""
    args = arguments.parse_args()
    try:
        code = main(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except UserError as e:
        print(f"error: {printable(str(e))}{hint}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"interrupted; no output of this run was written{hint}", file=sys.stderr)
        sys.exit(130)
    except MemoryError:  # every input is read under caps; this is a limit set too low, not a bug
        print(f"error: out of memory; no output of this run was written{hint}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # piped into a reader that stopped early (`| head`): not an error
        # Python's recipe: point stdout at devnull so the exit's flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, as a shell command killed by the closed pipe
    sys.exit(code or 0)


RESTORE = "python -m tools.restore"  # back to the last commit's params, model and metrics


def under_dvc_hint() -> str:
    """The line that follows a stage's error under DVC: what became of the workspace, and
    the one command that goes back (empty outside DVC)."""
    if "DVC_STAGE" not in os.environ:  # DVC sets it for a stage's command
        return ""
    root = os.environ.get("DVC_ROOT")
    if os.environ.get("DVC_EXP_NAME") and root and Path(root).resolve() != Path.cwd().resolve():
        name = os.environ["DVC_EXP_NAME"]
        return f"\nthis queued or --temp run used a copy: your workspace is untouched (log: dvc queue logs {name})"
    return f"\nDVC removed this stage's outputs before running it; to go back to the last commit: {RESTORE}"


def run_stage(main: Callable[[], None], doc: str | None) -> None:
    """A pipeline stage: no arguments but --help; all outputs written, or none."""

    def stage(_: object) -> None:
        with all_or_nothing():
            main()

    run(stage, parser(doc), under_dvc_hint())
