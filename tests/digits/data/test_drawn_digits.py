"""Specification of drawn_digits.py: MNIST test digits redrawn the way people draw them."""

import numpy as np
import pytest
from PIL import Image

from digits.data.drawn_digits import (
    CANVAS_SIDE,
    HEIGHT_FRACTION,
    INK_LEVEL,
    PAPER_ASPECT,
    PAPER_HEIGHT,
    STYLES,
    UPSCALE,
    digit_skeleton,
    drawn_test_set,
    render,
    skeletonize,
)
from digits.data.mnist import IMAGE_SIDE

# 4- and 8-neighbour offsets for counting connected pieces of a mask.
FOUR = ((-1, 0), (1, 0), (0, -1), (0, 1))
EIGHT = (*FOUR, (-1, -1), (-1, 1), (1, -1), (1, 1))


def count_components(mask: np.ndarray, offsets) -> int:
    """Connected components of an (H, W) bool mask, by union-find over neighbouring pixel pairs."""
    height, width = mask.shape
    index = np.arange(mask.size).reshape(mask.shape)
    pairs = []
    for dy, dx in offsets:
        if (dy, dx) > (0, 0):  # each pair once
            rows, cols = slice(0, height - dy), slice(max(0, -dx), width - max(0, dx))
            moved = (slice(dy, height), slice(max(0, dx), width - max(0, -dx)))
            linked = mask[rows, cols] & mask[moved]
            pairs.append((index[rows, cols][linked], index[moved][linked]))
    a, b = (np.concatenate(side) for side in zip(*pairs, strict=True))
    parent = np.arange(mask.size)
    while True:
        # Hook the larger root under the smaller, then flatten the trees.
        low, high = np.minimum(parent[a], parent[b]), np.maximum(parent[a], parent[b])
        if np.array_equal(low, high):
            return len(np.unique(parent[mask.ravel()]))
        np.minimum.at(parent, high, low)
        while not np.array_equal(parent, parent[parent]):
            parent = parent[parent]


def topology(mask: np.ndarray) -> tuple[int, int]:
    """(pieces, holes) of a shape: 8-connected ink, and 4-connected background enclosed by it."""
    background = ~np.pad(mask, 1)
    return count_components(mask, EIGHT), count_components(background, FOUR) - 1


def has_2x2_block(mask: np.ndarray) -> bool:
    """Whether any 2x2 square of an (H, W) bool mask is all set, i.e. a line is 2 px thick."""
    return bool((mask[:-1, :-1] & mask[1:, :-1] & mask[:-1, 1:] & mask[1:, 1:]).any())


def ink_of(image: np.ndarray) -> np.ndarray:
    """The ink (H, W) uint8 of a canvas-style (white on black) or transparent-style image."""
    return image[..., 3] if (image[..., :3] == 0).all() else image[..., 0]


@pytest.fixture(scope="module")
def ring() -> np.ndarray:
    rows, cols = np.mgrid[0:64, 0:64]
    radius = np.hypot(rows - 31.5, cols - 31.5)
    return (radius >= 12) & (radius <= 24)


def test_a_thick_ring_thins_to_a_one_pixel_closed_loop(ring):
    skeleton = skeletonize(ring)
    assert topology(ring) == (1, 1)
    assert topology(skeleton) == (1, 1)
    assert not has_2x2_block(skeleton)
    # The loop runs along the middle of the ring, not along an edge.
    rows, cols = np.nonzero(skeleton)
    assert np.all(np.abs(np.hypot(rows - 31.5, cols - 31.5) - 18) <= 2)


def test_a_thick_bar_thins_to_one_line_along_its_middle():
    bar = np.zeros((30, 60), bool)
    bar[10:20, 5:55] = True
    skeleton = skeletonize(bar)
    assert topology(skeleton) == (1, 0)
    assert not has_2x2_block(skeleton)
    # Away from the ends, each column holds exactly one skeleton pixel, near the middle row.
    middle = skeleton[:, 15:45]
    assert np.all(middle.sum(axis=0) == 1)
    assert np.all(np.abs(np.nonzero(middle)[0] - 14.5) <= 1)


def test_thinning_keeps_the_loops_and_pieces_of_real_mnist_digits(mnist):
    # Eights have two loops, the first hundred test digits add the odd broken stroke, and the
    # last four have specks that plain Zhang-Suen erases.
    eights = np.flatnonzero(mnist.test_labels == 8)[:20]
    for index in np.concatenate([eights, np.arange(100), [1138, 1367, 1823, 1941]]):
        digit = mnist.test_images[index]
        size = (IMAGE_SIDE * UPSCALE, IMAGE_SIDE * UPSCALE)
        big = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.BILINEAR))
        mask = big >= INK_LEVEL
        skeleton = skeletonize(mask)
        assert topology(skeleton) == topology(mask), f"test digit {index}"
        assert not has_2x2_block(skeleton), f"test digit {index}"


def test_the_pen_path_joins_neighbouring_points_within_the_digit(mnist):
    points, segments = digit_skeleton(mnist.test_images[0])
    assert points.shape[1] == 2
    assert segments.shape[1:] == (2, 2)
    assert points.min() >= 0
    assert points.max() <= IMAGE_SIDE
    # Smoothing moves points by less than a pixel, so segments stay short.
    assert np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1).max() < 1


@pytest.mark.parametrize("style", STYLES)
def test_each_style_returns_the_documented_shape_and_dtype(mnist, style):
    images, labels = drawn_test_set(style, 5, seed=0, data=mnist)
    assert labels.tolist() == mnist.test_labels[:5].tolist()
    for image in images:
        assert image.dtype == np.uint8
        if style == "paper":
            height, width, channels = image.shape
            assert channels == 3
            assert PAPER_HEIGHT[0] <= height <= PAPER_HEIGHT[1]
            assert PAPER_ASPECT[0] - 0.01 <= width / height <= PAPER_ASPECT[1] + 0.01
            assert height != width
        else:
            assert image.shape == (CANVAS_SIDE, CANVAS_SIDE, 4)


@pytest.mark.parametrize("style", STYLES)
def test_drawings_are_the_same_for_a_seed_and_differ_between_seeds(mnist, style):
    first, _ = drawn_test_set(style, 3, seed=7, data=mnist)
    again, _ = drawn_test_set(style, 3, seed=7, data=mnist)
    other, _ = drawn_test_set(style, 3, seed=8, data=mnist)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not any(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other, strict=True)
    )


def test_a_smaller_set_is_the_start_of_a_larger_one(mnist):
    small, _ = drawn_test_set("canvas", 2, seed=3, data=mnist)
    large, _ = drawn_test_set("canvas", 4, seed=3, data=mnist)
    assert all(np.array_equal(a, b) for a, b in zip(small, large, strict=False))


@pytest.mark.parametrize("style", ["canvas", "transparent"])
def test_the_whole_digit_lies_inside_the_canvas_at_the_promised_height(mnist, style):
    images, _ = drawn_test_set(style, 20, seed=1, data=mnist)
    for image in images:
        ink = ink_of(image)
        frame = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
        assert not frame.any()
        rows = np.flatnonzero(ink.max(axis=1) >= INK_LEVEL)
        height = (rows[-1] - rows[0] + 1) / CANVAS_SIDE
        assert HEIGHT_FRACTION[0] - 0.02 <= height <= HEIGHT_FRACTION[1] + 0.01


def test_canvas_style_is_anti_aliased_white_ink_on_opaque_black(mnist):
    (image,), _ = drawn_test_set("canvas", 1, seed=0, data=mnist)
    assert (image[..., 3] == 255).all()
    assert (image[..., 0] == image[..., 1]).all()
    assert (image[..., 0] == image[..., 2]).all()
    levels = np.unique(image[..., 0])
    assert levels[0] == 0
    assert levels[-1] == 255
    assert len(levels) > 5  # edge pixels in between: anti-aliasing


def test_transparent_style_has_ink_only_in_alpha(mnist):
    images, _ = drawn_test_set("transparent", 5, seed=0, data=mnist)
    for image in images:
        assert (image[..., :3] == 0).all()
        alpha = image[..., 3]
        assert alpha.max() == 255
        assert (alpha == 0).mean() > 0.5  # mostly see-through


def test_paper_style_is_dark_ink_on_light_paper(mnist):
    images, _ = drawn_test_set("paper", 5, seed=0, data=mnist)
    for image in images:
        gray = image.mean(axis=2)
        assert np.median(gray) > 150
        assert np.percentile(gray, 0.5) < np.median(gray) - 80


def test_unknown_style_is_refused_with_the_choices(mnist):
    with pytest.raises(ValueError, match="canvas, paper, transparent"):
        render(mnist.test_images[0], "crayon", np.random.default_rng(0))


def test_with_the_committed_model_the_product_reads_canvas_drawings_better_than_resizing(mnist):
    model_loader = pytest.importorskip("model_loader")
    if not model_loader.MODEL_PATH.exists():
        pytest.skip("no trained model_params.pkl")
    from digits.data.preprocess import naive_preprocess, preprocess

    classifier = model_loader.load_classifier()
    count = 100
    images, labels = drawn_test_set("canvas", count, seed=0, data=mnist)
    results = [preprocess(image) for image in images]
    found = np.array([result.has_digit for result in results])
    product = np.full(count, -1)
    if found.any():
        vectors = np.stack([result.vector for result in results if result.has_digit])
        product[found] = classifier.predict_proba(vectors).argmax(axis=1)
    naive = np.stack([naive_preprocess(image).ravel() for image in images])
    naive_correct = int((classifier.predict_proba(naive).argmax(axis=1) == labels).sum())
    product_correct = int((product == labels).sum())
    assert product_correct >= 0.9 * count
    assert product_correct > naive_correct
