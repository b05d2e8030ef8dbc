"""Layers of a multilayer perceptron, each with its forward step beside its gradient.

Every layer works on a batch: `forward(x)` caches what `backward` needs and `backward(dy)`
returns the gradient with respect to the layer's input, writing parameter gradients into
`grads` (views into the network's flat gradient buffer, see network.py). Arrays keep the dtype
they come in with: float32 for training, float64 inside gradient checks.

In training mode Dense and the fused softmax-cross-entropy write into arrays they keep from one
step to the next instead of allocating new ones (and ReLU works in place on Dense's): at
~470 steps an epoch, fresh arrays cost page faults and cache misses that add up to a tenth of
the step. So a training-mode output is only valid until that layer's next training step.
"""

from __future__ import annotations

import numpy as np

# --- initialisation -----------------------------------------------------------------------


def he_init(fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """He/Kaiming normal init for ReLU-family layers; returns (fan_in, fan_out)."""
    return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)


def xavier_init(
    fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32
) -> np.ndarray:
    """Glorot/Xavier uniform init for sigmoid and linear layers; returns (fan_in, fan_out)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)


def reused(cache: dict, name: str, shape: tuple[int, ...], dtype, fill=None) -> np.ndarray:
    """An array kept in `cache` under `name`, made anew (set to `fill`) on a new shape or dtype."""
    a = cache.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = cache[name] = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
    return a


# --- parametrised layers ---------------------------------------------------------------------


class Dense:
    """Affine map y = x @ W + b; x: (N, D_in) -> y: (N, D_out)."""

    def __init__(
        self,
        W: np.ndarray,
        b: np.ndarray,
        need_input_grad: bool = True,
        need_param_grads: bool = True,
    ):
        self.params = {"W": W, "b": b}
        # An inference-only network (network.Classifier) backpropagates to its input alone.
        self.need_param_grads = need_param_grads
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)} if need_param_grads else {}
        # In training the first layer's input gradient is never used, and it costs a third of the
        # backward pass; an explanation asks for it per call (backward's need_input_grad).
        self.need_input_grad = need_input_grad
        self.x: np.ndarray | None = None
        self.buffers: dict = {}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        W, b = self.params["W"], self.params["b"]
        if not train:
            self.x = None
            y = x @ W
        else:
            self.x = x
            y = reused(self.buffers, "y", (len(x), W.shape[1]), np.result_type(x, W))
            np.matmul(x, W, out=y)
        y += b
        return y

    def backward(self, dy: np.ndarray, need_input_grad: bool | None = None) -> np.ndarray | None:
        """Gradient w.r.t. x (N, D_in), or None when not needed (None: as set at construction)."""
        W, x = self.params["W"], self.x
        if x is None:
            raise RuntimeError("backward() needs a forward(train=True) first")
        if self.need_param_grads:
            np.matmul(x.T, dy, out=self.grads["W"])
            # The column sums as a product with a ones vector: one BLAS call, about 3x faster
            # than np.sum(axis=0) on a (128, 128) batch.
            ones = reused(self.buffers, "ones", (len(dy),), dy.dtype, 1)
            np.matmul(ones, dy, out=self.grads["b"])
        if not (self.need_input_grad if need_input_grad is None else need_input_grad):
            return None
        dx = reused(self.buffers, "dx", x.shape, np.result_type(dy, W))
        return np.matmul(dy, W.T, out=dx)


class BatchNorm:
    """Per-feature batch normalisation; x: (N, D) -> (N, D); batch statistics in training."""

    def __init__(self, dim: int, momentum: float = 0.9, eps: float = 1e-5, dtype=np.float32):
        self.params = {"gamma": np.ones(dim, dtype), "beta": np.zeros(dim, dtype)}
        self.grads = {"gamma": np.zeros(dim, dtype), "beta": np.zeros(dim, dtype)}
        self.running_mean = np.zeros(dim, dtype)
        self.running_var = np.ones(dim, dtype)
        self.momentum, self.eps = momentum, eps
        self.cache: tuple | None = None

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if not train:
            scale = self.params["gamma"] / np.sqrt(self.running_var + self.eps)
            return x * scale + (self.params["beta"] - self.running_mean * scale)
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        m = self.momentum
        self.running_mean = m * self.running_mean + (1 - m) * mean
        self.running_var = m * self.running_var + (1 - m) * var * (len(x) / max(len(x) - 1, 1))
        self.cache = (x_hat, inv_std)
        return x_hat * self.params["gamma"] + self.params["beta"]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self.cache is None:
            raise RuntimeError("backward() needs a forward(train=True) first")
        x_hat, inv_std = self.cache
        self.grads["gamma"][...] = np.sum(dy * x_hat, axis=0)
        self.grads["beta"][...] = np.sum(dy, axis=0)
        dx_hat = dy * self.params["gamma"]
        # Compact form of the batch-norm input gradient (mean and variance depend on every row).
        return inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * np.mean(dx_hat * x_hat, axis=0))

    def fold_into(self, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the Dense (W, b) that equals Dense(W, b) followed by this layer in eval mode."""
        scale = self.params["gamma"] / np.sqrt(self.running_var + self.eps)
        return W * scale, (b - self.running_mean) * scale + self.params["beta"]


# --- activations -----------------------------------------------------------------------------

LEAKY_SLOPE = 0.01


def relu(x: np.ndarray) -> np.ndarray:
    """Elementwise max(x, 0)."""
    return np.maximum(x, 0)


def leaky_relu(x: np.ndarray, slope: float = LEAKY_SLOPE) -> np.ndarray:
    """Elementwise x if x > 0 else slope * x."""
    return np.where(x > 0, x, x * x.dtype.type(slope))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, without overflow for large |x|."""
    # tanh form: no overflow warning for large |x|, unlike 1 / (1 + exp(-x)).
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class ReLU:
    """Elementwise max(x, 0), computed in place; x: (N, D) -> (N, D)."""

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        # In place (x is overwritten): x is the output of the Dense before, which nothing else
        # reads, and skipping the allocation matters at ~500 steps an epoch.
        self.y = np.maximum(x, 0, out=x)
        return self.y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # In place on dy, the input gradient the next Dense's backward just wrote and nothing
        # else reads; multiplying by the boolean mask is ~8x faster than np.where(mask, dy, 0).
        dy *= self.y > 0
        return dy


class LeakyReLU:
    """Elementwise x if x > 0 else slope * x; x: (N, D) -> (N, D)."""

    def __init__(self, slope: float = LEAKY_SLOPE):
        self.slope = slope

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self.positive = x > 0
        return leaky_relu(x, self.slope)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return np.where(self.positive, dy, dy * dy.dtype.type(self.slope))


class Sigmoid:
    """Elementwise logistic 1 / (1 + exp(-x)); x: (N, D) -> (N, D)."""

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self.y = sigmoid(x)
        return self.y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * self.y * (1.0 - self.y)


class Dropout:
    """Inverted dropout: zero each unit with probability p in training, identity in eval."""

    def __init__(self, p: float, rng: np.random.Generator):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.rng = p, rng
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if not train or self.p == 0.0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        self.mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self.mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self.mask is None else dy * self.mask


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid}
ACTIVATION_FUNCTIONS = {"relu": relu, "leaky_relu": leaky_relu, "sigmoid": sigmoid}


# --- output layers and losses ----------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for any logits; (N, C) -> (N, C) probabilities."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class Softmax:
    """Row-wise softmax as a layer, for the MSE head; logits (N, C) -> probabilities (N, C)."""

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self.y = softmax(x)
        return self.y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # Jacobian-vector product of softmax: y * (dy - <dy, y>).
        return self.y * (dy - np.sum(dy * self.y, axis=1, keepdims=True))


class SoftmaxCrossEntropy:
    """Softmax fused with mean cross-entropy; logits (N, C), labels (N,) ints -> scalar loss."""

    def __init__(self) -> None:
        self.buffers: dict = {}

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        n, c = logits.shape
        # Worked on as (C, N): reducing a (128, 10) array over its short rows costs ~10 us a
        # call in NumPy, over the columns of its transposed copy ~1 us.
        z = reused(self.buffers, "z", (c, n), logits.dtype)
        np.copyto(z, logits.T)
        # Shifting by the column maximum keeps exp() from overflowing; the loss is unchanged.
        z -= z.max(axis=0)
        rows = self.buffers.get("rows")
        if rows is None or len(rows) != n:
            rows = self.buffers["rows"] = np.arange(n)
        # Flat index of each sample's true class in z (labels may be uint8: widen first).
        self.target = labels.astype(np.intp) * n + rows
        picked = z.ravel()[self.target]
        # After the shift the largest logit is exactly 0, so this counts the samples read
        # right without an argmax, which costs ~10 us a call on a (128, 10) array.
        self.n_correct = int(np.count_nonzero(picked == 0))
        e = np.exp(z, out=z)
        norm = e.sum(axis=0)
        e /= norm
        self.probs_t = e
        return float((np.log(norm).sum() - picked.sum()) / n)

    def backward(self) -> np.ndarray:
        # d(loss)/d(logits) = (softmax - onehot) / N: no division by a probability, so no overflow.
        grad = reused(self.buffers, "grad", self.probs_t.shape, self.probs_t.dtype)
        np.copyto(grad, self.probs_t)
        grad.ravel()[self.target] -= 1.0
        grad *= grad.dtype.type(1.0 / grad.shape[1])
        # A transposed view, so the caller sees (N, C); matrix products take it as it is.
        return grad.T


class MSE:
    """Mean squared error against one-hot targets (Nielsen's sigmoid network); (N, C) -> scalar."""

    def forward(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        target = np.zeros_like(outputs)
        target[np.arange(len(labels)), labels] = 1.0
        self.diff = outputs - target
        self.n_correct = int(np.count_nonzero(outputs.argmax(axis=1) == labels))
        # Half the squared error summed over classes, averaged over the batch (Nielsen's C).
        return float(0.5 * np.sum(self.diff**2) / len(labels))

    def backward(self) -> np.ndarray:
        return self.diff / len(self.diff)


LOSSES: dict[str, type[SoftmaxCrossEntropy | MSE]] = {
    "cross_entropy": SoftmaxCrossEntropy,
    "mse": MSE,
}
