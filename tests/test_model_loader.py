"""The model file: atomic saving, safe loading, validation with messages a user can act on."""

import itertools
import os
import pickle

import numpy as np
import pytest
from helpers.hostile import hostile_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import model_loader
from model_loader import (
    DEFAULT_REFUSAL,
    MODEL_PATH,
    ModelFileError,
    load_classifier,
    load_params,
    save_params,
)
from network import MLP


@pytest.fixture
def params():
    return MLP((784, 16, 8, 10), np.random.default_rng(0)).export()


def test_saved_params_load_back_identically(tmp_path, params):
    path = save_params({**params, "test_accuracy": 0.99, "seed": 3}, tmp_path / "m.pkl")
    loaded = load_params(path)
    for a, b in zip(
        loaded["weights"] + loaded["biases"], params["weights"] + params["biases"], strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert loaded["sizes"] == [784, 16, 8, 10]
    assert loaded["test_accuracy"] == 0.99


def test_saving_leaves_no_temporary_file_and_replaces_the_old_model(tmp_path, params):
    path = tmp_path / "m.pkl"
    path.write_bytes(b"old")
    save_params(params, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pkl"]
    assert load_params(path)["sizes"] == [784, 16, 8, 10]


def test_a_new_model_file_is_readable_by_all_and_a_replaced_one_keeps_its_mode(tmp_path, params):
    new = save_params(params, tmp_path / "new.pkl")
    assert new.stat().st_mode & 0o777 == 0o644
    shared = tmp_path / "shared.pkl"
    shared.write_bytes(b"old")
    shared.chmod(0o664)
    save_params(params, shared)
    assert shared.stat().st_mode & 0o777 == 0o664


def test_a_failed_save_keeps_the_previous_model(tmp_path, params, monkeypatch):
    path = save_params(params, tmp_path / "m.pkl")
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save_params({**params, "seed": 1}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pkl"]


def test_a_pickle_that_would_run_code_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"weights": [Exploit()], "biases": []}))
    with pytest.raises(ModelFileError, match=r"evil\.pkl was refused.*(posix|os)\.system"):
        load_params(path)
    assert not marker.exists()


def test_pickled_class_instances_are_refused(tmp_path):
    path = tmp_path / "instance.pkl"
    path.write_bytes(pickle.dumps(MLP((784, 10), np.random.default_rng(0))))
    with pytest.raises(ModelFileError, match=r"network\.MLP"):
        load_params(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["weights"].pop(), "3 weight arrays but 4 bias|2 weight arrays but 3 bias"),
        (lambda p: p["weights"].__setitem__(1, np.zeros((15, 8), np.float32)), "layer 2 weights"),
        (lambda p: p["biases"].__setitem__(2, np.zeros(9, np.float32)), "layer 3 biases"),
        (lambda p: p["weights"].__setitem__(0, np.zeros((700, 16), np.float32)), "not 784 to 10"),
        (lambda p: p["weights"][2].__setitem__((0, 0), np.nan), "NaN"),
        (lambda p: p["biases"][0].__setitem__(0, np.inf), "NaN or infinite"),
        (lambda p: p["weights"].__setitem__(0, p["weights"][0].astype(np.int32)), "float"),
        (lambda p: p.pop("biases"), "'weights' and 'biases'"),
        (lambda p: p.__setitem__("activation", "swish"), "swish"),
    ],
    ids=["count", "chain", "bias-size", "input-size", "nan", "inf", "int", "keys", "activation"],
)
def test_malformed_params_are_rejected_with_a_message_naming_the_problem(
    tmp_path, params, mutate, message
):
    mutate(params)
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(params, protocol=5))
    with pytest.raises(ModelFileError, match=message) as info:
        load_params(path)
    assert "bad.pkl" in str(info.value)
    assert "python train.py" in str(info.value)


@pytest.mark.parametrize("keep", [0, 1, 100, 2000])
def test_truncated_files_are_rejected_clearly(tmp_path, params, keep):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps(params, protocol=5)[:keep])
    with pytest.raises(ModelFileError, match=r"cut\.pkl .*(truncated|damaged|not a model)"):
        load_params(path)


def test_missing_file_and_folder_say_how_to_make_a_model(tmp_path):
    with pytest.raises(ModelFileError, match=r"was not found; run `python train.py`"):
        load_params(tmp_path / "nope.pkl")
    with pytest.raises(ModelFileError, match="is a folder"):
        load_params(tmp_path)


def test_plain_dicts_in_nielsens_layout_are_accepted(tmp_path):
    rng = np.random.default_rng(1)
    sizes = [784, 30, 10]
    # network.py stores weights as (n_out, n_in) float64 and biases as (n_out, 1) columns.
    nielsen_params = {
        "weights": [rng.standard_normal((b, a)) for a, b in itertools.pairwise(sizes)],
        "biases": [rng.standard_normal((b, 1)) for b in sizes[1:]],
    }
    path = tmp_path / "seed.pkl"
    path.write_bytes(pickle.dumps(nielsen_params))
    loaded = load_params(path)
    assert loaded["sizes"] == sizes
    assert loaded["weights"][0].shape == (784, 30)
    assert loaded["weights"][0].dtype == np.float32
    assert loaded["activation"] == "relu"
    x = rng.random((3, 784), dtype=np.float32)
    expected = np.maximum(x @ nielsen_params["weights"][0].T + nielsen_params["biases"][0].T, 0)
    expected = expected @ nielsen_params["weights"][1].T + nielsen_params["biases"][1].T
    np.testing.assert_allclose(
        load_classifier(path).hidden_and_logits(x)[-1], expected, rtol=1e-4, atol=1e-4
    )


def test_the_committed_model_is_valid_and_carries_its_metadata():
    params = load_params(MODEL_PATH)
    assert params["sizes"] == [784, 128, 64, 10]
    assert params["activation"] == "relu"
    for key in ("test_accuracy", "seed", "date", "config"):
        assert key in params


def test_a_model_file_without_refusal_thresholds_loads_with_the_defaults(tmp_path, params):
    assert "refusal" not in params
    assert load_params(save_params(params, tmp_path / "m.pkl"))["refusal"] == DEFAULT_REFUSAL


def test_refusal_thresholds_stored_in_the_model_file_load_back(tmp_path, params):
    refusal = {"unsure_below": 0.8, "not_a_digit_below": np.float64(0.6)}
    loaded = load_params(save_params({**params, "refusal": refusal}, tmp_path / "m.pkl"))
    assert loaded["refusal"] == {"unsure_below": 0.8, "not_a_digit_below": 0.6}
    assert all(type(value) is float for value in loaded["refusal"].values())


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        ({"unsure_below": 0.9}, "keys"),
        ([0.9, 0.5], "keys"),
        ({"unsure_below": 0.9, "not_a_digit_below": "0.5"}, "numbers"),
        ({"unsure_below": 0.5, "not_a_digit_below": 0.9}, "not_a_digit_below <= unsure_below"),
        ({"unsure_below": 1.5, "not_a_digit_below": 0.5}, "<= 1"),
        ({"unsure_below": 0.9, "not_a_digit_below": float("nan")}, "<= 1"),
    ],
    ids=["missing key", "not a dict", "text", "crossed", "above one", "nan"],
)
def test_malformed_refusal_thresholds_are_rejected_naming_them(tmp_path, params, refusal, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({**params, "refusal": refusal}, protocol=5))
    with pytest.raises(ModelFileError, match=message) as info:
        load_params(path)
    assert "refusal" in str(info.value)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_model_pickled_with_any_protocol_loads_the_same(tmp_path, params, protocol):
    # Protocols 0-2 (older Python and NumPy) write array bytes through _codecs.encode.
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(params, protocol=protocol))
    loaded = load_params(path)
    for a, b in zip(loaded["weights"], params["weights"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_codecs_encode_is_allowed_only_with_the_latin1_codec_arrays_need(tmp_path):
    # _codecs.encode("...", "zlib") would be harmless, but nothing beyond what arrays need
    # is let through.
    path = tmp_path / "m.pkl"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x04\x00\x00\x00zlib\x86R.")
    with pytest.raises(
        ModelFileError, match=r"refused: it asks to load _codecs\.encode with 'zlib'"
    ):
        load_params(path)


HOSTILE_MODELS = hostile_models(pickle.dumps(MLP((784, 8, 10), np.random.default_rng(0)).export()))


@pytest.mark.parametrize("name", list(HOSTILE_MODELS))
def test_a_hostile_model_file_is_refused_in_one_line_without_allocating_its_claims(tmp_path, name):
    path = tmp_path / "hostile.pkl"
    path.write_bytes(HOSTILE_MODELS[name])
    with pytest.raises(ModelFileError) as info:
        load_params(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert message.endswith("run `python train.py` to train a new one.")


def nested_lists(depth: int) -> list:
    inner: list = []
    for _ in range(depth - 1):
        inner = [inner]
    return inner


def test_metadata_nested_deeper_than_any_model_needs_is_refused(tmp_path, params):
    # The params dict is the first level, so its metadata can hold MAX_NESTING - 1 more.
    path = tmp_path / "m.pkl"
    deepest = nested_lists(model_loader.MAX_NESTING - 1)
    path.write_bytes(pickle.dumps({**params, "notes": deepest}))
    assert load_params(path)["notes"] == deepest
    path.write_bytes(pickle.dumps({**params, "notes": [deepest]}))
    with pytest.raises(ModelFileError, match="not a model file"):
        load_params(path)


def test_a_file_larger_than_any_model_is_refused_unread(tmp_path, params, monkeypatch):
    monkeypatch.setattr(model_loader, "MAX_MODEL_BYTES", 1000)
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(params))
    with pytest.raises(ModelFileError, match="larger than any model file"):
        load_params(path)


def test_a_pickle_with_more_operations_than_any_model_is_refused(tmp_path, params, monkeypatch):
    monkeypatch.setattr(model_loader, "MAX_PICKLE_OPS", 50)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({**params, "history": list(range(100))}))
    with pytest.raises(ModelFileError, match="not a model file"):
        load_params(path)


VALID_MODEL = pickle.dumps(
    {**MLP((784, 4, 10), np.random.default_rng(0)).export(), "history": [{"epoch": 1}]}, protocol=2
)


@st.composite
def mutated_model_file(draw):
    """A small valid model file with bytes flipped, cut out or inserted."""
    data = bytearray(VALID_MODEL)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 32))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
    return bytes(data)


@settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutated_model_file())
def test_a_mutated_model_file_loads_or_is_refused_in_one_line_never_a_crash(tmp_path, data):
    path = tmp_path / "mutated.pkl"
    path.write_bytes(data)
    try:
        load_params(path)
    except ModelFileError as exc:
        message = str(exc)
    else:
        return
    assert "\n" not in message
    assert message.startswith(str(path))
