"""The "Look inside" pages, each run headless through Streamlit's AppTest.

AppTest runs a page file as its own script, with pages/ first on sys.path, so no page file
may share a name with a top-level module (which is why the evaluation page is
pages/model_evaluation.py); the real modules are imported here first all the same.
"""

import json
import shutil
import time

import numpy as np
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from digits.app import insights
from digits.app.logic import CurrentInput, mnist_input
from digits.data.mnist import N_CLASSES, N_PIXELS
from digits.data.preprocess import Preprocessed
from digits.training.checkpoint import history_path
from digits.training.evaluation import reliability
from model_loader import MODEL_PATH, load_classifier, load_params, save_params
from pages.shared import CURRENT_INPUT, EXAMPLE_KEY, UNIT_PARAM, UNIT_VIEW, VIEW_PARAM

TIMEOUT = 60
# The "Why?" page's views, and the seconds each may take to render once its data is cached.
EXPLAIN_VIEW_KEY = "explain_view"
EXPLAIN_VIEWS = ("say", "not", "edit", "move", UNIT_VIEW)
RENDER_SECONDS = 1.0


def page(monkeypatch, name: str, model=None) -> AppTest:
    """Page `name` before its first run, serving `model` (default: the shipped model file)."""
    if model is None:
        monkeypatch.delenv("DIGITS_MODEL", raising=False)
    else:
        monkeypatch.setenv("DIGITS_MODEL", str(model))
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def image_captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions]


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart") + at.get("arrow_vega_lite_chart")


def mnist_current_input(mnist, index: int) -> CurrentInput:
    label = int(mnist.test_labels[index])
    return CurrentInput("mnist", mnist_input(mnist.test_images[index]), f"#{index}", label)


# --- a missing model -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["inside", "explain", "weights", "model_evaluation"])
def test_a_page_that_needs_the_model_says_how_to_make_one(monkeypatch, tmp_path, name):
    at = page(monkeypatch, name, model=tmp_path / "missing.pkl").run()
    assert_no_exception(at)
    (error,) = at.error
    assert "python train.py" in error.value
    assert not charts(at)
    assert not at.metric


def test_the_dataset_page_needs_no_model(monkeypatch, tmp_path):
    at = page(monkeypatch, "dataset", model=tmp_path / "missing.pkl").run()
    assert_no_exception(at)
    assert not at.error
    assert "Background pixels (exactly 0)" in metrics(at)


def test_the_history_page_without_a_model_says_how_to_make_one(monkeypatch, tmp_path):
    at = page(monkeypatch, "history", model=tmp_path / "missing.pkl").run()
    assert_no_exception(at)
    (info,) = at.info
    assert "no training history" in info.value
    assert "python train.py" in info.value


# --- inside the network ----------------------------------------------------------------------


def test_inside_without_a_drawing_shows_a_test_digit_and_links_to_the_pad(monkeypatch, mnist):
    at = page(monkeypatch, "inside").run()
    assert_no_exception(at)
    (info,) = at.info
    index = at.session_state[EXAMPLE_KEY]
    assert info.value.startswith(f"Nothing drawn yet, so here is MNIST test digit #{index}.")
    assert at.get("page_link"), "a link back to the drawing pad"
    assert len(charts(at)) == 3, "the page is whole, not empty"
    assert metrics(at)["Prediction"] == str(mnist.test_labels[index])
    at.run()
    assert at.session_state[EXAMPLE_KEY] == index, "the example stays for the session"


def test_inside_with_an_input_that_holds_no_digit_says_why(monkeypatch):
    at = page(monkeypatch, "inside")
    at.session_state[CURRENT_INPUT] = CurrentInput("canvas", Preprocessed(None, {}, "No ink."))
    at.run()
    assert_no_exception(at)
    assert [w.value for w in at.warning] == ["No ink."]
    assert at.get("page_link")


def test_inside_shows_layers_units_and_the_softmax_for_the_current_digit(monkeypatch, mnist):
    at = page(monkeypatch, "inside")
    current = mnist_current_input(mnist, 0)
    at.session_state[CURRENT_INPUT] = current
    at.run()
    assert_no_exception(at)
    assert metrics(at)["Prediction"] == str(current.label)
    assert len(charts(at)) == 3, "two hidden-layer heatmaps and the logits"
    markdown = " ".join(m.value for m in at.markdown)
    assert "128 units active" in markdown
    assert "64 units active" in markdown
    assert any("add up exactly to the logit" in m.value for m in at.markdown)
    (shares,) = [c.value for c in at.caption if c.value.startswith("The 6 units shown add")]
    assert "as some push against it" in shares
    (table,) = at.table
    assert len(table.value) == 10
    probabilities = [c.value for c in at.caption if "ten weights add up" in c.value]
    assert probabilities, "the normalising sum is named"


def test_inside_follows_the_input_when_it_changes(monkeypatch, mnist):
    at = page(monkeypatch, "inside")
    first, second = (
        0,
        next(i for i in range(1, 100) if mnist.test_labels[i] != mnist.test_labels[0]),
    )
    at.session_state[CURRENT_INPUT] = mnist_current_input(mnist, first)
    at.run()
    at.session_state[CURRENT_INPUT] = mnist_current_input(mnist, second)
    at.run()
    assert_no_exception(at)
    assert metrics(at)["Prediction"] == str(mnist.test_labels[second])


# --- weights ---------------------------------------------------------------------------------


def test_weights_shows_all_first_layer_units_one_up_close_and_histograms(monkeypatch):
    at = page(monkeypatch, "weights").run()
    assert_no_exception(at)
    assert any(c.startswith("First-layer weights of all 128 units") for c in image_captions(at))
    assert len(charts(at)) == 3, "one histogram per layer"
    W1 = load_params()["weights"][0]
    assert metrics(at)["Strongest excitation"] == f"{W1[:, 0].max():+.3f}"
    at.number_input[0].set_value(5).run()
    assert metrics(at)["Strongest excitation"] == f"{W1[:, 5].max():+.3f}"


# --- evaluation ------------------------------------------------------------------------------


def test_evaluation_accuracy_matches_a_plain_forward_pass(monkeypatch, mnist):
    params = load_params()
    W1, W2, W3 = params["weights"]
    b1, b2, b3 = params["biases"]
    x = mnist.test_images.reshape(len(mnist.test_images), -1).astype(np.float32) / 255
    logits = np.maximum(np.maximum(x @ W1 + b1, 0) @ W2 + b2, 0) @ W3 + b3
    expected = float(np.mean(logits.argmax(axis=1) == mnist.test_labels))
    at = page(monkeypatch, "model_evaluation").run()
    assert_no_exception(at)
    shown = metrics(at)
    assert shown["Accuracy"] == f"{expected:.2%}"
    assert expected > 0.99
    wrong = int(np.sum(logits.argmax(axis=1) != mnist.test_labels))
    assert shown["Mistakes"] == f"{wrong:,} of {len(mnist.test_labels):,}"


def test_evaluation_shows_the_expected_calibration_error_of_the_test_set(monkeypatch, mnist):
    at = page(monkeypatch, "model_evaluation").run()
    assert_no_exception(at)
    result = insights.evaluate(load_classifier(), mnist.test_images, mnist.test_labels)
    _, ece = reliability(result.proba, result.labels)
    assert metrics(at)["Expected calibration error"] == f"{ece:.2%}"


def test_evaluation_starts_on_the_most_common_mix_up_and_shows_those_mistakes(monkeypatch, mnist):
    at = page(monkeypatch, "model_evaluation").run()
    result = insights.evaluate(load_classifier(), mnist.test_images, mnist.test_labels)
    true, predicted = insights.worst_confusion(result.confusion)
    assert [s.value for s in at.selectbox] == [true, predicted]
    gallery = [c.value for c in at.caption if c.value.startswith("**#")]
    assert len(gallery) == result.confusion[true, predicted]
    assert all(f"is {true}" in c for c in gallery)


def test_evaluation_pickers_choose_the_mistakes_shown(monkeypatch, mnist):
    at = page(monkeypatch, "model_evaluation").run()
    at.selectbox[0].set_value(4)
    at.selectbox[1].set_value(None).run()
    assert_no_exception(at)
    gallery = [c.value for c in at.caption if c.value.startswith("**#")]
    assert gallery
    assert all(" is 4" in c for c in gallery)
    result = insights.evaluate(load_classifier(), mnist.test_images, mnist.test_labels)
    heading = next(m.value for m in at.markdown if "mistakes**" in m.value)
    n_wrong = len(insights.misclassified(result, true=4))
    assert heading.startswith(f"**{n_wrong} mistakes**: 4s read as another digit")
    at.selectbox[1].set_value(4).run()
    (info,) = at.info
    assert "were read right" in info.value


def test_evaluation_has_a_confusion_matrix_reliability_samples_and_a_per_digit_table(monkeypatch):
    at = page(monkeypatch, "model_evaluation").run()
    assert len(charts(at)) == 2  # the confusion matrix and the reliability diagram
    (table,) = at.table
    assert list(table.value.columns) == ["images", "read right", "precision", "recall"]
    assert len(table.value) == 10
    assert any("random test digits" in c.value for c in at.caption)


# --- dataset ---------------------------------------------------------------------------------


def test_dataset_shows_samples_counts_mean_digits_and_intensities(monkeypatch):
    at = page(monkeypatch, "dataset").run()
    assert_no_exception(at)
    shown = metrics(at)
    assert shown["Inked pixels per digit"].endswith("of 784")
    assert shown["Background pixels (exactly 0)"].endswith("%")
    assert len(charts(at)) == 2, "label shares and intensities"
    assert [str(d) for d in range(10)] == [c for c in image_captions(at) if len(c) == 1]


# --- training history ------------------------------------------------------------------------


def test_history_shows_loss_and_accuracy_per_epoch(monkeypatch):
    at = page(monkeypatch, "history").run()
    assert_no_exception(at)
    history = json.loads(history_path(MODEL_PATH).read_text())
    assert metrics(at)["Epochs"] == str(len(history["epochs"]))
    assert len(charts(at)) == 2
    assert not at.info


SHIPPED_STORY = (
    "the 60,000 MNIST training digits, 5,000 of them held out for validation, plus 39,999 drawn "
    "digits"
)


def test_history_says_where_the_model_came_from_and_what_its_figures_mean(monkeypatch):
    at = page(monkeypatch, "history").run()
    assert_no_exception(at)
    said = " ".join(m.value for m in [*at.markdown, *at.caption])
    assert f"Made by `python train.py`; it learnt from {SHIPPED_STORY}." in said
    for term in ("**Epoch**", "**Loss**", "**Validation accuracy**"):
        assert term in said
    assert "the 5,000 held-out validation digits" in said


def test_dataset_and_train_pages_tell_the_shipped_models_data_in_the_same_words(monkeypatch):
    dataset = page(monkeypatch, "dataset").run()
    train = page(monkeypatch, "training").run()
    assert_no_exception(dataset)
    assert_no_exception(train)
    assert any(SHIPPED_STORY in m.value for m in dataset.markdown)
    assert any(SHIPPED_STORY in c.value for c in train.caption)


def test_a_model_without_a_history_file_gets_the_note(monkeypatch, tmp_path):
    model = tmp_path / "model.pkl"
    shutil.copy(MODEL_PATH, model)
    at = page(monkeypatch, "history", model=model).run()
    assert_no_exception(at)
    (info,) = at.info
    assert info.value == "This model has no training history file; `python train.py` writes one."
    assert not charts(at)


def test_a_broken_history_file_gets_one_plain_error(monkeypatch, tmp_path):
    model = tmp_path / "model.pkl"
    shutil.copy(MODEL_PATH, model)
    history_path(model).write_text("{broken")
    at = page(monkeypatch, "history", model=model).run()
    assert_no_exception(at)
    (error,) = at.error
    assert "not valid JSON" in error.value
    assert "python train.py" in error.value


@pytest.mark.parametrize("name", ["inside", "explain", "weights", "model_evaluation"])
def test_a_model_without_hidden_layers_is_shown_too(monkeypatch, tmp_path, mnist, name):
    path = tmp_path / "linear.pkl"
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((N_PIXELS, N_CLASSES)).astype(np.float32)]
    save_params({"weights": weights, "biases": [np.zeros(N_CLASSES, np.float32)]}, path)
    at = page(monkeypatch, name, model=path)
    at.session_state[CURRENT_INPUT] = mnist_current_input(mnist, 0)
    at.run()
    assert_no_exception(at)
    assert not at.error
    if name == "inside":
        assert any("no hidden layer" in i.value for i in at.info)
    if name == "explain":
        at.segmented_control(key=EXPLAIN_VIEW_KEY).set_value(UNIT_VIEW).run()
        assert any("no hidden layer" in i.value for i in at.info)


# --- why did it say that? --------------------------------------------------------------------


def misread_input(mnist) -> CurrentInput:
    """The MNIST test digit the shipped model reads wrongly most confidently, as current input."""
    evaluation = insights.evaluate(
        load_classifier(MODEL_PATH), mnist.test_images, mnist.test_labels
    )
    return mnist_current_input(mnist, int(insights.misclassified(evaluation)[0]))


def explain_page(monkeypatch, current: CurrentInput, view: str) -> AppTest:
    """The Why page run for `current`, then once more showing `view`."""
    at = page(monkeypatch, "explain")
    at.session_state[CURRENT_INPUT] = current
    at.run()
    at.segmented_control(key=EXPLAIN_VIEW_KEY).set_value(view).run()
    assert_no_exception(at)
    return at


def render_seconds(at: AppTest, runs: int = 3) -> float:
    """The fastest of `runs` reruns of the page as it is: its cost with nothing else running."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        at.run()
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def test_why_without_a_drawing_explains_a_test_digit(monkeypatch, mnist):
    at = page(monkeypatch, "explain").run()
    assert_no_exception(at)
    index = at.session_state[EXAMPLE_KEY]
    assert at.info[0].value.startswith(f"Nothing drawn yet, so here is MNIST test digit #{index}.")
    assert metrics(at)["Prediction"] == str(mnist.test_labels[index])
    assert len(charts(at)) == 1, "the map of what made it say so"


def test_why_opens_every_view_for_a_misread_digit_each_in_under_a_second(monkeypatch, mnist):
    current = misread_input(mnist)
    at = explain_page(monkeypatch, current, "say")
    assert metrics(at)["Prediction"] != str(current.label)
    timings = {}
    for view in EXPLAIN_VIEWS:
        at.segmented_control(key=EXPLAIN_VIEW_KEY).set_value(view).run()  # the first, uncached
        assert_no_exception(at)
        timings[view] = render_seconds(at)
    print("render seconds after the first:", {v: round(t, 3) for v, t in timings.items()})
    assert max(timings.values()) < RENDER_SECONDS, timings


def test_why_n_and_not_m_starts_with_the_runner_up(monkeypatch, mnist):
    current = misread_input(mnist)
    proba = load_classifier(MODEL_PATH).predict_proba(current.preprocessed.vector)
    at = explain_page(monkeypatch, current, "not")
    assert at.selectbox(key="explain_not").value == int(np.argsort(proba)[-2])
    assert len(charts(at)) == 1


def test_the_edit_view_says_how_much_ink_flipped_the_answer(monkeypatch, mnist):
    at = explain_page(monkeypatch, misread_input(mnist), "edit")
    target = at.selectbox(key="explain_target").value
    (ink,) = [v for k, v in metrics(at).items() if k.startswith("Ink that turned it into")]
    assert ink.endswith("pixels")
    slider = at.slider(key=f"explain_step_{target}")
    assert slider.value == slider.max, "the slider starts on the flipped drawing"
    assert len(charts(at)) == 2, "the ink map and the probability per step"
    slider.set_value(0).run()
    assert_no_exception(at)
    assert f"step 0: read as {metrics(at)['Prediction']}" in " ".join(image_captions(at))


def test_the_moving_view_reads_every_move_with_centring_off_and_on(monkeypatch, mnist):
    at = explain_page(monkeypatch, mnist_current_input(mnist, 0), "move")
    assert [h.value for h in at.subheader] == ["Centring off", "Centring on"]
    captions = image_captions(at)
    assert sum(c.startswith("4 px left:") for c in captions) == 2
    assert sum(c.startswith("+20°:") for c in captions) == 2
    assert "with it, in" in at.info[0].value


def test_the_unit_view_opens_on_the_unit_a_link_asks_for(monkeypatch, mnist):
    at = page(monkeypatch, "explain")
    at.session_state[CURRENT_INPUT] = mnist_current_input(mnist, 0)
    at.query_params[VIEW_PARAM] = UNIT_VIEW
    at.query_params[UNIT_PARAM] = "17"
    at.run()
    assert_no_exception(at)
    assert at.number_input(key="explain_unit").value == 17
    captions = image_captions(at)
    assert "unit 17: its weights" in captions
    assert sum(c.startswith("a ") for c in captions) == 12, "the unit's favourite training digits"


def test_inside_and_weights_link_to_what_a_unit_looks_for(monkeypatch, mnist):
    for name in ("inside", "weights"):
        at = page(monkeypatch, name)
        at.session_state[CURRENT_INPUT] = mnist_current_input(mnist, 0)
        at.run()
        assert_no_exception(at)
        links = [link for link in at.get("page_link") if "explain" in link.proto.page]
        assert links, f"{name} links to the Why page"
