"""Learning-rate schedules (notmnist.learning.schedules): each lr(t) against its closed formula."""

import pytest

from notmnist.learning import schedules


def test_exponential_decays_smoothly_or_in_whole_periods():
    smooth = schedules.exponential(0.1, 0.5, 10)
    stairs = schedules.exponential(0.1, 0.5, 10, staircase=True)
    assert smooth(0) == stairs(0) == 0.1
    assert smooth(10) == pytest.approx(0.05) and stairs(10) == pytest.approx(0.05)
    assert smooth(15) == pytest.approx(0.1 * 0.5**1.5)
    assert stairs(15) == pytest.approx(0.05) and stairs(19) == pytest.approx(0.05)


def test_step_drops_by_the_factor_every_period():
    lr = schedules.step(1.0, 0.1, 100)
    assert [lr(t) for t in (0, 99, 100, 250)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def test_inverse_time_halves_the_rate_after_one_over_decay_periods():
    lr = schedules.inverse_time(0.1, 0.5, 10)
    assert lr(0) == 0.1 and lr(20) == pytest.approx(0.05) and lr(5) == pytest.approx(0.1 / 1.25)


def test_cosine_runs_from_rate_to_zero_over_the_planned_steps():
    lr = schedules.cosine(0.1, 100)
    assert lr(0) == pytest.approx(0.1) and lr(50) == pytest.approx(0.05)
    assert lr(100) == pytest.approx(0.0) and lr(150) == pytest.approx(0.0)
    assert all(lr(t) >= lr(t + 1) for t in range(100))


@pytest.mark.parametrize("name", schedules.NAMES)
def test_every_schedule_starts_at_the_rate_and_never_rises(name):
    lr = schedules.make_schedule(name, 0.3, decay=0.5, decay_steps=7, staircase=False, total_steps=50)
    values = [lr(t) for t in range(60)]
    assert values[0] == pytest.approx(0.3)
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_inverse_time_staircase_steps_at_whole_periods_only():
    lr = schedules.inverse_time(0.1, 1.0, 10, staircase=True)
    assert [lr(t) for t in (0, 9, 10, 19, 20)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.1 / 3])
