"""MNIST on disk: parse, verify, locate, download, cache and split the four IDX files.

The work is done in four modules; this one is their public surface, and ``load_splits`` is
what training calls:

- ``data_idx``: parsing gzip IDX files and checking their SHA-256 (``read_idx``, ``DataError``);
- ``data_files``: locating the files, downloading the missing ones, reading them as uint8 arrays
  (``find_data``, ``download``, ``ensure_data``, ``load_mnist``);
- ``data_splits``: the seeded train / validation split, images scaled to float32 in [0, 1]
  (``split``, ``Splits``);
- ``data_cache``: the decoded, scaled arrays kept per user as memory-mapped ``.npy`` files.

Contract shared by all of them:

- Raw arrays are uint8: labels ``(n,)``, images ``(n, 28, 28)``. Splits hold float32
  ``(n, 784)`` images scaled to [0, 1] and int64 labels.
- Every problem with the data raises ``DataError`` (a ``ValueError``) whose one-line message
  names the file (or URL), says what was expected and what was found; the CLI prints it as is.
  Bad arguments raise a plain ``ValueError`` naming the function and the value.
- Files are looked for in: an explicit directory, ``$DIGITS_DATA``, the checkout's
  ``data/mnist``, then ``paths.cache_dir()/"mnist"``; only a download touches the network.
  Every file written (a download, a cache entry) appears under its final name complete.
"""

from __future__ import annotations

import os

from tinygrad_digits.data_cache import load_arrays, release_rows
from tinygrad_digits.data_files import (
    DATA_ENV,
    FILES,
    MIRRORS,
    MIRRORS_ENV,
    SHA256,
    Progress,
    download,
    ensure_data,
    find_data,
    load_mnist,
)
from tinygrad_digits.data_idx import DataError, read_idx
from tinygrad_digits.data_splits import Splits, split, split_scaled

__all__ = [
    "DATA_ENV",
    "FILES",
    "MIRRORS",
    "MIRRORS_ENV",
    "SHA256",
    "DataError",
    "Progress",
    "Splits",
    "download",
    "ensure_data",
    "find_data",
    "load_mnist",
    "load_splits",
    "read_idx",
    "split",
]


def load_splits(
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    validation: int = 12000,
    progress: Progress | None = None,
) -> Splits:
    """The MNIST splits: ``split(*load_mnist(data_dir, progress=progress), seed, validation)``.

    The decoded, scaled arrays come from the per-user cache (``data_cache``), so only the first
    run decodes the files; the result is the same. ``x_test`` is a read-only memory map; the
    training and validation images are gathered into memory, the map of all training images read
    through once and let go page by page, so they are resident once, not twice. Raises
    ``DataError`` as ``load_mnist`` does.
    """
    directory = ensure_data(data_dir, progress=progress)
    train_x, train_labels, test_x, test_labels = load_arrays(directory)
    return split_scaled(
        train_x, train_labels, test_x, test_labels, seed=seed, validation=validation,
        release=lambda start, stop: release_rows(train_x, start, stop),
    )
