"""Shared plumbing for every stage: params, validation, atomic writes, metrics JSON.

One params loader, one atomic writer: every stage goes through these so that a bad
parameter is reported the same way everywhere and no output is ever half-written.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import yaml

PARAMS_FILE = Path("params.yaml")


class UserError(Exception):
    """An error the user can fix (bad parameter, bad input file); printed as one line."""


class ParamError(UserError):
    pass


# --- params -----------------------------------------------------------------------

Check = Callable[[str, Any], Any]


def load_params(section: str, spec: dict[str, Check], path: Path | str = PARAMS_FILE) -> dict:
    """Read one section of params.yaml and validate it against `spec` (key -> check).

    Unknown keys, missing keys and bad values raise ParamError naming `section.key`.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            everything = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ParamError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as e:
        raise ParamError(f"{path}: not valid YAML: {e}") from None
    values = everything.get(section)
    if not isinstance(values, dict):
        raise ParamError(f"{path}: section '{section}' is missing or not a mapping")
    return validate(section, values, spec)


def validate(section: str, values: dict, spec: dict[str, Check]) -> dict:
    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise ParamError(
            f"{section}.{unknown[0]}: unknown parameter; allowed: {', '.join(sorted(spec))}"
        )
    missing = sorted(set(spec) - set(values))
    if missing:
        raise ParamError(f"{section}.{missing[0]}: missing from params.yaml")
    return {key: check(f"{section}.{key}", values[key]) for key, check in spec.items()}


def _bad(name: str, value: Any, allowed: str) -> ParamError:
    return ParamError(f"{name}: bad value {value!r}; allowed: {allowed}")


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> Check:
    """A real number in [lo, hi] (or open at either end)."""
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    allowed = f"a number in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"

    def check(name: str, value: Any) -> float:
        if isinstance(value, str):
            # YAML 1.1 (PyYAML) reads `1e-4` without a dot as a string; accept what float() reads
            try:
                value = float(value)
            except ValueError:
                raise _bad(name, value, allowed) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(name, value, allowed)
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise _bad(name, value, allowed)
        if hi is not None and (value > hi or (hi_open and value == hi)):
            raise _bad(name, value, allowed)
        return float(value)

    return check


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    """A whole number in [lo, hi]."""
    allowed = f"a whole number in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(name, value, allowed)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise _bad(name, value, allowed)
        return int(value)

    return check


def choice(*options: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in options:
            raise _bad(name, value, "one of " + ", ".join(options))
        return value

    return check


def boolean() -> Check:
    def check(name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _bad(name, value, "true or false")
        return value

    return check


def text() -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _bad(name, value, "a non-empty string")
        return value

    return check


# --- atomic outputs ---------------------------------------------------------------

@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only on success.

    An interrupted or failing writer leaves the previous `path` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs should read like any other file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_npy(path: Path | str, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.save(f, array, allow_pickle=False)


def write_text(path: Path | str, content: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(content, encoding="utf-8")


def rounded(obj: Any, digits: int = 6) -> Any:
    """Round floats (also inside containers and numpy scalars) so unchanged results diff as unchanged."""
    if isinstance(obj, dict):
        return {str(k): rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return rounded(obj.tolist(), digits)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}") if value != 0 else 0.0
    return obj


def write_json(path: Path | str, obj: Any, digits: int = 6) -> None:
    """Write metrics/JSON atomically with rounded floats and sorted, stable formatting."""
    write_text(path, json.dumps(rounded(obj, digits), indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path | str) -> Any:
    with Path(path).open(encoding="utf-8") as f:
        return json.load(f)


def load_npy(path: Path | str, mmap: bool = False) -> np.ndarray:
    """np.load without pickles; a missing file names the stage that makes it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; run the stage that writes it first (dvc repro)")
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def all_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- entry points -----------------------------------------------------------------

def run(main: Callable[[], Any]) -> None:
    """Run a stage's main(); a UserError becomes one clear line on stderr and exit code 2."""
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; outputs left as they were", file=sys.stderr)
        sys.exit(130)
