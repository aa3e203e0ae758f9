"""Augmentation: the warp kernel's geometry (identity, shifts, rotations), seeded draws, and that
the recipes keep labels (a trained model still reads the digits) and image statistics (mean
intensity, ink mass, range)."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_digits import augment as A
from tinygrad_digits import model as M
from tinygrad_digits import optimizers as O
from tinygrad_digits import train as T
from tinygrad_digits import registry

RECIPES = [name for name, config in A.AUGMENTATIONS.items() if config is not None]
# the recipes that only move ink (the others also change it: test_augment_ink.py)
INK = ("thickness", "blur", "low_res", "contrast", "noise")
GEOMETRIC = [name for name in RECIPES if not any(getattr(A.AUGMENTATIONS[name], f) for f in INK)]


def identity(n):
    return np.tile(np.eye(2), (n, 1, 1)), np.zeros((n, 2))


@pytest.fixture(scope="module")
def digits(mnist_splits):
    return mnist_splits.x_test[:500], mnist_splits.y_test[:500]


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 33])
def test_a_zero_transform_is_the_identity(n, dtype, rng):
    images = rng.random((n, 784)).astype(dtype)
    matrices, offsets = identity(n)
    for fields in (None, np.zeros((n, 2, 5, 5))):
        out = A.warp(images, matrices, offsets, fields)
        assert out.dtype == dtype and out.shape == images.shape
        np.testing.assert_array_equal(out, images)


def test_zero_ranges_draw_the_identity(rng):
    images = rng.random((5, 784)).astype(np.float32)
    config = A.AugmentConfig(max_shift=0, max_rotation=0, max_scale=0, elastic=0)
    np.testing.assert_array_equal(A.augment_batch(config, images, np.random.default_rng(0)), images)


def test_an_integer_shift_moves_pixels_and_fills_the_border(rng):
    images = rng.random((2, 36))
    matrices, _ = identity(2)
    out = A.warp(images, matrices, np.array([[1.0, 0.0], [0.0, -2.0]]), fill=-1.0)
    a, b = images.reshape(2, 6, 6), out.reshape(2, 6, 6)
    np.testing.assert_array_equal(b[0, :5], a[0, 1:])  # reads one row down: content moves up
    np.testing.assert_array_equal(b[0, 5], -1.0)
    np.testing.assert_array_equal(b[1, :, 2:], a[1, :, :4])  # reads two columns left
    np.testing.assert_array_equal(b[1, :, :2], -1.0)


def test_a_quarter_turn_is_rot90(rng):
    images = rng.random((3, 64))
    # output (r, c) reads input (c, side - 1 - r): np.rot90's anticlockwise quarter turn
    matrices = np.tile(np.array([[0.0, 1.0], [-1.0, 0.0]]), (3, 1, 1))
    out = A.warp(images, matrices, np.zeros((3, 2))).reshape(3, 8, 8)
    turned = np.array([np.rot90(image.reshape(8, 8)) for image in images])
    np.testing.assert_allclose(out, turned, atol=1e-12)


def test_a_half_pixel_shift_averages_neighbours(rng):
    images = rng.random((1, 16))
    out = A.warp(images, *[identity(1)[0]], np.array([[0.0, 0.5]])).reshape(4, 4)
    a = images.reshape(4, 4)
    np.testing.assert_allclose(out[:, :3], (a[:, :3] + a[:, 1:]) / 2)


def test_background_fill_commutes_with_standardization(digits):
    x = digits[0][:20]
    mean, std = 0.13, 0.31
    config = A.augmentation("elastic")
    raw = A.augment_batch(config, x, np.random.default_rng(4))
    standardized = A.augment_batch(config, (x - mean) / std, np.random.default_rng(4), fill=-mean / std)
    np.testing.assert_allclose(standardized, (raw - mean) / std, atol=1e-5)


# ---------------------------------------------------------------- draws


@pytest.mark.parametrize("name", RECIPES)
def test_same_generator_same_images_other_seed_other_images(name, digits):
    config = A.augmentation(name)
    x = digits[0][:10]
    a = A.augment_batch(config, x, np.random.default_rng(1))
    b = A.augment_batch(config, x, np.random.default_rng(1))
    c = A.augment_batch(config, x, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == x.dtype


def test_draws_stay_in_their_ranges():
    config = A.AugmentConfig(max_shift=2, max_rotation=10, max_scale=0.1, elastic=1.0, elastic_grid=4)
    matrices, offsets, fields = A.random_transforms(config, 2000, np.random.default_rng(0))
    assert np.abs(offsets).max() <= 2 and np.abs(offsets).max() > 1.9
    scale = 1 / np.sqrt(np.abs(np.linalg.det(matrices)))
    assert scale.min() >= 0.9 - 1e-12 and scale.max() <= 1.1 + 1e-12
    angle = np.degrees(np.arctan2(matrices[:, 0, 1], matrices[:, 0, 0]))
    assert np.abs(angle).max() <= 10 + 1e-9 and np.abs(angle).max() > 9.5
    assert fields.shape == (2000, 2, 4, 4) and fields.std() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(
    "kwargs", [{"max_shift": -1}, {"max_rotation": float("nan")}, {"max_scale": 1.0}, {"elastic_grid": 1}]
)
def test_bad_configs_are_rejected(kwargs):
    with pytest.raises(ValueError, match="AugmentConfig"):
        A.AugmentConfig(**kwargs)


def test_bad_shapes_are_rejected(rng):
    with pytest.raises(ValueError, match="square images"):
        A.augment_batch(A.augmentation("shift"), rng.random((2, 10)), rng)
    with pytest.raises(ValueError, match="matrices"):
        A.warp(rng.random((2, 16)), np.zeros((3, 2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        A.augmentation("blur")


def test_the_cli_lists_every_recipe():
    assert tuple(A.AUGMENTATIONS) == registry.AUGMENTATIONS


# ---------------------------------------------------------------- labels and statistics


@pytest.mark.parametrize("name", GEOMETRIC)
def test_image_statistics_are_roughly_preserved(name, digits):
    assert GEOMETRIC == ["shift", "affine", "elastic"]
    x = digits[0]
    out = A.augment_batch(A.augmentation(name), x, np.random.default_rng(0))
    assert out.min() >= 0 and out.max() <= 1  # bilinear: convex combinations of [0, 1] pixels
    ink, new_ink = x.sum(axis=1), out.sum(axis=1)
    assert new_ink.mean() == pytest.approx(ink.mean(), rel=0.05)  # mean intensity
    ratio = new_ink / ink
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
    assert ratio.min() > 0.5 and ratio.max() < 1.6  # ink mass per image: scaling by up to 10%, local strain
    grid = np.indices((28, 28)).reshape(2, -1)
    centre, new_centre = x @ grid.T / ink[:, None], out @ grid.T / new_ink[:, None]
    assert np.abs(new_centre - centre).max() < 5  # shifts of at most 2 px and a small warp
    assert out.std() == pytest.approx(x.std(), rel=0.15)


@pytest.fixture(scope="module")
def reader(mnist_splits):
    """A 784-64relu-10 model trained on 6,000 images without augmentation (about 94%)."""
    s = mnist_splits
    x, y = s.x_train[:6000], s.y_train[:6000]
    spec = M.ModelSpec(
        hidden=(64,), activations=("relu",), input_mean=float(x.mean()), input_std=float(x.std())
    )
    params = M.init_params(spec, np.random.default_rng(0))
    optimizer = O.OptimizerConfig("adam", total_steps=3 * T.steps_per_epoch(6000, 64))
    T.train(
        spec, params, M.normalize(spec, x), y, x[:0], y[:0], T.TrainConfig(epochs=3, batch_size=64), optimizer
    )
    return spec, params


def recentred(images: np.ndarray, like: np.ndarray) -> np.ndarray:
    """images shifted (bilinearly) so that each one's centre of mass is that of ``like``'s."""
    grid = np.indices((28, 28)).reshape(2, -1).T.astype(float)
    shift = images @ grid / images.sum(axis=1, keepdims=True) - like @ grid / like.sum(axis=1, keepdims=True)
    return A.warp(images, np.tile(np.eye(2), (len(images), 1, 1)), shift)


@pytest.mark.parametrize(("name", "loss"), [("shift", 0.03), ("affine", 0.04), ("elastic", 0.10)])
def test_augmented_digits_keep_their_labels(name, loss, reader, digits):
    # A model that never saw augmented digits still reads them nearly as well once they are
    # moved back to where the digit was (an MLP is not shift-invariant; MNIST digits are
    # centred by their centre of mass): the transforms are small enough that a 3 stays a 3.
    spec, params = reader
    x, y = digits
    plain = np.mean(M.predict(spec, params, x) == y)
    out = A.augment_batch(A.augmentation(name), x, np.random.default_rng(0))
    augmented = np.mean(M.predict(spec, params, recentred(out, x)) == y)
    assert plain > 0.9
    assert augmented > plain - loss


# ---------------------------------------------------------------- in the training loop


def test_the_training_hook_sees_every_batch_and_keeps_labels(digits, monkeypatch):
    x, y = digits
    spec = M.ModelSpec(hidden=(16,), activations=("relu",))
    calls = []
    augmenter = A.BatchAugmenter(A.augmentation("affine"))

    def hook(xb, rng):
        calls.append(len(xb))
        assert isinstance(rng, np.random.Generator)
        return augmenter(xb, rng)

    def run():
        params = M.init_params(spec, np.random.default_rng(0))
        config = T.TrainConfig(epochs=2, batch_size=64)
        return T.train(
            spec,
            params,
            x,
            y,
            x[:100],
            y[:100],
            config,
            O.OptimizerConfig("adam", total_steps=16),
            augment=hook,
        )

    a = run()
    assert calls == [64] * 7 + [52] + [64] * 7 + [52]
    b = run()
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert np.array_equal(a.params["dense0.W"], b.params["dense0.W"])
    # the fused kernel cannot augment: a hook means the general path, whatever the spec
    monkeypatch.setattr(T.fastpath, "FusedSteps", None)  # would fail if used
    run()


def test_batch_augmenter_keeps_a_convnet_batch_s_image_shape(rng):
    """(n, 28, 28, 1) in, the same shape out, the same images as the rows (n, 784) give."""
    augmenter = A.BatchAugmenter(A.augmentation("elastic"), fill=-0.4)
    rows = rng.random((5, 784)).astype(np.float32)
    images = augmenter(rows.reshape(5, 28, 28, 1), np.random.default_rng(3))
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(images.reshape(5, 784), augmenter(rows, np.random.default_rng(3)))
    assert not np.array_equal(images.reshape(5, 784), rows)
