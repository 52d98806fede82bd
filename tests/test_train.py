"""Stages sweep, train and optimizers (notmnist.learning): learning, the learning-rate sweep, the
L-BFGS yardstick against scikit-learn, early stopping, divergence, determinism and parameter checks."""

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from notmnist.learning import batches, fitting, lbfgs, optimizers, runs, settings, sgd, softmax, training, tuning
from notmnist.learning.model import load_model
from notmnist.learning.runs import Result, Run
from notmnist.plumbing import parallel, ties
from notmnist.plumbing.errors import UserError
from notmnist.plumbing.params import parse
from notmnist.report import comparison
from tests.helpers import DEFAULTS, clusters, error_line, read_params, run_stage, write_normalized, write_params

MINIBATCH = parse(settings.Minibatch, {**DEFAULTS["minibatch"], "epochs": 5, "batch_size": 32})
OBJECTIVE = parse(settings.Objective, DEFAULTS["objective"])
COMPARED = settings.NAMES
SWEEP = {"optimizers": list(optimizers.NAMES), "rates": [0.001, 0.01, 0.1, 1.0], "subsample": 0, "seed": 0}


def make_stage_dir(root, seed=0, **train):
    """A directory the train stage can run in: normalized arrays, stats.json, params.yaml."""
    sizes = (("train", 300, seed), ("valid", 90, seed + 1), ("test", 90, seed + 2))
    splits = {name: clusters(n, seed=s) for name, n, s in sizes}
    write_normalized(root, splits, ["A", "B", "C"])
    sections = {name: DEFAULTS[name] for name in ("train", "minibatch", "objective")}
    sections["minibatch"] = {**sections["minibatch"], "epochs": 5, "batch_size": 32}
    sections["train"] = {**sections["train"], "learning_rate": 0.05, **train}
    sections["sweep"] = SWEEP
    write_params(root, sections)
    return root


def set_params(root, section, **overrides):
    everything = read_params(root)
    everything[section].update(overrides)
    write_params(root, everything)


def fit(optimizer, rate, X, y, Xv, yv, minibatch=MINIBATCH, objective=OBJECTIVE, **options):
    return training.train(optimizer, rate, minibatch, objective, X, y, Xv, yv, 3, progress=False, **options)


def test_every_optimizer_at_its_best_rate_from_the_sweep_learns_the_clusters(tmp_path):
    root = make_stage_dir(tmp_path)
    run_stage(root, "sweep", check=True)
    best = json.loads((root / "metrics/sweep_best.json").read_text())["best_rate"]
    assert set(best) == set(optimizers.NAMES) and set(best.values()) <= set(SWEEP["rates"])
    sweep = pd.read_csv(root / "metrics/sweep.csv")
    assert len(sweep) == len(SWEEP["optimizers"]) * len(SWEEP["rates"])
    for name, rate in best.items():  # chosen on validation loss: the lowest of its optimizer's runs
        rows = sweep[(sweep["optimizer"] == name) & ~sweep["diverged"]]
        assert rows.loc[rows["valid_loss"].idxmin(), "learning_rate"] == rate
    run_stage(root, "optimizers", check=True)
    for name in COMPARED:
        result = json.loads((root / "metrics/optimizers" / name / "train.json").read_text())
        assert result["valid"]["accuracy"] > 0.9, name
        assert result["learning_rate"] == best.get(name)
        if name != "lbfgs":
            assert result["started_from"] == "random", name
    # lbfgs starts from the SGD result closest to the optimum
    assert json.loads((root / "metrics/optimizers/lbfgs/train.json").read_text())["started_from"] in best


def test_an_optimizer_that_diverges_at_its_sweep_rate_on_the_whole_split_is_named_not_ranked(tmp_path):
    # the sweep chooses on a short run; on the whole split a rate can still blow up
    root = make_stage_dir(tmp_path, optimizer="sgd", learning_rate="best")
    run_stage(root, "sweep", check=True)
    best = json.loads((root / "metrics/sweep_best.json").read_text())
    best["best_rate"]["sgd"] = 1e6
    (root / "metrics/sweep_best.json").write_text(json.dumps(best))
    run_stage(root, "optimizers", check=True)
    table = (root / "metrics/optimizers.md").read_text()
    assert "sgd is not ranked: at the sweep's rate 1e+06, training diverged in epoch 1" in table
    assert "| sgd " not in table and "| momentum " in table
    assert json.loads((root / "metrics/optimizers/sgd/train.json").read_text()) == {
        "diverged": True,
        "learning_rate": 1e6,
    }
    message = error_line(run_stage(root, "train"))
    assert "train.learning_rate is best, the sweep's 1e+06 for sgd" in message
    assert "set a smaller number, or add smaller sweep.rates" in message


def test_a_run_that_diverges_in_the_sweep_is_a_result_and_never_the_best_rate():
    sweep = pd.DataFrame(
        {
            "optimizer": ["sgd"] * 4,
            "learning_rate": [0.01, 0.1, 1.0, 10.0],
            "valid_loss": [0.9, 0.5, 0.5, np.nan],
            "diverged": [False, False, False, True],
        }
    )
    assert tuning.best_rates(sweep) == {"sgd": 0.1}  # a tie goes to the smaller rate
    with pytest.raises(UserError, match="sweep.rates: every rate diverged for sgd"):
        tuning.best_rates(sweep.assign(diverged=True))


def test_the_sweep_takes_the_smaller_rate_when_losses_differ_by_float_noise_only():
    sweep = pd.DataFrame(
        {
            "optimizer": ["sgd"] * 3,
            "learning_rate": [0.01, 0.1, 1.0],
            "valid_loss": [0.9, 0.5 * (1 + ties.TIE / 2), 0.5],  # 0.1 and 1.0 tied, 0.1 the smaller
            "diverged": [False] * 3,
        }
    )
    assert tuning.best_rates(sweep) == {"sgd": 0.1}
    apart = sweep.assign(valid_loss=[0.9, 0.5 * (1 + 2 * ties.TIE), 0.5])  # beyond the tie: a real difference
    assert tuning.best_rates(apart) == {"sgd": 1.0}


def test_train_at_the_best_rate_takes_the_sweeps_rate_for_its_optimizer(tmp_path):
    root = make_stage_dir(tmp_path, optimizer="adagrad", learning_rate="best")
    run_stage(root, "sweep", check=True)
    run_stage(root, "train", check=True)
    best = json.loads((root / "metrics/sweep_best.json").read_text())["best_rate"]
    assert json.loads((root / "metrics/train.json").read_text())["learning_rate"] == best["adagrad"]
    set_params(root, "sweep", optimizers=["sgd"])
    run_stage(root, "sweep", check=True)
    assert "the sweep tried no rate for adagrad" in error_line(run_stage(root, "train"))


def sweep_result(rate: float, train_objective: float, valid_loss: float) -> Result:
    metrics = {"train": {"objective": train_objective}, "valid": {"loss": valid_loss, "accuracy": 0.9}, "best_epoch": 3}
    return Result(Run(f"sgd@{rate:g}", "sgd", rate, MINIBATCH, OBJECTIVE), False, metrics, [], 0.1)


def test_the_sweep_chooses_each_rate_on_validation_loss_not_training_loss():
    # the larger rate overfits less here: a lower valid loss despite a higher train objective
    table = tuning.table([sweep_result(0.01, 0.2, 0.9), sweep_result(0.1, 0.5, 0.4)])
    assert list(table["valid_loss"]) == [0.9, 0.4]
    assert tuning.best_rates(table) == {"sgd": 0.1}


def test_each_sweep_run_trains_on_the_sweeps_subsample_drawn_with_its_seed():
    sweep = tuning.Sweep(optimizers=["sgd", "adam"], rates=[0.1, 1.0], subsample=300, seed=7)
    planned = tuning.runs(sweep, MINIBATCH, OBJECTIVE)
    assert [(r.optimizer, r.rate) for r in planned] == [("sgd", 0.1), ("sgd", 1.0), ("adam", 0.1), ("adam", 1.0)]
    assert {(r.subsample, r.seed) for r in planned} == {(300, 7)}
    rows = runs.subsample_rows(1000, 300, 7)
    assert len(rows) == 300 and not np.array_equal(rows, runs.subsample_rows(1000, 300, 8))


def test_the_train_stage_fits_lbfgs_without_a_rate_even_when_the_rate_is_best(tmp_path):
    root = make_stage_dir(tmp_path, optimizer="lbfgs", learning_rate="best")  # no sweep has run
    run_stage(root, "train", check=True)
    headline = json.loads((root / "metrics/train.json").read_text())
    details = json.loads((root / "metrics/train_details.json").read_text())
    assert headline["learning_rate"] is None and details["optimizer"] == "lbfgs"
    assert json.loads((root / "metrics/train.json").read_text())["iterations"] > 1


def test_lbfgs_reaches_the_objective_of_sklearn_with_the_same_l2():
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = clusters(200, seed=3)
    l2 = 0.02
    reference = sklearn.LogisticRegression(C=1 / (l2 * len(X)), tol=1e-10, max_iter=10_000).fit(X, y)
    W_ref, b_ref = reference.coef_.T, reference.intercept_
    W, b, J = lbfgs.minimize(X, y, 3, l2, 1000)
    J_ref = softmax.objective(X, y, W_ref, b_ref, l2)[0]
    assert J <= J_ref * (1 + 1e-4)
    assert J == pytest.approx(J_ref, rel=1e-4)
    agree = np.mean((X @ W + b).argmax(1) == reference.predict(X))
    assert agree > 0.99


def test_lbfgs_from_a_trained_start_reaches_the_same_optimum_in_fewer_iterations():
    (X, y), (Xv, yv) = clusters(300), clusters(90, seed=1)
    l2 = 1e-4  # weak regularization: the optimum lies further from zero
    cold = lbfgs.fit(X, y, Xv, yv, 3, l2, 500)
    trained = sgd.fit("momentum", 0.05, replace(MINIBATCH, epochs=20), l2, X, y, Xv, yv, 3, progress=False)
    warm = lbfgs.fit(X, y, Xv, yv, 3, l2, 500, start=(trained.W, trained.b))
    objective = [softmax.objective(X, y, f.W, f.b, l2)[0] for f in (cold, warm)]
    assert objective[1] == pytest.approx(objective[0], abs=1e-6)
    assert warm.epochs_run < cold.epochs_run


def test_sgd_with_the_default_schedule_ends_within_one_percent_of_the_optimum():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 20))  # a small well-conditioned problem: 20 features
    y = rng.integers(0, 3, 2000)
    X = (centers[y] + rng.normal(size=(2000, 20))).astype(np.float32)
    minibatch = replace(MINIBATCH, epochs=60, batch_size=DEFAULTS["minibatch"]["batch_size"])
    # validating on the train rows makes "best epoch" mean "lowest training loss"
    _, metrics = fit("sgd", 0.5, X, y, X, y, minibatch, optimum_gap=True)
    assert metrics["train"]["optimum"] < metrics["train"]["objective"]  # L-BFGS took it further
    assert 0 <= metrics["train"]["optimum_gap"] < 0.01 * metrics["train"]["optimum"]


def test_stage_writes_a_self_contained_model_and_a_curve_per_epoch(tmp_path):
    run_stage(make_stage_dir(tmp_path), "train", check=True)
    model = load_model(tmp_path / "models/model.npz")
    assert model.classes == ["A", "B", "C"]
    assert model.norm == {"method": "standardize", "mean": 120.0, "std": 90.0}
    assert model.W.dtype == np.float32 and model.b.dtype == np.float32
    metrics = json.loads((tmp_path / "metrics/train.json").read_text())
    curve = (tmp_path / "metrics/train_curve.tsv").read_text().splitlines()
    assert curve[0].split("\t") == list(fitting.CURVE_COLUMNS)
    assert len(curve) - 1 == metrics["epochs_run"] == 5
    assert {"epochs_run", "best_epoch"} <= set(metrics)
    assert {"accuracy", "loss"} <= set(metrics["valid"])
    # the time an epoch took differs every run: it is in the untracked timings/, not a metric
    timing = json.loads((tmp_path / "timings/train.json").read_text())
    assert timing["seconds_per_epoch"] > 0 and "seconds_per_epoch" not in (tmp_path / "metrics/train.json").read_text()


def test_same_seed_gives_bitwise_identical_model_and_metrics(tmp_path):
    outputs = []
    for run in ("a", "b"):
        root = make_stage_dir(tmp_path / run)
        run_stage(root, "train", check=True)
        metrics = json.loads((root / "metrics/train.json").read_text())
        outputs.append(
            ((root / "models/model.npz").read_bytes(), (root / "metrics/train_curve.tsv").read_bytes(), metrics)
        )
    assert outputs[0] == outputs[1]


def test_another_seed_gives_another_model(tmp_path):
    root = make_stage_dir(tmp_path)
    run_stage(root, "train", check=True)
    first = (root / "models/model.npz").read_bytes()
    set_params(root, "minibatch", seed=1)
    run_stage(root, "train", check=True)
    assert (root / "models/model.npz").read_bytes() != first


def test_early_stopping_keeps_the_weights_of_the_best_epoch():
    (X, y), (Xv, yv) = clusters(300), clusters(90, seed=1)
    yv = np.random.default_rng(5).permutation(yv)  # labels unrelated to the features: overfits
    minibatch = replace(MINIBATCH, epochs=40, patience=3, batch_size=16, schedule="constant")
    result = sgd.fit("momentum", 0.05, minibatch, 0.0, X, y, Xv, yv, 3, progress=False)
    valid_losses = [row[4] for row in result.curve]
    assert result.epochs_run - result.best_epoch == 3 and result.epochs_run < 40
    assert result.best_epoch == 1 + int(np.argmin(valid_losses))
    assert softmax.loss_and_accuracy(Xv, yv, result.W, result.b)[0] == pytest.approx(min(valid_losses), rel=1e-6)


def test_equal_validation_losses_keep_the_earliest_epoch():
    (X, y), (Xv, yv) = clusters(300), clusters(90, seed=1)
    still = sgd.fit("sgd", 0.0, replace(MINIBATCH, patience=0), 0.0, X, y, Xv, yv, 3, progress=False)
    assert len({row[4] for row in still.curve}) == 1 and still.best_epoch == 1


def test_a_huge_rate_stops_with_the_divergence_error_and_leaves_the_model_alone(tmp_path):
    root = make_stage_dir(tmp_path)
    run_stage(root, "train", check=True)
    before = (root / "models/model.npz").read_bytes()
    set_params(root, "train", learning_rate=1e6)
    message = error_line(run_stage(root, "train"))
    assert message.startswith("error: training diverged in epoch 1")
    assert "lower train.learning_rate" in message
    assert (root / "models/model.npz").read_bytes() == before


@pytest.mark.parametrize(
    "section, override, pattern",
    [
        ("train", {"optimizer": "newton"}, "train.optimizer: bad value 'newton'"),
        ("minibatch", {"schedule": "linear"}, "minibatch.schedule: bad value 'linear'"),
        ("train", {"learning_rate": -0.1}, "train.learning_rate: bad value -0.1"),
        ("train", {"learning_rate": 0}, "train.learning_rate: bad value 0"),
        (
            "train",
            {"learning_rate": "bset"},
            "train.learning_rate: bad value 'bset'; allowed: a number in (0, inf) or best",
        ),
        ("minibatch", {"batch_size": 301}, "minibatch.batch_size: bad value 301"),
        ("minibatch", {"epochs": 0}, "minibatch.epochs: bad value 0"),
        ("minibatch", {"momentum": 1.0}, "minibatch.momentum: bad value 1.0"),
        ("train", {"lr": 0.1}, "train.lr: unknown parameter"),
    ],
)
def test_bad_params_are_one_error_naming_the_parameter_before_any_output(tmp_path, section, override, pattern):
    root = make_stage_dir(tmp_path)
    set_params(root, section, **override)
    assert pattern in error_line(run_stage(root, "train"))
    assert not (root / "models").exists() and not (root / "metrics").exists()


def test_lbfgs_counts_one_iteration_per_curve_row_scored_on_the_validation_split():
    (X, y), (Xv, yv) = clusters(300), clusters(90, seed=1)
    result = lbfgs.fit(X, y, Xv, yv, 3, 0.01, 500)
    assert result.exact and result.epochs_run == len(result.curve) > 1
    assert [row[0] for row in result.curve] == list(range(1, len(result.curve) + 1))
    valid_loss, valid_acc = softmax.loss_and_accuracy(Xv, yv, result.W, result.b)
    assert result.curve[-1][4:] == pytest.approx((valid_loss, valid_acc), rel=1e-5)


def test_the_curve_reports_the_mean_training_loss_over_every_row_of_the_epoch():
    (X, y), (Xv, yv) = clusters(300), clusters(90, seed=1)  # batches of 32: the last one has 12 rows
    still = sgd.fit("sgd", 1e-12, MINIBATCH, 0.0, X, y, Xv, yv, 3, progress=False)  # the weights barely move
    _, W, b = sgd.initial_weights(X.shape[1], 3, MINIBATCH.init_sigma, np.random.default_rng(MINIBATCH.seed))
    assert still.curve[0][3] == pytest.approx(softmax.loss_and_accuracy(X, y, W, b)[0], rel=1e-4)


def test_a_batch_as_large_as_the_train_split_is_one_step_per_epoch():
    (X, y), (Xv, yv) = clusters(300), clusters(90, seed=1)
    result = sgd.fit("momentum", 0.05, replace(MINIBATCH, batch_size=300), 0.0, X, y, Xv, yv, 3, progress=False)
    assert [row[1] for row in result.curve] == list(range(1, MINIBATCH.epochs + 1))


def test_a_loss_that_turns_nan_stops_with_the_divergence_error():
    (X, y), (Xv, yv) = clusters(300), clusters(90, seed=1)
    X = X.copy()
    X[7, 3] = np.nan
    with pytest.raises(fitting.Diverged, match="training diverged in epoch 1"):
        sgd.fit("sgd", 0.05, MINIBATCH, 0.0, X, y, Xv, yv, 3, progress=False)


def test_a_batch_larger_than_the_train_split_names_the_split_size():
    (X, y), (Xv, yv) = clusters(300), clusters(90, seed=1)
    with pytest.raises(Exception, match="at most the 300 rows of the train split"):
        fit("momentum", 0.05, X, y, Xv, yv, replace(MINIBATCH, batch_size=301))


def test_optimizer_comparison_ranks_every_optimizer_against_the_optimum(tmp_path):
    root = make_stage_dir(tmp_path)
    run_stage(root, "sweep", check=True)
    run_stage(root, "optimizers", check=True)
    rows = [
        line.split(" | ")
        for line in (root / "metrics/optimizers.md").read_text().splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    header = [cell.strip("| ") for cell in rows[0]]
    body = [[cell.strip("| ") for cell in row] for row in rows[1:]]
    column = {name: [row[header.index(name)] for row in body] for name in header}
    assert sorted(column["optimizer"]) == sorted(COMPARED)
    losses = [float(a) for a in column["valid_loss"]]
    assert losses[0] <= min(losses) * (1 + ties.TIE) + 1e-4  # the table's 4 decimals
    assert column["versus_first_on_test"][0] == "first (by validation loss)"
    assert {cell.split(" ")[0] for cell in column["versus_first_on_test"][1:]} <= {"tied", "better", "worse"}
    assert min(float(g) for g in column["gap_to_optimum"]) > -1e-4  # nothing beats the optimum
    lbfgs = column["optimizer"].index("lbfgs")
    assert column["trained"][lbfgs].endswith(" iterations")  # L-BFGS has no epochs
    curves = pd.read_csv(root / "metrics/optimizer_curves.csv")
    assert set(curves["optimizer"]) == set(COMPARED) and list(curves.columns) == ["optimizer", "epoch", "valid_loss"]
    assert curves.loc[curves["optimizer"] == "lbfgs", "valid_loss"].nunique() == 1  # the optimum: a flat line


@pytest.mark.parametrize(
    "other_wrong, best_wrong, verdict",
    [
        (40, 0, "worse"),  # p ~ 2e-12 and 40 test images: a real difference
        (10, 0, "tied"),  # p ~ 0.002, but 10 test images are below the rule of 30
        (20, 18, "tied"),  # p ~ 0.87
        (0, 35, "better"),
    ],
)
def test_an_optimizer_is_tied_with_the_best_unless_mcnemar_and_the_rule_of_30_both_say_otherwise(
    other_wrong, best_wrong, verdict
):
    n = 1000
    best, other = np.ones(n, bool), np.ones(n, bool)
    other[:other_wrong] = False
    best[n - best_wrong :] = False
    assert comparison.versus(best, other)[0] == verdict


def fitted_weights(batch_size: int, in_worker: bool = False) -> np.ndarray:
    if in_worker:  # a forked worker: starting the gather thread here would fail the test

        def no_thread(*args, **kwargs):
            raise AssertionError("a worker process started a gather thread")

        batches.ThreadPoolExecutor = no_thread
    X, y = clusters(3000, seed=5)  # 3 blocks of rows: both buffers in use
    minibatch = replace(MINIBATCH, batch_size=batch_size, epochs=2, patience=0)
    return sgd.fit("momentum", 0.05, minibatch, OBJECTIVE.l2, X, y, X[:100], y[:100], 3, progress=False).W


@pytest.mark.parametrize("batch_size", [32, 100])  # blocks of 32 batches and of 10, the last one short
def test_a_worker_process_gathers_in_turn_and_trains_the_same_model(batch_size):
    if parallel.all_cores() == 1:
        pytest.skip("on one core every process gathers in turn")
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context, initializer=parallel.one_thread_per_process) as pool:
        in_worker = pool.submit(fitted_weights, batch_size, True).result(timeout=120)
    np.testing.assert_array_equal(in_worker, fitted_weights(batch_size))  # here: gathered by a second thread


def test_a_large_batch_split_over_two_threads_gives_the_whole_batch_gradient():
    X, y = clusters(1500, seed=4)
    W = np.random.default_rng(0).normal(0, 0.01, (784, 3)).astype(np.float32)
    b = np.array([0.1, -0.2, 0.0], dtype=np.float32)
    idx = np.arange(0, 1500, 2)[:-1]  # 749 rows >= SPLIT_BATCH: split in halves of 375 and 374
    assert len(idx) >= batches.SPLIT_BATCH
    dW, db = np.empty_like(W), np.empty_like(b)
    loss = batches.Batches(X, y, 749).gradient(idx, X[idx], W, b, 0.01, (dW, db))
    whole = softmax.loss_and_grad(X[idx], y[idx], W, b, 0.01)
    assert loss == pytest.approx(whole[0], rel=1e-6)
    np.testing.assert_allclose(dW, whole[1], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(db, whole[2], rtol=1e-4, atol=1e-7)
