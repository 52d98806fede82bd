"""The layout holds: thin stage entry points over one library, and dvc.yaml's dependencies
match what each stage really imports and reads."""

import ast
import shlex
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

PIPELINES = [f for f in ("dvc.yaml", "builtin/dvc.yaml") if (REPO / f).exists()]


def project_imports(path: Path) -> set[str]:
    """The repository's own modules that a file imports (as paths such as notmnist/plumbing/files.py)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            module = REPO / (name.replace(".", "/") + ".py")
            if name.split(".")[0] in ("notmnist", "stages", "tools") and module.exists():
                found.add(module.relative_to(REPO).as_posix())
    return found


def closure(path: str) -> set[str]:
    """A module and every project module it imports, directly or not."""
    seen, todo = {path}, [path]
    while todo:
        for module in project_imports(REPO / todo.pop()) - seen:
            seen.add(module)
            todo.append(module)
    return seen


def pipeline_stages() -> dict[str, dict]:
    """Every stage of dvc.yaml and builtin/dvc.yaml (a foreach stage by its `do` body)."""
    stages = {}
    for file in PIPELINES:
        for name, spec in yaml.safe_load((REPO / file).read_text())["stages"].items():
            stages[name] = spec.get("do", spec)
    return stages


def entry_point(stage: dict) -> str:
    argv = shlex.split(stage["cmd"])
    assert argv[:2] == ["python", "-m"] and argv[2].startswith("stages."), stage["cmd"]
    return argv[2].replace(".", "/") + ".py"


STAGE_MODULES = sorted(p for p in (REPO / "stages").glob("*.py") if p.name != "__init__.py")


def test_every_module_in_stages_is_the_entry_point_of_a_dvc_stage():
    used = {entry_point(stage) for stage in pipeline_stages().values()}
    assert {p.relative_to(REPO).as_posix() for p in STAGE_MODULES} == used


@pytest.mark.parametrize("module", STAGE_MODULES, ids=lambda p: p.name)
def test_a_stage_is_thin_and_imports_no_other_stage(module):
    lines = [line for line in module.read_text().splitlines() if line.strip()]
    assert len(lines) <= 120
    assert not {m for m in project_imports(module) if m.startswith("stages/")}


def test_the_library_imports_neither_stages_nor_tools():
    for module in (REPO / "notmnist").rglob("*.py"):
        assert not {m for m in project_imports(module) if m.startswith(("stages/", "tools/"))}, module


def test_plumbing_imports_no_other_part_of_the_library():
    # every stage depends on notmnist/plumbing; what it imported would rerun every stage
    for module in (REPO / "notmnist/plumbing").glob("*.py"):
        others = {m for m in project_imports(module) if not m.startswith("notmnist/plumbing/")}
        assert not others, module


def code_deps(module: str) -> set[str]:
    """What a stage's code deps must be: its entry point and the library folders
    (notmnist/<group>) of every module it imports, directly or not."""
    imported = closure(module) - {module}
    return {module} | {str(Path(m).parent) for m in imported}


@pytest.mark.parametrize("name", sorted(pipeline_stages()))
def test_each_stage_depends_on_exactly_the_code_it_imports(name):
    stage = pipeline_stages()[name]
    code = {dep for dep in stage["deps"] if dep.startswith(("stages/", "notmnist"))}
    assert code == code_deps(entry_point(stage))


@pytest.mark.parametrize("name", sorted(pipeline_stages()))
def test_each_stage_depends_on_whole_params_sections(name):
    # a whole section, so that a new (misspelled) key in it reruns the stage, which rejects it
    for entry in pipeline_stages()[name].get("params", []):
        section, _, key = str(entry).partition(".")
        assert not key or key == "${key}", f"{name}: {entry} is a single knob, not a section"
