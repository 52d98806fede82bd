"""Experiments on many machines, as .github/workflows/grid.yml runs them, played on one: a bare
git repository as the origin, a local folder as the DVC remote, two clones that each run and
`dvc exp push` one experiment, and a third clone that `dvc exp pull`s both."""

import json

import pytest
import yaml

from tests.helpers import REPO, commit, copy_repository, dvc, git, read_params, with_overrides, write_params
from tests.test_ci_config import check_command, commands

pytestmark = pytest.mark.slow

TINY = {
    "ingest": {"source": "data/raw/synthetic"},
    "synthesize": {"per_class": 30},
    "minibatch": {"batch_size": 32, "epochs": 3},
    "objective": {"lbfgs_max_iter": 30},
    "sweep": {"rates": [0.01, 0.1], "subsample": 100},
}


def experiments(root) -> dict[str, float]:
    """Experiment name -> its train.learning_rate, as `dvc exp show --json` lists them."""
    found = {}
    for baseline in json.loads(dvc(root, "exp", "show", "--json").stdout):
        for experiment in baseline.get("experiments") or []:
            data = experiment["revs"][0]["data"]
            found[experiment["name"]] = data["params"]["params.yaml"]["data"]["train"]["learning_rate"]
    return found


def test_two_machines_push_an_experiment_each_and_a_third_pulls_both(tmp_path):
    origin, remote, team = tmp_path / "origin.git", tmp_path / "dvc-remote", tmp_path / "team"
    team.mkdir()
    copy_repository(team)
    write_params(team, with_overrides(read_params(team), TINY))
    git(team, "init", "-q", "-b", "main")
    dvc(team, "remote", "add", "-d", "storage", str(remote))
    dvc(team, "repro")
    commit(team, "the team's pipeline, reproduced")
    dvc(team, "push")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(team, "push", "-q", str(origin), "main")

    for name, rate in (("grid-a", 0.02), ("grid-b", 0.2)):  # one matrix job each
        machine = tmp_path / name
        git(tmp_path, "clone", "-q", str(origin), str(machine))
        dvc(machine, "pull", "--allow-missing")
        dvc(machine, "exp", "run", "-n", name, "-S", f"train.learning_rate={rate}")
        dvc(machine, "exp", "push", "origin", name)

    collector = tmp_path / "collect"
    git(tmp_path, "clone", "-q", str(origin), str(collector))
    dvc(collector, "exp", "pull", "--no-cache", "origin")
    assert experiments(collector) == {"grid-a": 0.02, "grid-b": 0.2}
    table = dvc(collector, "exp", "show", "--md").stdout
    assert "grid-a" in table and "grid-b" in table

    dvc(collector, "exp", "pull", "origin", "grid-a")  # with its data and model, from the DVC remote
    dvc(collector, "exp", "apply", "grid-a")
    assert (collector / "models/model.npz").exists()


def test_the_grid_workflow_runs_a_matrix_of_pushed_experiments_and_collects_them():
    workflow = yaml.safe_load((REPO / ".github/workflows/grid.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "grid" in triggers["workflow_dispatch"]["inputs"]
    job = workflow["jobs"]["experiment"]
    assert job["strategy"]["matrix"]["params"] == "${{ fromJSON(inputs.grid) }}"
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "dvc exp run -n" in runs and 'dvc exp push origin "$EXPERIMENT"' in runs
    collect = "\n".join(step.get("run", "") for step in workflow["jobs"]["collect"]["steps"])
    assert "dvc exp pull" in collect and "dvc exp show --md" in collect and "GITHUB_STEP_SUMMARY" in collect
    for argv in commands(runs + "\n" + collect):
        if argv[0] == "dvc":
            check_command(argv)  # every DVC command of the workflow parses
