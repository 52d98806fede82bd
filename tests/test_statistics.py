"""Confidence intervals, McNemar's test and the rule of 30 (notmnist.report.statistics)."""

import numpy as np
import pytest
import scipy.stats

from notmnist.report import statistics


@pytest.mark.parametrize("k, n", [(45, 50), (0, 20), (20, 20), (1, 3), (812, 1000), (2699, 2699)])
def test_wilson_interval_matches_scipy(k, n):
    reference = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = statistics.wilson_interval(k, n)
    assert lo == pytest.approx(reference.low, abs=1e-12)
    assert hi == pytest.approx(reference.high, abs=1e-12)
    assert lo <= k / n <= hi


def test_mcnemar_p_value_is_the_two_sided_exact_binomial_on_the_disagreements():
    correct_a = np.r_[np.ones(10, bool), np.zeros(2, bool), np.ones(50, bool)]
    correct_b = np.r_[np.zeros(10, bool), np.ones(2, bool), np.ones(50, bool)]
    # Binomial(12, 1/2): P(X <= 2) + P(X >= 10) = 2 * (1 + 12 + 66) / 4096
    assert statistics.mcnemar(correct_a, correct_b) == (10, 2, pytest.approx(158 / 4096))
    assert statistics.mcnemar(correct_a, correct_a) == (0, 0, 1.0)


def test_a_set_of_n_examples_resolves_thirty_of_them():
    assert statistics.resolution(1500) == pytest.approx(0.02)
    assert statistics.resolution(0) == 30  # no examples: nothing resolvable, and no division by zero


def test_exactly_thirty_images_apart_with_a_small_p_is_a_difference_not_a_tie():
    from notmnist.report.comparison import versus

    n = 1000
    best, other = np.ones(n, bool), np.ones(n, bool)
    other[: statistics.RULE_OF_30] = False  # 30 apart, p ~ 2e-9
    assert versus(best, other)[0] == "worse"
    other[0] = True  # 29 apart
    assert versus(best, other)[0] == "tied"
