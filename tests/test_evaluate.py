"""Stage evaluate (notmnist.report.metrics, notmnist.report.pictures): metrics checked against formulas and
scikit-learn; outputs as docs/design.md says."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from notmnist.learning.softmax import log_softmax
from notmnist.report import metrics as scores
from notmnist.report import pictures
from tests.helpers import CLASSES, TOY_EVALUATE, error_line, run_stage, write_params, write_toy_run

OUTPUTS = [
    "evaluate.json",
    "predictions.csv",
    "confusion.csv",
    "calibration.csv",
    "weights.png",
    "mistakes.png",
    "confusion.png",
]


@pytest.fixture
def toy(tmp_path):
    return {**write_toy_run(tmp_path), "root": tmp_path}


def evaluate(toy):
    return run_stage(toy["root"], "evaluate", check=True)


def read_metrics(toy, name):
    return (toy["root"] / "metrics" / name).read_bytes()


def random_run(seed, n=400, k=10):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(0, 2, (n, k)).astype(np.float32)
    logits[np.arange(n), labels] += 2.0  # better than chance, still with mistakes
    return log_softmax(logits), labels


def test_per_class_scores_match_scikit_learn_including_a_class_never_predicted():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    actual = rng.integers(0, 4, 300)
    predicted = np.where(rng.random(300) < 0.7, actual, rng.integers(0, 3, 300))  # class 3 only by luck
    predicted[predicted == 3] = 0
    matrix = scores.confusion_matrix(actual, predicted, 4)
    np.testing.assert_array_equal(matrix, metrics.confusion_matrix(actual, predicted, labels=range(4)))
    table = scores.per_class_scores(matrix, list("abcd"))
    p, r, f, s = metrics.precision_recall_fscore_support(actual, predicted, labels=range(4), zero_division=0)
    np.testing.assert_allclose(table["precision"], p)
    np.testing.assert_allclose(table["recall"], r)
    np.testing.assert_allclose(table["f1"], f)
    np.testing.assert_array_equal(table["support"], s)
    assert table.loc["d", "precision"] == 0.0


def test_accuracy_log_loss_and_macro_f1_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    log_proba, labels = random_run(2)
    result = scores.evaluate(
        log_proba, labels, CLASSES, np.arange(len(labels)), calibration_bins=10, n_confusions=3, n_mistakes=5
    ).metrics
    proba = np.exp(log_proba.astype(np.float64))
    proba /= proba.sum(axis=1, keepdims=True)  # float32 log-softmax: sums off by ~1e-7
    predicted = proba.argmax(axis=1)
    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted))
    assert result["log_loss"] == pytest.approx(metrics.log_loss(labels, proba, labels=range(10)), rel=1e-5)
    assert result["macro"]["f1"] == pytest.approx(metrics.f1_score(labels, predicted, average="macro"))
    assert result["n_errors"] == int((predicted != labels).sum())


def test_calibration_error_of_a_hand_worked_example():
    # 10 predictions at 0.95 with 8 right, 10 at 0.25 with 5 right:
    # ECE = 0.5 * |0.8 - 0.95| + 0.5 * |0.5 - 0.25| = 0.075 + 0.125
    confidence = np.r_[np.full(10, 0.95), np.full(10, 0.25)]
    correct = np.r_[np.arange(10) < 8, np.arange(10) < 5]
    table, ece = scores.calibration(confidence, correct, n_bins=10)
    assert ece == pytest.approx(0.2)
    assert table["count"].tolist() == [10, 10]
    assert table["bin_low"].tolist() == pytest.approx([0.2, 0.9])
    assert table["accuracy"].tolist() == pytest.approx([0.5, 0.8])


def test_calibration_error_weights_each_bin_by_its_share_of_predictions():
    # 30 at 0.95 with 27 right (gap 0.05), 10 at 0.25 with 5 right (gap 0.25):
    # ECE = 30/40 * 0.05 + 10/40 * 0.25 = 0.1 (an unweighted mean of the bins would be 0.15)
    confidence = np.r_[np.full(30, 0.95), np.full(10, 0.25)]
    correct = np.r_[np.arange(30) < 27, np.arange(10) < 5]
    assert scores.calibration(confidence, correct, n_bins=10)[1] == pytest.approx(0.1)


def test_a_confidence_on_a_bin_edge_falls_in_the_bin_it_closes():
    # bins are ((b-1)/B, b/B]: 0.5 closes the bin (0.4, 0.5], and 1.0 the last one
    table, _ = scores.calibration(np.array([0.5, 0.5, 1.0]), np.array([True, False, True]), n_bins=10)
    assert table["bin_low"].tolist() == pytest.approx([0.4, 0.9])
    assert table["count"].tolist() == [2, 1]


def brute_force_ece(confidence, correct, n_bins):
    """ECE by its definition, one bin at a time: ((b-1)/B, b/B], the first bin from 0."""
    total = 0.0
    for b in range(n_bins):
        low, high = b / n_bins, (b + 1) / n_bins
        members = [i for i, c in enumerate(confidence) if (low < c or b == 0) and c <= high]
        if members:
            accuracy = np.mean([correct[i] for i in members])
            total += len(members) / len(confidence) * abs(accuracy - np.mean([confidence[i] for i in members]))
    return total


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 1.0), st.booleans()), min_size=1, max_size=60), st.integers(1, 20))
def test_every_prediction_falls_in_exactly_one_calibration_bin(pairs, n_bins):
    confidence, correct = map(np.array, zip(*pairs))
    table, ece = scores.calibration(confidence, correct, n_bins)
    assert table["count"].sum() == len(confidence)
    assert (
        (table["bin_low"] <= table["confidence"] + 1e-12) & (table["confidence"] <= table["bin_high"] + 1e-12)
    ).all()
    assert ece == pytest.approx(brute_force_ece(confidence, correct, n_bins), abs=1e-12)


def test_top_confusions_are_the_largest_off_diagonal_cells_first():
    matrix = np.array([[50, 7, 0], [2, 40, 9], [0, 0, 30]])
    assert scores.top_confusions(matrix, list("abc"), 5) == [
        {"actual": "b", "predicted": "c", "count": 9},
        {"actual": "a", "predicted": "b", "count": 7},
        {"actual": "b", "predicted": "a", "count": 2},
    ]


def test_stage_writes_the_contracted_metrics_and_tables(toy):
    evaluate(toy)
    metrics = json.loads(read_metrics(toy, "evaluate.json"))
    lo, hi = metrics["accuracy_ci95"]
    assert lo < metrics["accuracy"] < hi
    assert (metrics["accuracy_ci95_low"], metrics["accuracy_ci95_high"]) == (lo, hi)
    assert metrics["log_loss"] > 0 and 0 <= metrics["ece"] <= 1 and 0 < metrics["macro"]["f1"] <= 1
    # what DVC tracks holds only scalars to compare; per class and lists go beside it
    details = json.loads(read_metrics(toy, "evaluate_details.json"))
    assert set(details["per_class"]) == set(CLASSES)
    assert set(details["per_class"]["A"]) >= {"precision", "recall", "f1"}
    assert "per_class" not in metrics and "top_confusions" not in metrics

    predictions = pd.read_csv(toy["root"] / "metrics/predictions.csv")
    assert list(predictions.columns) == ["index", "label", "predicted", "confidence"]
    # index points at the ingested image whose label is `label`
    np.testing.assert_array_equal(predictions["index"], toy["test_rows"])
    assert (predictions["label"] == np.array(CLASSES)[toy["labels"][predictions["index"]]]).all()
    assert metrics["accuracy"] == pytest.approx((predictions["label"] == predictions["predicted"]).mean())
    assert predictions["confidence"].between(0.1, 1.0).all()

    confusion = pd.read_csv(toy["root"] / "metrics/confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"]
    assert len(confusion) == metrics["n"] == len(toy["test_rows"])
    top = details["top_confusions"][0]
    pairs = confusion[confusion["actual"] != confusion["predicted"]].value_counts()
    assert top["count"] == pairs.max() == pairs[(top["actual"], top["predicted"])]


def test_stage_predictions_agree_with_the_model_applied_directly(toy):
    evaluate(toy)
    predictions = pd.read_csv(toy["root"] / "metrics/predictions.csv")
    x = np.load(toy["root"] / "data/normalized/test_x.npy", allow_pickle=False).astype(np.float64)
    expected = (x @ toy["W"] + toy["b"]).argmax(axis=1)
    assert (predictions["predicted"] == np.array(CLASSES)[expected]).mean() > 0.99  # float32 ties aside


def test_stage_draws_ten_templates_and_the_most_confident_mistakes(toy):
    evaluate(toy)
    predictions = pd.read_csv(toy["root"] / "metrics/predictions.csv")
    n_wrong = int((predictions["label"] != predictions["predicted"]).sum())
    assert 0 < n_wrong
    for name in ["weights.png", "mistakes.png", "confusion.png"]:
        with Image.open(toy["root"] / "metrics" / name) as im:
            assert im.format == "PNG" and min(im.size) > 200
    # fewer mistakes shown -> a smaller montage: the picture really holds n_mistakes tiles
    with Image.open(toy["root"] / "metrics/mistakes.png") as im:
        big = im.size[1]
    set_evaluate(toy, n_mistakes=3)
    evaluate(toy)
    with Image.open(toy["root"] / "metrics/mistakes.png") as im:
        assert im.size[1] < big


def test_stage_outputs_are_byte_identical_when_run_twice(toy):
    evaluate(toy)
    first = {name: read_metrics(toy, name) for name in OUTPUTS}
    evaluate(toy)
    assert first == {name: read_metrics(toy, name) for name in OUTPUTS}


def set_evaluate(toy, **override):
    write_params(toy["root"], {"evaluate": {**TOY_EVALUATE, **override}})


@pytest.mark.parametrize(
    "override, name",
    [
        ({"n_mistakes": -1}, "evaluate.n_mistakes"),
        ({"n_mistakes": "ten"}, "evaluate.n_mistakes"),
        ({"calibration_bins": 0}, "evaluate.calibration_bins"),
        ({"n_confusion": 3}, "evaluate.n_confusion"),
    ],
)
def test_bad_params_are_named_and_leave_outputs_untouched(toy, override, name):
    evaluate(toy)
    before = read_metrics(toy, "evaluate.json")
    set_evaluate(toy, **override)
    assert name in error_line(run_stage(toy["root"], "evaluate"))
    assert read_metrics(toy, "evaluate.json") == before


def test_test_indices_that_do_not_match_the_test_arrays_are_refused_before_writing(toy):
    np.save(toy["root"] / "data/normalized/test_index.npy", toy["test_rows"][:-1])
    message = error_line(run_stage(toy["root"], "evaluate"))
    assert "data/normalized/test_*.npy" in message and "dvc repro normalize" in message
    assert not (toy["root"] / "metrics/evaluate.json").exists()


def test_diverging_colours_run_blue_white_red():
    assert pictures.diverging(np.array([-1.0, 0.0, 1.0])).tolist() == [[30, 70, 200], [255, 255, 255], [200, 30, 30]]


def test_montage_shows_each_glyph_pixel_as_a_scale_by_scale_block():
    tile = np.zeros((1, 28, 28), np.uint8)
    tile[0, 5, 7] = 255
    image = np.asarray(pictures.montage(tile, [["x"]], title=["t"], columns=1, scale=4))
    black = np.argwhere((image == 0).all(axis=-1))
    top, left = black.min(axis=0)
    assert tuple(black.max(axis=0) - black.min(axis=0)) == (111, 111)  # the 28x28 tile, 4x larger
    block = image[top : top + 112, left : left + 112].min(axis=-1)
    assert np.argwhere(block == 255).tolist() == [[20 + i, 28 + j] for i in range(4) for j in range(4)]


def test_weights_picture_shows_one_template_per_class():
    W = np.zeros((784, 10), np.float32)
    W[np.arange(10) * 50, np.arange(10)] = 1.0  # one positive pixel per class, elsewhere 0 (white)
    image = np.asarray(pictures.weights_picture(W, CLASSES, scale=7))
    red = (image == [200, 30, 30]).all(axis=-1)
    assert red.sum() == 10 * 7 * 7


def test_a_model_with_nan_weights_is_one_error_line_not_a_garbage_score(toy):
    model = toy["root"] / "models/model.npz"
    with np.load(model) as z:
        arrays = dict(z)
    arrays["W"][0, 0] = np.nan
    np.savez(model, **arrays)
    assert "W or b holds NaN" in error_line(run_stage(toy["root"], "evaluate"))
    assert not (toy["root"] / "metrics/evaluate.json").exists()
