"""Honest uncertainty: confidence intervals, paired tests and the rule of 30.

The course's rule of thumb: a change that affects at least 30 examples of a held-out set
is one to trust, so a set of n examples resolves accuracy differences of 30 / n.
"""

from __future__ import annotations

import math

import numpy as np

RULE_OF_30 = 30


def resolution(n: int) -> float:
    """The smallest accuracy difference a set of n examples resolves: 30 / n (rule of 30)."""
    return RULE_OF_30 / max(n, 1)


def wilson_interval(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval for a proportion k/n.

    p_hat = k/n, z = 1.96: (p_hat + z^2/2n +- z sqrt(p_hat(1-p_hat)/n + z^2/4n^2)) / (1 + z^2/n).
    Unlike the normal approximation it stays inside [0, 1] and is sensible near 0 and 1.
    The same as scipy.stats.binomtest(k, n).proportion_ci(method="wilson") (the tests check
    it), written out because importing scipy.stats costs a stage a second.
    """
    import scipy.special

    z = float(scipy.special.ndtri(0.975))
    p_hat, n = k / n, int(n)
    centre = (p_hat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p_hat * (1 - p_hat) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """McNemar's exact test of equal accuracy for paired predictions: (only_a, only_b, p-value).

    Only the disagreements carry information: only_a = examples only A gets right, only_b =
    only B. Under H0 (same accuracy) each disagreement is a fair coin, so only_a ~
    Binomial(only_a + only_b, 1/2); the two-sided binomial p-value is the test's (1 if none).
    """
    import scipy.stats

    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    p_value = scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return only_a, only_b, float(p_value)
