"""Learning-rate schedules: each a pure function lr(t) of the update count t = 0, 1, 2, ...

`d` is the decay period in updates and `T` the total number of updates planned. A new
schedule: a function here, an entry in `make_schedule` and its name in NAMES.
"""

from __future__ import annotations

import math
from typing import Callable

NAMES = ("constant", "exponential", "step", "inverse_time", "cosine")


def constant(rate: float) -> Callable[[int], float]:
    """lr(t) = rate"""
    return lambda t: rate


def exponential(rate: float, decay: float, d: float, staircase: bool = False) -> Callable[[int], float]:
    """lr(t) = rate * decay^(t / d); staircase: rate * decay^floor(t / d)"""
    return lambda t: rate * decay ** (t // d if staircase else t / d)


def step(rate: float, decay: float, d: float) -> Callable[[int], float]:
    """lr(t) = rate * decay^floor(t / d)   (drop by a factor `decay` every d updates)"""
    return lambda t: rate * decay ** (t // d)


def inverse_time(rate: float, decay: float, d: float, staircase: bool = False) -> Callable[[int], float]:
    """lr(t) = rate / (1 + decay * t / d); staircase: t / d rounded down"""
    return lambda t: rate / (1 + decay * (t // d if staircase else t / d))


def cosine(rate: float, T: int, floor: float = 0.0) -> Callable[[int], float]:
    """lr(t) = floor + (rate - floor) * (1 + cos(pi * min(t, T) / T)) / 2   (rate at t=0, floor at T)"""
    return lambda t: floor + (rate - floor) * 0.5 * (1 + math.cos(math.pi * min(t, T) / max(T, 1)))


def make_schedule(
    name: str, rate: float, *, decay: float, decay_steps: float, staircase: bool, total_steps: int
) -> Callable[[int], float]:
    """The schedule called `name` (one of NAMES) as a function lr(t)."""
    return {
        "constant": lambda: constant(rate),
        "exponential": lambda: exponential(rate, decay, decay_steps, staircase),
        "step": lambda: step(rate, decay, decay_steps),
        "inverse_time": lambda: inverse_time(rate, decay, decay_steps, staircase),
        "cosine": lambda: cosine(rate, total_steps),
    }[name]()
