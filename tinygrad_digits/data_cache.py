"""A per-user cache of decoded MNIST: float32 images in [0, 1] and uint8 labels, memory-mapped.

Decoding the four gzip files and scaling the images costs a few tenths of a second on every
start; reading them back from ``.npy`` files with a memory map costs next to nothing, and their
pages are shared with the page cache instead of being copied into the process.

- An entry is ``paths.cache_dir()/"mnist-arrays"/<key>/`` holding ``train_images.npy`` (float32
  ``(60000, 784)``), ``train_labels.npy`` (uint8 ``(60000,)``), ``test_images.npy`` and
  ``test_labels.npy``. ``<key>`` is a SHA-256 over the cache format and the SHA-256 of each
  source ``.gz`` file, so an entry is rebuilt whenever a source file changes.
- Entries are built from verified files only (``load_mnist`` checks every checksum), written into
  a temporary directory beside the entry, synced, and renamed into place: an entry under its final
  name is complete. Building one removes the entries of other sources.
- Nothing read from the cache is trusted: each file's ``.npy`` header is parsed (never
  unpickled) and its dtype, shape (those the source files' IDX headers announce), C order and
  length checked, and the labels' range, before it is mapped. An entry that fails is removed
  and rebuilt.
- Where the cache cannot be written, the arrays are decoded into memory as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import mmap
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tinygrad_digits import paths
from tinygrad_digits.data_files import FILES, load_mnist
from tinygrad_digits.data_idx import DataError, idx_shape
from tinygrad_digits.data_splits import scale

__all__ = ["cache_root", "load_arrays", "release_rows", "source_key"]

FORMAT = 1  # bump when the layout or the scaling of the cached arrays changes
_STALE_SECONDS = 3600  # a temporary directory this old was left by a build that died

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def cache_root() -> Path:
    """The directory of the cache's entries."""
    return paths.cache_dir() / "mnist-arrays"


def source_key(directory: Path) -> str:
    """SHA-256 (hex) of the cache format and the contents of the four source files."""
    digest = hashlib.sha256(f"tinygrad-digits mnist-arrays {FORMAT}\n".encode())
    for name in FILES.values():
        digest.update(f"{name} {hashlib.sha256((directory / name).read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def load_arrays(directory: str | os.PathLike[str]) -> Arrays:
    """The MNIST files in ``directory`` as ``(train_images, train_labels, test_images, test_labels)``.

    Images are float32 ``(n, 784)`` in [0, 1] (``data_splits.scale``), labels uint8 ``(n,)``;
    read-only views of memory maps of the cache entry, built first if needed.

    Raises:
        DataError: as ``load_mnist``, naming the file, when a source file is unreadable or
            not the original MNIST.
    """
    directory = Path(directory)
    try:
        expected = _expected(directory)
        key = source_key(directory)
    except (DataError, OSError):  # load_mnist says what is wrong, in its words
        return _in_memory(load_mnist(directory))
    entry = cache_root() / key
    arrays = _open(entry, expected)
    if arrays is not None:
        return arrays
    _remove(entry)
    return _build(directory, entry, expected)


def _expected(directory: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """File stem -> (shape, dtype) of the cached array, from the source files' IDX headers."""
    expected = {}
    for stem, name in FILES.items():
        shape = idx_shape(directory / name)
        if stem.endswith("images"):
            expected[stem] = ((shape[0], math.prod(shape[1:])), np.dtype(np.float32))
        else:
            expected[stem] = (shape, np.dtype(np.uint8))
    return expected


def _open(entry: Path, expected: dict) -> Arrays | None:
    """The entry's arrays, or None when any file is missing, unreadable or not as expected."""
    arrays = []
    for stem, (shape, dtype) in expected.items():
        try:
            array = _map(entry / f"{stem}.npy", shape, dtype)
        except (OSError, ValueError, EOFError):
            return None
        if array is None or (stem.endswith("labels") and array.size and array.max() > 9):
            return None
        arrays.append(array)
    return tuple(arrays)


def _map(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """A read-only array over a memory map of the ``.npy`` file ``path``, or None when its header
    is not exactly ``shape``, ``dtype``, C order, or the file is too short to hold it. The
    header is parsed by NumPy's ``format`` functions; nothing is unpickled."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            found_shape, fortran, found_dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            found_shape, fortran, found_dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
        offset = f.tell()
        if found_shape != shape or found_dtype != dtype or fortran:
            return None
        count = math.prod(shape)
        if os.fstat(f.fileno()).st_size < offset + count * dtype.itemsize:
            return None
        if count == 0:
            return np.empty(shape, dtype)
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mapped, dtype, count, offset).reshape(shape)


def release_rows(array: np.ndarray, start: int, stop: int) -> None:
    """Let the process drop its pages of rows ``start:stop`` of a cached array (they stay in the
    page cache and come back on the next read), so that reading a memory map through once keeps
    its resident size small. Does nothing for arrays that are not memory maps."""
    mapped = array.base  # ndarray views, then the memoryview np.frombuffer made of the map
    while mapped is not None and not isinstance(mapped, mmap.mmap):
        mapped = mapped.base if isinstance(mapped, np.ndarray) else getattr(mapped, "obj", None)
    if mapped is None or not hasattr(mmap, "MADV_DONTNEED") or stop <= start:
        return
    row = array.strides[0]
    offset = _address(array) - _address(np.frombuffer(mapped, np.uint8))
    first = (offset + start * row) // mmap.PAGESIZE * mmap.PAGESIZE
    last = offset + stop * row
    with contextlib.suppress(OSError, ValueError):
        mapped.madvise(mmap.MADV_DONTNEED, first, last - first)


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _in_memory(raw: Arrays) -> Arrays:
    train_images, train_labels, test_images, test_labels = raw
    return scale(train_images), train_labels, scale(test_images), test_labels


def _build(directory: Path, entry: Path, expected: dict) -> Arrays:
    raw = dict(zip(FILES, load_mnist(directory)))  # verified: every checksum is checked
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}.", suffix=".part", dir=entry.parent))
    except OSError:
        return _in_memory(tuple(raw.values()))
    try:
        for stem, array in raw.items():
            _write(temporary / f"{stem}.npy", array, expected[stem])
        os.rename(temporary, entry)  # atomic; fails if another process put the entry there first
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
    else:
        _prune(entry)
    arrays = _open(entry, expected)
    return arrays if arrays is not None else _in_memory(tuple(raw.values()))


def _write(path: Path, array: np.ndarray, expected: tuple) -> None:
    """Write one array as ``.npy`` (images scaled straight into the file) and sync it."""
    shape, dtype = expected
    if dtype == np.float32:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        scale(array, out=out)
        out.flush()
        del out
    else:
        np.save(path, np.ascontiguousarray(array, dtype=dtype), allow_pickle=False)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _remove(entry: Path) -> None:
    if entry.exists():
        shutil.rmtree(entry, ignore_errors=True)


def _prune(keep: Path) -> None:
    """Remove the entries of other sources, and temporary directories of builds that died."""
    with contextlib.suppress(OSError):
        for child in keep.parent.iterdir():
            if child == keep:
                continue
            if child.name.startswith("."):
                with contextlib.suppress(OSError):
                    if time.time() - child.stat().st_mtime < _STALE_SECONDS:
                        continue  # another process may be building it now
            shutil.rmtree(child, ignore_errors=True)
