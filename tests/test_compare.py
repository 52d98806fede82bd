"""tools.compare: McNemar's exact test on the committed predictions of two git revisions or
experiments, named as `git log` and `dvc exp show` name them."""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from notmnist.plumbing.errors import UserError
from tests.helpers import (
    commit,
    copy_repository,
    dvc,
    error_line,
    git,
    read_params,
    run_tool,
    with_overrides,
    write_params,
)
from tools import compare


def predictions(labels, predicted, index=None) -> pd.DataFrame:
    index = np.arange(len(labels)) * 3 if index is None else index
    return pd.DataFrame({"index": index, "label": list(labels), "predicted": list(predicted), "confidence": 0.9})


def two_runs(n, only_a, only_b, both_wrong=0):
    """Runs A and B on n images: `only_a` images only A gets right, `only_b` only B."""
    labels = np.array(["A"] * n)
    a, b = labels.copy(), labels.copy()
    b[:only_a] = "B"
    a[only_a : only_a + only_b] = "B"
    a[n - both_wrong :] = b[n - both_wrong :] = "C"
    return predictions(labels, a), predictions(labels, b)


@pytest.fixture
def repo(tmp_path):
    """A git repository with two commits of metrics/predictions.csv (B better by 20 images)."""
    git(tmp_path, "init", "-q")
    (tmp_path / "README").write_text("no predictions yet\n")
    commit(tmp_path, "start")
    (tmp_path / "metrics").mkdir()
    a, b = two_runs(1000, only_a=5, only_b=25, both_wrong=100)
    for table, message in [(a, "run a"), (b, "run b")]:
        table.to_csv(tmp_path / "metrics/predictions.csv", index=False)
        commit(tmp_path, message)
    return tmp_path


def test_smallest_resolvable_difference_is_thirty_test_images():
    a, b = two_runs(1500, only_a=0, only_b=10)
    result = compare.compare(a, b)
    assert result["resolvable"] == pytest.approx(30 / 1500)
    assert result["accuracy_b"] - result["accuracy_a"] == pytest.approx(10 / 1500)


def test_significant_difference_below_thirty_images_is_called_too_small_to_trust():
    a, b = two_runs(10000, only_a=0, only_b=25)
    result = compare.compare(a, b)
    assert result["p_value"] < 1e-6
    assert "too small to trust" in compare.report(result, "a", "b")
    a, b = two_runs(10000, only_a=0, only_b=40)
    assert "is real" in compare.report(compare.compare(a, b), "a", "b")
    a, b = two_runs(10000, only_a=20, only_b=25)
    assert "no evidence" in compare.report(compare.compare(a, b), "a", "b")


def test_pairs_images_by_index_not_by_row_order():
    a, b = two_runs(200, only_a=3, only_b=9)
    shuffled = b.sample(frac=1.0, random_state=0)
    assert compare.compare(a, shuffled) == compare.compare(a, b)


def test_runs_on_different_test_images_are_refused():
    a, b = two_runs(100, only_a=1, only_b=2)
    b["index"] += 1
    with pytest.raises(UserError, match="different images"):
        compare.compare(a, b)


def test_two_committed_revisions_give_accuracies_and_a_p_value(repo):
    out = run_tool(repo, "compare", "HEAD~1", "HEAD", check=True).stdout
    # 30 disagreements, 5 for A: two-sided exact binomial, 2 P(X <= 5) for X ~ Binomial(30, 1/2)
    p = 2 * sum(math.comb(30, k) for k in range(6)) / 2**30
    assert f"p-value = {p:.4g}" in out
    assert "HEAD~1  accuracy 0.8750" in out and "HEAD    accuracy 0.8950" in out
    assert "+20 of 1000 test images" in out
    assert "30/1000 = 0.0300" in out


def test_workspace_is_compared_when_one_revision_is_given(repo):
    a, _ = two_runs(1000, only_a=5, only_b=25, both_wrong=100)
    a.to_csv(repo / "metrics/predictions.csv", index=False)  # workspace back to run a
    out = run_tool(repo, "compare", "HEAD~1", check=True).stdout
    assert "workspace" in out and "p-value = 1" in out


@pytest.mark.parametrize(
    "rev, message",
    [
        ("no-such-branch", "no-such-branch: unknown git revision"),
        ("HEAD~2", "HEAD~2: has no committed metrics/predictions.csv"),
    ],
)
def test_unknown_revision_or_one_without_predictions_is_a_clear_error(repo, rev, message):
    assert message in error_line(run_tool(repo, "compare", rev, "HEAD"))


def test_command_line_errors_are_one_line_with_exit_code_2(repo):
    result = run_tool(repo, "compare", "nope")
    assert result.returncode == 2
    assert result.stderr == (
        "error: nope: unknown git revision or experiment (try `git log --oneline` or `dvc exp show`)\n"
    )


def test_outside_a_git_repository_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert "not inside a git repository" in error_line(run_tool(tmp_path, "compare", "HEAD"))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"index,label,predicted\n1,A,A\n1,A,B\n", "distinct whole numbers"),
        (b"index,label,predicted\nx,\xff\xfe,A\n", "distinct whole numbers"),  # and not UTF-8
        (b"index,label,predicted\nx,A,A\n", "distinct whole numbers"),
    ],
)
def test_a_hostile_predictions_table_is_one_error_line(repo, content, message):
    (repo / "metrics/predictions.csv").write_bytes(content)
    assert message in error_line(run_tool(repo, "compare", "HEAD"))


def test_a_fifo_in_place_of_the_predictions_is_refused_not_read(repo):
    (repo / "metrics/predictions.csv").unlink()
    os.mkfifo(repo / "metrics/predictions.csv")
    assert "not a regular file" in error_line(run_tool(repo, "compare", "HEAD"))


def test_an_experiment_is_found_by_its_name_under_refs_exps(repo):
    baseline = git(repo, "rev-parse", "HEAD~1").stdout.strip()
    git(repo, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/fated-kyat", "HEAD~1")
    by_name = run_tool(repo, "compare", "fated-kyat", "HEAD", check=True).stdout
    assert "fated-kyat  accuracy 0.8750" in by_name and "+20 of 1000 test images" in by_name


def test_a_name_two_experiments_share_is_refused_naming_both_refs(repo):
    for rev in ("HEAD", "HEAD~1"):
        baseline = git(repo, "rev-parse", rev).stdout.strip()
        git(repo, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/twin", rev)
    message = error_line(run_tool(repo, "compare", "twin"))
    assert "twin: 2 experiments have this name" in message and message.count("refs/exps/") == 2


def without(text: str, label: str) -> str:
    """The report with a revision's label taken out and runs of spaces made one."""
    return " ".join(text.replace(label, "REV").split())


@pytest.mark.slow
def test_names_and_short_hashes_from_dvc_exp_show_are_compared_after_a_real_exp_run(tmp_path):
    copy_repository(tmp_path)
    tiny = {
        "ingest": {"source": "data/raw/synthetic"},
        "synthesize": {"per_class": 30},
        "minibatch": {"batch_size": 32, "epochs": 3},
        "objective": {"lbfgs_max_iter": 30},
        "sweep": {"rates": [0.01, 0.1], "subsample": 100},
    }
    write_params(tmp_path, with_overrides(read_params(tmp_path), tiny))
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "repro")
    commit(tmp_path, "tiny pipeline reproduced")
    dvc(tmp_path, "exp", "run", "-S", "train.learning_rate=0.0001")  # a barely trained model, named by DVC
    shown = json.loads(dvc(tmp_path, "exp", "show", "--json").stdout)  # the workspace and the baseline
    [experiment] = [e for baseline in shown for e in baseline.get("experiments") or []]
    name, short = experiment["name"], experiment["revs"][0]["rev"][:7]
    by_name = run_tool(tmp_path, "compare", "HEAD", name, check=True).stdout
    by_hash = run_tool(tmp_path, "compare", "HEAD", short, check=True).stdout
    assert f"{name}  accuracy" in by_name
    assert without(by_name, name) == without(by_hash, short)
    git(tmp_path, "checkout", "-q", "--", ".")  # the workspace back to the baseline's results
    dvc(tmp_path, "checkout", "-q")
    from_workspace = run_tool(tmp_path, "compare", name, check=True).stdout
    assert without(from_workspace, name).startswith("REV accuracy") and "workspace" in from_workspace
