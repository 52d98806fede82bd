"""The command line of every entry point (`python -m stages.X`, `python -m tools.X`).

`--help` prints the module's docstring and exits 0 without touching any output; an unknown
argument is a usage error (exit 2). A UserError becomes one line on stderr, `error: ...`,
and exit code 2; Ctrl-C exits 130. Outputs are written atomically (notmnist.plumbing.files), so
either way the previous outputs are left as they were.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from notmnist.plumbing.errors import UserError


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose --help is the calling module's docstring."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    prog = f"python -m {spec.name}" if spec is not None else None
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def run(main: Callable[[argparse.Namespace], int | None], arguments: argparse.ArgumentParser) -> None:
    """Parse the command line, call main(args) and exit with its code (None = 0)."""
    args = arguments.parse_args()
    try:
        code = main(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; outputs left as they were", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def run_stage(main: Callable[[], None], doc: str | None) -> None:
    """A pipeline stage: no arguments but --help."""
    run(lambda _: main(), parser(doc))
