"""The params.yaml sections that training reads, as typed settings: train, minibatch, objective.

Each is a frozen dataclass, one field per knob with its check and no default (params.yaml
holds the values; notmnist.plumbing.params reads and checks a section whole). The
optimizers' own hyperparameters are declared by each optimizer (notmnist.learning.optimizers)
and gathered here into `Minibatch.optimizer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from notmnist.learning import lbfgs, optimizers, schedules
from notmnist.plumbing.params import boolean, choice, either, group, integer, knob, number, positive

NAMES = (*optimizers.NAMES, lbfgs.NAME)  # every way to fit: the SGD variants, and the exact optimum


@dataclass(frozen=True)
class Train:
    """Section train: the model that evaluate scores."""

    SECTION: ClassVar[str] = "train"
    optimizer: str = knob(choice(*NAMES))
    learning_rate: float | str = knob(either(positive(), "best"))  # best: the sweep's best rate for the optimizer
    report_optimum_gap: bool = knob(boolean())

    @property
    def takes_rate(self) -> bool:
        """Whether the optimizer takes a learning rate (the SGD variants do; L-BFGS does not)."""
        return self.optimizer in optimizers.REGISTRY


@dataclass(frozen=True)
class Minibatch:
    """Section minibatch: minibatch SGD, shared by train, the sweep and the optimizer comparison."""

    SECTION: ClassVar[str] = "minibatch"
    schedule: str = knob(choice(*schedules.NAMES))
    decay_rate: float = knob(positive())
    decay_epochs: float = knob(positive())
    staircase: bool = knob(boolean())
    batch_size: int = knob(integer(1, None))
    epochs: int = knob(integer(1, None))
    patience: int = knob(integer(0, None))
    init_sigma: float = knob(number(0, None))
    seed: int = knob(integer(0, 2**32 - 1))
    optimizer: Mapping[str, float] = group(optimizers.PARAMS)  # every optimizer's own knobs, by name


@dataclass(frozen=True)
class Objective:
    """Section objective: what every way to fit minimizes, and its exact optimum."""

    SECTION: ClassVar[str] = "objective"
    l2: float = knob(number(0, None))
    lbfgs_max_iter: int = knob(lbfgs.MAX_ITER)
