"""stages.compare: McNemar's exact test on the committed predictions of two git revisions."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages import compare
from stages.io import UserError

REPO = Path(__file__).resolve().parents[1]
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]


def predictions(labels, predicted, index=None) -> pd.DataFrame:
    index = np.arange(len(labels)) * 3 if index is None else index
    return pd.DataFrame({"index": index, "label": list(labels), "predicted": list(predicted),
                         "confidence": 0.9})


def two_runs(n, only_a, only_b, both_wrong=0):
    """Runs A and B on n images: `only_a` images only A gets right, `only_b` only B."""
    labels = np.array(["A"] * n)
    a, b = labels.copy(), labels.copy()
    b[:only_a] = "B"
    a[only_a:only_a + only_b] = "B"
    a[n - both_wrong:] = b[n - both_wrong:] = "C"
    return predictions(labels, a), predictions(labels, b)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with two commits of metrics/predictions.csv (B better by 20 images)."""
    monkeypatch.chdir(tmp_path)
    subprocess.run(GIT + ["init", "-q"], check=True)
    (tmp_path / "README").write_text("no predictions yet\n")
    subprocess.run(GIT + ["add", "README"], check=True)
    subprocess.run(GIT + ["commit", "-qm", "start"], check=True)
    (tmp_path / "metrics").mkdir()
    a, b = two_runs(1000, only_a=5, only_b=25, both_wrong=100)
    for table, message in [(a, "run a"), (b, "run b")]:
        table.to_csv("metrics/predictions.csv", index=False)
        subprocess.run(GIT + ["add", "metrics/predictions.csv"], check=True)
        subprocess.run(GIT + ["commit", "-qm", message], check=True)
    return tmp_path


def test_p_value_is_the_two_sided_exact_binomial_on_the_disagreements():
    correct_a = np.r_[np.ones(10, bool), np.zeros(2, bool), np.ones(50, bool)]
    correct_b = np.r_[np.zeros(10, bool), np.ones(2, bool), np.ones(50, bool)]
    # Binomial(12, 1/2): P(X <= 2) + P(X >= 10) = 2 * (1 + 12 + 66) / 4096
    assert compare.mcnemar(correct_a, correct_b) == (10, 2, pytest.approx(158 / 4096))
    assert compare.mcnemar(correct_a, correct_a) == (0, 0, 1.0)


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


def test_two_committed_revisions_give_accuracies_and_a_p_value(repo, capsys):
    compare.main(["HEAD~1", "HEAD"])
    out = capsys.readouterr().out
    p = compare.mcnemar(np.r_[np.ones(5), np.zeros(25), np.ones(870)].astype(bool),
                        np.r_[np.zeros(5), np.ones(25), np.ones(870)].astype(bool))[2]
    assert f"p-value = {p:.4g}" in out
    assert "HEAD~1  accuracy 0.8750" in out and "HEAD    accuracy 0.8950" in out
    assert "+20 of 1000 test images" in out
    assert "30/1000 = 0.0300" in out


def test_workspace_is_compared_when_one_revision_is_given(repo, capsys):
    a, _ = two_runs(1000, only_a=5, only_b=25, both_wrong=100)
    a.to_csv("metrics/predictions.csv", index=False)  # workspace back to run a
    compare.main(["HEAD~1"])
    out = capsys.readouterr().out
    assert "workspace" in out and "p-value = 1" in out


@pytest.mark.parametrize("rev, message", [
    ("no-such-branch", "no-such-branch: unknown git revision"),
    ("HEAD~2", "HEAD~2: has no committed metrics/predictions.csv"),
])
def test_unknown_revision_or_one_without_predictions_is_a_clear_error(repo, rev, message):
    with pytest.raises(UserError, match=message):
        compare.main([rev, "HEAD"])


def test_command_line_errors_are_one_line_with_exit_code_2(repo):
    result = subprocess.run([sys.executable, "-m", "stages.compare", "nope"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "error: nope: unknown git revision (try `git log --oneline`)\n"


def test_outside_a_git_repository_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(UserError, match="not inside a git repository"):
        compare.main(["HEAD"])
