"""Stage train (and the optimizer comparison): learning, the L-BFGS yardstick against
scikit-learn, early stopping, divergence, determinism and parameter checks."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import optim, optimizers, softmax, train
from stages.io import ParamError, all_cores
from stages.model import load_model

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())


def clusters(n, k=3, seed=0):
    """n rows of 784 features: k Gaussian clusters that overlap a little."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 0.2, size=(k, 784))
    y = rng.integers(0, k, n)
    return (centers[y] + rng.normal(size=(n, 784))).astype(np.float32), y.astype(np.int64)


def make_stage_dir(root, seed=0, **overrides):
    """A directory the train stage can run in: normalized arrays, stats.json, params.yaml."""
    data = root / "data/normalized"
    data.mkdir(parents=True)
    for name, n, s in (("train", 300, seed), ("valid", 90, seed + 1)):
        x, y = clusters(n, seed=s)
        np.save(data / f"{name}_x.npy", x)
        np.save(data / f"{name}_y.npy", y)
    (data / "stats.json").write_text(json.dumps(
        {"method": "standardize", "mean": 120.0, "std": 90.0, "classes": ["A", "B", "C"]}))
    params = {**DEFAULTS["train"], "epochs": 5, "batch_size": 32, **overrides}
    (root / "params.yaml").write_text(yaml.safe_dump(
        {"train": params, "optimizers": DEFAULTS["optimizers"]}))
    return root


@pytest.fixture
def stage_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(make_stage_dir(tmp_path))
    return tmp_path


def set_params(root, **overrides):
    everything = yaml.safe_load((root / "params.yaml").read_text())
    everything["train"].update(overrides)
    (root / "params.yaml").write_text(yaml.safe_dump(everything))


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_every_optimizer_at_its_suggested_rate_learns_the_clusters(stage_dir, name):
    p = {**DEFAULTS["train"], "optimizer": name, "learning_rate": DEFAULTS["optimizers"][name],
         "epochs": 5, "batch_size": 32}
    X, y, Xv, yv = train.read_inputs()
    fit, metrics = train.train(p, X, y, Xv, yv, 3, progress=False)
    assert metrics["valid"]["accuracy"] > 0.9
    assert fit.W.dtype == np.float32 and fit.W.shape == (784, 3)


def test_lbfgs_reaches_the_objective_of_sklearn_with_the_same_l2():
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = clusters(200, seed=3)
    l2 = 0.02
    reference = sklearn.LogisticRegression(C=1 / (l2 * len(X)), tol=1e-10, max_iter=10_000).fit(X, y)
    W_ref, b_ref = reference.coef_.T, reference.intercept_
    W, b, J = train.minimize_lbfgs(X, y, 3, l2, 1000)
    J_ref = softmax.objective(X, y, W_ref, b_ref, l2)[0]
    assert J <= J_ref * (1 + 1e-4)
    assert J == pytest.approx(J_ref, rel=1e-4)
    agree = np.mean((X @ W + b).argmax(1) == reference.predict(X))
    assert agree > 0.99


def test_sgd_with_the_default_schedule_ends_within_one_percent_of_the_optimum():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 20))  # a small well-conditioned problem: 20 features
    y = rng.integers(0, 3, 2000)
    X = (centers[y] + rng.normal(size=(2000, 20))).astype(np.float32)
    p = {**DEFAULTS["train"], "optimizer": "sgd", "learning_rate": DEFAULTS["optimizers"]["sgd"],
         "epochs": 60, "report_optimum_gap": True}
    # validating on the train rows makes "best epoch" mean "lowest training loss"
    _, metrics = train.train(p, X, y, X, y, 3, progress=False)
    assert 0 <= metrics["train"]["optimum_gap"] < 0.01 * metrics["train"]["optimum"]


def test_stage_writes_a_self_contained_model_and_a_curve_per_epoch(stage_dir):
    train.main()
    model = load_model("models/model.npz")
    assert model.classes == ["A", "B", "C"]
    assert model.norm == {"method": "standardize", "mean": 120.0, "std": 90.0}
    assert model.W.dtype == np.float32 and model.b.dtype == np.float32
    metrics = json.loads(Path("metrics/train.json").read_text())
    curve = Path("metrics/train_curve.tsv").read_text().splitlines()
    assert curve[0].split("\t") == list(train.CURVE_COLUMNS)
    assert len(curve) - 1 == metrics["epochs_run"] == 5
    assert {"epochs_run", "best_epoch", "seconds_per_epoch"} <= set(metrics)
    assert {"accuracy", "loss"} <= set(metrics["valid"])


def test_same_seed_gives_bitwise_identical_model_and_metrics(tmp_path, monkeypatch):
    outputs = []
    for run in ("a", "b"):
        monkeypatch.chdir(make_stage_dir(tmp_path / run))
        train.main()
        metrics = json.loads(Path("metrics/train.json").read_text())
        metrics.pop("seconds_per_epoch")  # a wall-clock time: the one value that may differ
        outputs.append((Path("models/model.npz").read_bytes(),
                        Path("metrics/train_curve.tsv").read_bytes(), metrics))
    assert outputs[0] == outputs[1]


def test_another_seed_gives_another_model(stage_dir):
    train.main()
    first = Path("models/model.npz").read_bytes()
    set_params(stage_dir, seed=1)
    train.main()
    assert Path("models/model.npz").read_bytes() != first


def test_early_stopping_keeps_the_weights_of_the_best_epoch(stage_dir):
    X, y, Xv, yv = train.read_inputs()
    yv = np.random.default_rng(5).permutation(yv)  # labels unrelated to the features: overfits
    p = {**DEFAULTS["train"], "epochs": 40, "patience": 3, "batch_size": 16,
         "schedule": "constant", "l2": 0.0}
    fit = train.fit_sgd(X, y, Xv, yv, 3, p, progress=False)
    valid_losses = [row[4] for row in fit.curve]
    assert fit.epochs_run - fit.best_epoch == 3 and fit.epochs_run < 40
    assert fit.best_epoch == 1 + int(np.argmin(valid_losses))
    assert softmax.evaluate(Xv, yv, fit.W, fit.b)[0] == pytest.approx(min(valid_losses), rel=1e-6)


def test_a_huge_rate_stops_with_the_divergence_error_and_leaves_the_model_alone(stage_dir):
    train.main()
    before = Path("models/model.npz").read_bytes()
    set_params(stage_dir, learning_rate=1e6)
    result = subprocess.run([sys.executable, "-m", "stages.train"], capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: training diverged in epoch 1")
    assert "lower train.learning_rate" in message
    assert Path("models/model.npz").read_bytes() == before


@pytest.mark.parametrize("override, pattern", [
    ({"optimizer": "newton"}, r"train\.optimizer: bad value 'newton'"),
    ({"schedule": "linear"}, r"train\.schedule: bad value 'linear'"),
    ({"learning_rate": -0.1}, r"train\.learning_rate: bad value -0.1"),
    ({"learning_rate": 0}, r"train\.learning_rate: bad value 0"),
    ({"batch_size": 301}, r"train\.batch_size: bad value 301.*300 rows"),
    ({"epochs": 0}, r"train\.epochs: bad value 0"),
    ({"momentum": 1.0}, r"train\.momentum: bad value 1.0"),
    ({"lr": 0.1}, r"train\.lr: unknown parameter"),
])
def test_bad_params_are_one_error_naming_the_parameter_before_any_output(stage_dir, override, pattern):
    set_params(stage_dir, **override)
    with pytest.raises(ParamError, match=pattern):
        train.main()
    assert not Path("models").exists() and not Path("metrics").exists()


def test_optimizer_comparison_ranks_every_optimizer_against_the_optimum(stage_dir, monkeypatch):
    for name in optimizers.NAMES:
        monkeypatch.setattr(sys, "argv", ["stages.optimizers", name])
        optimizers.main()
    monkeypatch.setattr(sys, "argv", ["stages.optimizers", "--table"])
    optimizers.main()
    rows = [line.split(" | ") for line in Path("metrics/optimizers.md").read_text().splitlines()
            if line.startswith("| ") and "---" not in line]
    header, body = rows[0], rows[1:]
    assert sorted(row[header.index("optimizer")] for row in body) == sorted(optimizers.NAMES)
    assert [int(row[0].strip("| ")) for row in body] == list(range(1, 8))
    accuracies = [float(row[header.index("valid_accuracy")]) for row in body]
    assert accuracies == sorted(accuracies, reverse=True)
    gaps = [float(row[header.index("gap_to_optimum")]) for row in body]
    assert min(gaps) > -1e-4  # nothing beats the optimum


def test_the_comparison_rates_in_params_are_the_suggested_rates_the_error_names():
    assert DEFAULTS["optimizers"] == optim.SUGGESTED_RATES


def test_a_large_batch_split_over_two_threads_gives_the_whole_batch_gradient():
    X, y = clusters(1500, seed=4)
    W = np.random.default_rng(0).normal(0, 0.01, (784, 3)).astype(np.float32)
    b = np.array([0.1, -0.2, 0.0], dtype=np.float32)
    idx = np.arange(0, 1500, 2)  # 750 rows >= SPLIT_BATCH: split in halves
    gradient = train.BatchGradient(X, y, 750)
    assert gradient.pool is not None or all_cores() == 1
    split = gradient(idx, W, b, 0.01)
    whole = softmax.loss_and_grad(X[idx], y[idx], W, b, 0.01)
    gradient.close()
    assert split[0] == pytest.approx(whole[0], rel=1e-6)
    np.testing.assert_allclose(split[1], whole[1], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(split[2], whole[2], rtol=1e-4, atol=1e-7)
