"""Optimizers and learning-rate schedules, one small piece each.

Every optimizer has one method, `step(params, grads, lr)`, which updates the float32
arrays in `params` in place from their gradients `grads` (g below) with step size lr.
State (velocity, accumulators) is kept per parameter and starts at zero. The update
rules follow torch.optim's conventions, so the tests can check them against PyTorch.

Every schedule is a pure function of the update count t = 0, 1, 2, ... returning the
learning rate; `T` is the total number of updates planned and `d` = decay_steps.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
# Rates that work with standardized inputs, the cosine schedule and batch 128 (README; the
# optimizer comparison's defaults in params.yaml); the divergence error suggests them.
SUGGESTED_RATES = {"sgd": 0.5, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05,
                   "rmsprop": 0.001, "adam": 0.001}
SCHEDULES = ("constant", "exponential", "step", "inverse_time", "cosine")


class Optimizer:
    """step(params, grads, lr): in-place update of each p from its gradient g."""

    def __init__(self) -> None:
        self.state: dict[int, list[np.ndarray]] = {}

    def slots(self, i: int, p: np.ndarray, count: int) -> list[np.ndarray]:
        """The optimizer's zero-initialized state arrays for parameter i."""
        if i not in self.state:
            self.state[i] = [np.zeros_like(p) for _ in range(count)]
        return self.state[i]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], lr: float) -> None:
        for i, (p, g) in enumerate(zip(params, grads)):
            self.update(i, p, g, p.dtype.type(lr))

    def update(self, i: int, p: np.ndarray, g: np.ndarray, lr: np.floating) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """p <- p - lr * g"""

    def update(self, i, p, g, lr):
        p -= lr * g


class Momentum(Optimizer):
    """v <- mu * v + g ;  p <- p - lr * v   (heavy ball; v remembers past gradients)"""

    def __init__(self, mu: float) -> None:
        super().__init__()
        self.mu = mu

    def update(self, i, p, g, lr):
        (v,) = self.slots(i, p, 1)
        v *= p.dtype.type(self.mu)
        v += g
        p -= lr * v


class Nesterov(Momentum):
    """v <- mu * v + g ;  p <- p - lr * (g + mu * v)   (looks one momentum step ahead)"""

    def update(self, i, p, g, lr):
        (v,) = self.slots(i, p, 1)
        mu = p.dtype.type(self.mu)
        v *= mu
        v += g
        p -= lr * (g + mu * v)


class Adagrad(Optimizer):
    """s <- s + g^2 ;  p <- p - lr * g / (sqrt(s) + eps)   (per-weight rates shrink with use)"""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def update(self, i, p, g, lr):
        (s,) = self.slots(i, p, 1)
        s += g * g
        p -= lr * g / (np.sqrt(s) + p.dtype.type(self.eps))


class RMSprop(Optimizer):
    """s <- rho * s + (1 - rho) * g^2 ;  p <- p - lr * g / (sqrt(s) + eps)   (Adagrad that forgets)"""

    def __init__(self, rho: float, eps: float) -> None:
        super().__init__()
        self.rho, self.eps = rho, eps

    def update(self, i, p, g, lr):
        (s,) = self.slots(i, p, 1)
        rho = p.dtype.type(self.rho)
        s *= rho
        s += (1 - rho) * g * g
        p -= lr * g / (np.sqrt(s) + p.dtype.type(self.eps))


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2 ;  t <- t + 1
    p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (bias-corrected RMSprop with momentum)
    """

    def __init__(self, beta1: float, beta2: float, eps: float) -> None:
        super().__init__()
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t: dict[int, int] = {}

    def update(self, i, p, g, lr):
        m, v = self.slots(i, p, 2)
        t = self.t[i] = self.t.get(i, 0) + 1
        b1, b2 = self.beta1, self.beta2
        m *= p.dtype.type(b1)
        m += p.dtype.type(1 - b1) * g
        v *= p.dtype.type(b2)
        v += p.dtype.type(1 - b2) * g * g
        step = lr / p.dtype.type(1 - b1**t)
        denom = np.sqrt(v / p.dtype.type(1 - b2**t)) + p.dtype.type(self.eps)
        p -= step * m / denom


def make_optimizer(name: str, *, momentum: float = 0.9, rho: float = 0.99, beta1: float = 0.9,
                   beta2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """The optimizer called `name` (one of OPTIMIZERS) with its hyper-parameters."""
    return {
        "sgd": lambda: SGD(),
        "momentum": lambda: Momentum(momentum),
        "nesterov": lambda: Nesterov(momentum),
        "adagrad": lambda: Adagrad(eps),
        "rmsprop": lambda: RMSprop(rho, eps),
        "adam": lambda: Adam(beta1, beta2, eps),
    }[name]()


# --- schedules: lr(t) ---------------------------------------------------------------

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


def make_schedule(name: str, rate: float, *, decay: float, decay_steps: float, staircase: bool,
                  total_steps: int) -> Callable[[int], float]:
    """The schedule called `name` (one of SCHEDULES) as a function lr(t)."""
    return {
        "constant": lambda: constant(rate),
        "exponential": lambda: exponential(rate, decay, decay_steps, staircase),
        "step": lambda: step(rate, decay, decay_steps),
        "inverse_time": lambda: inverse_time(rate, decay, decay_steps, staircase),
        "cosine": lambda: cosine(rate, total_steps),
    }[name]()
