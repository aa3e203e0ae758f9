"""The per-user cache of decoded MNIST (tinygrad_digits.data_cache): same splits as decoding the
files, rebuilt when a source file changes, and never trusted when an entry is damaged."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinygrad_digits import data, data_cache, paths
from tinygrad_digits.data import FILES
from tinygrad_digits.data_splits import scale, split_scaled

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "mnist"
FIELDS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@pytest.fixture(scope="module")
def expected() -> data.Splits:
    """The splits decoded straight from the files, without the cache."""
    return data.split(*data.load_mnist(SHIPPED), seed=0)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    directory = tmp_path / "mnist"
    shutil.copytree(SHIPPED, directory)
    return directory


def assert_same(splits: data.Splits, expected: data.Splits) -> None:
    for field in FIELDS:
        a, b = getattr(splits, field), getattr(expected, field)
        assert a.dtype == b.dtype and a.shape == b.shape, field
        assert np.array_equal(a, b), field


def entries() -> list[Path]:
    root = data_cache.cache_root()
    return sorted(root.iterdir()) if root.is_dir() else []


def test_the_cache_gives_the_same_splits_and_is_read_back(source, expected, monkeypatch) -> None:
    assert entries() == []
    assert_same(data.load_splits(source, seed=0), expected)
    (entry,) = entries()
    assert entry.name == data_cache.source_key(source)
    assert entry.is_relative_to(paths.cache_dir())
    assert sorted(p.name for p in entry.iterdir()) == sorted(f"{stem}.npy" for stem in FILES)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded the files again")

    monkeypatch.setattr(data_cache, "load_mnist", no_decoding)
    splits = data.load_splits(source, seed=0)
    assert_same(splits, expected)
    assert not splits.x_test.flags.writeable  # the memory map itself, read-only
    other = data.load_splits(source, seed=5)  # another split of the same cached arrays
    assert not np.array_equal(other.y_val, expected.y_val)
    assert sorted(np.concatenate([other.y_train, other.y_val]).tolist()) == sorted(
        np.concatenate([expected.y_train, expected.y_val]).tolist()
    )


def test_a_changed_source_file_builds_a_new_entry(source, expected) -> None:
    data.load_splits(source)
    (old,) = entries()
    small = source / FILES["test_labels"]
    small.write_bytes(gzip.compress(gzip.decompress(small.read_bytes()), compresslevel=1, mtime=12345))
    assert_same(data.load_splits(source), expected)  # the same contents, other bytes
    (new,) = entries()  # the old entry is gone
    assert new != old and new.name == data_cache.source_key(source)


def corrupt_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"not an array at all" * 10)


def corrupt_dtype(path: Path) -> None:
    np.save(path, np.load(path).astype(np.int64))


def corrupt_shape(path: Path) -> None:
    np.save(path, np.load(path)[:-1])


def corrupt_range(path: Path) -> None:
    labels = np.load(path)
    labels[3] = 10
    np.save(path, labels)


def corrupt_pickle(path: Path) -> None:
    np.save(path, np.array([object()] * len(np.load(path)), dtype=object), allow_pickle=True)


def corrupt_fortran(path: Path) -> None:
    labels = np.load(path)
    np.save(path, np.asfortranarray(np.stack([labels, labels], axis=1))[:, 0])


def corrupt_missing(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    ("stem", "corrupt"),
    [
        ("train_images", corrupt_truncated),
        ("test_images", corrupt_garbage),
        ("train_labels", corrupt_dtype),
        ("test_labels", corrupt_shape),
        ("train_labels", corrupt_range),
        ("test_labels", corrupt_pickle),
        ("train_labels", corrupt_fortran),
        ("test_images", corrupt_missing),
    ],
)
def test_a_damaged_entry_is_rebuilt_not_used(source, expected, stem, corrupt) -> None:
    data.load_splits(source)
    (entry,) = entries()
    corrupt(entry / f"{stem}.npy")
    assert_same(data.load_splits(source), expected)
    assert entries() == [entry]
    for name in FILES:  # whole again
        array = np.load(entry / f"{name}.npy", allow_pickle=False)
        assert array.dtype == (np.float32 if name.endswith("images") else np.uint8)


def test_an_unwritable_cache_falls_back_to_memory(source, expected, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache directory cannot be made under a file")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert_same(data.load_splits(source), expected)
    assert blocker.read_text().startswith("the cache directory")


def test_a_bad_source_file_is_an_error_and_nothing_is_cached(source) -> None:
    small = source / FILES["test_labels"]
    raw = bytearray(gzip.decompress(small.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # well-formed, but not the original: only the checksum can tell
    small.write_bytes(gzip.compress(bytes(raw), mtime=0))
    with pytest.raises(data.DataError, match="checksum mismatch"):
        data.load_splits(source)
    assert entries() == []
    corrupt_truncated(small)
    with pytest.raises(data.DataError, match=str(small)):
        data.load_splits(source)


def test_entries_of_builds_that_died_are_cleared_but_fresh_ones_kept(source) -> None:
    root = data_cache.cache_root()
    stale, fresh, other = root / ".stale.part", root / ".fresh.part", root / ("0" * 64)
    for directory in (stale, fresh, other):
        directory.mkdir(parents=True)
    os.utime(stale, (0, 0))
    data.load_splits(source)
    assert sorted(p.name for p in root.iterdir()) == sorted([fresh.name, data_cache.source_key(source)])


def test_released_rows_read_back_the_same(source, expected) -> None:
    data.load_splits(source)
    train_x, _, test_x, _ = data_cache.load_arrays(source)
    before = np.array(train_x[100:5000])
    data_cache.release_rows(train_x, 0, len(train_x))
    data_cache.release_rows(np.zeros((3, 4), np.float32), 0, 3)  # not a map: nothing to do
    assert np.array_equal(train_x[100:5000], before)
    assert np.array_equal(test_x, expected.x_test)


@pytest.mark.parametrize("n", [1, 7, 4097, 9000])
def test_split_scaled_is_split_of_the_scaled_images(rng, n) -> None:
    images = rng.integers(0, 256, (n, 3, 5), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    test = rng.integers(0, 256, (2, 3, 5), dtype=np.uint8)
    test_labels = np.array([1, 2], np.uint8)
    validation = n // 3
    released = []
    got = split_scaled(
        scale(images), labels, scale(test), test_labels, seed=2,
        validation=validation, release=lambda start, stop: released.append((start, stop)),
    )
    assert_same(got, data.split(images, labels, test, test_labels, seed=2, validation=validation))
    assert released[0][0] == 0 and released[-1][1] == n  # every row read, in order, once
    assert all(a[1] == b[0] for a, b in zip(released, released[1:]))
