"""Explanations: integrated gradients, edits towards a digit, moved drawings, unit favourites."""

import numpy as np
import pytest
from helpers.gradcheck import TOLERANCE, numeric_grad, rel_error

from digits.app import explain
from digits.data.mnist import IMAGE_SIDE, to_input
from digits.data.preprocess import preprocess
from model_loader import MODEL_PATH, load_classifier
from network import MLP, Classifier

# The step budget must turn at least this share of MNIST test digits into their target.
FLIP_RATE = 0.9
FLIP_SAMPLE, FLIP_SEED = 200, 13


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier(MODEL_PATH)


def float64_classifier(sizes, seed: int) -> Classifier:
    """A float64 Classifier with nonzero biases, for exact checks."""
    params = MLP(sizes, np.random.default_rng(seed), dtype=np.float64).export()
    rng = np.random.default_rng(seed + 1)
    params["weights"] = [w.astype(np.float64) for w in params["weights"]]
    params["biases"] = [rng.normal(0, 0.3, b.shape) for b in params["biases"]]
    return Classifier(params)


def test_saliency_scores_add_up_to_the_logit_change_from_a_blank_input(mnist, classifier):
    for image in mnist.test_images[:50]:
        x = to_input(image[None])[0]
        digit = int(classifier.predict_proba(x).argmax())
        found = explain.saliency(classifier, x, digit)
        assert found.scores.shape == (IMAGE_SIDE, IMAGE_SIDE)
        assert found.scores.sum() == pytest.approx(found.change, rel=0.05)
        assert found.towards + found.against == pytest.approx(found.scores.sum(), rel=1e-5)


def test_blank_pixels_get_no_share(mnist, classifier):
    x = to_input(mnist.test_images[:1])[0]
    found = explain.saliency(classifier, x, 3)
    assert not found.scores.reshape(-1)[x == 0].any()


def test_why_n_and_not_m_is_the_difference_of_the_two_maps(mnist, classifier):
    x = to_input(mnist.test_images[1:2])[0]
    both = explain.saliency(classifier, x, 2, 7)
    two, seven = explain.saliency(classifier, x, 2), explain.saliency(classifier, x, 7)
    np.testing.assert_allclose(both.scores, two.scores - seven.scores, atol=1e-5)
    assert both.change == pytest.approx(two.change - seven.change, rel=1e-5)


def test_without_hidden_layers_both_saliencies_are_weight_times_ink():
    clf = float64_classifier((784, 10), 3)
    x = np.random.default_rng(4).random(784)
    weights = explain.one_hot_difference(10, 4, 6)
    expected = x * (clf.weights[0] @ weights)
    np.testing.assert_allclose(explain.integrated_gradients(clf, x, weights), expected)
    np.testing.assert_allclose(explain.gradient_times_input(clf, x, weights), expected)


def test_gradient_times_input_is_ink_times_the_finite_difference_gradient():
    clf = float64_classifier((12, 6, 5, 4), 5)
    x = np.random.default_rng(6).random(12)
    weights = explain.one_hot_difference(4, 1, 2)
    numeric = numeric_grad(lambda: float(clf.trace(x[None]).logits[0] @ weights), x)
    assert rel_error(explain.gradient_times_input(clf, x, weights), x * numeric) < TOLERANCE


def test_overlay_rows_name_each_side_and_scale_strength_to_the_largest():
    values = np.zeros((IMAGE_SIDE, IMAGE_SIDE))
    values[0, 1], values[2, 3] = 2.0, -1.0
    frame = explain.overlay_frame(np.ones((IMAGE_SIDE, IMAGE_SIDE)), values, ("for", "against"))
    assert len(frame) == IMAGE_SIDE * IMAGE_SIDE
    assert frame.loc[1, ["kind", "strength"]].tolist() == ["for", 1.0]
    assert frame.loc[2 * IMAGE_SIDE + 3, ["kind", "strength"]].tolist() == ["against", 0.5]
    assert (frame["kind"] == "").sum() == IMAGE_SIDE * IMAGE_SIDE - 2


def test_every_edit_step_stays_in_range_and_within_a_pen_dab(mnist, classifier):
    x = to_input(mnist.test_images[:20])
    targets = (mnist.test_labels[:20] + 3) % 10
    frames = explain.edit_steps(classifier, x, targets, steps=15)
    assert frames.shape == (16, 20, 784)
    assert frames.min() >= 0
    assert frames.max() <= 1
    steps = np.diff(frames, axis=0)
    assert np.abs(steps).sum(axis=2).max() <= explain.STEP_INK + 1e-5
    assert np.abs(steps).max() <= explain.STEP_INK / explain.STEP_PIXELS + 1e-6
    assert (np.count_nonzero(steps, axis=2) <= explain.STEP_PIXELS).all()


def test_gradient_steps_turn_most_test_digits_into_their_target(mnist, classifier):
    rng = np.random.default_rng(FLIP_SEED)
    index = rng.choice(len(mnist.test_images), FLIP_SAMPLE, replace=False)
    x, labels = to_input(mnist.test_images[index]), mnist.test_labels[index]
    targets = (labels + rng.integers(1, 10, FLIP_SAMPLE)) % 10  # any digit but the true one
    last = explain.edit_steps(classifier, x, targets)[-1]
    reached = classifier.predict_proba(last).argmax(axis=1) == targets
    assert reached.mean() >= FLIP_RATE, f"{reached.mean():.1%} reached their target"


def test_an_edit_ends_at_the_first_step_read_as_the_target(mnist, classifier):
    x = to_input(mnist.test_images[:1])[0]
    target = (int(mnist.test_labels[0]) + 1) % 10
    edit = explain.edit_towards(classifier, x, target)
    assert edit.flip_step == edit.last_step == len(edit.images) - 1
    assert (edit.predicted[:-1] != target).all()
    np.testing.assert_array_equal(edit.images[0], x)
    change = edit.images[-1] - x
    assert edit.added(edit.last_step) == pytest.approx(change[change > 0].sum())
    assert edit.removed(edit.last_step) == pytest.approx(-change[change < 0].sum())
    frame = explain.step_frame(edit)
    assert frame["probability"].iloc[-1] == pytest.approx(edit.proba[-1, target])
    assert frame["added"].iloc[-1] == pytest.approx(edit.added(edit.last_step))


def test_a_zero_move_leaves_the_image_as_it_was(mnist):
    image = mnist.test_images[0]
    moved = explain.moved_images(image / 255, [explain.Move("none", "as drawn")])
    np.testing.assert_array_equal(moved[0], image)


def centre_of_mass(image: np.ndarray) -> np.ndarray:
    rows, columns = np.indices(image.shape)
    return np.array([(columns * image).sum(), (rows * image).sum()]) / image.sum()


def test_moves_shift_scale_and_change_the_ink_as_named():
    image = np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    image[8:20, 10:14] = 255  # a bar well inside the field, so no move pushes ink out
    moves = [
        explain.Move("shifted", "right", shift=(3, 0)),
        explain.Move("shifted", "down", shift=(0, 2)),
        explain.Move("scaled", "smaller", scale=0.7),
        explain.Move("stroke", "thinner", strokes=-1),
        explain.Move("stroke", "thicker", strokes=1),
        explain.Move("stroke", "much thicker", strokes=2),
    ]
    right, down, small, thin, thick, thicker = explain.moved_images(image / 255, moves).astype(
        float
    )
    np.testing.assert_allclose(centre_of_mass(right) - centre_of_mass(image), [3, 0], atol=0.05)
    np.testing.assert_allclose(centre_of_mass(down) - centre_of_mass(image), [0, 2], atol=0.05)
    assert small.sum() == pytest.approx(0.49 * image.sum(), rel=0.05)  # area times 0.7 squared
    assert thin.sum() < image.sum() < thick.sum() < thicker.sum()


def test_the_preprocessing_undoes_a_whole_pixel_shift(mnist, classifier):
    image = mnist.test_images[3]
    shifted = explain.Move("shifted", "4 px left", shift=(-4, 0))
    (reading,) = explain.read_moves(classifier, image / 255, [shifted])
    np.testing.assert_array_equal(reading.raw[:, :-4], image[:, 4:])
    np.testing.assert_allclose(reading.preprocessed.image, preprocess(image).image, atol=1e-6)
    np.testing.assert_allclose(
        reading.raw_proba, classifier.predict_proba(to_input(reading.raw[None]))[0]
    )


def test_every_move_in_the_grid_is_read_with_and_without_preprocessing(mnist, classifier):
    readings = explain.read_moves(classifier, mnist.test_images[0] / 255)
    assert [r.move for r in readings] == list(explain.MOVES)
    assert {r.move.kind for r in readings} == {"shifted", "scaled", "rotated", "stroke"}
    assert all(r.preprocessed_proba is not None for r in readings)
    assert max(abs(m.shift[0]) for m in explain.MOVES) == 4
    assert {m.rotation for m in explain.MOVES} >= {-20, 20}
    assert {m.scale for m in explain.MOVES} >= {0.7, 1.3}


def test_top_exciting_images_are_those_with_the_highest_activations_in_any_chunk(mnist, classifier):
    images = mnist.train_images[:1000]
    index, activation = explain.top_exciting(classifier, images, k=5, chunk=300)
    pre = to_input(images) @ classifier.weights[0] + classifier.biases[0]
    expected = np.argsort(-pre, axis=0, kind="stable")[:5].T
    # BLAS may sum a chunk's products in another order than the whole batch's: float32 rounding.
    top = np.take_along_axis(pre.T, expected, 1)
    np.testing.assert_allclose(activation, np.maximum(top, 0), rtol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(pre.T, index, 1), top, rtol=1e-5)
    assert index.shape == (classifier.weights[0].shape[1], 5)
