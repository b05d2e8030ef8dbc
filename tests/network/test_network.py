"""The whole network: gradients, flat parameter buffer, export with folding, inference."""

import numpy as np
import pytest
from helpers.gradcheck import TOLERANCE, numeric_grad, rel_error

from network import MLP, Classifier


def small_network(**options) -> MLP:
    """A float64 6-5-4-3 network whose biases are nonzero, so no unit sits on ReLU's kink."""
    net = MLP((6, 5, 4, 3), np.random.default_rng(0), dtype=np.float64, **options)
    net.params[net.n_decayed :] += np.random.default_rng(9).normal(
        0, 0.3, net.params.size - net.n_decayed
    )
    return net


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"activation": "leaky_relu"},
        {"activation": "sigmoid", "loss": "mse"},
        {"batchnorm": True},
        {"input_mean": 0.13, "input_std": 0.31},
    ],
    ids=["relu", "leaky_relu", "sigmoid_mse", "batchnorm", "standardised_input"],
)
def test_whole_network_gradient_matches_finite_differences(options):
    rng = np.random.default_rng(1)
    net = small_network(**options)
    x, y = rng.random((8, 6)), rng.integers(0, 3, 8)
    net.loss_and_grad(x, y)
    analytic = net.grads.copy()
    numeric = numeric_grad(lambda: net.loss.forward(net.forward(x, train=True), y), net.params)
    assert rel_error(analytic, numeric) < TOLERANCE


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"activation": "sigmoid", "loss": "mse"},
        {"batchnorm": True},
        {"input_mean": 0.13, "input_std": 0.31},
    ],
    ids=["relu", "sigmoid_mse", "batchnorm", "standardised_input"],
)
def test_backward_gives_the_input_gradient_that_finite_differences_give(options):
    rng = np.random.default_rng(1)
    net = small_network(**options)
    x, y = rng.random((8, 6)), rng.integers(0, 3, 8)
    net.loss.forward(net.forward(x, train=True), y)
    analytic = net.backward(net.loss.backward(), input_grad=True).copy()
    numeric = numeric_grad(lambda: net.loss.forward(net.forward(x, train=True), y), x)
    assert rel_error(analytic, numeric) < TOLERANCE


def test_backward_leaves_out_the_input_gradient_unless_asked():
    rng = np.random.default_rng(1)
    net = small_network()
    x, y = rng.random((8, 6)), rng.integers(0, 3, 8)
    net.loss.forward(net.forward(x, train=True), y)
    assert net.backward(net.loss.backward()) is None


def float64_classifier(activation: str) -> Classifier:
    """A 6-5-4-3 Classifier in float64 with nonzero biases, for gradient checks."""
    net = small_network(activation=activation)
    params = net.export()
    params["weights"] = [w.astype(np.float64) for w in params["weights"]]
    params["biases"] = [b.astype(np.float64) for b in params["biases"]]
    return Classifier(params)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid"])
def test_classifier_backward_matches_finite_differences_at_input_and_hidden_layers(activation):
    rng = np.random.default_rng(2)
    clf = float64_classifier(activation)
    x, d_logits = rng.random((4, 6)), rng.standard_normal((4, 3))
    trace = clf.trace(x)
    d_x, d_h1, d_h2 = trace.backward(d_logits)
    numeric = numeric_grad(lambda: float(np.sum(d_logits * clf.trace(x).logits)), x)
    assert rel_error(d_x, numeric) < TOLERANCE
    # The logits as a function of the first hidden layer's activations.
    W, b = clf.weights[1:], clf.biases[1:]
    h1 = trace.outputs[0].copy()
    later = Classifier({**clf.params, "weights": W, "biases": b})
    numeric_h1 = numeric_grad(lambda: float(np.sum(d_logits * later.trace(h1).logits)), h1)
    assert rel_error(d_h1, numeric_h1) < TOLERANCE
    assert d_h2.shape == (4, 4)


def test_classifier_trace_agrees_with_inference_and_can_go_back_twice():
    clf = Classifier(MLP((784, 16, 8, 10), np.random.default_rng(3)).export())
    x = np.random.default_rng(4).random((3, 784), dtype=np.float32)
    trace = clf.trace(x)
    for got, want in zip(trace.outputs, clf.hidden_and_logits(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    d = np.eye(10, dtype=np.float32)[[1, 2, 3]]
    first = trace.backward(d)[0]
    trace.backward(-d)
    np.testing.assert_allclose(trace.backward(d)[0], first)
    assert first.dtype == np.float32


def test_parameters_live_in_one_flat_buffer_with_weights_first():
    net = MLP((784, 128, 64, 10), np.random.default_rng(0))
    n_weights = 784 * 128 + 128 * 64 + 64 * 10
    assert net.params.size == n_weights + 128 + 64 + 10
    assert net.n_decayed == n_weights
    assert net.params.dtype == np.float32
    first = net.layers[0]
    assert np.shares_memory(first.params["W"], net.params)
    assert np.shares_memory(first.grads["W"], net.grads)
    net.params[:] = 0
    assert not first.params["W"].any()


def test_export_folds_batchnorm_and_input_standardisation_without_changing_outputs():
    rng = np.random.default_rng(2)
    net = MLP((784, 32, 16, 10), rng, batchnorm=True, input_mean=0.13, input_std=0.31)
    x, y = rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64)
    for _ in range(20):  # move the running statistics and affine terms off their defaults
        net.loss_and_grad(x, y)
        net.params -= 0.05 * net.grads
    params = net.export()
    assert [w.shape for w in params["weights"]] == [(784, 32), (32, 16), (16, 10)]
    assert all(w.dtype == np.float32 for w in params["weights"] + params["biases"])
    np.testing.assert_allclose(
        Classifier(params).predict_proba(x), net.predict_proba(x), rtol=1e-4, atol=1e-5
    )


def test_classifier_gives_probabilities_for_one_image_or_a_batch():
    net = MLP((784, 16, 10), np.random.default_rng(3))
    clf = Classifier(net.export())
    x = np.random.default_rng(4).random((5, 784), dtype=np.float32)
    batch = clf.predict_proba(x)
    assert batch.shape == (5, 10)
    np.testing.assert_allclose(batch.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(x[0]), batch[0], rtol=1e-6)
    assert clf.sizes == [784, 16, 10]


def test_classifier_exposes_hidden_activations_and_logits():
    clf = Classifier(MLP((784, 128, 64, 10), np.random.default_rng(5)).export())
    hidden1, hidden2, logits = clf.hidden_and_logits(np.zeros((2, 784), np.float32))
    assert [a.shape for a in (hidden1, hidden2, logits)] == [(2, 128), (2, 64), (2, 10)]
    assert min(hidden1.min(), hidden2.min()) >= 0


def test_snapshot_and_restore_bring_back_parameters_and_batchnorm_statistics():
    net = small_network(batchnorm=True)
    rng = np.random.default_rng(6)
    x, y = rng.random((8, 6)), rng.integers(0, 3, 8)
    saved = net.snapshot()
    before = net.predict_proba(x)
    net.loss_and_grad(x, y)
    net.params -= 0.5 * net.grads
    assert not np.allclose(net.predict_proba(x), before)
    net.restore(saved)
    np.testing.assert_allclose(net.predict_proba(x), before)


def test_unknown_activation_or_loss_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="relu"):
        MLP((4, 2), np.random.default_rng(0), activation="tanhh")
    with pytest.raises(ValueError, match="cross_entropy"):
        MLP((4, 2), np.random.default_rng(0), loss="hinge")
