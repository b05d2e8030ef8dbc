"""Optimizers that update a network's flat parameter buffer from its flat gradient buffer.

Each works in place on one contiguous array (network.MLP keeps all parameters there), so a
step costs a few vectorised operations whatever the number of layers. `n_decayed` leading
entries are weights; weight decay applies to them only, never to biases or batch-norm shifts.
"""

from __future__ import annotations

import numpy as np


class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay."""

    def __init__(
        self,
        params: np.ndarray,
        grads: np.ndarray,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        n_decayed: int | None = None,
    ):
        self.params, self.grads = params, grads
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.n_decayed = len(params) if n_decayed is None else n_decayed
        # With Nesterov this holds momentum * velocity, see step(); otherwise the velocity.
        self.velocity = np.zeros_like(params)
        # One preallocated scratch array: a step then allocates nothing, which matters when
        # the step runs ~500 times an epoch on arrays the matrix products just evicted.
        self.scratch = np.empty_like(params)

    def step(self, lr: float) -> None:
        """Update the parameters in place; the gradient buffer is used as scratch."""
        p, g, v, s, n, m = (
            self.params,
            self.grads,
            self.velocity,
            self.scratch,
            self.n_decayed,
            self.momentum,
        )
        if self.weight_decay:
            np.multiply(p[:n], self.weight_decay, out=s[:n])
            g[:n] += s[:n]
        if m and not self.nesterov:
            v *= m
            v += g
            p -= np.multiply(v, lr, out=s)
            return
        if m:
            # PyTorch's Nesterov look-ahead form, v = m * v + g then a step along g + m * v,
            # with m * v kept between steps instead of v: the product the step needs is then
            # the one the next update starts from, which saves one of 8 passes over the
            # parameters (the arithmetic is the same, rounding included).
            v += g
            v *= m
            g += v
        g *= lr
        p -= g


class RMSprop:
    """RMSprop: divide each gradient by a running root-mean-square of its recent values."""

    def __init__(
        self,
        params: np.ndarray,
        grads: np.ndarray,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        n_decayed: int | None = None,
    ):
        self.params, self.grads = params, grads
        self.rho, self.eps, self.weight_decay = rho, eps, weight_decay
        self.n_decayed = len(params) if n_decayed is None else n_decayed
        self.mean_square = np.zeros_like(params)

    def step(self, lr: float) -> None:
        g, n = self.grads, self.n_decayed
        if self.weight_decay:
            g[:n] += self.weight_decay * self.params[:n]
        self.mean_square *= self.rho
        self.mean_square += (1 - self.rho) * g * g
        self.params -= lr * g / (np.sqrt(self.mean_square) + self.eps)


class Adam:
    """Adam with bias correction and decoupled weight decay (AdamW: decay is not in the moments)."""

    def __init__(
        self,
        params: np.ndarray,
        grads: np.ndarray,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        n_decayed: int | None = None,
    ):
        self.params, self.grads = params, grads
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.n_decayed = len(params) if n_decayed is None else n_decayed
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self.t = 0

    def step(self, lr: float) -> None:
        g, n = self.grads, self.n_decayed
        self.t += 1
        if self.weight_decay:
            self.params[:n] *= 1 - lr * self.weight_decay
        self.m *= self.beta1
        self.m += (1 - self.beta1) * g
        self.v *= self.beta2
        self.v += (1 - self.beta2) * g * g
        step_size = lr * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        self.params -= step_size * self.m / (np.sqrt(self.v) + self.eps)


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


def make_optimizer(name: str, network, weight_decay: float = 0.0, **options):
    """Build the named optimizer over a network.MLP's flat parameters and gradients."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {list(OPTIMIZERS)}")
    return OPTIMIZERS[name](
        network.params,
        network.grads,
        weight_decay=weight_decay,
        n_decayed=network.n_decayed,
        **options,
    )
