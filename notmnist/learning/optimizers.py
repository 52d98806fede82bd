"""The minibatch update rules, one small class each, written as their formulas: the registry.

Every optimizer has one method, `step(weights, grads, lr)`, which updates the float32
arrays in `weights` in place from their gradients `grads` (w and g below) with step size
lr. State (velocity, accumulators) is kept per array and starts at zero. The rules follow
torch.optim's conventions, so the tests can check them against PyTorch.

An optimizer is a dataclass whose fields are its hyperparameters, each with its check
(`knob`); its class attribute `name` registers it. params.yaml's `minibatch` section holds
every optimizer's hyperparameters side by side, under their field names: two optimizers
that share a knob (`epsilon`) share its field name and its check.

A new optimizer: a class here (a name, its knobs, its update formula as its docstring), its
knobs in params.yaml's `minibatch` section and its name in `sweep.optimizers` (which finds
its learning rate), and its row in tests/test_optimizers.py's REFERENCE. The rest follows
from the registry: the `minibatch` and `train.optimizer` checks, the sweep and the
comparison, and the docs' table (`python -m notmnist.learning.optimizers` prints it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from notmnist.plumbing.params import Check, knob, number, positive

DECAY = number(0, 1, hi_open=True)  # a moving average's decay: 0 forgets at once, 1 never
EPSILON = positive()  # added to a root in a denominator, so that it is never 0

REGISTRY: dict[str, type[Optimizer]] = {}


@dataclasses.dataclass
class Optimizer:
    """step(weights, grads, lr): in-place update of each array w from its gradient g."""

    name: ClassVar[str]
    state: dict[int, list[np.ndarray]] = dataclasses.field(default_factory=dict, init=False, repr=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.name] = cls

    def slots(self, i: int, w: np.ndarray, count: int) -> list[np.ndarray]:
        """The optimizer's zero-initialized state arrays for array i."""
        if i not in self.state:
            self.state[i] = [np.zeros_like(w) for _ in range(count)]
        return self.state[i]

    def step(self, weights: list[np.ndarray], grads: list[np.ndarray], lr: float) -> None:
        for i, (w, g) in enumerate(zip(weights, grads)):
            self.update(i, w, g, w.dtype.type(lr))

    def update(self, i: int, w: np.ndarray, g: np.ndarray, lr: np.floating) -> None:
        raise NotImplementedError


@dataclasses.dataclass
class SGD(Optimizer):
    """w <- w - lr * g"""

    name = "sgd"

    def update(self, i: int, w: np.ndarray, g: np.ndarray, lr: np.floating) -> None:
        w -= lr * g


@dataclasses.dataclass
class Momentum(Optimizer):
    """v <- mu * v + g ;  w <- w - lr * v   (heavy ball; v remembers past gradients; mu = momentum)"""

    name = "momentum"
    momentum: float = knob(DECAY)

    def update(self, i: int, w: np.ndarray, g: np.ndarray, lr: np.floating) -> None:
        (v,) = self.slots(i, w, 1)
        v *= w.dtype.type(self.momentum)
        v += g
        w -= lr * v


@dataclasses.dataclass
class Nesterov(Momentum):
    """v <- mu * v + g ;  w <- w - lr * (g + mu * v)   (looks one momentum step ahead)"""

    name = "nesterov"

    def update(self, i: int, w: np.ndarray, g: np.ndarray, lr: np.floating) -> None:
        (v,) = self.slots(i, w, 1)
        mu = w.dtype.type(self.momentum)
        v *= mu
        v += g
        w -= lr * (g + mu * v)


@dataclasses.dataclass
class Adagrad(Optimizer):
    """s <- s + g^2 ;  w <- w - lr * g / (sqrt(s) + eps)   (per-weight rates shrink with use)"""

    name = "adagrad"
    epsilon: float = knob(EPSILON)

    def update(self, i: int, w: np.ndarray, g: np.ndarray, lr: np.floating) -> None:
        (s,) = self.slots(i, w, 1)
        s += g * g
        w -= lr * g / (np.sqrt(s) + w.dtype.type(self.epsilon))


@dataclasses.dataclass
class RMSprop(Optimizer):
    """s <- rho * s + (1 - rho) * g^2 ;  w <- w - lr * g / (sqrt(s) + eps)   (Adagrad that forgets)"""

    name = "rmsprop"
    rho: float = knob(DECAY)
    epsilon: float = knob(EPSILON)

    def update(self, i: int, w: np.ndarray, g: np.ndarray, lr: np.floating) -> None:
        (s,) = self.slots(i, w, 1)
        rho = w.dtype.type(self.rho)
        s *= rho
        s += (1 - rho) * g * g
        w -= lr * g / (np.sqrt(s) + w.dtype.type(self.epsilon))


@dataclasses.dataclass
class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2 ;  t <- t + 1
    w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (bias-corrected RMSprop with momentum)
    """

    name = "adam"
    beta1: float = knob(DECAY)
    beta2: float = knob(DECAY)
    epsilon: float = knob(EPSILON)
    t: dict[int, int] = dataclasses.field(default_factory=dict, init=False, repr=False)

    def update(self, i: int, w: np.ndarray, g: np.ndarray, lr: np.floating) -> None:
        m, v = self.slots(i, w, 2)
        t = self.t[i] = self.t.get(i, 0) + 1
        b1, b2 = self.beta1, self.beta2
        m *= w.dtype.type(b1)
        m += w.dtype.type(1 - b1) * g
        v *= w.dtype.type(b2)
        v += w.dtype.type(1 - b2) * g * g
        step = lr / w.dtype.type(1 - b1**t)
        denom = np.sqrt(v / w.dtype.type(1 - b2**t)) + w.dtype.type(self.epsilon)
        w -= step * m / denom


def knobs(cls: type[Optimizer]) -> dict[str, Check]:
    """An optimizer's hyperparameters, each with its check."""
    return {f.name: f.metadata["check"] for f in dataclasses.fields(cls) if "check" in f.metadata}


def all_knobs() -> dict[str, Check]:
    """Every registered optimizer's hyperparameters: the optimizers' part of `minibatch`.
    A knob two optimizers share must be one knob: the same check under the same name."""
    spec: dict[str, Check] = {}
    for cls in REGISTRY.values():
        for key, check in knobs(cls).items():
            if spec.setdefault(key, check) is not check:
                raise TypeError(f"optimizer {cls.name}: knob {key} has another check than another optimizer's {key}")
    return spec


def make(name: str, hyper: Mapping[str, float]) -> Optimizer:
    """The optimizer called `name` (one of NAMES), its hyperparameters taken from `hyper`."""
    cls = REGISTRY[name]
    return cls(**{key: hyper[key] for key in knobs(cls)})


def table() -> str:
    """The registry as a markdown table: each optimizer, the knobs it reads and its update."""
    rows = ["| optimizer | knobs (params.yaml `minibatch`) | update (w = weights, g = gradient) |", "|---|---|---|"]
    for name, cls in REGISTRY.items():
        update = " ".join((cls.__doc__ or "").split())
        rows.append(f"| {name} | {', '.join(knobs(cls)) or '-'} | {update} |")
    return "\n".join(rows) + "\n"


NAMES = tuple(REGISTRY)
PARAMS = all_knobs()

if __name__ == "__main__":
    print(table(), end="")
