"""Specification of mnist.py: the loader returns the original MNIST and rejects damaged copies."""

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from digits.data import mnist
from digits.data.mnist import DATA_DIR, DatasetError, find_file, load_mnist, read_idx

NAMES = list(mnist.SHA256)
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The IDX encoding of a uint8 array (n,) or (n, rows, cols), optionally with a forced magic."""
    magic = magic if magic is not None else (0x801 if array.ndim == 1 else 0x803)
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def file_name(name: str, naming: str) -> str:
    """The file name of canonical `name` under one of the namings find_file accepts."""
    kaggle = name.replace("-idx", ".idx")
    return {"gz": f"{name}.gz", "raw": name, "kaggle": kaggle, "kaggle-gz": f"{kaggle}.gz"}[naming]


def write_dataset(folder: Path, contents: dict[str, bytes], naming: str = "gz") -> Path:
    """Write IDX contents keyed by canonical name into folder under the given naming."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        data = gzip.compress(content, compresslevel=1) if naming.endswith("gz") else content
        (folder / file_name(name, naming)).write_bytes(data)
    return folder


def synthetic_contents(n_train: int = 6, n_test: int = 3) -> dict[str, bytes]:
    """A tiny, valid MNIST-shaped dataset (random pixels, labels cycling 0-9) as IDX bytes."""
    rng = np.random.default_rng(0)
    side = mnist.IMAGE_SIDE
    return {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_train, side, side))),
        "train-labels-idx1-ubyte": idx_bytes(np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_test, side, side))),
        "t10k-labels-idx1-ubyte": idx_bytes(np.arange(n_test) % 10),
    }


def dataset_error(call, *args, **kwargs) -> str:
    """The message of the DatasetError that call(*args, **kwargs) raises, checked to be one line."""
    with pytest.raises(DatasetError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(".")
    return message


@pytest.fixture(scope="session")
def real() -> mnist.Mnist:
    """The shipped MNIST, loaded and verified once for the whole session."""
    return load_mnist()


@pytest.fixture(scope="session")
def originals() -> dict[str, bytes]:
    """The decompressed content of each shipped MNIST file, keyed by canonical name."""
    return {name: gzip.decompress((DATA_DIR / f"{name}.gz").read_bytes()) for name in NAMES}


@pytest.fixture
def real_copy(tmp_path: Path) -> Path:
    """A fresh copy of the shipped .gz files that a test may damage."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in NAMES:
        shutil.copyfile(DATA_DIR / f"{name}.gz", folder / f"{name}.gz")
    return folder


# The shipped dataset matches the published facts.


def test_shapes_and_dtypes_are_uint8_images_28x28_and_uint8_labels(real):
    assert real.train_images.shape == (60000, mnist.IMAGE_SIDE, mnist.IMAGE_SIDE)
    assert real.train_labels.shape == (60000,)
    assert real.test_images.shape == (10000, mnist.IMAGE_SIDE, mnist.IMAGE_SIDE)
    assert real.test_labels.shape == (10000,)
    for array in (real.train_images, real.train_labels, real.test_images, real.test_labels):
        assert array.dtype == np.uint8


def test_constants_describe_28x28_images_in_10_classes():
    assert (mnist.IMAGE_SIDE, mnist.N_PIXELS, mnist.N_CLASSES) == (28, 784, 10)


def test_train_label_counts_match_the_published_counts(real):
    assert np.bincount(real.train_labels, minlength=10).tolist() == TRAIN_LABEL_COUNTS


def test_test_label_counts_match_the_published_counts(real):
    assert np.bincount(real.test_labels, minlength=10).tolist() == TEST_LABEL_COUNTS


def test_first_train_labels_are_5_0_4_1_9_2_1_3_1_4(real):
    assert real.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_train_pixel_mean_and_std_after_dividing_by_255_are_0_1307_and_0_3081(real):
    # Reducing in float64 directly avoids materialising a 47M-element float copy.
    assert round(real.train_images.mean(dtype=np.float64) / 255, 4) == 0.1307
    assert round(real.train_images.std(dtype=np.float64) / 255, 4) == 0.3081


def test_digits_are_white_on_black(real):
    # The border of every digit is background, so the corners must be 0.
    assert not real.train_images[:, 0, 0].any()
    assert real.train_images.max() == 255


def test_loaded_arrays_are_read_only_so_a_shared_copy_cannot_be_corrupted(real):
    with pytest.raises(ValueError, match="read-only"):
        real.train_images[0, 0, 0] = 1


def test_hard_coded_digests_match_the_shipped_sha256sums():
    lines = (DATA_DIR / "SHA256SUMS").read_text().split("\n")
    listed = dict(reversed(line.split()) for line in lines if line.strip())
    assert listed == mnist.SHA256


# Every supported naming and format loads.


@pytest.mark.parametrize("naming", ["gz", "raw", "kaggle", "kaggle-gz"])
def test_real_dataset_loads_and_verifies_under_every_naming(tmp_path, originals, real, naming):
    for name in NAMES:
        target = tmp_path / file_name(name, naming)
        if naming.endswith("gz"):
            shutil.copyfile(DATA_DIR / f"{name}.gz", target)
        else:
            target.write_bytes(originals[name])
    loaded = load_mnist(tmp_path, verify=True)
    assert np.array_equal(loaded.train_images, real.train_images)
    assert np.array_equal(loaded.test_labels, real.test_labels)


@pytest.mark.parametrize("naming", ["gz", "raw", "kaggle", "kaggle-gz"])
def test_find_file_accepts_every_naming(tmp_path, naming):
    write_dataset(tmp_path, synthetic_contents(), naming)
    found = find_file(tmp_path, "t10k-labels-idx1-ubyte")
    assert found == tmp_path / file_name("t10k-labels-idx1-ubyte", naming)


def test_synthetic_dataset_loads_without_verification(tmp_path):
    contents = synthetic_contents(n_train=6, n_test=3)
    loaded = load_mnist(write_dataset(tmp_path, contents), verify=False)
    assert loaded.train_images.shape == (6, 28, 28)
    assert loaded.train_labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert loaded.test_images.shape == (3, 28, 28)


def test_read_idx_detects_gzip_by_its_magic_bytes_not_its_extension(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    gzipped_without_suffix = tmp_path / "labels"
    gzipped_without_suffix.write_bytes(gzip.compress(idx_bytes(labels)))
    raw_with_gz_suffix = tmp_path / "labels.gz"
    raw_with_gz_suffix.write_bytes(idx_bytes(labels))
    assert read_idx(gzipped_without_suffix).tolist() == labels.tolist()
    assert read_idx(raw_with_gz_suffix).tolist() == labels.tolist()


def test_read_idx_returns_images_with_the_shape_in_their_header(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "images").write_bytes(idx_bytes(images))
    loaded = read_idx(tmp_path / "images")
    assert loaded.dtype == np.uint8
    assert np.array_equal(loaded, images)


def test_verify_false_accepts_a_well_formed_file_that_differs_from_the_original(
    real_copy, originals
):
    content = bytearray(originals["t10k-labels-idx1-ubyte"])
    content[-1] = (content[-1] + 1) % 10
    (real_copy / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(content))
    assert load_mnist(real_copy, verify=False).test_labels[-1] == content[-1]


# Problems a user can cause raise DatasetError naming the file.


def test_missing_file_lists_what_was_looked_for_and_mentions_data_dir(tmp_path):
    contents = synthetic_contents()
    del contents["train-labels-idx1-ubyte"]
    message = dataset_error(load_mnist, write_dataset(tmp_path, contents), verify=False)
    assert "train-labels-idx1-ubyte.gz" in message
    assert "train-labels.idx1-ubyte" in message
    assert "--data-dir" in message


def test_missing_folder_mentions_data_dir(tmp_path):
    message = dataset_error(load_mnist, tmp_path / "nowhere")
    assert "nowhere" in message
    assert "--data-dir" in message


def test_cut_gz_file_is_reported_as_truncated(real_copy):
    path = real_copy / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    message = dataset_error(load_mnist, real_copy)
    assert "train-images-idx3-ubyte.gz" in message
    assert "truncated" in message


def test_gz_of_a_cut_file_reports_expected_and_actual_size(real_copy, originals):
    path = real_copy / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(originals["train-images-idx3-ubyte"][:1000], compresslevel=1))
    message = dataset_error(load_mnist, real_copy)
    assert "train-images-idx3-ubyte.gz is truncated" in message
    assert "expected 47040016 bytes after decompression, got 1000" in message


def test_cut_raw_file_is_reported_as_truncated(tmp_path, originals):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(originals["t10k-images-idx3-ubyte"][:-1])
    message = dataset_error(read_idx, path)
    assert "t10k-images-idx3-ubyte is truncated" in message
    assert "expected 7840016 bytes, got 7840015" in message


def test_file_too_short_for_a_header_is_reported_as_truncated(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00")
    assert "t10k-labels-idx1-ubyte is truncated" in dataset_error(read_idx, path)


def test_wrong_magic_number_is_reported_with_the_expected_ones(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(5, np.uint8), magic=0x00000802))
    message = dataset_error(read_idx, path)
    assert "t10k-labels-idx1-ubyte" in message
    assert "0x00000802" in message
    assert "0x00000801" in message


def test_header_claiming_more_items_than_present_is_reported(tmp_path):
    content = bytearray(idx_bytes(np.zeros(5, np.uint8)))
    content[4:8] = (6).to_bytes(4, "big")
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes(content)))
    message = dataset_error(read_idx, path)
    assert "t10k-labels-idx1-ubyte.gz is truncated" in message
    assert "expected 14 bytes after decompression, got 13" in message


def test_bytes_beyond_what_the_header_says_are_reported(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(5, np.uint8)) + b"\x00")
    message = dataset_error(read_idx, path)
    assert "t10k-labels-idx1-ubyte is longer than its header says" in message


def test_images_of_the_wrong_size_are_rejected(tmp_path):
    contents = synthetic_contents()
    contents["t10k-images-idx3-ubyte"] = idx_bytes(np.zeros((3, 27, 28), np.uint8))
    message = dataset_error(load_mnist, write_dataset(tmp_path, contents), verify=False)
    assert "t10k-images-idx3-ubyte.gz holds 27x28 images, expected 28x28 images" in message


def test_labels_in_place_of_images_are_rejected(tmp_path):
    contents = synthetic_contents()
    contents["train-images-idx3-ubyte"] = contents["train-labels-idx1-ubyte"]
    message = dataset_error(load_mnist, write_dataset(tmp_path, contents), verify=False)
    assert "train-images-idx3-ubyte.gz holds labels" in message


def test_images_in_place_of_labels_are_rejected(tmp_path):
    contents = synthetic_contents()
    contents["t10k-labels-idx1-ubyte"] = contents["t10k-images-idx3-ubyte"]
    message = dataset_error(load_mnist, write_dataset(tmp_path, contents), verify=False)
    assert "t10k-labels-idx1-ubyte.gz holds images" in message


def test_label_count_must_match_image_count(tmp_path):
    contents = synthetic_contents(n_train=6)
    contents["train-labels-idx1-ubyte"] = idx_bytes(np.zeros(5, np.uint8))
    message = dataset_error(load_mnist, write_dataset(tmp_path, contents), verify=False)
    assert "train-labels-idx1-ubyte.gz has 5 labels but its images file has 6 images" in message


def test_labels_outside_0_to_9_are_rejected(tmp_path):
    contents = synthetic_contents(n_test=3)
    contents["t10k-labels-idx1-ubyte"] = idx_bytes(np.array([0, 10, 2], np.uint8))
    message = dataset_error(load_mnist, write_dataset(tmp_path, contents), verify=False)
    assert "t10k-labels-idx1-ubyte.gz contains label 10" in message


def test_one_modified_byte_fails_the_checksum(real_copy, originals):
    content = bytearray(originals["t10k-images-idx3-ubyte"])
    content[5000] ^= 0xFF
    (real_copy / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(content, compresslevel=1))
    message = dataset_error(load_mnist, real_copy)
    assert "t10k-images-idx3-ubyte.gz differs from the original MNIST" in message
    assert mnist.SHA256["t10k-images-idx3-ubyte"] in message


def test_checksum_is_not_fooled_by_a_matching_sha256sums_file(real_copy, originals):
    content = bytearray(originals["t10k-labels-idx1-ubyte"])
    content[-1] = (content[-1] + 1) % 10
    (real_copy / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(content))
    sums = {name: mnist.SHA256[name] for name in NAMES}
    sums["t10k-labels-idx1-ubyte"] = hashlib.sha256(content).hexdigest()
    (real_copy / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sums.items()))
    assert "differs from the original MNIST" in dataset_error(load_mnist, real_copy)


def test_the_test_half_alone_lets_the_training_images_go(mnist):
    half = mnist.test_only()
    assert half.train_images.shape == (0, *mnist.train_images.shape[1:])
    assert len(half.train_labels) == 0
    # Nothing of it keeps the training arrays alive.
    assert not np.shares_memory(half.train_images, mnist.train_images)
    assert half.train_images.base is None
    assert half.test_images is mnist.test_images
    assert half.test_labels is mnist.test_labels
