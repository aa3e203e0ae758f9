"""Where MNIST's four files are, fetching the missing ones, and reading them as uint8 arrays.

Files are looked for in: an explicit directory, ``$DIGITS_DATA``, the checkout's ``data/mnist``,
then ``paths.cache_dir()/"mnist"``. Only ``download`` (and ``ensure_data`` and ``load_mnist``
when nothing is found) touches the network; it verifies each file in memory, writes it to a
temporary name in the target directory and renames it into place, so a file under its final
name is always complete. Problems raise ``DataError`` naming the file or URL.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import secrets
import stat
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tinygrad_digits import paths
from tinygrad_digits.data_idx import DataError, _one_line, decode, read_idx

__all__ = ["FILES", "MIRRORS", "SHA256", "download", "ensure_data", "find_data", "load_mnist"]

FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# SHA-256 of the decompressed files of the original distribution, keyed by the .gz name.
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

_CHUNK = 1 << 16


def _complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in FILES.values())


def _check_entries(directory: Path) -> None:
    """DataError naming the first of ``FILES`` in ``directory`` that is there but is no regular
    file (a folder, a FIFO, a device, a symlink loop): reading it would fail or block, and a
    download could not put the file in its place."""
    for name in FILES.values():
        path = directory / name
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as error:  # a symlink loop, a path through a file, no permission
            raise DataError(f"cannot read {path}: {error.strerror or error}; expected the gzip IDX file") from None
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
            raise DataError(f"{path}: is {kind}; expected the gzip IDX file {name}")


def _given_directory(data_dir: str | os.PathLike[str], source: str = "") -> Path:
    """An explicitly named data directory, which must exist (it is never created)."""
    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        problem = "is not a folder" if directory.exists() else "does not exist"
        named = f"{source} ({directory})" if source else str(directory)
        raise DataError(f"{named} {problem}; expected a folder with the four MNIST files")
    _check_entries(directory)
    return directory


def find_data(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first directory holding all four ``FILES``, or None.

    Looks in order at ``data_dir``; ``$DIGITS_DATA``; ``checkout_root()/"data"/"mnist"``;
    ``cache_dir()/"mnist"``. When ``data_dir`` is given, only that directory counts. Only the
    presence of the files is checked here; ``read_idx`` verifies their contents.

    Raises DataError when ``data_dir`` or ``$DIGITS_DATA`` names no folder, or holds something
    other than a regular file under one of the files' names.
    """
    if data_dir is not None:
        directory = _given_directory(data_dir)
        return directory if _complete(directory) else None
    candidates = []
    if os.environ.get(DATA_ENV):
        candidates.append(_given_directory(os.environ[DATA_ENV], f"${DATA_ENV}"))
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
            decode(io.BytesIO(data), url, SHA256[name])
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

    Downloads into ``data_dir`` when it was given (it must exist: a mistyped name is not
    created), otherwise into ``cache_dir()/"mnist"``. Raises ``DataError`` as ``find_data`` and
    ``download`` do.
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
