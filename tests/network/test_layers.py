"""Every layer's and loss's backward matches a float64 finite-difference gradient."""

import numpy as np
import pytest
from helpers.gradcheck import TOLERANCE, numeric_grad, rel_error

from layers import (
    MSE,
    BatchNorm,
    Dense,
    Dropout,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    he_init,
    softmax,
    xavier_init,
)


def check_layer(make_layer, x: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Gradient-check a layer's input and parameter gradients; returns their relative errors."""
    layer = make_layer()
    y = layer.forward(x.copy(), train=True)
    dy = rng.standard_normal(y.shape)

    def f():
        return float(np.sum(make_layer_with(layer).forward(x.copy(), train=True) * dy))

    def make_layer_with(template):
        fresh = make_layer()
        for k, v in getattr(template, "params", {}).items():
            fresh.params[k] = v
        return fresh

    dx = layer.backward(dy.copy())
    errors = {"x": rel_error(dx, numeric_grad(f, x))}
    for name, value in getattr(layer, "params", {}).items():
        errors[name] = rel_error(layer.grads[name], numeric_grad(f, value))
    return errors


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_dense_gradients_match_finite_differences(rng):
    W, b = rng.standard_normal((5, 4)), rng.standard_normal(4)
    errors = check_layer(lambda: Dense(W, b), rng.standard_normal((6, 5)), rng)
    assert max(errors.values()) < TOLERANCE, errors


def test_first_dense_layer_skips_the_unused_input_gradient(rng):
    layer = Dense(rng.standard_normal((3, 2)), np.zeros(2), need_input_grad=False)
    layer.forward(rng.standard_normal((4, 3)), train=True)
    assert layer.backward(np.ones((4, 2))) is None
    assert np.all(layer.grads["b"] == 4)


def test_dense_gives_its_input_gradient_when_one_call_asks_for_it(rng):
    W = rng.standard_normal((3, 2))
    layer = Dense(W, np.zeros(2), need_input_grad=False)
    layer.forward(rng.standard_normal((4, 3)), train=True)
    dy = rng.standard_normal((4, 2))
    np.testing.assert_allclose(layer.backward(dy, need_input_grad=True), dy @ W.T)
    assert layer.backward(dy) is None


def test_dense_without_parameter_gradients_keeps_none_and_still_backpropagates(rng):
    W = rng.standard_normal((3, 2))
    layer = Dense(W, np.zeros(2), need_param_grads=False)
    layer.forward(rng.standard_normal((4, 3)), train=True)
    dy = rng.standard_normal((4, 2))
    np.testing.assert_allclose(layer.backward(dy), dy @ W.T)
    assert layer.grads == {}


@pytest.mark.parametrize("activation", [ReLU, LeakyReLU, Sigmoid, Softmax])
def test_activation_gradients_match_finite_differences(activation, rng):
    # Keep inputs away from ReLU's kink at 0, where the derivative is undefined.
    x = rng.standard_normal((6, 5))
    x += np.sign(x) * 0.1
    errors = check_layer(activation, x, rng)
    assert errors["x"] < TOLERANCE, errors


def test_batchnorm_gradients_match_finite_differences(rng):
    def make():
        layer = BatchNorm(4, dtype=np.float64)
        layer.params["gamma"][...] = [0.5, 1.5, -1.0, 2.0]
        layer.params["beta"][...] = [0.1, -0.2, 0.3, 0.0]
        return layer

    errors = check_layer(make, rng.standard_normal((8, 4)) * 3 + 1, rng)
    assert max(errors.values()) < TOLERANCE, errors


def test_dropout_gradient_uses_the_same_mask_as_its_forward_pass(rng):
    errors = check_layer(lambda: Dropout(0.4, np.random.default_rng(7)), rng.random((6, 5)), rng)
    assert errors["x"] < TOLERANCE, errors


def test_dropout_is_identity_in_eval_mode_and_keeps_the_mean_in_training():
    x = np.ones((200, 500), np.float32)
    layer = Dropout(0.5, np.random.default_rng(0))
    assert layer.forward(x, train=False) is x
    assert abs(layer.forward(x, train=True).mean() - 1.0) < 0.01


@pytest.mark.parametrize("loss_class", [SoftmaxCrossEntropy, MSE])
def test_loss_gradients_match_finite_differences(loss_class, rng):
    outputs = rng.standard_normal((7, 10))
    labels = rng.integers(0, 10, 7)
    loss = loss_class()
    loss.forward(outputs, labels)
    analytic = loss.backward()
    numeric = numeric_grad(lambda: loss_class().forward(outputs, labels), outputs)
    assert rel_error(analytic, numeric) < TOLERANCE


def test_fused_softmax_cross_entropy_is_finite_for_extreme_logits():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1e4, 1e4, 5.0]], np.float32)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(logits, np.array([1, 1]))
    grad = loss.backward()
    assert np.isfinite(value)
    assert value == pytest.approx(1000.0, rel=1e-4)
    assert np.all(np.isfinite(grad))
    assert np.all(np.isfinite(softmax(logits.copy())))


def test_softmax_cross_entropy_gradient_is_probabilities_minus_onehot(rng):
    logits = rng.standard_normal((4, 10)).astype(np.float32)
    labels = np.array([3, 1, 4, 1])
    loss = SoftmaxCrossEntropy()
    loss.forward(logits, labels)
    expected = (softmax(logits.copy()) - np.eye(10, dtype=np.float32)[labels]) / 4
    np.testing.assert_allclose(loss.backward(), expected, atol=1e-7)


@pytest.mark.parametrize("loss_class", [SoftmaxCrossEntropy, MSE])
def test_each_loss_counts_the_samples_whose_largest_output_is_the_label(loss_class, rng):
    outputs = rng.standard_normal((300, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 300)
    labels[:100] = outputs[:100].argmax(axis=1)  # a third read right for certain
    loss = loss_class()
    loss.forward(outputs.copy(), labels)
    assert loss.n_correct == np.count_nonzero(outputs.argmax(axis=1) == labels) >= 100


def test_cross_entropy_accepts_uint8_labels_as_mnist_stores_them(rng):
    logits = rng.standard_normal((200, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 200)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(logits, labels.astype(np.uint8))
    grad = loss.backward().copy()
    assert value == pytest.approx(SoftmaxCrossEntropy().forward(logits, labels))
    expected = (softmax(logits.copy()) - np.eye(10, dtype=np.float32)[labels]) / 200
    np.testing.assert_allclose(grad, expected, atol=1e-7)


def test_training_outputs_reuse_their_arrays_and_eval_outputs_are_fresh(rng):
    dense = Dense(he_init(6, 3, rng), np.zeros(3, np.float32))
    x = rng.standard_normal((4, 6)).astype(np.float32)
    first = dense.forward(x, train=True)
    assert dense.forward(x, train=True) is first
    assert dense.forward(x[:2], train=True).shape == (2, 3)
    np.testing.assert_allclose(dense.forward(x, train=False), x @ dense.params["W"])
    assert dense.forward(x, train=False) is not dense.forward(x, train=False)


def test_layers_keep_float32_inputs_in_float32(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    dense = Dense(he_init(6, 3, rng), np.zeros(3, np.float32))
    y = dense.forward(x, train=True)
    assert y.dtype == np.float32
    for layer in (ReLU(), LeakyReLU(), Sigmoid(), Softmax(), BatchNorm(3)):
        out = layer.forward(y.copy(), train=True)
        assert out.dtype == np.float32, type(layer).__name__
        assert layer.backward(np.ones_like(out)).dtype == np.float32, type(layer).__name__


def test_he_and_xavier_init_have_their_documented_spread(rng):
    he = he_init(784, 1000, rng)
    xavier = xavier_init(784, 1000, rng)
    assert he.dtype == xavier.dtype == np.float32
    assert he.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert xavier.std() == pytest.approx(np.sqrt(2 / (784 + 1000)), rel=0.02)
