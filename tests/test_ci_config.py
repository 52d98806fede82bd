"""The GitHub workflow and .ci/run are valid and only call commands that exist."""

import importlib.util
import shlex
import subprocess

import pytest
import yaml

from tests.helpers import REPO

WORKFLOW = REPO / ".github" / "workflows" / "reproduce.yml"
CI_RUN = REPO / ".ci" / "run"
TEST_COMMAND = "python -m pytest"  # README's test command
SHELL_WORDS = ("if", "then", "else", "fi", ";")


def commands(script: str) -> list[list[str]]:
    """Each shell line of a step as argv, without output redirection (`>> file`)."""
    argvs = []
    for line in script.splitlines():
        line = line.split(">>")[0].split("||")[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in line.split("&&"):
            argv = [word for word in shlex.split(part.replace(";", " ; ")) if word not in SHELL_WORDS]
            if argv:
                argvs.append(argv)
    return argvs


def check_command(argv: list[str]) -> None:
    """Fail unless argv is a command this project has: dvc's parser, a module, a file."""
    from dvc.cli import parse_args

    program, args = argv[0], argv[1:]
    if program == "dvc":
        parse_args(args)  # raises on an unknown subcommand or option
    elif program in ("python", "python3") and args[0] == "-c":
        compile(args[1], "<-c>", "exec")
    elif program in ("python", "python3") and args[0] == "-m":
        module = args[1]
        assert module == "venv" or importlib.util.find_spec(module), f"no module {module}"
        if module.startswith(("stages.", "tools.")):
            assert (REPO / (module.replace(".", "/") + ".py")).exists()
    elif program == "pip":
        assert args[0] == "install" and ("-r" in args or any(a.startswith("torch==") for a in args)), argv
        if "-r" in args:
            assert (REPO / args[args.index("-r") + 1]).exists()
    else:
        assert program in ("apt-get", "git", "echo", "cd", "set", "export", ".", "ruff", "mypy", "command"), argv


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_runs_on_push_and_pull_request(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"push", "pull_request"}


def test_workflow_checks_out_full_history_on_python_311_with_the_fonts_and_a_pip_cache(workflow):
    job = workflow["jobs"]["reproduce"]
    steps = job["steps"]
    assert job["container"].startswith("python:3.11-")
    fonts = next(i for i, s in enumerate(steps) if "fonts-dejavu-core" in s.get("run", ""))
    assert "fonts-dejavu-extra" in steps[fonts]["run"] and " git " in steps[fonts]["run"]
    checkout = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/checkout@"))
    assert fonts < checkout, "git must be installed before checkout, or there is no .git for DVC"
    assert steps[checkout]["with"]["fetch-depth"] == 0
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.cache/pip" and "requirements.txt" in cache["with"]["key"]


def test_workflow_tests_reproduces_checks_and_uploads_metrics_in_that_order(workflow):
    steps = workflow["jobs"]["reproduce"]["steps"]
    runs = [s.get("run", "") for s in steps]
    order = [
        next(i for i, r in enumerate(runs) if needle in r)
        for needle in (
            "pip install -r requirements.txt",
            "ruff check .",
            "mypy",
            TEST_COMMAND,
            "dvc repro --force",
            "python -m tools.check_repro",
            "dvc metrics diff --md",
        )
    ]
    assert order == sorted(order)
    assert any("GITHUB_STEP_SUMMARY" in r and "dvc params diff main --md" in r for r in runs)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"].rstrip("/") == "metrics"


def test_the_reproduce_job_runs_on_an_x86_and_an_arm_runner_each_ending_with_the_check(workflow):
    job = workflow["jobs"]["reproduce"]
    runners = job["strategy"]["matrix"]["runner"]
    assert job["runs-on"] == "${{ matrix.runner }}" and not job["strategy"]["fail-fast"]
    assert "ubuntu-latest" in runners and any(r.endswith("-arm") for r in runners)
    runs = [s.get("run", "") for s in job["steps"]]
    bit_for_bit = next(i for i, r in enumerate(runs) if "git diff --exit-code" in r)
    assert "blas.is_pinned()" in runs[bit_for_bit]
    assert bit_for_bit < next(i for i, r in enumerate(runs) if r == "python -m tools.check_repro")


def test_every_workflow_command_exists(workflow):
    for step in workflow["jobs"]["reproduce"]["steps"]:
        for argv in commands(step.get("run", "")):
            check_command(argv)


def test_ci_run_is_valid_bash_and_runs_lint_the_tests_then_the_reproduction_check():
    subprocess.run(["bash", "-n", str(CI_RUN)], check=True)
    text = CI_RUN.read_text()
    assert f". .venv/bin/activate && {TEST_COMMAND}" in text
    lines = [" ".join(argv) for argv in commands(text)]
    assert (
        lines.index("ruff check .")
        < lines.index("ruff format --check .")
        < lines.index("mypy")
        < lines.index(TEST_COMMAND)
        < lines.index("dvc repro --force")
        < lines.index("python -m tools.check_repro")
    )
    assert "pip install -q --no-compile torch==2.13.0" in lines, "the PyTorch reference tests must run in CI"
    for argv in commands(text):
        if argv[0] in ("dvc", "python", "python3", "pip"):
            check_command(argv)
