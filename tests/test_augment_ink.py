"""The ink augmentations (kernels/ink via augment.ink_changes) against NumPy and SciPy references,
the realistic recipe's scaling, and ``digits augment --show``."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import ndimage

from tinygrad_digits import augment as A
from tinygrad_digits.cli.main import main
from tinygrad_digits.kernels import ink

CROSS = ndimage.generate_binary_structure(2, 1)


def images_of(rng, n, side, dtype):
    x = rng.random((n, side * side)).astype(dtype)
    x[x < 0.5] = 0  # paper and ink, as digits have
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, side", [(1, 5), (7, 28), (3, 9)])
def test_thickness_is_cross_dilation_and_erosion_blended(rng, dtype, n, side):
    x, fill = images_of(rng, n, side, dtype), 0.25
    amounts = rng.choice([-1.0, -0.5, 0.0, 0.3, 1.0, 2.0], n)
    got = ink.thickness(x, np.empty_like(x), side, amounts, dtype(fill))
    for image, a, out in zip(x, amounts, got):
        want = image.reshape(side, side).astype(np.float64)
        op = ndimage.grey_dilation if a > 0 else ndimage.grey_erosion
        for p in range(int(np.ceil(abs(a)))):
            t = min(1.0, abs(a) - p)
            want = want + t * (op(want, footprint=CROSS, mode="constant", cval=fill) - want)
        np.testing.assert_allclose(out.reshape(side, side), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, side", [(1, 6), (7, 28)])
def test_blur_is_a_truncated_gaussian(rng, dtype, n, side):
    x, fill = images_of(rng, n, side, dtype), -0.4
    sigmas = rng.choice([0.0, 0.4, 1.0, 1.7], n)
    got = ink.blur(x, np.empty_like(x), side, sigmas, dtype(fill))
    for image, s, out in zip(x, sigmas, got):
        if s == 0:
            np.testing.assert_array_equal(out, image)
            continue
        radius = int(np.ceil(2 * s))
        d = np.arange(-radius, radius + 1)
        w = np.exp(-0.5 * d**2 / s**2)
        w /= w.sum()
        padded = np.pad(image.reshape(side, side).astype(np.float64), radius, constant_values=fill)
        rows = sum(w[i] * padded[:, i : i + side] for i in range(len(w)))[radius:-radius]
        rows = np.pad(rows, ((radius, radius), (0, 0)), constant_values=fill)
        want = sum(w[i] * rows[i : i + side] for i in range(len(w)))
        np.testing.assert_allclose(out.reshape(side, side), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 10, 14, 27, 28])
def test_low_resolution_is_box_down_and_bilinear_up(rng, dtype, size):
    side = 28
    x = images_of(rng, 2, side, dtype)
    got = ink.low_resolution(x, np.empty_like(x), side, np.full(2, size, np.int64), dtype(0))
    centres = (np.arange(side) + 0.5) * size / side
    cell = np.minimum(centres.astype(int), size - 1)
    for image, out in zip(x, got):
        if size >= side:
            np.testing.assert_array_equal(out, image)
            continue
        sums = np.zeros((size, size))
        counts = np.zeros((size, size))
        np.add.at(sums, (cell[:, None], cell[None, :]), image.reshape(side, side))
        np.add.at(counts, (cell[:, None], cell[None, :]), 1)
        low = sums / counts
        at = centres - 0.5  # the pixel centres in low-resolution cell units; np.interp clamps the edges
        up = np.array([np.interp(at, np.arange(size), row) for row in low])
        want = np.array([np.interp(at, np.arange(size), column) for column in up.T]).T
        np.testing.assert_allclose(out.reshape(side, side), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("contrast, noise", [(0.5, 0.0), (0.0, 0.1), (0.5, 0.1)])
def test_contrast_and_noise_follow_their_formulas(rng, dtype, contrast, noise):
    """Peak to 1, then on the chosen images paper + (1 - paper) * clip(x)^gamma; then, on others
    chosen, Gaussian noise clipped to [0, 1]: NumPy with the draws in their documented order."""
    n, side = 40, 28
    x = images_of(rng, n, side, dtype) * dtype(0.8)
    config = A.AugmentConfig(max_shift=0, max_rotation=0, max_scale=0, contrast=contrast, noise=noise,
                             ink_share=0.5)
    got = A.ink_changes(config, x, np.random.default_rng(7))
    draws, want = np.random.default_rng(7), x.astype(np.float64)
    if contrast:
        want = want / want.max(axis=1, keepdims=True)
        on = np.flatnonzero(draws.random(n) < 0.5)
        gamma = np.exp(draws.uniform(-contrast, contrast, len(on)))[:, None]
        paper = draws.uniform(0, contrast / 4, len(on))[:, None]
        want[on] = paper + (1 - paper) * np.clip(want[on], 0, 1) ** gamma
    if noise:
        on = np.flatnonzero(draws.random(n) < 0.5)
        sigma = draws.uniform(0, noise, len(on))[:, None]
        normals = draws.standard_normal((len(on), side * side), dtype=np.float32)
        want[on] = np.clip(want[on] + sigma * normals, 0, 1)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.abs(want - x).max() > 0.05


def test_realistic_on_standardized_inputs_is_realistic_on_raw_ones(mnist_splits):
    config = A.augmentation("realistic")
    x = mnist_splits.x_test[:64].astype(np.float64)
    mean, std = 0.13, 0.31
    raw = A.augment_batch(config, x, np.random.default_rng(5))
    scaled = A.augment_batch(config, (x - mean) / std, np.random.default_rng(5), fill=-mean / std, scale=std)
    np.testing.assert_allclose(scaled * std + mean, raw, atol=1e-9)
    assert raw.min() >= 0 and raw.max() <= 1 + 1e-12
    assert np.abs(raw - A.augment_batch(A.augmentation("elastic"), x, np.random.default_rng(5))).max() > 0.1


@pytest.mark.parametrize("ink", [{"thickness": 1.0}, {"low_res": 8, "noise": 0.1},
                                 {"blur": 1.0, "contrast": 0.5},
                                 {"thickness": 1.0, "blur": 1.0, "low_res": 10, "contrast": 0.5, "noise": 0.05}])
def test_a_batch_is_its_warp_then_its_ink_changes(mnist_splits, ink):
    """augment_batch runs the warp and the ink kernels in one pass over each share of the images:
    the same bits as warp, then ink_changes, with the same draws."""
    x = mnist_splits.x_test[:40].astype(np.float32)
    config = A.AugmentConfig(elastic=1.0, ink_share=0.6, **ink)
    rng_a, rng_b = np.random.default_rng(2), np.random.default_rng(2)
    whole = A.augment_batch(config, x, rng_a, fill=-0.4, scale=0.3)
    steps = A.ink_changes(config, A.warp(x, *A.random_transforms(config, len(x), rng_b), fill=-0.4), rng_b,
                          fill=-0.4, scale=0.3)
    assert whole.tobytes() == steps.tobytes() and rng_a.random() == rng_b.random()
    assert not np.array_equal(whole, A.warp(x, *A.random_transforms(config, len(x), np.random.default_rng(2)),
                                            fill=-0.4))


def test_ink_changes_keep_the_draws_of_recipes_without_them(mnist_splits):
    x = mnist_splits.x_test[:8]
    plain = A.AugmentConfig(elastic=1.0)
    np.testing.assert_array_equal(A.ink_changes(plain, x, np.random.default_rng(0)), x)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    mats, offs, fields = A.random_transforms(plain, len(x), rng_b)
    np.testing.assert_array_equal(A.augment_batch(plain, x, rng_a), A.warp(x, mats, offs, fields))


@pytest.mark.parametrize("field, value", [("thickness", -1), ("blur", 5), ("low_res", 2), ("ink_share", 1.5),
                                          ("noise", float("nan"))])
def test_bad_ink_ranges_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        A.AugmentConfig(**{field: value})


def test_best_preset_uses_realistic():
    from tinygrad_digits.apps import training as app

    assert app.preset_run("best").augment == "realistic"


def test_augment_show_writes_a_grid_of_originals_and_copies(tmp_path):
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["augment", "--show", str(sheet), "--count", "3"])
    assert result.exit_code == 0, result.output
    with Image.open(sheet) as image:
        cell = 28 * 3
        assert image.size == (10 * (cell + 2) + 2, 3 * (cell + 14 + 2) + 2)
        pixels = np.asarray(image.convert("L"), np.float64)
    left = pixels[2 : 2 + cell, 2 : 2 + cell]  # the first original, MNIST's first test digit at 3x
    assert left.max() == 255 and (left == 0).mean() > 0.5
    result = CliRunner().invoke(main, ["augment", "--show", str(tmp_path), "--count", "3"])
    assert result.exit_code == 2 and "--show" in result.stderr
