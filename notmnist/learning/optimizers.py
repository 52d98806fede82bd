"""The minibatch update rules, one small class each, written as their formulas.

Every optimizer has one method, `step(weights, grads, lr)`, which updates the float32
arrays in `weights` in place from their gradients `grads` (w and g below) with step size
lr. State (velocity, accumulators) is kept per array and starts at zero. The rules follow
torch.optim's conventions, so the tests can check them against PyTorch.

A new optimizer: a class here, an entry in `make_optimizer`, its name in NAMES and in
params.yaml's `sweep.optimizers` (which finds its learning rate).
"""

from __future__ import annotations

import numpy as np

NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


class Optimizer:
    """step(weights, grads, lr): in-place update of each array w from its gradient g."""

    def __init__(self) -> None:
        self.state: dict[int, list[np.ndarray]] = {}

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


class SGD(Optimizer):
    """w <- w - lr * g"""

    def update(self, i, w, g, lr):
        w -= lr * g


class Momentum(Optimizer):
    """v <- mu * v + g ;  w <- w - lr * v   (heavy ball; v remembers past gradients)"""

    def __init__(self, mu: float) -> None:
        super().__init__()
        self.mu = mu

    def update(self, i, w, g, lr):
        (v,) = self.slots(i, w, 1)
        v *= w.dtype.type(self.mu)
        v += g
        w -= lr * v


class Nesterov(Momentum):
    """v <- mu * v + g ;  w <- w - lr * (g + mu * v)   (looks one momentum step ahead)"""

    def update(self, i, w, g, lr):
        (v,) = self.slots(i, w, 1)
        mu = w.dtype.type(self.mu)
        v *= mu
        v += g
        w -= lr * (g + mu * v)


class Adagrad(Optimizer):
    """s <- s + g^2 ;  w <- w - lr * g / (sqrt(s) + eps)   (per-weight rates shrink with use)"""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def update(self, i, w, g, lr):
        (s,) = self.slots(i, w, 1)
        s += g * g
        w -= lr * g / (np.sqrt(s) + w.dtype.type(self.eps))


class RMSprop(Optimizer):
    """s <- rho * s + (1 - rho) * g^2 ;  w <- w - lr * g / (sqrt(s) + eps)   (Adagrad that forgets)"""

    def __init__(self, rho: float, eps: float) -> None:
        super().__init__()
        self.rho, self.eps = rho, eps

    def update(self, i, w, g, lr):
        (s,) = self.slots(i, w, 1)
        rho = w.dtype.type(self.rho)
        s *= rho
        s += (1 - rho) * g * g
        w -= lr * g / (np.sqrt(s) + w.dtype.type(self.eps))


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2 ;  t <- t + 1
    w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (bias-corrected RMSprop with momentum)
    """

    def __init__(self, beta1: float, beta2: float, eps: float) -> None:
        super().__init__()
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t: dict[int, int] = {}

    def update(self, i, w, g, lr):
        m, v = self.slots(i, w, 2)
        t = self.t[i] = self.t.get(i, 0) + 1
        b1, b2 = self.beta1, self.beta2
        m *= w.dtype.type(b1)
        m += w.dtype.type(1 - b1) * g
        v *= w.dtype.type(b2)
        v += w.dtype.type(1 - b2) * g * g
        step = lr / w.dtype.type(1 - b1**t)
        denom = np.sqrt(v / w.dtype.type(1 - b2**t)) + w.dtype.type(self.eps)
        w -= step * m / denom


def make_optimizer(
    name: str, *, momentum: float = 0.9, rho: float = 0.99, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
) -> Optimizer:
    """The optimizer called `name` (one of NAMES) with its hyper-parameters."""
    return {
        "sgd": lambda: SGD(),
        "momentum": lambda: Momentum(momentum),
        "nesterov": lambda: Nesterov(momentum),
        "adagrad": lambda: Adagrad(eps),
        "rmsprop": lambda: RMSprop(rho, eps),
        "adam": lambda: Adam(beta1, beta2, eps),
    }[name]()
