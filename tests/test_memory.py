"""A consuming training run lets go of the training images: the fused path trains on their
sparse copy, so the dense ones are freed while it trains, and the model is the same."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from tinygrad_digits.apps import training as app
from tinygrad_digits.data_splits import Splits
from tinygrad_digits.modelfile import load_model


def _splits(mnist_splits) -> Splits:
    """600 training and 200 validation images of MNIST's, as writable arrays of their own."""
    s = mnist_splits
    return Splits(s.x_train[:600].copy(), s.y_train[:600], s.x_val[:200].copy(), s.y_val[:200],
                  s.x_test[:300], s.y_test[:300], s.seed)


@pytest.mark.parametrize("consume", [True, False])
def test_the_dense_training_images_live_only_while_a_run_needs_them(mnist_splits, tmp_path, consume):
    splits = _splits(mnist_splits)
    images = weakref.ref(splits.x_train)
    alive = []
    app.train_and_save(app.TrainRun(epochs=2), splits, tmp_path / "m.npz", consume=consume,
                       on_epoch=lambda record, params: alive.append(images() is not None))
    assert alive == [not consume] * 2
    assert (splits.x_train.shape == (0, 784)) is consume
    assert len(splits.y_train) == 600 and len(splits.x_test) == 300


def test_a_consuming_run_trains_the_same_model(mnist_splits, tmp_path):
    for consume in (True, False):
        app.train_and_save(app.TrainRun(epochs=2), _splits(mnist_splits), tmp_path / f"{consume}.npz",
                           consume=consume)
    (_, kept), (_, consumed) = (load_model(tmp_path / f"{c}.npz")[:2] for c in (False, True))
    assert sorted(kept) == sorted(consumed)
    for key in kept:
        np.testing.assert_array_equal(kept[key], consumed[key])
