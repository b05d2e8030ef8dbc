"""The multilayer perceptron: layers chained, their parameters in one flat buffer, and export.

Training keeps every parameter (and every gradient) as a view into one contiguous float32
array, so an optimizer step is a handful of vectorised operations on one array instead of a
Python loop over layers, and a snapshot for early stopping is one copy. Weights come first in
that array so weight decay can skip biases and batch-norm parameters with a slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from layers import (
    ACTIVATION_FUNCTIONS,
    ACTIVATIONS,
    LOSSES,
    BatchNorm,
    Dense,
    Dropout,
    Sigmoid,
    he_init,
    sigmoid,
    softmax,
    xavier_init,
)

# The output layers a model file may name: softmax over the ten digits, or a sigmoid per digit.
OUTPUTS = ("softmax", "sigmoid")


def layer_sizes(weights: list[np.ndarray]) -> list[int]:
    """Units per layer, input first, read from weight matrices W_i of shape (n_in, n_out)."""
    return [int(weights[0].shape[0])] + [int(w.shape[1]) for w in weights]


class MLP:
    """Dense layers with activations between them; x: (N, sizes[0]) in [0, 1] -> (N, sizes[-1])."""

    def __init__(
        self,
        sizes: Sequence[int],
        rng: np.random.Generator,
        activation: str = "relu",
        loss: str = "cross_entropy",
        batchnorm: bool = False,
        dropout: float = 0.0,
        input_mean: float = 0.0,
        input_std: float = 1.0,
        dtype=np.float32,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {list(ACTIVATIONS)}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {list(LOSSES)}")
        self.sizes = [int(s) for s in sizes]
        self.activation, self.loss_name = activation, loss
        self.input_mean, self.input_std = input_mean, input_std
        self.dtype = np.dtype(dtype)
        init = xavier_init if activation == "sigmoid" else he_init

        self.layers: list = []
        n_layers = len(self.sizes) - 1
        for i, (fan_in, fan_out) in enumerate(pairwise(self.sizes)):
            W = init(fan_in, fan_out, rng, dtype)
            self.layers.append(Dense(W, np.zeros(fan_out, dtype), need_input_grad=i > 0))
            if i == n_layers - 1:
                break
            if batchnorm:
                self.layers.append(BatchNorm(fan_out, dtype=dtype))
            self.layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                self.layers.append(Dropout(dropout, rng))
        # With MSE, a sigmoid squashes the output so targets of 0 and 1 are reachable; cross-entropy
        # takes raw logits and fuses the softmax into the loss.
        self.output: Sigmoid | None = {"cross_entropy": None, "mse": Sigmoid()}[loss]
        self.loss = LOSSES[loss]()
        self._flatten()

    def _flatten(self) -> None:
        """Move every parameter and gradient into one flat buffer, weights first."""
        named = [(layer, key) for layer in self.layers for key in getattr(layer, "params", {})]
        named.sort(key=lambda lk: lk[1] != "W")  # stable: weights first, in layer order
        total = sum(layer.params[key].size for layer, key in named)
        self.params = np.empty(total, self.dtype)
        self.grads = np.zeros(total, self.dtype)
        self.n_decayed = sum(layer.params[key].size for layer, key in named if key == "W")
        offset = 0
        for layer, key in named:
            shape, size = layer.params[key].shape, layer.params[key].size
            view = self.params[offset : offset + size]
            view[...] = layer.params[key].ravel()
            layer.params[key] = view.reshape(shape)
            layer.grads[key] = self.grads[offset : offset + size].reshape(shape)
            offset += size

    def snapshot(self) -> list[np.ndarray]:
        """Copies of everything eval mode depends on: parameters and batch-norm statistics."""
        stats = [
            a
            for L in self.layers
            if isinstance(L, BatchNorm)
            for a in (L.running_mean, L.running_var)
        ]
        return [self.params.copy()] + [a.copy() for a in stats]

    def restore(self, snapshot: list[np.ndarray]) -> None:
        """Put back the state saved by `snapshot`."""
        self.params[...] = snapshot[0]
        norms = [L for L in self.layers if isinstance(L, BatchNorm)]
        for L, mean, var in zip(norms, snapshot[1::2], snapshot[2::2], strict=True):
            L.running_mean, L.running_var = mean, var

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Network output for a batch; x: (N, D) in [0, 1] -> (N, C) logits or sigmoid outputs."""
        h = x
        if (self.input_mean, self.input_std) != (0.0, 1.0):
            h = (x - self.dtype.type(self.input_mean)) * self.dtype.type(1.0 / self.input_std)
        for layer in self.layers:
            h = layer.forward(h, train)
        return h if self.output is None else self.output.forward(h, train)

    def loss_and_grad(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """Mean loss on a batch and how many of its samples it reads right (before this step).

        Every gradient is left in self.grads.
        """
        out = self.forward(x, train=True)
        loss = self.loss.forward(out, labels)
        self.backward(self.loss.backward())
        return loss, self.loss.n_correct

    def backward(self, d_out: np.ndarray, input_grad: bool = False) -> np.ndarray | None:
        """Backpropagate d(loss)/d(output) (N, C) after forward(train=True).

        Parameter gradients land in self.grads; returns d(loss)/dx (N, D) if input_grad, else None.
        """
        d = d_out if self.output is None else self.output.backward(d_out)
        first, *rest = self.layers
        for layer in reversed(rest):
            d = layer.backward(d)
        dx = first.backward(d, need_input_grad=input_grad)
        if dx is not None and self.input_std != 1.0:
            dx = dx * self.dtype.type(1.0 / self.input_std)  # forward divides x by input_std
        return dx

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities in eval mode; x: (N, D) -> (N, C) rows summing to 1."""
        return output_to_proba(self.forward(x), self.loss_name)

    def export(self) -> dict:
        """Plain weights and biases of the eval-mode network, with batch norm and input folded."""
        weights, biases = [], []
        for layer in self.layers:
            if isinstance(layer, Dense):
                weights.append(layer.params["W"].astype(np.float64))
                biases.append(layer.params["b"].astype(np.float64))
            elif isinstance(layer, BatchNorm):
                weights[-1], biases[-1] = layer.fold_into(weights[-1], biases[-1])
        # (x - m) / s @ W + b  ==  x @ (W / s) + (b - (m / s) * column sums of W)
        biases[0] = biases[0] - (self.input_mean / self.input_std) * weights[0].sum(axis=0)
        weights[0] = weights[0] / self.input_std
        return {
            "weights": [w.astype(np.float32) for w in weights],
            "biases": [b.astype(np.float32) for b in biases],
            "sizes": list(self.sizes),
            "activation": self.activation,
            "output": "softmax" if self.output is None else "sigmoid",
        }


def output_to_proba(out: np.ndarray, loss_name: str) -> np.ndarray:
    """Turn network outputs into probabilities; (N, C) -> (N, C) rows summing to 1."""
    if loss_name == "cross_entropy":
        return softmax(out.copy())
    # Sigmoid outputs are independent scores; normalise them so they read as a distribution.
    return out / np.maximum(out.sum(axis=1, keepdims=True), np.finfo(out.dtype).tiny)


class Classifier:
    """Inference-only network rebuilt from exported params; x: (N, 784) in [0, 1] -> (N, 10).

    Stateless once built, so one instance can serve every session of the app at once.
    """

    def __init__(self, params: dict):
        self.params = params
        self.weights = params["weights"]
        self.biases = params["biases"]
        self.activation = ACTIVATION_FUNCTIONS[params.get("activation", "relu")]
        self.output = params.get("output", "softmax")

    @property
    def sizes(self) -> list[int]:
        return layer_sizes(self.weights)

    def hidden_and_logits(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations after each hidden layer, then the output layer's pre-activation."""
        outs = []
        h = np.asarray(x, dtype=np.float32)
        for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ W + b
            if i < len(self.weights) - 1:
                h = self.activation(h)
            outs.append(h)
        return outs

    def trace(self, x: np.ndarray) -> Trace:
        """A forward pass kept for its backward; x: (N, 784) in the weights' dtype (float32 or
        float64 for gradient checks)."""
        layers: list = []
        name = self.params.get("activation", "relu")
        for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            layers.append(Dense(W, b, need_param_grads=False))
            if i < len(self.weights) - 1:
                layers.append(ACTIVATIONS[name]())
        h = np.asarray(x, dtype=self.weights[0].dtype)
        outputs = []
        for layer in layers:
            h = layer.forward(h, train=True)
            if not isinstance(layer, Dense) or layer is layers[-1]:
                outputs.append(h)
        return Trace(layers, outputs)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities; x: (N, 784) or (784,) -> (N, 10) or (10,)."""
        x = np.asarray(x, dtype=np.float32)
        single = x.ndim == 1
        logits = self.hidden_and_logits(x[None] if single else x)[-1]
        if self.output == "softmax":
            proba = softmax(logits)
        else:
            proba = output_to_proba(sigmoid(logits), "mse")
        return proba[0] if single else proba


class Trace:
    """One forward pass of a Classifier with its layers, which hold what backward needs.

    `outputs` are as Classifier.hidden_and_logits gives them: each hidden layer's activations
    (N, n_k), then the logits (N, 10). Made per call, so the Classifier stays stateless.
    """

    def __init__(self, layers: list, outputs: list[np.ndarray]):
        self.layers, self.outputs = layers, outputs

    @property
    def logits(self) -> np.ndarray:
        return self.outputs[-1]

    def backward(self, d_logits: np.ndarray) -> list[np.ndarray]:
        """Gradients of sum(d_logits * logits), d_logits (N, 10), with respect to the input and
        each hidden layer's activations: [(N, 784), (N, n_1), ...], each a new array."""
        grads = []
        # A copy: activation backward steps work in place on their dy.
        d = np.array(d_logits, dtype=self.logits.dtype)
        for layer in reversed(self.layers):
            d = layer.backward(d)
            if isinstance(layer, Dense):
                grads.append(d.copy())  # the next step overwrites it in place
        return grads[::-1]
