"""What the "Look inside" pages compute, checked without Streamlit."""

import json
from itertools import pairwise

import numpy as np
import pytest

from digits.app import insights
from digits.data.mnist import IMAGE_SIDE, N_CLASSES, N_PIXELS, Mnist
from model_loader import load_classifier, load_params
from network import Classifier


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier()


def small_network(rng: np.random.Generator, activation: str = "relu", output="softmax"):
    """A random 784-12-8-10 classifier, big enough to have units that are off."""
    sizes = [N_PIXELS, 12, 8, N_CLASSES]
    weights = [rng.standard_normal((a, b)).astype(np.float32) * 0.3 for a, b in pairwise(sizes)]
    biases = [rng.standard_normal(b).astype(np.float32) * 0.3 for b in sizes[1:]]
    params = {"weights": weights, "biases": biases, "activation": activation, "output": output}
    return Classifier(params)


def plain_forward_predictions(params: dict, images: np.ndarray) -> np.ndarray:
    """The model's answers for uint8 images, by a forward pass written out by hand."""
    W1, W2, W3 = params["weights"]
    b1, b2, b3 = params["biases"]
    x = images.reshape(len(images), -1).astype(np.float32) / 255
    h1 = np.maximum(x @ W1 + b1, 0)
    h2 = np.maximum(h1 @ W2 + b2, 0)
    return (h2 @ W3 + b3).argmax(axis=1)


# --- images ----------------------------------------------------------------------------------


def test_upscale_turns_each_pixel_into_a_square_block():
    image = np.array([[1, 2], [3, 4]], np.uint8)
    big = insights.upscale(image, 3)
    assert big.shape == (6, 6)
    assert (big[:3, :3] == 1).all()
    assert (big[3:, 3:] == 4).all()
    assert insights.upscale(np.zeros((2, 2, 3)), 2).shape == (4, 4, 3)
    with pytest.raises(ValueError, match="at least 1"):
        insights.upscale(image, 0)


def test_diverging_colours_are_blue_below_zero_white_at_zero_and_red_above():
    rgb = insights.diverging_rgb(np.array([-5.0, -1.0, 0.0, 1.0, 5.0]))
    assert rgb.dtype == np.uint8
    assert (rgb[0] == insights.NEGATIVE_RGB).all()
    assert (rgb[1] == insights.NEGATIVE_RGB).all()
    assert (rgb[2] == insights.ZERO_RGB).all()
    assert (rgb[3] == insights.POSITIVE_RGB).all()
    assert (rgb[4] == insights.POSITIVE_RGB).all()
    half = insights.diverging_rgb(np.array([0.5]))[0].astype(int)
    assert half[0] > half[2], "half way to red is still reddish"


def test_heat_colours_run_from_black_to_white():
    rgb = insights.heat_rgb(np.array([0.0, 1 / 3, 1.0]))
    assert rgb[0].tolist() == [0, 0, 0]
    assert rgb[1].tolist() == [255, 0, 0]
    assert rgb[2].tolist() == [255, 255, 255]


def test_symmetric_unit_scales_each_tile_by_its_own_largest_magnitude():
    tiles = np.array([[[2.0, -4.0]], [[0.5, 0.25]], [[0.0, 0.0]]])
    scaled = insights.symmetric_unit(tiles)
    assert scaled[0].tolist() == [[0.5, -1.0]]
    assert scaled[1].tolist() == [[1.0, 0.5]]
    assert scaled[2].tolist() == [[0.0, 0.0]], "an all-zero tile stays zero, without NaN"


def test_tile_grid_lays_tiles_out_row_by_row_with_gaps_of_fill():
    tiles = np.stack([np.full((2, 3, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = insights.tile_grid(tiles, columns=2, gap=1, fill=255)
    assert grid.shape == (2 * 2 + 1, 2 * 3 + 1, 3)
    assert (grid[:2, :3] == 10).all()
    assert (grid[:2, 4:] == 20).all()
    assert (grid[3:, :3] == 30).all()
    assert (grid[2] == 255).all(), "the gap between the rows"
    assert (grid[:, 3] == 255).all(), "the gap between the columns"
    assert (grid[3:, 4:] == 255).all(), "the missing fourth tile is fill"


def test_weight_grid_shows_every_first_layer_unit_red_where_its_weight_is_positive():
    n_units, columns, scale, gap = 6, 4, 2, 1
    W = np.zeros((N_PIXELS, n_units), np.float32)
    W[0, 5] = 1.0  # unit 5's top-left pixel
    W[N_PIXELS - 1, 5] = -0.5
    grid = insights.weight_grid(W, columns, scale, gap)
    side = IMAGE_SIDE * scale + gap
    assert grid.shape == (2 * side - gap, columns * side - gap, 3)
    top, left = 1 * side, 1 * side  # unit 5 sits in row 1, column 1
    assert (grid[top, left] == insights.POSITIVE_RGB).all()
    bottom_right = grid[top + IMAGE_SIDE * scale - 1, left + IMAGE_SIDE * scale - 1]
    assert bottom_right[2] > bottom_right[0], "a negative weight is blue"
    assert (grid[0, 0] == insights.ZERO_RGB).all(), "an all-zero unit is white"


def test_framed_paints_a_border_and_leaves_the_inside_and_the_original_alone():
    tile = np.zeros((6, 6, 3), np.uint8)
    out = insights.framed(tile, 1, (255, 0, 0))
    assert (out[0, :, 0] == 255).all()
    assert (out[:, -1, 0] == 255).all()
    assert (out[1:-1, 1:-1] == 0).all()
    assert (tile == 0).all()


# --- inside the network ----------------------------------------------------------------------


@pytest.mark.parametrize(("n", "columns"), [(128, 16), (64, 8), (10, 4), (1, 1)])
def test_units_are_laid_out_near_square_with_a_power_of_two_columns(n, columns):
    assert insights.grid_columns(n) == columns


def test_grid_frame_places_units_row_by_row():
    frame = insights.grid_frame(np.arange(128, dtype=np.float32))
    assert len(frame) == 128
    assert frame["row"].max() == 7
    assert frame["column"].max() == 15
    assert frame.loc[17, ["row", "column", "value"]].tolist() == [1, 1, 17.0]


def test_first_layer_contributions_and_the_bias_path_add_up_to_the_logit(mnist, classifier):
    x = mnist.test_images[0].reshape(-1) / np.float32(255)
    logits = classifier.hidden_and_logits(x[None])[-1][0]
    for target in (int(logits.argmax()), 3):
        attribution = insights.first_layer_attribution(classifier, x, target)
        assert attribution.exact
        assert attribution.score == pytest.approx(float(logits[target]), rel=1e-5)
        total = attribution.contributions.sum() + attribution.bias_path
        assert total == pytest.approx(float(logits[target]), rel=1e-5)


def test_the_bias_path_is_what_the_biases_send_through_the_units_that_are_on(mnist, classifier):
    x = mnist.test_images[1].reshape(-1) / np.float32(255)
    h1, h2, logits = (a[0] for a in classifier.hidden_and_logits(x[None]))
    W2, W3 = classifier.weights[1:]
    b2, b3 = classifier.biases[1:]
    on = h2 > 0
    target = int(logits.argmax())
    attribution = insights.first_layer_attribution(classifier, x, target)
    expected = h1 * ((W2 * on) @ W3[:, target])
    np.testing.assert_allclose(attribution.contributions, expected, rtol=1e-4, atol=1e-5)
    assert attribution.bias_path == pytest.approx(
        float((b2 * on) @ W3[:, target] + b3[target]), abs=1e-3
    )


def test_contributions_are_activation_times_a_finite_difference_gradient():
    """For a sigmoid network, where they are not exact, they still follow the gradient."""
    net = small_network(np.random.default_rng(1), activation="sigmoid")
    x = np.random.default_rng(2).random(N_PIXELS).astype(np.float32)
    target = 4
    attribution = insights.first_layer_attribution(net, x, target)
    assert not attribution.exact
    W = [w.astype(np.float64) for w in net.weights]
    b = [v.astype(np.float64) for v in net.biases]
    h1 = 1 / (1 + np.exp(-(x @ W[0] + b[0])))

    def logit(h):
        h2 = 1 / (1 + np.exp(-(h @ W[1] + b[1])))
        return (h2 @ W[2] + b[2])[target]

    eps = 1e-6
    grad = np.array(
        [(logit(h1 + eps * e) - logit(h1 - eps * e)) / (2 * eps) for e in np.eye(len(h1))]
    )
    np.testing.assert_allclose(attribution.contributions, h1 * grad, rtol=1e-3, atol=1e-5)


def test_attribution_leaves_the_cached_models_weights_untouched(mnist, classifier):
    before = [w.copy() for w in classifier.weights]
    x = mnist.test_images[2].reshape(-1) / np.float32(255)
    insights.first_layer_attribution(classifier, x, 1)
    for old, new in zip(before, classifier.weights, strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_model_without_hidden_layers_has_no_units_to_attribute_to():
    net = Classifier(
        {
            "weights": [np.zeros((N_PIXELS, N_CLASSES), np.float32)],
            "biases": [np.zeros(N_CLASSES, np.float32)],
        }
    )
    with pytest.raises(ValueError, match="no hidden layer"):
        insights.first_layer_attribution(net, np.zeros(N_PIXELS, np.float32), 0)


def test_top_units_are_the_largest_positive_contributions_in_order():
    attribution = insights.Attribution(0, np.array([0.5, -2.0, 3.0, 0.0, 1.0]), 2.5, True)
    assert attribution.top(2).tolist() == [2, 4]
    assert attribution.top(10).tolist() == [2, 4, 0], "negatives and zeros are not reasons for"


def test_output_steps_give_the_classifiers_probabilities(mnist, classifier):
    x = mnist.test_images[3].reshape(-1) / np.float32(255)
    logits = classifier.hidden_and_logits(x[None])[-1][0]
    steps = insights.output_steps(logits)
    np.testing.assert_allclose(
        steps["probability"], classifier.predict_proba(x), rtol=1e-5, atol=1e-7
    )
    assert steps["positive"].max() == 1.0, "exp(logit - max) is 1 for the top digit"
    assert steps["digit"].tolist() == [str(d) for d in range(N_CLASSES)]


def test_output_steps_do_not_overflow_on_huge_logits():
    steps = insights.output_steps(np.array([1000.0, 999.0] + [0.0] * 8))
    assert np.isfinite(steps["probability"]).all()
    assert steps["probability"].sum() == pytest.approx(1.0)
    assert steps["probability"][0] == pytest.approx(1 / (1 + np.exp(-1)))


def test_output_steps_of_a_sigmoid_model_give_its_probabilities_too():
    net = small_network(np.random.default_rng(3), output="sigmoid")
    x = np.random.default_rng(4).random(N_PIXELS).astype(np.float32)
    logits = net.hidden_and_logits(x[None])[-1][0]
    steps = insights.output_steps(logits, "sigmoid")
    np.testing.assert_allclose(steps["probability"], net.predict_proba(x), rtol=1e-5)


# --- weights ---------------------------------------------------------------------------------


def test_weight_histograms_count_every_weight_of_every_layer(classifier):
    rows = insights.weight_histograms(classifier.weights, bins=20)
    assert list(dict.fromkeys(rows["layer"])) == ["784 → 128", "128 → 64", "64 → 10"]
    for (layer, group), W in zip(
        rows.groupby("layer", sort=False), classifier.weights, strict=True
    ):
        assert group["count"].sum() == W.size, layer
        assert len(group) == 20


# --- evaluation ------------------------------------------------------------------------------


def test_the_evaluation_matches_a_plain_forward_pass_on_the_whole_test_set(mnist, classifier):
    params = load_params()
    assert params.get("activation", "relu") == "relu", "the plain pass below assumes ReLU"
    result = insights.evaluate(classifier, mnist.test_images, mnist.test_labels)
    expected = plain_forward_predictions(params, mnist.test_images)
    np.testing.assert_array_equal(result.predicted, expected)
    assert result.accuracy == pytest.approx(np.mean(expected == mnist.test_labels), abs=1e-12)
    assert result.accuracy > 0.99
    assert result.confusion.sum() == len(mnist.test_labels)
    assert result.mistakes == int(np.sum(expected != mnist.test_labels))
    assert result.proba.shape == (len(mnist.test_labels), N_CLASSES)


CONFUSION = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])


def test_class_report_gives_precision_and_recall_per_digit():
    report = insights.class_report(CONFUSION)
    assert report["images"].tolist() == [6, 5, 0]
    assert report["read right"].tolist() == [5, 3, 0]
    np.testing.assert_allclose(report["precision"][:2], [5 / 7, 3 / 4])
    np.testing.assert_allclose(report["recall"][:2], [5 / 6, 3 / 5])
    assert np.isnan(report["precision"][2])
    assert np.isnan(report["recall"][2])


def test_confusion_frame_has_a_row_per_cell_and_no_mistakes_on_the_diagonal():
    frame = insights.confusion_frame(CONFUSION)
    assert len(frame) == 9
    row = frame[(frame["true"] == 1) & (frame["predicted"] == 0)].iloc[0]
    assert (row["count"], row["mistakes"], row["correct"]) == (2, 2, False)
    assert frame.loc[frame["correct"], "mistakes"].eq(0).all()


def test_the_worst_confusion_is_the_largest_cell_off_the_diagonal():
    assert insights.worst_confusion(CONFUSION) == (1, 0)


def fake_evaluation() -> insights.Evaluation:
    labels = np.array([0, 1, 1, 2, 1])
    proba = np.array(
        [[0.9, 0.1, 0], [0.6, 0.4, 0], [0.2, 0.8, 0], [0, 0.3, 0.7], [0.0, 0.05, 0.95]]
    )
    predicted = proba.argmax(axis=1)
    return insights.Evaluation(proba, labels, predicted, CONFUSION)


def test_misclassified_lists_the_wrong_ones_most_confident_first_and_filters_by_pair():
    result = fake_evaluation()
    assert insights.misclassified(result).tolist() == [4, 1]
    assert insights.misclassified(result, true=1, predicted=0).tolist() == [1]
    assert insights.misclassified(result, predicted=2).tolist() == [4]
    assert insights.misclassified(result, true=2).tolist() == []


def test_top_k_text_names_the_likeliest_digits_without_false_certainty():
    proba = np.array([0.001, 0.62, 0.3, 0.079] + [0.0] * 6)
    assert insights.top_k_text(proba, 3) == "1: 62% · 2: 30% · 3: 8%"
    assert insights.top_k_text(np.array([0.9996, 0.0004] + [0.0] * 8), 2) == "0: >99% · 1: <1%"
    assert insights.percent_text(0.99996, decimals=1) == ">99.9%"
    assert insights.percent_text(0.0004, decimals=1) == "<0.1%"
    assert insights.percent_text(0.0) == "0%"


# --- dataset ---------------------------------------------------------------------------------


def tiny_mnist() -> Mnist:
    """Four training images per digit, digit d with a 2x2 patch of d * 20; two test labels each."""
    labels = np.repeat(np.arange(N_CLASSES), 4).astype(np.uint8)
    images = np.zeros((len(labels), IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    images[:, :2, :2] = (labels * 20)[:, None, None]
    test_labels = np.repeat(np.arange(N_CLASSES), 2).astype(np.uint8)
    return Mnist(images, labels, images[: len(test_labels)], test_labels)


def test_dataset_stats_sample_each_class_and_count_labels_and_pixels():
    data = tiny_mnist()
    stats = insights.dataset_stats(data, per_class=3, rng=np.random.default_rng(0))
    assert stats.samples.shape == (N_CLASSES, 3, IMAGE_SIDE, IMAGE_SIDE)
    for digit in range(N_CLASSES):
        assert (stats.samples[digit, :, 0, 0] == digit * 20).all(), "samples of the right digit"
    assert stats.train_counts.tolist() == [4] * N_CLASSES
    assert stats.test_counts.tolist() == [2] * N_CLASSES
    assert stats.mean_images[3, 0, 0] == pytest.approx(60 / 255)
    assert stats.pixel_counts.sum() == data.train_images.size
    assert stats.pixel_counts[60] == 4 * 4
    # Digit 0's four pixels are 0 as well: all but 9 digits x 4 images x 4 pixels are background.
    assert stats.zero_share == pytest.approx(1 - 9 * 16 / data.train_images.size)


def test_label_shares_sum_to_one_in_each_split():
    frame = insights.label_share_frame(np.array([1, 3]), np.array([2, 2]))
    assert frame.groupby("split")["share"].sum().tolist() == [1.0, 1.0]
    assert frame[frame["split"] == "train"]["share"].tolist() == [0.25, 0.75]


def test_intensity_bins_cover_1_to_255_and_leave_out_the_zeros():
    counts = np.arange(256)
    frame = insights.intensity_frame(counts, bin_width=16)
    assert frame["start"].iloc[0] == 1
    assert frame["end"].iloc[-1] == 255
    assert frame["count"].sum() == counts[1:].sum()
    assert frame["count"].iloc[0] == sum(range(1, 17))
    assert frame["share"].sum() == pytest.approx(1.0)


# --- training history ------------------------------------------------------------------------

EPOCH = {"epoch": 1, "loss": 0.5, "train_accuracy": 0.8, "val_accuracy": 0.9, "val_loss": 0.3}


def test_a_missing_history_file_is_none(tmp_path):
    assert insights.read_history(tmp_path / "model_history.json") is None


def test_a_history_file_gives_its_config_and_one_row_per_epoch(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"config": {"lr": 0.1}, "epochs": [EPOCH, {**EPOCH, "epoch": 2}]}))
    history = insights.read_history(path)
    assert history.config == {"lr": 0.1}
    assert history.epochs["epoch"].tolist() == [1, 2]


def test_the_shipped_models_history_parses():
    from digits.training.checkpoint import history_path
    from model_loader import MODEL_PATH

    history = insights.read_history(history_path(MODEL_PATH))
    assert history is not None
    assert len(history.epochs) > 0
    assert history.epochs["val_accuracy"].max() > 0.98


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "no list of epochs"),
        (json.dumps({"epochs": [{"epoch": 1}]}), "lacks loss"),
    ],
)
def test_a_broken_history_file_says_so_in_one_sentence_with_the_fix(tmp_path, content, complaint):
    path = tmp_path / "h.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=complaint) as info:
        insights.read_history(path)
    assert "python train.py" in str(info.value)


def test_curves_turn_columns_into_named_lines():
    import pandas as pd

    epochs = pd.DataFrame([EPOCH, {**EPOCH, "epoch": 2, "loss": 0.4}])
    long = insights.curves(epochs, {"loss": "training", "val_loss": "validation"})
    assert len(long) == 4
    assert long[long["curve"] == "training"]["value"].tolist() == [0.5, 0.4]


def test_file_version_changes_when_the_file_does(tmp_path):
    path = tmp_path / "model.pkl"
    assert insights.file_version(path) == (0, 0)
    path.write_bytes(b"one")
    first = insights.file_version(path)
    path.write_bytes(b"two, longer")
    assert insights.file_version(path) != first
    assert insights.file_version(path)[1] == len(b"two, longer")


def test_a_kind_of_mistake_reads_as_a_phrase_with_none_meaning_any_digit():
    assert insights.mistake_kind(4, 9) == "4s read as 9"
    assert insights.mistake_kind(4, None) == "4s read as another digit"
    assert insights.mistake_kind(None, 9) == "other digits read as 9"
    assert insights.mistake_kind(None, None) == "every digit read as another"


def test_log_axis_ticks_step_one_two_five_or_by_tens_and_span_the_values_through_their_decades():
    assert insights.log_ticks([0.03, 0.4]) == [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    assert insights.log_ticks([1, 35]) == [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    assert insights.log_ticks([1, 35_000]) == [1.0, 10.0, 100.0, 1000.0, 10_000.0, 100_000.0]
    assert insights.log_ticks([0, -1, float("nan")]) == [], "nothing to place on a log axis"
