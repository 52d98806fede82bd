"""Results tracked across git commits: a temporary repository commits a run, changes a
param, reproduces, commits again, and DVC and tools.compare report the change.

One module-scoped history (two commits at tiny size) is shared by the tests below.
"""

import json
import sys
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import commit, copy_repository, dvc, git, run

pytestmark = pytest.mark.slow

# A few hundred images and a few epochs: each `dvc repro` takes seconds.
TINY = {
    "ingest": {"source": "data/raw/synthetic"},  # the built-in data, whatever this repository reads
    "synthesize": {"per_class": 40},
    "minibatch": {"batch_size": 32, "epochs": 4},
    "sweep": {"rates": [0.001, 0.01, 0.1, 1.0], "subsample": 100},
}
# The second commit's train.learning_rate: so small that the model barely leaves its start.
SMALL_RATE = 1.0e-5


def set_params(root: Path, overrides: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """Commit 1: a tiny run. Commit 2: the same with train.learning_rate changed.

    Only `evaluate` and the stages it needs are reproduced (not the optimizer comparison).
    """
    root = tmp_path_factory.mktemp("history")
    copy_repository(root)
    git(root, "init", "-q")
    set_params(root, TINY)
    dvc(root, "repro", "-q", "evaluate")
    commit(root, "tiny run")
    set_params(root, {"train": {"learning_rate": SMALL_RATE}})
    dvc(root, "repro", "-q", "evaluate")
    commit(root, "much smaller learning rate")
    return root


def test_metrics_diff_shows_the_accuracy_change_and_nothing_that_did_not_change(history):
    diff = json.loads(dvc(history, "metrics", "diff", "HEAD~1", "--json").stdout)
    accuracy = diff["metrics/evaluate.json"]["accuracy"]
    assert accuracy["new"] < accuracy["old"]
    assert accuracy["diff"] == pytest.approx(accuracy["new"] - accuracy["old"])
    # upstream stages did not change, and rounded floats mean their metrics diff as unchanged
    assert not diff.get("metrics/split.json") and not diff.get("metrics/ingest.json")


def test_params_diff_shows_the_changed_learning_rate_only(history):
    diff = json.loads(dvc(history, "params", "diff", "HEAD~1", "--json").stdout)
    assert list(diff) == ["params.yaml"] and list(diff["params.yaml"]) == ["train.learning_rate"]
    change = diff["params.yaml"]["train.learning_rate"]
    assert change["new"] == SMALL_RATE and change["old"] != SMALL_RATE


def test_exp_show_lists_both_commits_with_their_rates_and_accuracies(history):
    table = pd.read_csv(StringIO(dvc(history, "exp", "show", "--csv", "-n", "2").stdout))
    table = table[table["Experiment"].isna() | (table["Experiment"] == "")]  # commits, not queued exps
    assert {"train.learning_rate", "accuracy"} <= set(table.columns)
    rates = table["train.learning_rate"].astype(str).tolist()  # the first commit's is `best`
    assert len(set(rates)) == 2 and "best" in rates
    assert SMALL_RATE in pd.to_numeric(table["train.learning_rate"], errors="coerce").tolist()
    assert table["accuracy"].astype(float).nunique() == 2


def test_compare_prints_accuracies_and_the_mcnemar_p_value(history):
    out = run(history, sys.executable, "-m", "tools.compare", "HEAD~1", "HEAD").stdout
    assert "McNemar exact test: p-value = " in out
    p = float(out.split("p-value = ")[1].split()[0])
    assert 0.0 <= p < 0.05  # a model that barely trained is clearly worse
    assert "rule of 30" in out


def test_plots_show_and_diff_write_html_that_includes_the_pictures(history):
    dvc(history, "plots", "show", "-o", "shown")
    html = (history / "shown" / "index.html").read_text()
    for name in ("weights.png", "mistakes.png", "confusion.png"):
        assert name in html
    pictures = [p for p in (history / "shown").rglob("*.png")]
    assert {p.name.split("_")[-1] for p in pictures} >= {"weights.png", "mistakes.png", "confusion.png"}
    dvc(history, "plots", "diff", "HEAD~1", "-o", "diffed")
    html = (history / "diffed" / "index.html").read_text()
    assert html.count("weights.png") >= 2  # one picture per revision


def test_predict_on_the_source_files_of_the_test_images_agrees_with_evaluate(history):
    manifest = pd.read_csv(history / "data/ingested/manifest.csv")
    source = yaml.safe_load((history / "params.yaml").read_text())["ingest"]["source"]
    predictions = pd.read_csv(history / "metrics/predictions.csv").head(40)
    paths = manifest.set_index("index").loc[predictions["index"], "path"]
    files = [str(Path(source) / p) for p in paths]  # in notMNIST form already, as ingest read them
    out = run(history, sys.executable, "-m", "tools.predict", "--json", "--as-is", *files).stdout
    predicted = [json.loads(line)["predicted"] for line in out.splitlines()]
    assert predicted == predictions["predicted"].tolist()
