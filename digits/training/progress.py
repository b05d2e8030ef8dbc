"""What the progress displays of a training share: the moving average of its per-batch figures."""

from __future__ import annotations

# Weight of the newest batch: the figure follows the trend over a few dozen batches, not the
# noise of one.
SMOOTHING = 0.05


class MovingAverage:
    """An exponential moving average; None until the first value."""

    def __init__(self, weight: float = SMOOTHING):
        self.weight = weight
        self.value: float | None = None

    def update(self, value: float) -> float:
        """Fold in one batch's figure and return the new average."""
        old = self.value
        self.value = value if old is None else (1 - self.weight) * old + self.weight * value
        return self.value
