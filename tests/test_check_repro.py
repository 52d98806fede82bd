"""tools.check_repro on small hand-made results in a temporary git repository."""

import copy
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import commit, git, run_tool
from tools.check_repro import check, compare_metrics, inconsistent_workspace, stale_stages

METRICS = {
    "metrics/split.json": ("split", {"train": {"n": 700}, "valid": {"n": 150}, "leaks": {"exact": 0}}),
    "metrics/train.json": (
        "train",
        {"epochs_run": 12, "best_epoch": 9, "seconds_per_epoch": 0.41, "valid": {"accuracy": 0.873, "loss": 0.452}},
    ),
    "metrics/evaluate.json": (
        "evaluate",
        {
            "accuracy": 0.861,
            "log_loss": 0.47,
            "accuracy_ci95": [0.84, 0.88],
            "per_class": {"A": {"precision": 0.9, "recall": 0.8}},
        },
    ),
}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_results(root: Path, metrics: dict, split_md5: str = "0" * 32 + ".dir", train_py: str = "a" * 32) -> None:
    """Metrics files and the dvc.lock that records them, as `dvc repro` would leave them."""
    stages = {
        "split": {
            "cmd": "python -m stages.split",
            "deps": [{"path": "data/ingested", "md5": "1" * 32 + ".dir"}],
            "params": {"params.yaml": {"split": {"seed": 0}}},
            "outs": [{"path": "data/split", "md5": split_md5}],
        },
        "train": {
            "cmd": "python -m stages.train",
            "deps": [{"path": "stages/train.py", "md5": train_py}],
            "params": {"params.yaml": {"train": {"optimizer": "momentum"}}},
            "outs": [{"path": "models/model.npz", "md5": "2" * 32}],
        },
        "evaluate": {
            "cmd": "python -m stages.evaluate",
            "deps": [{"path": "models/model.npz", "md5": "2" * 32}],
            "outs": [],
        },
    }
    for path, (stage, values) in metrics.items():
        data = (json.dumps(values, indent=2) + "\n").encode()
        (root / path).parent.mkdir(exist_ok=True)
        (root / path).write_bytes(data)
        stages[stage]["outs"].append({"path": path, "md5": md5(data)})
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


def commit_all(root: Path) -> None:
    commit(root, "results")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    write_results(tmp_path, METRICS)
    commit_all(tmp_path)
    return tmp_path


def run_check(root: Path):
    return run_tool(root, "check_repro")


def with_value(path: str, key: str, value) -> dict:
    metrics = copy.deepcopy(METRICS)
    target = metrics[path][1]
    *parents, last = key.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    return metrics


def test_identical_results_reproduce_with_exit_code_0(repo):
    result = run_check(repo)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith("reproduced:")


def test_a_committed_metric_edited_by_hand_fails_naming_it_and_restoring_it_passes(repo):
    original = (repo / "metrics/evaluate.json").read_text()
    edited = json.loads(original)
    edited["accuracy"] = 0.95
    (repo / "metrics/evaluate.json").write_text(json.dumps(edited, indent=2) + "\n")
    commit_all(repo)
    # `dvc repro` re-derives the real value in the working tree
    (repo / "metrics/evaluate.json").write_text(original)

    result = run_check(repo)
    assert result.returncode == 1
    assert "metrics/evaluate.json: accuracy: committed 0.95, reproduced 0.861" in result.stdout
    assert "edited by hand" in result.stdout

    commit_all(repo)
    assert run_check(repo).returncode == 0


def test_model_accuracy_within_half_a_point_passes_beyond_fails(repo):
    write_results(repo, with_value("metrics/evaluate.json", "accuracy", 0.857))
    assert check(repo)[0] == []
    write_results(repo, with_value("metrics/evaluate.json", "accuracy", 0.85))
    (drift,) = check(repo)[0]
    assert (drift.file, drift.key, drift.committed, drift.reproduced) == (
        "metrics/evaluate.json",
        "accuracy",
        0.861,
        0.85,
    )
    assert drift.tolerance == "±0.005"


def test_lbfgs_iterations_may_differ_by_a_fifth_and_other_integers_not_at_all():
    lbfgs = {"iterations": 107, "train": {"n": 700}}
    assert compare_metrics("lbfgs.json", lbfgs, {**lbfgs, "iterations": 100}, exact=False) == []
    assert compare_metrics("lbfgs.json", lbfgs, {**lbfgs, "iterations": 116}, exact=False) == []
    (drift,) = compare_metrics("lbfgs.json", lbfgs, {**lbfgs, "iterations": 140}, exact=False)
    assert drift.key == "iterations"
    (drift,) = compare_metrics("lbfgs.json", lbfgs, {"iterations": 107, "train": {"n": 701}}, exact=False)
    assert (drift.key, drift.tolerance) == ("train.n", "exact")


def test_where_the_kernel_is_pinned_any_changed_result_file_is_a_drift(repo):
    write_results(repo, with_value("metrics/evaluate.json", "accuracy", 0.8611))  # within tolerance
    assert check(repo)[0] == []
    drifts = check(repo, bit_for_bit=True)[0]
    assert {(d.file, d.key) for d in drifts} == {("metrics/evaluate.json", "bytes"), ("dvc.lock", "bytes")}
    (repo / "metrics/new.csv").write_text("a,b\n")  # a result the commit doesn't have
    assert ("metrics/new.csv", "bytes") in {(d.file, d.key) for d in check(repo, bit_for_bit=True)[0]}


def test_loss_uses_a_relative_tolerance(repo):
    write_results(repo, with_value("metrics/train.json", "valid.loss", 0.452 * 1.015))
    assert check(repo)[0] == []
    write_results(repo, with_value("metrics/train.json", "valid.loss", 0.452 * 1.03))
    assert [d.key for d in check(repo)[0]] == ["valid.loss"]


def test_timing_keys_are_ignored(repo):
    write_results(repo, with_value("metrics/train.json", "seconds_per_epoch", 9.9))
    assert check(repo)[0] == []


def test_data_stage_metrics_must_match_exactly(repo):
    write_results(repo, with_value("metrics/split.json", "train.n", 701))
    assert [(d.key, d.tolerance) for d in check(repo)[0]] == [("train.n", "exact")]


def test_a_data_stage_output_with_another_hash_fails(repo):
    write_results(repo, METRICS, split_md5="f" * 32 + ".dir")
    (drift,) = check(repo)[0]
    assert drift.key == "split.outs: data/split md5"


def test_the_built_in_data_lock_is_checked_too_and_its_outputs_exactly(repo):
    def synthesize_lock(md5: str) -> str:
        stage = {
            "cmd": "python -m stages.synthesize",
            "params": {"params.yaml": {"synthesize.seed": 0}},
            "outs": [{"path": "data/raw/synthetic", "md5": md5}],
        }
        return yaml.safe_dump({"schema": "2.0", "stages": {"synthesize": stage}})

    (repo / "builtin").mkdir()
    (repo / "builtin" / "dvc.lock").write_text(synthesize_lock("3" * 32 + ".dir"))
    commit_all(repo)
    assert check(repo)[0] == []
    (repo / "builtin" / "dvc.lock").write_text(synthesize_lock("4" * 32 + ".dir"))
    (drift,) = check(repo)[0]
    assert drift.key == "builtin/dvc.yaml:synthesize.outs: data/raw/synthetic md5"


def test_the_model_output_hash_may_differ_but_code_dependencies_may_not(repo):
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    lock["stages"]["train"]["outs"][0]["md5"] = "9" * 32  # another CPU's BLAS
    lock["stages"]["evaluate"]["deps"][0]["md5"] = "9" * 32
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert check(repo)[0] == []
    write_results(repo, METRICS, train_py="b" * 32)
    assert [d.key for d in check(repo)[0]] == ["train.deps: stages/train.py md5"]


def test_a_folder_holding_model_outputs_may_differ_as_a_dependency(repo):
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    lock["stages"]["table"] = {
        "cmd": "python -m stages.optimizers --table",
        "deps": [{"path": "models", "md5": "8" * 32 + ".dir"}],  # holds train's models/model.npz
        "outs": [],
    }
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    commit_all(repo)
    lock["stages"]["table"]["deps"][0]["md5"] = "9" * 32 + ".dir"
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert check(repo)[0] == []


def test_a_missing_key_is_a_drift():
    drifts = compare_metrics("m.json", {"a": 1, "b": 2.0}, {"a": 1}, exact=False)
    assert [(d.key, d.reproduced) for d in drifts] == [("b", "<missing>")]


def test_without_a_committed_dvc_lock_the_check_fails(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "README").write_text("x")
    commit_all(tmp_path)
    result = run_check(tmp_path)
    assert result.returncode == 1 and "dvc.lock" in result.stdout


def test_keys_derived_from_single_predictions_are_only_compared_for_data_stages():
    committed = {"accuracy": 0.8, "n_errors": 200, "top_confusions": [{"actual": "I", "count": 9}]}
    reproduced = {"accuracy": 0.801, "n_errors": 199, "top_confusions": [{"actual": "J", "count": 8}]}
    assert compare_metrics("metrics/evaluate.json", committed, reproduced, exact=False) == []
    assert len(compare_metrics("metrics/evaluate.json", committed, reproduced, exact=True)) == 4


def test_a_metric_edited_and_committed_without_reproducing_is_named_from_the_recorded_version(repo):
    write_results(repo, METRICS)
    edited = json.loads((repo / "metrics/train.json").read_text())
    edited["valid"]["accuracy"] = 0.99
    (repo / "metrics/train.json").write_text(json.dumps(edited, indent=2) + "\n")
    commit_all(repo)  # dvc.lock still records the original file
    (drift,) = check(repo)[0]
    assert (drift.file, drift.key, drift.committed, drift.reproduced) == (
        "metrics/train.json",
        "valid.accuracy",
        0.99,
        0.873,
    )
    assert "edited by hand" in drift.tolerance


def test_a_stage_removed_from_dvc_yaml_but_kept_in_dvc_lock_is_named(repo):
    # DVC leaves a removed (or renamed) stage's entry in dvc.lock; its recorded output hashes
    # would otherwise be taken for current ones.
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"split": {}, "train": {}}}))
    commit_all(repo)

    result = run_check(repo)
    assert result.returncode == 1
    assert "dvc.lock: stage evaluate: committed 'present', reproduced 'not in dvc.yaml'" in result.stdout
    assert "delete it from the lock file" in result.stdout
    assert "metrics/evaluate.json" not in result.stdout  # its outputs are not checked as current

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    del lock["stages"]["evaluate"]
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    (repo / "metrics/evaluate.json").unlink()
    commit_all(repo)
    assert run_check(repo).returncode == 0


def test_a_stage_turned_from_foreach_into_one_stage_leaves_its_items_stale():
    lock = {"stages": {"fit@sgd": {}, "fit@adam": {}, "fit": {}, "builtin/dvc.yaml:synthesize": {}}}
    files = {"dvc.yaml": "stages: {fit: {cmd: x}}", "builtin/dvc.yaml": "stages: {synthesize: {cmd: y}}"}
    assert stale_stages(lock, files.get) == ["fit@adam", "fit@sgd"]
    files["dvc.yaml"] = "stages: {fit: {foreach: [sgd, adam], do: {cmd: x}}}"
    assert stale_stages(lock, files.get) == ["fit"]


def test_a_workspace_whose_params_lock_and_model_disagree_is_named_in_one_line(repo):
    (repo / "params.yaml").write_text("split:\n  seed: 0\ntrain:\n  optimizer: momentum\n")
    assert inconsistent_workspace(repo) is None
    (repo / "params.yaml").write_text("split:\n  seed: 0\ntrain:\n  optimizer: adam\n")  # a second run's params
    result = run_check(repo)
    assert result.returncode == 1 and len(result.stdout.splitlines()) == 1
    assert (
        "params.yaml's train differs from what dvc.lock records for stage train (at train.optimizer)" in result.stdout
    )
    (repo / "params.yaml").write_text("split:\n  seed: 0\ntrain:\n  optimizer: momentum\n")
    (repo / "metrics/train.json").write_text("{}\n")  # another run's output
    assert "metrics/train.json is not the file dvc.lock records for stage train" in inconsistent_workspace(repo)


def test_an_accuracy_may_also_move_by_two_images_of_its_set():
    small = {"test": {"n": 40, "accuracy": 0.8}}
    assert compare_metrics("f.json", small, {"test": {"n": 40, "accuracy": 0.75}}, exact=False) == []  # 2 of 40
    (drift,) = compare_metrics("f.json", small, {"test": {"n": 40, "accuracy": 0.725}}, exact=False)  # 3 of 40
    assert drift.key == "test.accuracy"
    large = {"n": 1440, "accuracy": 0.9}
    assert compare_metrics("f.json", large, {**large, "accuracy": 0.9049}, exact=False) == []  # within 0.005
    assert compare_metrics("f.json", large, {**large, "accuracy": 0.906}, exact=False) != []


def test_epochs_may_differ_by_two_or_a_tenth_and_no_more():
    train = {"epochs_run": 30, "best_epoch": 10}
    assert compare_metrics("train.json", train, {"epochs_run": 33, "best_epoch": 8}, exact=False) == []
    (drift,) = compare_metrics("train.json", train, {"epochs_run": 30, "best_epoch": 13}, exact=False)
    assert drift.key == "best_epoch"
    (drift,) = compare_metrics("train.json", train, {"epochs_run": 31, "best_epoch": 10}, exact=True)
    assert drift.tolerance == "exact"  # where the kernel is pinned, every count must match
