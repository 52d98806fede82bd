"""The whole pipeline through DVC, in a temporary copy of the repository at tiny size.

One session-scoped copy is reproduced once and shared; each test leaves it as it found
it (same params, `dvc status` clean), so the tests also hold in any order.
"""

import concurrent.futures
import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    OUTPUT_DIRS,
    commit,
    copy_repository,
    dvc,
    git,
    read_params,
    run,
    with_overrides,
    write_params,
)
from tools.check_repro import compare_metrics, git_show, is_ignored, load_locks

pytestmark = pytest.mark.slow

# A few hundred images: every stage runs in about a second.
TINY = {
    "synthesize": {"per_class": 30},
    "minibatch": {"batch_size": 32, "epochs": 5},
    "objective": {"lbfgs_max_iter": 50},
}
UP_TO_DATE = "Data and pipelines are up to date."


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every output file: path -> (mtime, md5)."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.md5(p.read_bytes()).hexdigest())
        for d in OUTPUT_DIRS
        for p in sorted((root / d).rglob("*"))
        if p.is_file()
    }


def outs_of(locks: dict) -> dict[str, str]:
    """Every stage output in the lock files (dvc.lock, builtin/dvc.lock): path -> md5."""
    return {out["path"]: out["md5"] for stage in locks["stages"].values() for out in stage.get("outs", [])}


def lock_outs(root: Path) -> dict[str, str]:
    return outs_of(load_locks(lambda path: (root / path).read_text() if (root / path).exists() else None))


def committed_lock_outs(root: Path) -> dict[str, str]:
    return outs_of(load_locks(lambda path: git_show("HEAD", path, root)))


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Path:
    """A git+DVC copy of the repository with tiny params, reproduced and committed."""
    root = tmp_path_factory.mktemp("pipeline")
    copy_repository(root)
    write_params(root, with_overrides(read_params(root), TINY))
    git(root, "init", "-q")
    git(root, "config", "user.name", "test")
    git(root, "config", "user.email", "test@example.com")
    dvc(root, "repro")
    commit(root, "tiny pipeline reproduced")
    return root


def test_a_second_repro_runs_nothing_and_status_is_clean(pipeline):
    assert "Running stage" not in dvc(pipeline, "repro").stdout
    assert UP_TO_DATE in dvc(pipeline, "status").stdout


def test_every_stage_gives_bitwise_identical_outputs_when_forced_to_rerun(pipeline):
    before = committed_lock_outs(pipeline)
    dvc(pipeline, "repro", "--force")
    after = lock_outs(pipeline)
    assert set(before) == set(after)
    for path in sorted(p for p in before if before[p] != after[p]):
        # only wall-clock values (seconds_per_epoch) may differ, in metrics and tables
        assert (pipeline / path).is_file(), f"{path} differs between two runs with the same params"
        committed, reproduced = git(pipeline, "show", f"HEAD:{path}").stdout, (pipeline / path).read_text()
        if path.endswith(".json"):
            assert compare_metrics(path, json.loads(committed), json.loads(reproduced), exact=True) == []
        else:
            assert without_timing_columns(committed) == without_timing_columns(reproduced), path


def without_timing_columns(text: str) -> list[list[str]]:
    """The rows of the tables in `text` (markdown or TSV) without their timing columns."""
    rows, timing = [], set()
    for line in text.splitlines():
        separator = "|" if line.startswith("|") else "\t" if "\t" in line else None
        cells = [cell.strip() for cell in line.split(separator)] if separator else [line]
        if separator is None:
            timing = set()
        elif any(is_ignored(cell) for cell in cells):  # a header row
            timing = {i for i, cell in enumerate(cells) if is_ignored(cell)}
        rows.append([cell for i, cell in enumerate(cells) if i not in timing])
    return rows


def stage_commands(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Each stage of the pipeline (dvc.yaml, builtin/dvc.yaml) that reads params: its command
    (with this interpreter; a foreach stage over a params section with its first key) and the
    params.yaml sections it reads."""
    params = read_params(root)
    commands = {}
    stages = {
        name: spec
        for file in ("dvc.yaml", "builtin/dvc.yaml")
        for name, spec in yaml.safe_load((root / file).read_text())["stages"].items()
    }
    for name, spec in stages.items():
        body = spec.get("do", spec)
        each = spec.get("foreach", "${none}")[2:-1]  # "${optimizers}": the section's keys
        argv = shlex.split(body["cmd"].replace("${key}", next(iter(params.get(each, [""])))))
        sections = sorted({str(p).split(".")[0] for p in body.get("params", [])})
        if sections:
            commands[name] = ([sys.executable, *argv[1:]] if argv[0] == "python" else argv, sections)
    return commands


# Out-of-range values from the reliability issue; each stage not named here gets a
# mapping in place of the last knob of its first section (a wrong type for any knob).
NAMED_BAD_PARAMS = [
    ("synthesize", "synthesize.per_class", -1),
    ("split", "split.valid", -0.1),
    ("normalize", "normalize.method", "zscore"),
    ("train", "train.optimizer", "adamw"),
    ("train", "train.learning_rate", -0.1),
    ("train", "minibatch.batch_size", 10**6),
]


def bad_params_cases(root: Path) -> list[tuple[list[str], str, object]]:
    """(stage command, "section.key", bad value): at least one per stage that reads params."""
    params = read_params(root)
    commands = stage_commands(root)
    cases = [(commands[stage][0], name, value) for stage, name, value in NAMED_BAD_PARAMS if stage in commands]
    named = {stage for stage, *_ in NAMED_BAD_PARAMS}
    for stage, (argv, (section, *_)) in commands.items():
        if stage not in named:
            cases.append((argv, f"{section}.{list(params[section])[-1]}", {"not": "a scalar"}))
    return cases


def run_with_bad_param(root: Path, scratch: Path, argv: list[str], name: str, value) -> subprocess.CompletedProcess:
    """Run a stage with one bad value in a private params.yaml, on the real outputs."""
    section, key = name.split(".")
    params = read_params(root)
    params[section][key] = value
    scratch.mkdir()
    write_params(scratch, params)
    for entry in ("stages", *OUTPUT_DIRS):
        (scratch / entry).symlink_to(root / entry)
    return run(scratch, *argv, check=False, timeout=60)


def test_bad_params_give_one_error_line_naming_the_parameter_and_touch_no_output(pipeline, tmp_path):
    cases = bad_params_cases(pipeline)
    before = snapshot(pipeline)
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        results = list(
            pool.map(lambda i: run_with_bad_param(pipeline, tmp_path / str(i), *cases[i]), range(len(cases)))
        )
    for (argv, name, value), result in zip(cases, results):
        message = f"{' '.join(argv[1:])} with {name}={value!r}: rc={result.returncode}\n{result.stderr}"
        assert result.returncode == 2, message
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, message
        assert name in result.stderr, message
    assert snapshot(pipeline) == before


KILL_AT_FIRST_RENAME = """
import os, runpy, signal, sys
def killed_before_the_rename(src, dst, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = os.rename = killed_before_the_rename
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
sys.exit("the stage finished without renaming a temporary file: not written atomically")
"""


def test_a_stage_killed_mid_write_leaves_its_previous_outputs_and_repro_completes(pipeline):
    params = read_params(pipeline)
    before = snapshot(pipeline)
    write_params(pipeline, with_overrides(params, {"train": {"learning_rate": 0.2}}))
    try:
        killed = run(pipeline, sys.executable, "-c", KILL_AT_FIRST_RENAME, "stages.train", check=False)
        assert killed.returncode == -9, killed.stderr
        after = snapshot(pipeline)
        left_over = set(after) - set(before)
        assert all(Path(p).name.startswith(".") and p.endswith(".tmp") for p in left_over), left_over
        assert {p: after[p] for p in before} == before

        dvc(pipeline, "repro")
        assert lock_outs(pipeline) != committed_lock_outs(pipeline)  # the new params took effect
    finally:
        write_params(pipeline, params)
        dvc(pipeline, "repro")  # back to the committed results (from DVC's run cache)
    for path in left_over:
        (pipeline / path).unlink(missing_ok=True)
    assert UP_TO_DATE in dvc(pipeline, "status").stdout


def test_a_fresh_clone_pulls_data_and_model_from_a_remote_without_recomputing(pipeline, tmp_path):
    dvc(pipeline, "remote", "add", "--force", "-d", "storage", str(tmp_path / "remote"))
    dvc(pipeline, "push")
    commit(pipeline, "a local-directory remote")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(pipeline), str(clone))
    dvc(clone, "pull")
    assert UP_TO_DATE in dvc(clone, "status").stdout  # nothing to recompute
    model = Path("models/model.npz")
    assert (clone / model).read_bytes() == (pipeline / model).read_bytes()


def test_two_queued_experiments_both_run_and_show_their_results(pipeline):
    rates = ("0.02", "0.2")
    for rate in rates:
        dvc(pipeline, "exp", "run", "--queue", "-S", f"train.learning_rate={rate}")
    dvc(pipeline, "exp", "run", "--run-all", "-j", "2")

    shown = json.loads(dvc(pipeline, "exp", "show", "--json").stdout)
    results = {}
    for commit_entry in shown:
        for experiment in commit_entry.get("experiments") or []:
            data = experiment["revs"][0]["data"]
            rate = data["params"]["params.yaml"]["data"]["train"]["learning_rate"]
            results[str(rate)] = data["metrics"]["metrics/evaluate.json"]["data"]["accuracy"]
    assert set(rates) <= set(results), results
    assert all(0 <= results[rate] <= 1 for rate in rates)
