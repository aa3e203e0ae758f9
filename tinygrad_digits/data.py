"""MNIST on disk: parse, verify, locate, download and split the four IDX files.

Contract shared by every function here:

- The data are the four gzip-compressed IDX files of the original distribution (``FILES``).
  Integrity is checked on the *decompressed* bytes with SHA-256 (``SHA256``), because
  re-compressed copies differ byte for byte but not in content.
- Raw arrays are uint8: labels ``(n,)``, images ``(n, 28, 28)``. ``split`` turns them into
  float32 ``(n, 784)`` images scaled to [0, 1] and int64 labels.
- Every problem with the data raises ``DataError`` (a ``ValueError``) whose one-line message
  names the file (or URL), says what was expected and what was found; the CLI prints it as is.
  Bad arguments raise a plain ``ValueError`` naming the function and the value.
- Files are looked for in: an explicit directory, ``$DIGITS_DATA``, the checkout's
  ``data/mnist``, then ``paths.cache_dir()/"mnist"``. Only ``download`` (and ``ensure_data``
  and the loaders when nothing is found) touches the network; it writes each file to a
  temporary name in the target directory and renames it into place after verification, so a
  file under its final name is always complete.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import math
import os
import secrets
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tinygrad_digits import paths

__all__ = [
    "FILES",
    "MIRRORS",
    "SHA256",
    "DataError",
    "Splits",
    "download",
    "ensure_data",
    "find_data",
    "load_mnist",
    "load_splits",
    "read_idx",
    "split",
]

FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# SHA-256 of the decompressed files (shared/mnist/README.md), keyed by the .gz name.
SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

DATA_ENV = "DIGITS_DATA"
MIRRORS_ENV = "DIGITS_MNIST_MIRRORS"

Progress = Callable[[str, int, int | None], None]

_MAGIC_NDIM = {0x00000801: 1, 0x00000803: 3}  # unsigned-byte labels / images
_DEFLATE_MAX_RATIO = 1032  # deflate never expands more than ~1032:1
_CHUNK = 1 << 16


class DataError(ValueError):
    """One-line, user-facing problem with the data; the message names the file."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _read_into(stream: BinaryIO, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream``; return how many bytes arrived before EOF."""
    done = 0
    while done < len(buffer):
        count = stream.readinto(buffer[done:])
        if not count:
            break
        done += count
    return done


def _parse_idx(stream: BinaryIO, compressed_size: int, name: str, expected_sha256: str | None) -> np.ndarray:
    header = stream.read(4)
    if len(header) < 4:
        raise DataError(f"{name}: truncated IDX header ({len(header)} of 4 magic bytes)")
    (magic,) = struct.unpack(">I", header)
    ndim = _MAGIC_NDIM.get(magic)
    if ndim is None:
        raise DataError(
            f"{name}: bad IDX magic 0x{magic:08x}, expected 0x00000801 (labels) or 0x00000803 (images)"
        )
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{name}: truncated IDX header ({len(dims)} of {4 * ndim} dimension bytes)")
    shape = struct.unpack(f">{ndim}I", dims)
    size = math.prod(shape)
    described = f"shape {'x'.join(map(str, shape))} ({size} bytes)"
    if size > _DEFLATE_MAX_RATIO * compressed_size:
        raise DataError(
            f"{name}: truncated payload: the header announces {described}, "
            f"more than {compressed_size} compressed bytes can hold"
        )
    flat = np.empty(size, dtype=np.uint8)
    found = _read_into(stream, memoryview(flat))
    if found < size:
        raise DataError(f"{name}: truncated payload: the header announces {described}, found {found}")
    extra = 0
    while chunk := stream.read(_CHUNK):
        extra += len(chunk)
    if extra:
        raise DataError(f"{name}: payload too long: the header announces {described}, found {size + extra}")
    if expected_sha256 is not None:
        digest = hashlib.sha256(header)
        digest.update(dims)
        digest.update(flat)
        actual = digest.hexdigest()
        if actual != expected_sha256.lower():
            raise DataError(
                f"{name}: checksum mismatch: SHA-256 of the decompressed data is {actual}, "
                f"expected {expected_sha256.lower()} (corrupt, or not the original MNIST)"
            )
    return flat.reshape(shape)


def _decode(compressed: BinaryIO, name: str, expected_sha256: str | None) -> np.ndarray:
    magic = compressed.read(4)
    compressed_size = compressed.seek(0, os.SEEK_END)
    compressed.seek(0)
    if magic[:2] != b"\x1f\x8b":
        hint = ""
        if len(magic) == 4 and struct.unpack(">I", magic)[0] in _MAGIC_NDIM:
            hint = " (it is an uncompressed IDX file: gzip it)"
        raise DataError(f"{name}: not a gzip file{hint}")
    try:
        with gzip.GzipFile(fileobj=compressed, mode="rb") as stream:
            return _parse_idx(stream, compressed_size, name, expected_sha256)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{name}: corrupt gzip stream ({_one_line(error)})") from None


def read_idx(path: str | os.PathLike[str], expected_sha256: str | None = None) -> np.ndarray:
    """Parse one gzip IDX file of unsigned bytes.

    Args:
        path: a ``.gz`` IDX file (magic 0x00000801 for labels, 0x00000803 for images).
        expected_sha256: hex SHA-256 of the decompressed file, or None to skip the check.

    Returns:
        uint8 array, ``(n,)`` for labels or ``(n, rows, cols)`` for images (writable, C order).

    Raises:
        DataError: naming the file, if it cannot be read, is not gzip, has a corrupt gzip
            stream, a bad magic, a payload shorter or longer than its dimensions, or the
            wrong checksum.
    """
    path = Path(path)
    try:
        with open(path, "rb") as compressed:
            return _decode(compressed, str(path), expected_sha256)
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None


def _complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in FILES.values())


def find_data(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first directory holding all four ``FILES``, or None.

    Looks in order at ``data_dir``; ``$DIGITS_DATA``; ``checkout_root()/"data"/"mnist"``;
    ``cache_dir()/"mnist"``. When ``data_dir`` is given, only that directory counts. Only the
    presence of the files is checked here; ``read_idx`` verifies their contents.
    """
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        return directory if _complete(directory) else None
    candidates = []
    if os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]).expanduser())
    candidates.append(paths.checkout_root() / "data" / "mnist")
    candidates.append(paths.cache_dir() / "mnist")
    return next((directory for directory in candidates if _complete(directory)), None)


def _mirror_bases(mirrors: Sequence[str] | None) -> list[str]:
    if mirrors is None:
        listed = os.environ.get(MIRRORS_ENV, "").split(",")
        mirrors = [base.strip() for base in listed if base.strip()] or MIRRORS
    elif isinstance(mirrors, str):
        mirrors = [mirrors]
    bases = [base if base.endswith("/") else base + "/" for base in mirrors]
    if not bases:
        raise ValueError(f"download: expected at least one mirror base URL, got {mirrors!r}")
    return bases


def _fetch(url: str, name: str, progress: Progress | None, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.strip().isdigit() else None
        chunks: list[bytes] = []
        done = 0
        while chunk := response.read(_CHUNK):
            chunks.append(chunk)
            done += len(chunk)
            if progress is not None:
                progress(name, done, total)
    if total is not None and done != total:
        raise ConnectionError(f"connection closed after {done} of {total} bytes")
    return b"".join(chunks)


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with open(temporary, "xb") as out:
            out.write(data)
        os.replace(temporary, target)
    except OSError as error:
        raise DataError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _download_one(
    name: str, dest_dir: Path, bases: list[str], progress: Progress | None, timeout: float
) -> None:
    failures: list[str] = []
    unreachable_only = True
    for base in bases:
        url = base + name
        try:
            data = _fetch(url, name, progress, timeout)
        except urllib.error.HTTPError as error:  # the mirror answered: no such file
            error.close()
            unreachable_only = False
            failures.append(f"{url}: HTTP {error.code} {_one_line(error.reason)}")
            continue
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
            failures.append(f"{url}: {_one_line(error)}")
            continue
        except ValueError as error:  # urllib rejects the URL itself
            unreachable_only = False
            failures.append(f"{url}: invalid mirror URL ({_one_line(error)})")
            continue
        unreachable_only = False
        try:
            _decode(io.BytesIO(data), url, SHA256[name])
        except DataError as error:
            failures.append(str(error))
            continue
        _write_atomically(dest_dir / name, data)
        return
    if unreachable_only:
        raise DataError(
            f"cannot download MNIST (no network?): put the four files in {dest_dir} or pass --data DIR"
        )
    raise DataError(
        f"cannot download {name}: every mirror's copy was missing or corrupt ({'; '.join(failures)})"
    )


def download(
    dest_dir: str | os.PathLike[str],
    mirrors: Sequence[str] | None = None,
    progress: Progress | None = None,
    timeout: float = 10.0,
) -> Path:
    """Download the ``FILES`` missing from ``dest_dir``, verifying each; return ``dest_dir``.

    Args:
        dest_dir: target directory, created if needed. Files already there are kept as is.
        mirrors: base URLs tried in order for each file; default ``$DIGITS_MNIST_MIRRORS``
            (comma-separated) if set, else ``MIRRORS``. A missing trailing "/" is added.
        progress: called as ``progress(file_name, bytes_done, total_bytes_or_None)`` after
            every chunk received.
        timeout: seconds allowed for each connect and each read.

    An HTTP error or a copy failing verification moves on to the next mirror. Each file is
    verified in memory, written to a temporary name in ``dest_dir`` and renamed into place.

    Raises:
        DataError: "cannot download MNIST (no network?) ..." when no mirror could be reached;
            "cannot download <file>: every mirror's copy was missing or corrupt (...)" when
            mirrors answered but none had a good copy; or when ``dest_dir`` is not writable.
    """
    dest_dir = Path(dest_dir).expanduser()
    bases = _mirror_bases(mirrors)
    missing = [name for name in FILES.values() if not (dest_dir / name).is_file()]
    if missing:
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"cannot create {dest_dir}: {error.strerror or error}") from None
    for name in missing:
        _download_one(name, dest_dir, bases, progress, timeout)
    return dest_dir


def ensure_data(
    data_dir: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Path:
    """A directory holding all four ``FILES``: ``find_data(data_dir)``, else a download.

    Downloads into ``data_dir`` when it was given, otherwise into ``cache_dir()/"mnist"``.
    Raises ``DataError`` as ``download`` does.
    """
    found = find_data(data_dir)
    if found is not None:
        return found
    if data_dir is not None:
        dest_dir = Path(data_dir).expanduser()
    else:
        dest_dir = paths.cache_dir() / "mnist"
    return download(dest_dir, mirrors=mirrors, progress=progress)


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    verify: bool = True,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read MNIST, located (or downloaded) with ``ensure_data``.

    Args:
        data_dir: directory to use instead of the search order of ``find_data``.
        verify: check each file's SHA-256 against ``SHA256``.
        progress: passed to ``download`` if the files must be fetched.

    Returns:
        ``(train_images, train_labels, test_images, test_labels)``: uint8 arrays of shapes
        ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``.

    Raises:
        DataError: as ``read_idx``; also when images are not 28x28, labels are not 0-9, or
            an image file and its label file hold different counts (naming both files).
    """
    directory = ensure_data(data_dir, progress=progress)
    arrays = {}
    for key, name in FILES.items():
        arrays[key] = read_idx(directory / name, SHA256[name] if verify else None)
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        images_path = directory / FILES[f"{part}_images"]
        labels_path = directory / FILES[f"{part}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(
                f"{images_path}: expected 28x28 images, found shape {'x'.join(map(str, images.shape))}"
            )
        if labels.ndim != 1:
            raise DataError(
                f"{labels_path}: expected labels (n,), found shape {'x'.join(map(str, labels.shape))}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} holds {len(images)} images but {labels_path} holds "
                f"{len(labels)} labels; expected the same count"
            )
        if labels.size and labels.max() > 9:
            raise DataError(f"{labels_path}: expected labels 0-9, found {labels.max()}")
    return (
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
    )


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

    def __repr__(self) -> str:
        return (
            f"Splits(train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, seed={self.seed})"
        )


def _scaled(images: np.ndarray) -> np.ndarray:
    x = images.reshape(len(images), math.prod(images.shape[1:])).astype(np.float32)
    return np.divide(x, np.float32(255), out=x)  # 255 / 255 is exactly 1


def _check_pair(images: np.ndarray, labels: np.ndarray, which: str) -> None:
    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(
            f"split: expected {which}_images as uint8 (n, rows, cols), got {images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"split: expected {which}_labels as integers of shape ({len(images)},) to "
            f"match {which}_images, got {labels.dtype} {labels.shape}"
        )


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
    pairs = {
        "train": (np.asarray(train_images), np.asarray(train_labels)),
        "test": (np.asarray(test_images), np.asarray(test_labels)),
    }
    for which, (images, labels) in pairs.items():
        _check_pair(images, labels, which)
    images, labels = pairs["train"]
    n = len(images)
    integer = isinstance(validation, int | np.integer) and not isinstance(validation, bool)
    if not integer or not 0 <= validation < n:
        raise ValueError(f"split: validation must be an integer count in [0, {n}), got {validation!r}")
    order = np.random.default_rng(seed).permutation(n)
    val_index, train_index = order[:validation], order[validation:]
    test_x, test_y = pairs["test"]
    return Splits(
        x_train=_scaled(images[train_index]),
        y_train=labels[train_index].astype(np.int64),
        x_val=_scaled(images[val_index]),
        y_val=labels[val_index].astype(np.int64),
        x_test=_scaled(test_x),
        y_test=test_y.astype(np.int64),
        seed=seed,
    )


def load_splits(
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    validation: int = 12000,
    progress: Progress | None = None,
) -> Splits:
    """``split(*load_mnist(data_dir, progress=progress), seed, validation)``: see both."""
    return split(*load_mnist(data_dir, progress=progress), seed=seed, validation=validation)
