"""The update rules (notmnist.learning.optimizers): hand-computed steps on a two-parameter problem, and
PyTorch's torch.optim on the same gradients (CI installs torch; elsewhere these skip without it)."""

import math

import numpy as np
import pytest

from notmnist.learning import optimizers
from tests.helpers import DEFAULTS

P0 = [1.0, -2.0]
G = [0.5, 0.25]  # the same gradient at both steps keeps the hand arithmetic short

# Every registered optimizer has one row: two steps of lr = 0.1 from P0 with gradient G,
# worked out by hand from its docstring (with HAND_KNOBS), and torch.optim's counterpart
# (built with TORCH_KNOBS: name -> optimizer of params and lr), or None where torch has none.
HAND_KNOBS = {"momentum": 0.9, "rho": 0.99, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-12}
TORCH_KNOBS = {"momentum": 0.8, "rho": 0.95, "beta1": 0.85, "beta2": 0.99, "epsilon": 1e-8}
REFERENCE = {
    # w - 0.1 g, twice
    "sgd": ([[0.95, -2.025], [0.9, -2.05]], lambda o, p, lr: o.SGD(p, lr=lr)),
    # v1 = g, v2 = 1.9 g
    "momentum": ([[0.95, -2.025], [0.855, -2.0725]], lambda o, p, lr: o.SGD(p, lr=lr, momentum=0.8)),
    # w1 = w - 0.1 (g + 0.9 g); w2 = w1 - 0.1 (g + 0.9 * 1.9 g) = w1 - 0.271 g
    "nesterov": (
        [[0.905, -2.0475], [0.7695, -2.11525]],
        lambda o, p, lr: o.SGD(p, lr=lr, momentum=0.8, nesterov=True),
    ),
    # s1 = g^2: step 0.1 sign(g); s2 = 2 g^2: step 0.1 / sqrt(2)
    "adagrad": (
        [[0.9, -2.1], [0.9 - 0.1 / math.sqrt(2), -2.1 - 0.1 / math.sqrt(2)]],
        lambda o, p, lr: o.Adagrad(p, lr=lr, eps=1e-8),
    ),
    # s1 = 0.01 g^2: step 1.0 sign(g); s2 = 0.0199 g^2: step 0.1 / sqrt(0.0199)
    "rmsprop": (
        [[0.0, -3.0], [-0.1 / math.sqrt(0.0199), -3.0 - 0.1 / math.sqrt(0.0199)]],
        lambda o, p, lr: o.RMSprop(p, lr=lr, alpha=0.95, eps=1e-8),
    ),
    # bias correction makes m_hat = g and v_hat = g^2 at every step: step 0.1 sign(g)
    "adam": ([[0.9, -2.1], [0.8, -2.2]], lambda o, p, lr: o.Adam(p, lr=lr, betas=(0.85, 0.99), eps=1e-8)),
}


def test_every_registered_optimizer_has_a_reference_row():
    assert set(REFERENCE) == set(optimizers.NAMES)


def test_every_optimizer_knob_is_in_params_yaml_under_minibatch():
    # a knob nobody passes from params.yaml would run at a value that nobody chose
    assert set(optimizers.PARAMS) <= set(DEFAULTS["minibatch"])
    assert set(optimizers.NAMES) == set(DEFAULTS["sweep"]["optimizers"])


def test_an_optimizer_takes_exactly_its_own_knobs():
    adam = optimizers.make("adam", HAND_KNOBS)
    assert (adam.beta1, adam.beta2, adam.epsilon) == (0.9, 0.999, 1e-12)
    assert optimizers.knobs(optimizers.REGISTRY["sgd"]) == {}
    assert set(optimizers.knobs(optimizers.REGISTRY["nesterov"])) == {"momentum"}


@pytest.mark.parametrize("name", optimizers.NAMES)
def test_two_steps_match_the_hand_computed_update(name):
    opt = optimizers.make(name, HAND_KNOBS)
    p = np.array(P0, dtype=np.float32)
    for expected in REFERENCE[name][0]:
        opt.step([p], [np.array(G, dtype=np.float32)], 0.1)
        np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-6)


def test_each_parameter_keeps_its_own_state():
    opt = optimizers.make("momentum", HAND_KNOBS)
    a, b = np.zeros(2, np.float32), np.zeros(3, np.float32)
    opt.step([a, b], [np.ones(2, np.float32), np.ones(3, np.float32)], 1.0)
    opt.step([a, b], [np.ones(2, np.float32), np.zeros(3, np.float32)], 1.0)
    np.testing.assert_allclose(a, [-2.9, -2.9], rtol=1e-6)
    np.testing.assert_allclose(b, [-1.9, -1.9, -1.9], rtol=1e-6)


@pytest.mark.parametrize("name", [name for name in optimizers.NAMES if REFERENCE[name][1] is not None])
def test_updates_match_torch_optim_on_the_same_gradients(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    ours = [rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in ours]
    lrs = [0.1, 0.05, 0.02, 0.01, 0.05]  # a changing rate, as a schedule gives
    opt = optimizers.make(name, TORCH_KNOBS)
    ref = REFERENCE[name][1](torch.optim, theirs, lrs[0])
    for lr in lrs:
        grads = [rng.normal(size=p.shape).astype(np.float32) for p in ours]
        opt.step(ours, grads, lr)
        for group in ref.param_groups:
            group["lr"] = lr
        for t, g in zip(theirs, grads):
            t.grad = torch.tensor(g)
        ref.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-5, atol=1e-6)
