"""Learning-rate schedules: callables from the global step number to a learning rate."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    """The same learning rate at every step."""

    lr: float

    def __call__(self, step: int) -> float:
        return self.lr


@dataclass(frozen=True)
class StepDecay:
    """Multiply the rate by `gamma` every `step_size` steps."""

    lr: float
    step_size: int
    gamma: float = 0.1

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up from ~0 over `warmup` steps, then half a cosine down to `final_lr`."""

    lr: float
    total: int
    warmup: int = 0
    final_lr: float = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            # Large early steps from a random init can push ReLUs dead; ramp up instead.
            return self.lr * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.final_lr + 0.5 * (self.lr - self.final_lr) * (1 + math.cos(math.pi * progress))


SCHEDULES = ("cosine", "step", "constant")
