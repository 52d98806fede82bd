"""Choices among floats that survive float noise (notmnist/plumbing/ties.py): the best rate,
where L-BFGS starts, the order of the optimizer table."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from notmnist.plumbing.ties import TIE, first_within, ranked
from notmnist.report.comparison import ranking

losses = st.lists(st.floats(0.1, 10.0), min_size=1, max_size=8)
noise = st.lists(st.floats(-1e-6, 1e-6), min_size=8, max_size=8)


def test_the_first_in_order_wins_among_values_tied_with_the_smallest():
    assert first_within([("a", 1.0 + TIE / 2), ("b", 1.0), ("c", 0.5)]) == "c"
    assert first_within([("a", 1.0 + TIE / 2), ("b", 1.0)]) == "a"
    assert first_within([("a", 1.0 + 2 * TIE), ("b", 1.0)]) == "b"


def test_ranked_puts_the_tiers_in_order_and_keeps_the_given_order_within_a_tier():
    values = [("adam", 0.82), ("sgd", 0.8144), ("momentum", 0.8147), ("lbfgs", 0.8141)]
    assert ranked(values) == ["sgd", "momentum", "lbfgs", "adam"]


@given(losses, noise)
def test_noise_a_thousand_times_below_the_tie_never_reorders_values_that_are_apart(values, wiggle):
    # values either tied with their tier or apart by more than twice the tie: the noise of
    # another CPU (about 1e-6 of a loss) can't move one across a boundary
    spaced = [round(v, 1) for v in values]  # apart by at least 0.1 / 10 = 1%, or equal
    named = [(f"o{i}", v) for i, v in enumerate(spaced)]
    moved = [(key, v * (1 + w)) for (key, v), w in zip(named, wiggle)]
    assert ranked(moved) == ranked(named)
    assert first_within(moved) == first_within(named)


def test_the_optimizer_table_ranks_by_validation_loss_and_ties_keep_the_sweeps_order():
    def result(loss: float, accuracy: float) -> dict:
        return {
            "learning_rate": 0.1,
            "valid": {"accuracy": accuracy, "loss": loss},
            "train": {"objective": 0.5},
            "best_epoch": 3,
            "epochs_run": 5,
        }

    # nesterov's accuracy is a single image higher, its loss 0.01% higher: noise, not a ranking
    results = {"sgd": result(0.8144, 0.8896), "nesterov": result(0.81448, 0.8903), "adam": result(0.83, 0.95)}
    correct = {name: np.ones(100, bool) for name in results}
    assert list(ranking(results, correct, optimum="lbfgs")["optimizer"]) == ["sgd", "nesterov", "adam"]
