"""The Teach pages (Train, Your samples), each run headless through Streamlit's AppTest.

Every test gets its own copy of the model, samples database and runs folder (the environment
variables the app reads), so the committed model is never touched. The runner is the server's
(st.cache_resource), shared by every AppTest in this process as by every session of a server.
"""

import re
import shutil
import time

import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from digits.app.user_store import UserStore, original_png
from digits.data.styled_digits import styled_samples
from digits.training.checkpoint import history_path
from model_loader import MODEL_PATH, load_params
from pages.shared import TRAINING_COLOUR, VALIDATION_COLOUR

TIMEOUT = 60
RUN_TIMEOUT_S = 120
# Each rerun of the page takes CPU from the run it waits for, so the page is not rerun often.
POLL_S = 0.3
QUICK_SUBSET = "1,000 (a few seconds)"


@pytest.fixture
def teach(monkeypatch, tmp_path):
    """The app's files for this test: (model file, samples database, runs folder)."""
    model = tmp_path / "model.pkl"
    shutil.copyfile(MODEL_PATH, model)
    shutil.copyfile(history_path(MODEL_PATH), history_path(model))
    db, runs = tmp_path / "samples.sqlite", tmp_path / "runs"
    monkeypatch.setenv("DIGITS_MODEL", str(model))
    monkeypatch.setenv("DIGITS_USER_DB", str(db))
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(runs))
    return model, db, runs


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT).run()


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def button(at: AppTest, label: str):
    (found,) = [b for b in at.button if b.label == label]
    return found


def subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


def run_until_done(at: AppTest) -> AppTest:
    """Rerun the page until the run under way has ended and its result is shown."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not any(s.startswith("Last ") for s in subheaders(at.run())):
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(POLL_S)
    assert_no_exception(at)
    return at


def start_quick_training(at: AppTest, epochs: int = 2) -> AppTest:
    at.selectbox(key="tr-subset").set_value(QUICK_SUBSET)
    at.number_input(key="tr-epochs").set_value(epochs)
    return button(at, "Start training").click().run()


def store_styled(db, n: int) -> UserStore:
    """n digits of the styled hand in the samples database, read as 8 when they are 0s."""
    store = UserStore(db)
    drawings, inputs, labels = styled_samples(n, seed=0)
    for drawing, image, label in zip(drawings, inputs, labels, strict=True):
        store.add(label, image, original_png(drawing), prediction=8 if label == 0 else label)
    return store


# --- Train: a new model ------------------------------------------------------------------------


def test_the_train_page_offers_every_setting_and_names_the_model_in_use(teach):
    at = page("training")
    assert_no_exception(at)
    labels = {w.label for w in [*at.number_input, *at.selectbox, *at.text_input, *at.checkbox]}
    assert labels >= {
        "Epochs",
        "Batch size",
        "Learning rate",
        "Weight decay",
        "Optimizer",
        "Hidden layers",
        "Activation",
        "Seed",
        "Training images",
        "Augmentation",
        "Drawn digits too",
    }
    assert [t.label for t in at.tabs] == [
        "New model",
        "Search settings",
        "Fine-tune on your samples",
    ]
    captions = [c.value for c in at.caption]
    shipped = "In use: the shipped model (`model.pkl`), a 784-128-64-10 network"
    assert any(c.startswith(shipped) for c in captions)
    assert "No run yet on this server." in captions


def test_a_run_started_on_the_page_shows_its_progress_then_its_result_and_its_own_file(teach):
    model, _, runs = teach
    before = model.read_bytes()
    at = start_quick_training(page("training"), epochs=3)
    assert_no_exception(at)
    assert subheaders(at) == ["Training under way"]
    assert len(at.get("progress")) == 1
    assert button(at, "Start training").disabled, "one run at a time"
    assert button(at, "Start search").disabled

    run_until_done(at)
    assert subheaders(at) == ["Last training run"]
    (done,) = at.success
    assert done.value.startswith("Finished in")
    assert "Test accuracy" in done.value
    assert re.search(
        r"trained on 1,100 of the 60,000 MNIST training digits, 100 of them held out for "
        r"validation, plus \d{3} drawn digits\.",
        done.value,
    )
    curves = at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
    assert len(curves) == 2
    for chart in curves:
        assert f'"range": ["{TRAINING_COLOUR}", "{VALIDATION_COLOUR}"]' in chart.proto.spec, (
            "training grey and validation red, as on the Training history page"
        )
    assert not button(at, "Use this model").disabled
    (run_file,) = runs.glob("*.pkl")
    assert model.read_bytes() == before, "the app's model is untouched until the user says so"
    assert run_file.read_bytes() != before


def test_unticking_drawn_digits_trains_on_mnist_alone(teach):
    _, _, runs = teach
    at = page("training")
    at.checkbox(key="tr-drawn").uncheck()
    at = run_until_done(start_quick_training(at))
    (done,) = at.success
    assert done.value.endswith("100 of them held out for validation.")
    (run_file,) = runs.glob("*.pkl")
    assert load_params(run_file)["config"]["drawn"] is False


def test_a_finished_run_is_compared_with_the_model_in_use_on_the_same_test_digits(teach):
    at = run_until_done(start_quick_training(page("training")))
    (table,) = at.table
    frame = table.value
    assert list(frame.columns) == ["in use", "this run"]
    assert list(frame.index) == ["MNIST test digits", "500 drawn test digits", "trained"]
    shipped = load_params(teach[0])["test_accuracy"]
    assert frame.loc["MNIST test digits", "in use"] == f"{shipped:.2%}"
    for column in frame.columns:
        assert re.fullmatch(r"\d+\.\d%", frame.loc["500 drawn test digits", column])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d at \d\d:\d\d UTC", frame.loc["trained", column])


def test_use_this_model_leaves_the_shipped_file_alone_and_one_click_brings_it_back(teach):
    model, _, runs = teach
    before = model.read_bytes()
    at = run_until_done(start_quick_training(page("training")))
    (run_file,) = runs.glob("*.pkl")

    button(at, "Use this model").click().run()
    assert_no_exception(at)
    name = f"your model `{run_file.stem}`"
    assert at.success[0].value.startswith(f"The app now uses {name};")
    assert any(c.value.startswith(f"In use: {name}, a 784-") for c in at.caption), (
        "the page header names the model the message names"
    )
    assert any(c.value == f"The app uses this model, {name}." for c in at.caption)
    assert model.read_bytes() == before, "the shipped model file is never written"
    assert not at.table, "nothing to compare once the run is the model in use"

    button(at, "Back to the shipped model").click().run()
    assert_no_exception(at)
    shipped = f"the shipped model (`{model.name}`)"
    assert at.success[0].value == f"The app now uses {shipped}."
    assert any(c.value.startswith(f"In use: {shipped}, a 784-") for c in at.caption)
    assert not [b for b in at.button if b.label == "Back to the shipped model"]


def test_a_second_session_sees_the_run_under_way_cannot_start_another_and_can_stop_it(teach):
    first = start_quick_training(page("training"), epochs=200)
    assert subheaders(first) == ["Training under way"]

    second = page("training")
    assert_no_exception(second)
    assert subheaders(second) == ["Training under way"]
    assert button(second, "Start training").disabled
    assert button(second, "Start search").disabled
    button(second, "Stop").click().run()
    run_until_done(second)
    (stopped,) = second.warning
    assert stopped.value.startswith("Stopped after")
    assert "of 200 epochs" in stopped.value
    assert subheaders(first.run()) == ["Last training run"]


def test_hidden_layers_that_are_not_numbers_get_one_plain_error_and_no_run(teach):
    at = page("training")
    at.text_input(key="tr-hidden").set_value("128, lots")
    button(at, "Start training").click().run()
    assert_no_exception(at)
    (error,) = at.error
    assert error.value.startswith("Hidden layers must be positive whole numbers")
    assert "No run yet on this server." in [c.value for c in at.caption]


# --- Train: the search -------------------------------------------------------------------------


def test_a_search_from_the_page_lists_its_trials_and_fills_the_form_with_the_best(teach):
    _, _, runs = teach
    at = page("training")
    at.slider(key="se-trials").set_value(2)
    at.selectbox(key="se-subset").set_value(QUICK_SUBSET)
    button(at, "Start search").click().run()
    assert subheaders(at) == ["Search under way"]
    run_until_done(at)
    assert subheaders(at) == ["Last search run"]
    (table,) = at.dataframe
    trials = table.value
    assert len(trials) == 2
    assert list(trials.columns) == ["lr", "weight_decay", "epochs", "val_accuracy", "seconds"]
    best = trials.loc[trials["val_accuracy"].idxmax()]
    assert at.success[0].value.startswith("Finished in")
    assert f"Best: learning rate {best['lr']:g}" in at.success[0].value
    assert not list(runs.glob("*.pkl")), "a search saves no model"

    button(at, "Use these settings").click().run()
    assert at.number_input(key="tr-lr").value == best["lr"]
    assert at.number_input(key="tr-wd").value == best["weight_decay"]
    assert at.number_input(key="tr-epochs").value == best["epochs"]


# --- Train: fine-tuning ------------------------------------------------------------------------


def test_the_fine_tuning_tab_asks_for_more_samples_until_there_are_enough(teach):
    _, db, _ = teach
    store_styled(db, 3)
    at = page("training")
    assert_no_exception(at)
    (info,) = at.info
    assert info.value.startswith("You have taught the app 3 digits; teach it at least 8 first")
    assert "Start fine-tuning" not in [b.label for b in at.button]


def test_fine_tuning_from_the_page_reports_mnist_and_held_out_samples_before_and_after(teach):
    model, db, _ = teach
    before = model.read_bytes()
    store_styled(db, 24)
    at = page("training")
    assert any("your 24 samples (8 × 0, 8 × 1, 8 × 7)" in c.value for c in at.caption)
    button(at, "Start fine-tuning").click().run()
    run_until_done(at)
    assert subheaders(at) == ["Last fine-tuning run"]
    (done,) = at.success
    assert "MNIST test accuracy: " in done.value
    assert "The 18 samples of yours it trained on: " in done.value
    assert "Your 6 held-out samples, which it never saw: " in done.value
    assert not button(at, "Use this model").disabled
    assert model.read_bytes() == before


# --- Your samples ------------------------------------------------------------------------------


def test_the_samples_page_without_samples_says_how_to_add_them(teach):
    at = page("samples")
    assert_no_exception(at)
    (info,) = at.info
    assert info.value.startswith("No samples yet")
    assert not at.metric


def test_the_samples_page_counts_the_samples_and_those_read_wrong_and_shows_each(teach):
    _, db, _ = teach
    store_styled(db, 9)  # three 0s read as 8, three 7s and three 1s read right
    at = page("samples")
    assert_no_exception(at)
    assert {m.label: m.value for m in at.metric} == {"Samples": "9", "Read wrong": "3"}
    assert any(c.value == "Per digit: 0: 3, 1: 3, 7: 3" for c in at.caption)
    tiles = [m.value for m in at.markdown if "· read" in m.value]
    assert len(tiles) == 9
    assert tiles.count(":red[**0** · read 8]") == 3
    assert len(at.image) == 9
    assert [b.label for b in at.get("download_button")] == ["Export all (zip of PNGs + CSV)"]

    at.segmented_control(key="samples-view").set_value("Read wrong").run()
    assert [m.value for m in at.markdown if "· read" in m.value] == [":red[**0** · read 8]"] * 3


def test_a_sample_whose_reading_was_not_kept_is_not_counted_or_shown_as_read_wrong(teach):
    _, db, _ = teach
    store = UserStore(db)
    _, inputs, _ = styled_samples(2, seed=0)
    store.add(0, inputs[0], b"png", prediction=None)
    store.add(0, inputs[0], b"png", prediction=8)
    at = page("samples")
    assert {m.label: m.value for m in at.metric} == {"Samples": "2", "Read wrong": "1"}
    at.segmented_control(key="samples-view").set_value("Read wrong").run()
    assert_no_exception(at)
    assert len(at.image) == 1


def test_picked_samples_are_deleted_from_the_database(teach):
    _, db, _ = teach
    store = store_styled(db, 6)
    first, second, *rest = (s.id for s in store.samples())
    at = page("samples")
    assert button(at, "Delete picked").disabled
    at.checkbox(key=f"sample-pick-{first}").check()
    at.checkbox(key=f"sample-pick-{second}").check().run()
    button(at, "Delete 2 picked").click().run()
    assert_no_exception(at)
    assert at.warning[0].value.startswith("Delete 2 samples for good?")
    assert len(store.samples()) == 6, "nothing is deleted before the user says yes"
    button(at, "Yes, delete 2").click().run()
    assert_no_exception(at)
    assert at.success[0].value == "Deleted 2 samples."
    assert [s.id for s in store.samples()] == rest
    assert {m.label: m.value for m in at.metric}["Samples"] == "4"


def test_cancel_keeps_the_picked_samples(teach):
    _, db, _ = teach
    store = store_styled(db, 3)
    first = store.samples()[0].id
    at = page("samples")
    at.checkbox(key=f"sample-pick-{first}").check().run()
    button(at, "Delete 1 picked").click().run()
    button(at, "Cancel").click().run()
    assert_no_exception(at)
    assert len(store.samples()) == 3
    assert not button(at, "Delete 1 picked").disabled, "the pick stays for another try"


# --- both pages on a damaged database ------------------------------------------------------


@pytest.mark.parametrize("name", ["training", "samples"])
def test_a_damaged_samples_database_is_one_error_on_the_page_and_is_left_as_it_is(teach, name):
    _, db, _ = teach
    db.write_bytes(b"\x00garbage" * 100)
    at = page(name)
    assert_no_exception(at)
    (error,) = at.error
    assert "not a samples database or is damaged" in error.value
    assert db.read_bytes() == b"\x00garbage" * 100
    assert not at.metric
