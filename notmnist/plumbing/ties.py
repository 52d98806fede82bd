"""Choices among floats that survive float noise.

Results computed with other BLAS kernels (another CPU, an ARM laptop) differ in their last
digits. A choice made by comparing such numbers (each optimizer's best learning rate, where
L-BFGS starts, the order of the optimizer table) must not flip on that noise: values within
TIE (relative) of the smallest count as tied, and the first of them in a fixed order wins.
TIE is far above the noise between kernels (a loss moves by about 1e-6 of itself) and below
any difference the pipeline claims to resolve.
"""

from __future__ import annotations

from typing import Hashable, Iterable, TypeVar

K = TypeVar("K", bound=Hashable)
TIE = 1e-3


def tied_with_smallest(value: float, smallest: float, relative: float = TIE) -> bool:
    return value <= smallest + relative * abs(smallest)


def first_within(candidates: Iterable[tuple[K, float]], relative: float = TIE) -> K:
    """The first key, in the order given, whose value is tied with the smallest value."""
    items = list(candidates)
    if not items:
        raise ValueError("no candidates")
    smallest = min(value for _, value in items)
    return next(key for key, value in items if tied_with_smallest(value, smallest, relative))


def ranked(candidates: Iterable[tuple[K, float]], relative: float = TIE) -> list[K]:
    """Every key, smallest value first; keys tied with the smallest of those left keep the
    order given (tiers: the first tier is everything tied with the best, and so on)."""
    left = list(candidates)
    order: list[K] = []
    while left:
        smallest = min(value for _, value in left)
        tier = [(key, value) for key, value in left if tied_with_smallest(value, smallest, relative)]
        order += [key for key, _ in tier]
        left = [item for item in left if item not in tier]
    return order
