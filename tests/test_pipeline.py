"""The whole pipeline through DVC, in a temporary copy of the repository at tiny size.

One session-scoped copy is reproduced once and shared; each test leaves it as it found
it (same params, `dvc status` clean), so the tests also hold in any order.
"""

import concurrent.futures
import hashlib
import html
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
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
    wait_for_the_queue,
    with_overrides,
    write_params,
)
from tools.check_repro import git_show, load_locks

pytestmark = pytest.mark.slow

# A few hundred images: every stage runs in about a second.
TINY = {
    "ingest": {"source": "data/raw/synthetic"},  # the built-in data, whatever this repository reads
    "synthesize": {"per_class": 30},
    "minibatch": {"batch_size": 32, "epochs": 5},
    "objective": {"lbfgs_max_iter": 500},  # converged: a capped L-BFGS is no optimum, and moves with noise
    "sweep": {"rates": [0.001, 0.01, 0.1, 1.0, 1000.0], "subsample": 100},  # 1000: every optimizer diverges
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


def test_a_forced_rerun_gives_bitwise_identical_outputs_and_a_clean_git_status(pipeline):
    before = committed_lock_outs(pipeline)
    dvc(pipeline, "repro", "--force")
    assert lock_outs(pipeline) == before  # timings are in the untracked timings/, nothing else moves
    assert git(pipeline, "status", "--porcelain").stdout == ""


def test_a_clone_of_a_clone_reproduces_with_a_clean_git_status(pipeline, tmp_path):
    # README: on one machine, `dvc repro` in a fresh clone rewrites every output byte for byte
    first, second = tmp_path / "first", tmp_path / "second"
    git(tmp_path, "clone", "-q", str(pipeline), str(first))
    dvc(first, "repro", "--force")
    commit(first, "reproduced in a clone")
    git(tmp_path, "clone", "-q", str(first), str(second))
    dvc(second, "repro")
    assert git(second, "status", "--porcelain").stdout == ""
    assert UP_TO_DATE in dvc(second, "status").stdout


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


def test_a_queued_grid_runs_its_four_combinations_and_exp_show_lists_them(pipeline):
    argv = readme_command("dvc exp run --queue -S 'train.optimizer=")  # README's grid, as written
    queued = dvc(pipeline, *argv[1:]).stdout
    assert queued.count("Queued experiment") == 4, queued
    try:
        dvc(pipeline, "queue", "start", "-j", "2")
        states = wait_for_the_queue(pipeline)
        assert "Failed" not in states and states.count("Success") == 4, states
        shown = json.loads(dvc(pipeline, "exp", "show", "--json").stdout)
        results = {}
        for commit_entry in shown:
            for experiment in commit_entry.get("experiments") or []:
                data = experiment["revs"][0]["data"]
                train = data["params"]["params.yaml"]["data"]["train"]
                results[train["optimizer"], train["learning_rate"]] = data["metrics"]["metrics/evaluate.json"]["data"]
        assert set(results) == {(o, r) for o in ("sgd", "adam") for r in (0.01, 0.1)}, results
        assert all(0 <= metrics["accuracy"] <= 1 for metrics in results.values())
    finally:
        dvc(pipeline, "queue", "stop", "--kill", check=False)
        dvc(pipeline, "exp", "remove", "--all-commits", "--queue")
    assert UP_TO_DATE in dvc(pipeline, "status").stdout


def exp_show_columns(root: Path, *args: str) -> list[str]:
    """The columns of `dvc exp show` (its CSV adds rev, typ and parent, which the table has not)."""
    header = dvc(root, "exp", "show", "--csv", *args).stdout.splitlines()[0].split(",")
    return [name for name in header if name not in ("rev", "typ", "parent")]


def test_the_default_exp_show_has_at_most_110_columns_and_40_metrics(pipeline):
    columns = exp_show_columns(pipeline)
    params = {f"{section}.{key}" for section, values in read_params(pipeline).items() for key in values}
    deps = {
        dep
        for file in ("dvc.yaml", "builtin/dvc.yaml")
        for stage in yaml.safe_load((pipeline / file).read_text())["stages"].values()
        for dep in stage.get("do", stage).get("deps", [])
    } | {"data/raw/synthetic"}
    metrics = [c for c in columns[2:] if c not in params and c not in deps]
    assert len(columns) <= 110 and len(metrics) <= 40, (len(columns), metrics)
    assert {"accuracy", "accuracy_ci95_low", "accuracy_ci95_high", "valid.accuracy", "leaks.near"} <= set(metrics)


def readme_command(prefix: str) -> list[str]:
    """The first command line in README.md that starts with `prefix`, without its comment."""
    for line in (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines():
        if line.strip().startswith(prefix):
            return shlex.split(line.split("  #")[0].strip())
    raise AssertionError(f"README.md shows no `{prefix} ...`")


def test_readmes_exp_show_command_fits_120_characters_with_an_experiment_listed(pipeline):
    argv = readme_command("dvc exp show --drop")
    dvc(pipeline, "exp", "run", "-n", "a-long-name-for-a-try-at-0.1", "-S", "train.learning_rate=0.1")
    try:
        env = {**os.environ, "COLUMNS": "120"}
        shown = subprocess.run(
            [sys.executable, "-m", *argv, "--no-pager"], cwd=pipeline, env=env, capture_output=True, text=True
        ).stdout
        lines = shown.splitlines()
        assert len(lines) >= 6 and max(map(len, lines)) <= 120, shown
        assert "…" not in shown and "a-long-name-for-a-try-at-0.1" in shown and "log_loss" in shown
        # the rate each run trained with, not the param's `best`
        baseline = next(line for line in lines if "workspace" in line)
        rate = json.loads((pipeline / "metrics/train.json").read_text())["learning_rate"]
        assert "best" not in shown and f"{rate:g}" in baseline
    finally:
        git(pipeline, "checkout", "-q", "--", ".")
        dvc(pipeline, "checkout", "-q")
        dvc(pipeline, "exp", "remove", "--all-commits")
    assert UP_TO_DATE in dvc(pipeline, "status").stdout


def test_a_misspelled_key_in_params_fails_dvc_repro_naming_it(pipeline):
    params = read_params(pipeline)
    write_params(pipeline, with_overrides(params, {"split": {"nearmad": 3}}))
    try:
        result = dvc(pipeline, "repro", check=False)
        assert result.returncode != 0
        assert "error: split.nearmad: unknown parameter" in result.stderr + result.stdout
    finally:
        write_params(pipeline, params)
        dvc(pipeline, "repro")  # back to the committed results (from DVC's run cache)
    assert UP_TO_DATE in dvc(pipeline, "status").stdout


def committed_results(root: Path) -> dict[str, bytes]:
    """The committed params, lock files and metrics, and the model they record, as bytes."""
    tracked = git(root, "ls-files", "params.yaml", "dvc.lock", "builtin/dvc.lock", "metrics").stdout.split()
    return {path: (root / path).read_bytes() for path in [*tracked, "models/model.npz"]}


def printed_restore_command(output: str) -> str:
    (line,) = [line for line in output.splitlines() if "to go back to the last commit: " in line]
    assert len(line) <= 200
    return line.split("to go back to the last commit: ")[1]


def test_after_a_diverged_exp_run_the_printed_command_restores_the_last_commit(pipeline):
    committed = committed_results(pipeline)
    # a good experiment first, applied to the workspace as `dvc exp run` does: DVC then leaves
    # git's index believing some rewritten metrics files unchanged, which a plain
    # `git checkout HEAD -- metrics` would skip
    dvc(pipeline, "exp", "run", "-S", "train.learning_rate=0.1")
    result = dvc(pipeline, "exp", "run", "-S", "train.learning_rate=1e6", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "training diverged in epoch 1" in output
    assert not (pipeline / "models/model.npz").exists()  # DVC removes a stage's outputs before it runs
    assert printed_restore_command(output) == "python -m tools.restore"
    run(pipeline, sys.executable, "-m", "tools.restore")
    restored = {path: (pipeline / path).read_bytes() for path in committed}
    assert [path for path in committed if restored[path] != committed[path]] == []
    assert UP_TO_DATE in dvc(pipeline, "status").stdout
    assert git(pipeline, "status", "--porcelain").stdout == ""
    dvc(pipeline, "exp", "remove", "--all-commits")


def test_restore_after_an_applied_experiment_brings_back_the_committed_model(pipeline):
    committed = committed_results(pipeline)
    dvc(pipeline, "exp", "run", "-n", "faster", "-S", "train.learning_rate=0.3")
    assert (pipeline / "models/model.npz").read_bytes() != committed["models/model.npz"]
    run(pipeline, sys.executable, "-m", "tools.restore")
    assert {path: (pipeline / path).read_bytes() for path in committed} == committed
    assert git(pipeline, "status", "--porcelain").stdout == ""
    dvc(pipeline, "exp", "remove", "--all-commits")


def test_restore_in_a_fresh_clone_rebuilds_a_committed_model_no_cache_holds(pipeline, tmp_path):
    # the clone has never built anything: a diverged experiment is its first run
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(pipeline), str(clone))
    committed = {path: data for path, data in committed_results(pipeline).items() if path != "models/model.npz"}
    result = dvc(clone, "exp", "run", "-S", "train.learning_rate=1e6", check=False)
    assert result.returncode != 0
    restore = run(clone, *printed_restore_command(result.stdout + result.stderr).split())
    assert "rebuilt" in restore.stdout
    assert {path: (clone / path).read_bytes() for path in committed} == committed
    # the pinned BLAS kernel rebuilds the committed model bit for bit, so git sees no change
    assert (clone / "models/model.npz").read_bytes() == (pipeline / "models/model.npz").read_bytes()
    assert git(clone, "status", "--porcelain").stdout == ""


def test_a_failed_queued_run_says_the_workspace_is_untouched_and_leaves_it_so(pipeline):
    before = snapshot(pipeline)
    dvc(pipeline, "exp", "run", "--queue", "-n", "too-fast", "-S", "train.learning_rate=1e6")
    dvc(pipeline, "queue", "start", "-j", "1")
    assert "Failed" in wait_for_the_queue(pipeline)
    log = dvc(pipeline, "queue", "logs", "too-fast", check=False)
    assert "your workspace is untouched (log: dvc queue logs too-fast)" in log.stdout + log.stderr
    assert "tools.restore" not in log.stdout + log.stderr
    assert snapshot(pipeline) == before
    assert git(pipeline, "status", "--porcelain").stdout == ""
    dvc(pipeline, "exp", "remove", "--all-commits")
    dvc(pipeline, "queue", "remove", "--all")


def test_under_another_blas_kernel_results_are_within_tolerance_of_the_pinned_ones(pipeline):
    # another CPU, simulated: a kernel family this machine runs too, set from outside
    other = {"OPENBLAS_CORETYPE": "Sandybridge"}
    try:
        dvc(pipeline, "repro", "--force", env=other)
        check = run(pipeline, sys.executable, "-m", "tools.check_repro", env=other, check=False)
        assert check.returncode == 0, check.stdout
        assert "within tolerance" in check.stdout and "Sandybridge" in check.stdout
    finally:
        dvc(pipeline, "repro", "--force")  # the pinned kernel: the committed results, bit for bit
    check = run(pipeline, sys.executable, "-m", "tools.check_repro")
    assert "every result file identical" in check.stdout
    assert git(pipeline, "status", "--porcelain").stdout == ""


FULL_DISK_AT_SECOND_WRITE = """
import errno, pathlib, runpy, sys
writes = []
write_text = pathlib.Path.write_text
def fills_the_disk(self, *args, **kwargs):
    if writes:
        raise OSError(errno.ENOSPC, "No space left on device")
    writes.append(self)
    return write_text(self, *args, **kwargs)
pathlib.Path.write_text = fills_the_disk
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""


def test_a_stage_that_fills_the_disk_says_so_in_one_line_and_replaces_no_output(pipeline):
    params = read_params(pipeline)
    before = snapshot(pipeline)
    write_params(pipeline, with_overrides(params, {"train": {"learning_rate": 0.2}}))
    try:
        result = run(pipeline, sys.executable, "-c", FULL_DISK_AT_SECOND_WRITE, "stages.train", check=False)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: metrics/") and "the disk is full" in result.stderr
        assert snapshot(pipeline) == before  # the model was written first: it too is the old one
    finally:
        write_params(pipeline, params)
    assert UP_TO_DATE in dvc(pipeline, "status").stdout


def entry_points(root: Path) -> list[str]:
    return [f"{folder}.{p.stem}" for folder in ("stages", "tools") for p in sorted((root / folder).glob("[a-z]*.py"))]


def test_help_on_every_entry_point_prints_usage_and_touches_nothing(pipeline):
    before = snapshot(pipeline)
    for module in entry_points(pipeline):
        shown = run(pipeline, sys.executable, "-m", module, "--help")
        assert shown.stdout.startswith(f"usage: python -m {module}"), module
        refused = run(pipeline, sys.executable, "-m", module, "--no-such-option", check=False)
        assert refused.returncode == 2 and refused.stderr.startswith("usage: "), module
    assert snapshot(pipeline) == before


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")


def rendered_offline(page: Path, scratch: Path) -> str:
    """The DOM of `page` after headless Chromium ran its scripts, with every network request
    sent to an address that refuses it."""
    return run(
        scratch,
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={scratch / 'profile'}",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=15000",
        "--dump-dom",
        page.as_uri(),
        timeout=120,
    ).stdout


def drawn_charts(page: Path, scratch: Path) -> dict[str, dict]:
    """What every chart of a `dvc plots` page drew, by its element id: the colour scale, axes
    (title, labels with their boxes), legends (title, labels, symbols) and named marks, as
    tests/chart_probe.js reads them from the Vega views in headless Chromium."""
    head, end, rest = page.read_text().rpartition("</head>")
    probe = (Path(__file__).parent / "chart_probe.js").read_text()
    probed = page.with_name("probed.html")
    probed.write_text(f"{head}<script>{probe}</script>\n{end}{rest}")
    found = re.search(r'<pre id="chart-probe">(.*?)</pre>', rendered_offline(probed, scratch), re.S)
    assert found, "the charts did not finish drawing"
    return {chart["element"].lstrip("#"): chart for chart in json.loads(html.unescape(found.group(1)))}


def spread(labels: list[dict], axis: int) -> float:
    """How far the label boxes' centres spread along x (axis 0) or y (axis 1)."""
    centres = [(label["box"][axis] + label["box"][axis + 2]) / 2 for label in labels]
    return max(centres) - min(centres)


def overlapping(labels: list[dict]) -> list[tuple[str, str]]:
    shown = [label for label in labels if label["text"]]
    return [
        (a["text"], b["text"])
        for i, a in enumerate(shown)
        for b in shown[i + 1 :]
        if a["box"][0] < b["box"][2]
        and b["box"][0] < a["box"][2]
        and a["box"][1] < b["box"][3]
        and b["box"][1] < a["box"][3]
    ]


@pytest.mark.parametrize("command", [["plots", "show"], ["plots", "diff", "HEAD"]])
def test_every_chart_draws_offline_in_a_real_browser_and_the_charts_agree(pipeline, tmp_path, command):
    out = tmp_path / "plots"
    dvc(pipeline, *command, "-o", str(out))
    page = (out / "index.html").read_text()
    assert "<script src=" not in page  # the chart libraries are inline, nothing is fetched
    charts = page.count("vegaEmbed(")
    assert charts == len(
        [p for p in yaml.safe_load((pipeline / "dvc.yaml").read_text())["plots"] if isinstance(p, dict)]
    )
    dom = rendered_offline(out / "index.html", tmp_path)
    assert dom.count('class="vega-embed') == charts and dom.count("<canvas") == charts
    assert dom.count("<img") >= 3  # the three PNG pictures

    drawn = drawn_charts(out / "index.html", tmp_path)
    revisions = 2 if command[1] == "diff" else 1
    sweep, comparison = drawn["metrics_sweep_csv"], drawn["metrics_optimizer_curves_csv"]
    # one colour per optimizer, the same in both charts, in the same legend order
    optimizers = read_params(pipeline)["sweep"]["optimizers"]
    assert sweep["color"]["domain"] == comparison["color"]["domain"] == optimizers
    assert sweep["color"]["range"] == comparison["color"]["range"]
    legends = [next(g for g in chart["legends"] if g["title"] == "optimizer") for chart in (sweep, comparison)]
    assert legends[0]["labels"] == legends[1]["labels"] == optimizers
    assert legends[0]["symbols"] == legends[1]["symbols"]
    # every diverged run marked with an x, each in its own place
    table = pd.read_csv(pipeline / "metrics/sweep.csv")
    marked = sweep["marks"]["diverged_marks"]
    assert len(marked) == revisions * int(table["diverged"].sum()) > 0
    assert {m["shape"] for m in marked} == {"M-1,-1L1,1M-1,1L1,-1"}
    assert len({(m["x"], m["y"]) for m in marked}) == len(marked)
    # log axes labelled at powers of ten only; no axis with labels on top of each other
    log_axes = {"learning_rate", "validation loss (nats)", "validation loss minus the optimum's (nats)"}
    for chart in drawn.values():
        for axis in chart["axes"]:
            assert not overlapping(axis["labels"]), (chart["element"], axis["title"])
            if axis["title"] in log_axes:
                values = [float(label["text"]) for label in axis["labels"] if label["text"]]
                assert len(values) >= 2 and all(math.log10(v) == round(math.log10(v)) for v in values), values
    # the comparison chart spreads the optimizers apart: the gap spans powers of ten
    gap_axis = next(a for a in comparison["axes"] if a["title"] in log_axes)
    assert sum(1 for label in gap_axis["labels"] if label["text"]) >= 2
    # revisions told apart in every legend of them
    for chart in drawn.values():
        for legend in chart["legends"]:
            if legend["title"] in ("rev", "revision"):
                assert len(legend["labels"]) == revisions
                assert len({tuple(sorted(s.items())) for s in legend["symbols"]}) == revisions, legend
    # the confusion chart puts the actual letter on rows, as confusion.png does
    confusion = {a["title"]: a["labels"] for a in drawn["metrics_confusion_csv"]["axes"] if a["title"]}
    assert spread(confusion["actual"], 1) > spread(confusion["actual"], 0)
    assert spread(confusion["predicted"], 0) > spread(confusion["predicted"], 1)


def test_dvc_plots_output_is_git_ignored(pipeline):
    dvc(pipeline, "plots", "show")
    assert (pipeline / "dvc_plots/index.html").exists()
    assert git(pipeline, "status", "--porcelain").stdout == ""
