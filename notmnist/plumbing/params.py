"""params.yaml: the one loader, and the checks a knob's value must pass.

The library module that uses a section's knobs declares them as a frozen dataclass, one
field per knob with its check (`knob(check)`), and no default: params.yaml holds the only
values. A stage reads the section with `load(Settings)`: before any work the whole section
is checked, and an unknown key (a typo), a missing key or a bad value raises ParamError
naming `section.key`, the value (shortened) and what is allowed. params.yaml's comments say
what each knob does.

A field made with `group(spec)` gathers knobs that another module declares (each optimizer
its own hyperparameters, say) into one mapping: the section holds them flat, side by side.

Any params.yaml is read in bounded time and memory, or refused in one line: the file must be
a regular file of at most MAX_BYTES of UTF-8; its YAML events are counted and its nesting
measured before anything is built (PyYAML's C parser where installed), and the document is
refused when its aliases would expand it past MAX_VALUES values (a "billion laughs").
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, TypeVar

import yaml

from notmnist.plumbing.errors import ParamError
from notmnist.plumbing.files import Unreadable, read_regular

PARAMS_FILE = Path("params.yaml")
MAX_BYTES = 256 * 2**10  # params.yaml is a few KB
MAX_DEPTH = 32  # sections hold knobs, a few hold lists
MAX_VALUES = 20_000  # YAML events before aliases, and values after (params.yaml: a few hundred)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 50x faster than pure Python

Check = Callable[[str, Any], Any]
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 2, 40, 40, 40


def short(value: Any, limit: int = 60) -> str:
    """repr(value) cut to about `limit` characters, never expanding more than a few levels of it."""
    try:
        text = _SHORT.repr(value)
    except ValueError:  # an int past Python's digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bad(name: str, value: Any, allowed: str) -> ParamError:
    return ParamError(f"{name}: bad value {short(value)}; allowed: {allowed}")


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False) -> Check:
    """A real number in [lo, hi] (or open at either end)."""
    left, right = "(" if lo_open or lo is None else "[", ")" if hi_open or hi is None else "]"
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


def text(max_length: int = 4096) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > max_length:
            raise _bad(name, value, f"a non-empty string of at most {max_length} characters")
        return value

    return check


def split_size() -> Check:
    """A fraction in (0, 1) of each class, or a whole count >= 1 of each class."""

    def check(name: str, value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not value > 0
            or (value >= 1 and value != int(value))
        ):
            raise _bad(name, value, "a fraction in (0, 1) or a whole count >= 1 (per class)")
        return value

    return check


def positive() -> Check:
    return number(0, None, lo_open=True)


def list_of(item: Check, allowed: str, at_least: int = 1) -> Check:
    """A list of at least `at_least` distinct values, each passing `item`."""

    def check(name: str, value: Any) -> list:
        if not isinstance(value, list) or len(value) < at_least or len(set(map(str, value))) < len(value):
            raise _bad(name, value, f"a list of at least {at_least} distinct {allowed}")
        return [item(f"{name}[{i}]", v) for i, v in enumerate(value)]

    return check


def either(check: Check, word: str) -> Check:
    """What `check` allows, or the string `word`."""

    def either_check(name: str, value: Any) -> Any:
        if value == word:
            return value
        try:
            return check(name, value)
        except ParamError as e:  # "...; allowed: a number in (0, inf)" -> "... or best"
            raise ParamError(f"{e} or {word}") from None

    return either_check


def validate(section: str, values: Any, spec: dict[str, Check], across: Callable[[dict], None] | None = None) -> dict:
    """The section's values checked against spec (key -> check), then as a whole by
    across(values); unknown, missing and bad keys raise ParamError naming `section.key`."""
    if not isinstance(values, dict):
        raise ParamError(f"{section}: must be a mapping of {', '.join(spec)}")
    unknown = sorted((key for key in values if key not in spec), key=str)
    if unknown:
        key = str(unknown[0])
        close = difflib.get_close_matches(key, spec, n=1, cutoff=0.5) if len(key) < 100 else []
        hint = f" (did you mean {section}.{close[0]}?)" if close else ""
        name = key if len(key) <= 60 else short(key)
        raise ParamError(f"{section}.{name}: unknown parameter{hint}; allowed: {', '.join(sorted(spec))}")
    missing = [key for key in spec if key not in values]
    if missing:
        raise ParamError(f"{section}.{missing[0]}: missing from params.yaml")
    checked = {key: check(f"{section}.{key}", values[key]) for key, check in spec.items()}
    if across is not None:
        across(checked)
    return checked


def read_file(path: Path | str = PARAMS_FILE) -> dict:
    """All of params.yaml as a dict of sections."""
    path = Path(path)
    if not path.exists():
        raise ParamError(f"{path}: not found (run from the repository root)")
    try:
        data = read_regular(path, MAX_BYTES)
        text = data.decode("utf-8")
    except Unreadable as e:
        raise ParamError(str(e)) from None
    except UnicodeDecodeError as e:
        raise ParamError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None
    loader = LOADER(text)
    try:
        _check_events(text, path)
        node = loader.get_single_node()
        if node is None:
            return {}
        _check_expanded_size(node, path)
        everything = loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ParamError(f"{path}: not valid YAML: {' '.join(str(e).split())[:300]}") from None
    except (ValueError, OverflowError, TypeError) as e:  # a value YAML parses but Python cannot build
        raise ParamError(f"{path}: not valid YAML: {type(e).__name__}: {str(e)[:200]}") from None
    finally:
        loader.dispose()
    if not isinstance(everything, dict):
        raise ParamError(f"{path}: must be a mapping of sections, not {type(everything).__name__}")
    return everything


def _check_events(text: str, path: Path) -> None:
    """Refuse a document with more than MAX_VALUES events or deeper than MAX_DEPTH, before
    building it (the composer recurses once per level)."""
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=LOADER)):
        if count > MAX_VALUES:
            raise ParamError(f"{path}: more than {MAX_VALUES} YAML values; params.yaml holds a few hundred")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ParamError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expanded_size(root: yaml.Node, path: Path) -> None:
    """Refuse a node graph whose aliases expand it past MAX_VALUES values, or that refers to
    itself; each node is sized once, so this costs what the file's nodes cost."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if not isinstance(node, yaml.CollectionNode):
            sizes[id(node)] = 1
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_VALUES:
                raise ParamError(f"{path}: its aliases expand it past {MAX_VALUES} values")
        elif id(node) in open_nodes:
            raise ParamError(f"{path}: an alias refers to a value that holds it")
        else:
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)


def load_section(
    section: str, spec: dict[str, Check], across: Callable[[dict], None] | None = None, path: Path | str = PARAMS_FILE
) -> dict:
    """One section of params.yaml, checked (see `validate`)."""
    everything = read_file(path)
    if section not in everything:
        raise ParamError(f"{path}: section '{section}' is missing")
    return validate(section, everything[section], spec, across)


class Settings(Protocol):
    """A frozen dataclass of one params.yaml section: SECTION names it, knob() fields."""

    SECTION: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]


S = TypeVar("S", bound=Settings)


def knob(check: Check) -> Any:
    """A settings field: one key of its section, with the check its value must pass."""
    return dataclasses.field(metadata={"check": check})


def group(spec: Mapping[str, Check]) -> Any:
    """A settings field gathering the keys of `spec` (declared elsewhere) into one mapping."""
    return dataclasses.field(metadata={"group": spec})


def spec_of(cls: type[Settings]) -> dict[str, Check]:
    """Every key of the section that `cls` reads, with its check."""
    spec: dict[str, Check] = {}
    for f in dataclasses.fields(cls):
        spec.update(f.metadata["group"] if "group" in f.metadata else {f.name: f.metadata["check"]})
    return spec


def parse(cls: type[S], values: Any) -> S:
    """The section's values checked (see `validate`) and read into a `cls`; its
    __post_init__, if any, checks them as a whole."""
    return _build(cls, validate(cls.SECTION, values, spec_of(cls)))


def load(cls: type[S], path: Path | str = PARAMS_FILE) -> S:
    """cls's section of params.yaml, checked (see `validate`), as a `cls`."""
    return _build(cls, load_section(cls.SECTION, spec_of(cls), path=path))


def _build(cls: type[S], checked: dict) -> S:
    return cls(
        **{
            f.name: {key: checked[key] for key in f.metadata["group"]} if "group" in f.metadata else checked[f.name]
            for f in dataclasses.fields(cls)
        }
    )
