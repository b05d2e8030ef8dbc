"""Optimizers lower a convex loss; schedules follow their documented shapes."""

import itertools

import numpy as np
import pytest

from optimizers import SGD, Adam, RMSprop
from schedules import Constant, StepDecay, WarmupCosine

# A badly conditioned quadratic 0.5 * sum(c * (w - target)^2): each optimizer must cope.
CURVATURE = np.array([1.0, 10.0, 0.1, 3.0, 0.5, 2.0], np.float32)
TARGET = np.array([1.0, -2.0, 3.0, 0.5, -1.0, 0.0], np.float32)


def quadratic(w):
    return float(0.5 * np.sum(CURVATURE * (w - TARGET) ** 2))


@pytest.mark.parametrize(
    ("make", "lr"),
    [
        (lambda p, g: SGD(p, g, momentum=0.0), 0.05),
        (lambda p, g: SGD(p, g, momentum=0.9, nesterov=False), 0.02),
        (lambda p, g: SGD(p, g, momentum=0.9, nesterov=True), 0.02),
        (lambda p, g: RMSprop(p, g), 0.01),
        (lambda p, g: Adam(p, g), 0.05),
    ],
    ids=["sgd", "momentum", "nesterov", "rmsprop", "adam"],
)
def test_each_optimizer_lowers_a_convex_loss(make, lr):
    params = np.zeros(6, np.float32)
    grads = np.zeros_like(params)
    optimizer = make(params, grads)
    start = quadratic(params)
    for _ in range(500):
        grads[...] = CURVATURE * (params - TARGET)
        optimizer.step(lr)
    assert quadratic(params) < 0.01 * start
    assert params.dtype == np.float32


@pytest.mark.parametrize("optimizer_class", [SGD, RMSprop, Adam])
def test_weight_decay_shrinks_only_the_leading_weights(optimizer_class):
    params = np.ones(4, np.float32)
    grads = np.zeros_like(params)
    optimizer = optimizer_class(params, grads, weight_decay=0.1, n_decayed=2)
    for _ in range(10):
        grads[...] = 0
        optimizer.step(0.1)
    assert np.all(params[:2] < 1)
    np.testing.assert_array_equal(params[2:], 1)


@pytest.mark.parametrize("nesterov", [True, False], ids=["nesterov", "classical"])
def test_momentum_sgd_matches_pytorchs_update_rule(nesterov):
    p, g = np.array([1.0, 2.0], np.float32), np.zeros(2, np.float32)
    opt = SGD(p, g, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    v = np.zeros(2)
    ref = np.array([1.0, 2.0])
    for grad in ([0.5, -1.0], [0.2, 0.3], [-0.4, 0.1]):
        g[...] = grad
        opt.step(0.1)
        d = np.array(grad) + 0.01 * ref
        v = 0.9 * v + d
        ref = ref - 0.1 * (d + 0.9 * v if nesterov else v)
    np.testing.assert_allclose(p, ref, rtol=1e-6)


def test_warmup_cosine_ramps_up_then_decays_to_the_final_rate():
    schedule = WarmupCosine(0.1, total=100, warmup=10, final_lr=0.001)
    rates = [schedule(s) for s in range(101)]
    assert rates[0] == pytest.approx(0.01)
    assert rates[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))
    assert rates[55] == pytest.approx((0.1 + 0.001) / 2, rel=1e-6)
    assert rates[100] == pytest.approx(0.001)


def test_step_decay_and_constant_schedules():
    schedule = StepDecay(0.1, step_size=10, gamma=0.5)
    assert [schedule(s) for s in (0, 9, 10, 25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert Constant(0.3)(12345) == 0.3
