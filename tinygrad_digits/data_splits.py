"""Train / validation / test splits of decoded MNIST, scaled to [0, 1] and flattened.

Images arrive as uint8 ``(n, rows, cols)`` and leave as float32 ``(n, rows * cols)`` in [0, 1]
(``x / 255``, so 255 becomes exactly 1); labels leave as int64 ``(n,)``. The split is seeded and
deterministic: the same seed gives the same validation set on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Splits", "scale", "split", "split_scaled"]


@dataclass(frozen=True, eq=False, repr=False)
class Splits:
    """Train / validation / test sets ready for training.

    Images are float32 ``(n, 784)`` in [0, 1] (``(n, rows*cols)`` in general), labels int64
    ``(n,)``. With the defaults: 48000 train, 12000 validation, 10000 test. ``seed`` is the
    seed of the train/validation split.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int

    def let_go_of_training(self) -> None:
        """Drop the training and validation images (they become 0-row arrays, labels stay), for
        a caller that has handed them to a run that consumes them: their memory goes with the
        run's last reference."""
        for name in ("x_train", "x_val"):
            value = getattr(self, name)
            object.__setattr__(self, name, value[:0].copy())

    def __repr__(self) -> str:
        return (
            f"Splits(train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, seed={self.seed})"
        )


def scale(images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 images ``(n, ...)`` as float32 rows ``(n, prod(...))``, ``x / 255`` in [0, 1].

    Written into ``out`` (float32, that shape; e.g. a memory-mapped file) when given, so the
    float32 array is the only one allocated.
    """
    flat = images.reshape(len(images), math.prod(images.shape[1:]))
    if out is None:
        out = np.empty(flat.shape, np.float32)
    return np.divide(flat, np.float32(255), out=out, dtype=np.float32)  # 255 / 255 is exactly 1


def _check_pair(images: np.ndarray, labels: np.ndarray, which: str, dtype: type, layout: str) -> None:
    if images.dtype != dtype or images.ndim < 2:
        raise ValueError(
            f"split: expected {which}_images as {np.dtype(dtype)} {layout}, got {images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"split: expected {which}_labels as integers of shape ({len(images)},) to "
            f"match {which}_images, got {labels.dtype} {labels.shape}"
        )


def _indices(n: int, seed: int, validation: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation indices, training indices) of a seeded permutation of ``n`` images."""
    integer = isinstance(validation, int | np.integer) and not isinstance(validation, bool)
    if not integer or not 0 <= validation < n:
        raise ValueError(f"split: validation must be an integer count in [0, {n}), got {validation!r}")
    order = np.random.default_rng(seed).permutation(n)
    return order[:validation], order[validation:]


def split(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    seed: int = 0,
    validation: int = 12000,
) -> Splits:
    """Seeded, deterministic train/validation split; images scaled and flattened.

    Args:
        train_images, test_images: uint8 ``(n, 28, 28)`` (any ``(n, ...)`` is flattened).
        train_labels, test_labels: integer ``(n,)``.
        seed: seeds ``np.random.default_rng(seed).permutation`` of the training indices; the
            first ``validation`` of them form the validation set.
        validation: validation-set size, in ``[0, n_train)``.

    Returns:
        ``Splits`` with float32 ``(n, 784)`` images in [0, 1] and int64 labels.

    Raises:
        ValueError: naming the value, for a bad ``validation`` or mismatched arrays.
    """
    train_images, train_labels = np.asarray(train_images), np.asarray(train_labels)
    test_images, test_labels = np.asarray(test_images), np.asarray(test_labels)
    _check_pair(train_images, train_labels, "train", np.uint8, "(n, rows, cols)")
    _check_pair(test_images, test_labels, "test", np.uint8, "(n, rows, cols)")
    val_index, train_index = _indices(len(train_images), seed, validation)
    x_val, x_train = scale(train_images[val_index]), scale(train_images[train_index])
    x_test = scale(test_images)
    return _splits(x_train, x_val, x_test, train_labels, test_labels, train_index, val_index, seed)


def split_scaled(
    train_x: np.ndarray,
    train_labels: np.ndarray,
    test_x: np.ndarray,
    test_labels: np.ndarray,
    seed: int = 0,
    validation: int = 12000,
    release: Callable[[int, int], None] | None = None,
) -> Splits:
    """``split`` of images already scaled (float32 rows, as ``scale`` returns): the same Splits.

    The training and validation rows are gathered into new arrays; ``test_x`` is used as it is,
    not copied (a read-only memory map stays one). ``train_x`` is read through once in blocks of
    rows, and ``release(start, stop)`` is called after each block is copied (a memory map can
    drop those pages then). Raises ValueError as ``split`` does.
    """
    _check_pair(train_x, train_labels, "train", np.float32, "rows (n, rows * cols)")
    _check_pair(test_x, test_labels, "test", np.float32, "rows (n, rows * cols)")
    val_index, train_index = _indices(len(train_x), seed, validation)
    x_val, x_train = _gather(train_x, (val_index, train_index), release)
    return _splits(x_train, x_val, test_x, train_labels, test_labels, train_index, val_index, seed)


def _splits(x_train, x_val, x_test, train_labels, test_labels, train_index, val_index, seed) -> Splits:
    """The Splits of gathered images, with their labels gathered the same way, as int64."""
    return Splits(
        x_train=x_train,
        y_train=train_labels[train_index].astype(np.int64),
        x_val=x_val,
        y_val=train_labels[val_index].astype(np.int64),
        x_test=x_test,
        y_test=test_labels.astype(np.int64),
        seed=seed,
    )


def _gather(
    x: np.ndarray,
    parts: tuple[np.ndarray, ...],
    release: Callable[[int, int], None] | None,
    block: int = 4096,
) -> list[np.ndarray]:
    """``[x[index] for index in parts]`` (the parts partition the rows), reading ``x`` in order."""
    out = [np.empty((len(index),) + x.shape[1:], x.dtype) for index in parts]
    part = np.empty(len(x), np.intp)  # which part each source row goes to, and where in it
    place = np.empty(len(x), np.intp)
    for k, index in enumerate(parts):
        part[index] = k
        place[index] = np.arange(len(index))
    for start in range(0, len(x), block):
        stop = min(start + block, len(x))
        rows = np.arange(start, stop)
        for k, target in enumerate(out):
            mine = rows[part[start:stop] == k]
            target[place[mine]] = x[mine]
        if release is not None:
            release(start, stop)
    return out
