"""Tests for tinygrad_digits.data and its modules: IDX parsing, verification, locating,
downloading, splitting (the cache has tests/test_data_cache.py).

Downloads run against a local HTTP server on 127.0.0.1; nothing here touches the network.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_digits import data, paths
from tinygrad_digits.data import FILES, SHA256, DataError

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "mnist"
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
SMALL = FILES["test_labels"]  # the smallest file: used where one download is enough


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every test away from the real cache, the user's settings and any proxy."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("DIGITS_DATA", raising=False)
    monkeypatch.setenv("DIGITS_MNIST_MIRRORS", closed_port_url())  # a stray download fails offline
    for variable in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "*")


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The uncompressed IDX encoding of a uint8 array."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x800 + array.ndim if magic is None else magic
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def write_gz(path: Path, raw: bytes) -> Path:
    path.write_bytes(gzip.compress(raw, mtime=0))
    return path


def write_dataset(directory: Path, n_train: int = 6, n_test: int = 4, **overrides: np.ndarray) -> Path:
    """Four tiny IDX files (random 28x28 images, labels 0-9); ``overrides`` replace arrays by key."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    } | overrides
    directory.mkdir(parents=True, exist_ok=True)
    for key, name in FILES.items():
        write_gz(directory / name, idx_bytes(arrays[key]))
    return directory


def touch_dataset(directory: Path, names: list[str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in FILES.values() if names is None else names:
        (directory / name).write_bytes(b"")
    return directory


def assert_one_line(error: pytest.ExceptionInfo[DataError], *parts: str) -> str:
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert part in message
    return message


# --- the shipped files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return data.load_mnist(SHIPPED)  # verify=True: every checksum is checked


def test_constants_describe_the_four_files() -> None:
    assert set(FILES) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert set(SHA256) == set(FILES.values())
    assert all(len(digest) == 64 for digest in SHA256.values())
    assert len(data.MIRRORS) == 2
    assert all(m.startswith("https://") and m.endswith("/") for m in data.MIRRORS)


def test_shipped_files_parse_with_readme_shapes_and_class_counts(mnist) -> None:
    train_images, train_labels, test_images, test_labels = mnist
    assert train_images.shape == (60000, 28, 28) and train_labels.shape == (60000,)
    assert test_images.shape == (10000, 28, 28) and test_labels.shape == (10000,)
    assert all(a.dtype == np.uint8 and a.flags.c_contiguous for a in mnist)
    assert np.bincount(train_labels, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(test_labels, minlength=10).tolist() == TEST_COUNTS
    histogram = np.bincount(train_images.ravel(), minlength=256) / train_images.size
    values = np.arange(256) / 255.0
    mean = histogram @ values
    assert mean == pytest.approx(0.1307, abs=1e-4)
    assert np.sqrt(histogram @ (values - mean) ** 2) == pytest.approx(0.3081, abs=1e-4)


def test_read_idx_checks_shipped_checksum() -> None:
    labels = data.read_idx(SHIPPED / SMALL, SHA256[SMALL].upper())  # hex case is ignored
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.array_equal(labels, data.read_idx(str(SHIPPED / SMALL)))


def test_shipped_checksums_are_of_the_decompressed_bytes() -> None:
    for name in (FILES["train_labels"], FILES["test_labels"]):
        raw = gzip.decompress((SHIPPED / name).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == SHA256[name]


# --- corrupt files -----------------------------------------------------------------------------

_IMAGES = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
_LABELS = np.arange(10, dtype=np.uint8)
_GOOD_GZ = gzip.compress(idx_bytes(_LABELS), mtime=0)

CORRUPT_CASES = {
    "not gzip": (idx_bytes(_LABELS), "not a gzip file (it is an uncompressed IDX file"),
    "empty file": (b"", "not a gzip file"),
    "corrupt deflate": (_GOOD_GZ[:10] + b"\xff" * 20 + _GOOD_GZ[-8:], "corrupt gzip stream"),
    "bad crc": (_GOOD_GZ[:-8] + bytes([_GOOD_GZ[-8] ^ 1]) + _GOOD_GZ[-7:], "corrupt gzip stream"),
    "cut gzip": (_GOOD_GZ[: len(_GOOD_GZ) // 2], "corrupt gzip stream"),
    "wrong magic": (gzip.compress(idx_bytes(_LABELS, magic=0x802)), "bad IDX magic 0x00000802"),
    "idx3 magic on labels": (gzip.compress(idx_bytes(_LABELS, magic=0x803)), "truncated"),
    "short header": (gzip.compress(b"\x00\x00\x08\x03\x00\x00\x00\x05"), "truncated IDX header"),
    "truncated payload": (gzip.compress(idx_bytes(_IMAGES)[:-1]), "truncated payload"),
    "absurd dimensions": (gzip.compress(struct.pack(">4I", 0x803, 2**32 - 1, 2**16, 2**16)), "truncated"),
    "payload too long": (gzip.compress(idx_bytes(_IMAGES) + b"\x00"), "payload too long"),
}


@pytest.mark.parametrize("case", CORRUPT_CASES)
def test_corrupt_file_gives_one_line_error_naming_it(tmp_path: Path, case: str) -> None:
    content, expected = CORRUPT_CASES[case]
    path = tmp_path / "broken-idx1-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        data.read_idx(path)
    assert isinstance(error.value, ValueError)
    assert_one_line(error, str(path), expected)


def test_checksum_mismatch_names_the_file(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "labels.gz", idx_bytes(_LABELS))
    assert np.array_equal(data.read_idx(path, hashlib.sha256(idx_bytes(_LABELS)).hexdigest()), _LABELS)
    with pytest.raises(DataError) as error:
        data.read_idx(path, "0" * 64)
    assert_one_line(error, str(path), "checksum mismatch", "0" * 64)


def test_unreadable_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        data.read_idx(tmp_path / "absent.gz")
    assert_one_line(error, "cannot read", str(tmp_path / "absent.gz"))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.one_of(
        st.tuples(st.integers(0, 50)),
        st.tuples(st.integers(0, 6), st.integers(1, 9), st.integers(1, 9)),
    ),
    seed=st.integers(0, 2**16),
)
def test_read_idx_round_trips(tmp_path_factory: pytest.TempPathFactory, shape, seed: int) -> None:
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    raw = idx_bytes(array)
    path = write_gz(tmp_path_factory.mktemp("idx") / "a.gz", raw)
    read = data.read_idx(path, hashlib.sha256(raw).hexdigest())
    assert read.dtype == np.uint8 and read.shape == array.shape and np.array_equal(read, array)
    read[...] = 0  # callers may modify what they get


# --- load_mnist on small datasets ---------------------------------------------------------------


def test_load_mnist_small_dataset_without_verification(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "tiny")
    train_images, train_labels, test_images, test_labels = data.load_mnist(directory, verify=False)
    assert train_images.shape == (6, 28, 28) and train_labels.shape == (6,)
    assert test_images.shape == (4, 28, 28) and test_labels.shape == (4,)
    with pytest.raises(DataError) as error:
        data.load_mnist(directory)  # verify=True: not the real MNIST
    assert_one_line(error, "checksum mismatch", str(directory))


def test_load_mnist_count_mismatch_names_both_files(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "tiny", test_labels=np.zeros(3, np.uint8))
    with pytest.raises(DataError) as error:
        data.load_mnist(directory, verify=False)
    assert_one_line(error, str(directory / FILES["test_images"]), str(directory / FILES["test_labels"]))
    assert "4 images" in str(error.value) and "3 labels" in str(error.value)


@pytest.mark.parametrize(
    ("key", "array", "expected"),
    [
        ("train_images", np.zeros((6, 27, 28), np.uint8), "expected 28x28 images, found shape 6x27x28"),
        ("test_images", np.zeros(4, np.uint8), "expected 28x28 images, found shape 4"),
        ("train_labels", np.full(6, 10, np.uint8), "expected labels 0-9, found 10"),
        ("test_labels", np.zeros((4, 28, 28), np.uint8), "expected labels (n,)"),
    ],
)
def test_load_mnist_rejects_wrong_kinds_of_file(
    tmp_path: Path, key: str, array: np.ndarray, expected: str
) -> None:
    directory = write_dataset(tmp_path / "tiny", **{key: array})
    with pytest.raises(DataError) as error:
        data.load_mnist(directory, verify=False)
    assert_one_line(error, str(directory / FILES[key]), expected)


# --- find_data -----------------------------------------------------------------------------------


def test_find_data_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "checkout_root", lambda: tmp_path / "checkout")
    cache = paths.cache_dir() / "mnist"
    checkout = tmp_path / "checkout" / "data" / "mnist"
    from_env = tmp_path / "from-env"
    explicit = tmp_path / "explicit"
    assert data.find_data() is None

    touch_dataset(cache)
    assert data.find_data() == cache
    touch_dataset(checkout)
    assert data.find_data() == checkout
    monkeypatch.setenv("DIGITS_DATA", str(from_env))
    touch_dataset(from_env, list(FILES.values())[:3])  # incomplete: skipped
    assert data.find_data() == checkout
    touch_dataset(from_env)
    assert data.find_data() == from_env

    with pytest.raises(data.DataError, match=f"{explicit} does not exist"):  # never created
        data.find_data(explicit)
    assert not explicit.exists()
    touch_dataset(explicit, list(FILES.values())[1:])  # an explicit directory is the only one that counts
    assert data.find_data(str(explicit)) is None
    touch_dataset(explicit)
    assert data.find_data(explicit) == explicit
    assert data.find_data(str(explicit)) == explicit


def test_find_data_ignores_empty_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "checkout_root", lambda: tmp_path / "checkout")
    monkeypatch.setenv("DIGITS_DATA", "")
    touch_dataset(tmp_path / "checkout" / "data" / "mnist")
    assert data.find_data() == tmp_path / "checkout" / "data" / "mnist"


# --- split ---------------------------------------------------------------------------------------


def numbered(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose first two pixels encode their index; labels are index % 10."""
    index = np.arange(n)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, 0], images[:, 0, 1] = index // 256, index % 256
    images[:, 27, 27] = 255
    return images, (index % 10).astype(np.uint8)


def decode(x: np.ndarray) -> np.ndarray:
    pixels = np.rint(x[:, :2] * 255).astype(np.int64)
    return pixels[:, 0] * 256 + pixels[:, 1]


@pytest.fixture(scope="module")
def small_sets() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (*numbered(1000), *numbered(30))


def test_split_is_a_seeded_partition(small_sets) -> None:
    splits = data.split(*small_sets, seed=3, validation=200)
    assert splits.seed == 3
    assert splits.x_train.shape == (800, 784) and splits.x_val.shape == (200, 784)
    assert splits.y_train.shape == (800,) and splits.y_val.shape == (200,)
    train_ids, val_ids = decode(splits.x_train), decode(splits.x_val)
    assert not set(train_ids) & set(val_ids)
    assert np.array_equal(np.sort(np.concatenate([train_ids, val_ids])), np.arange(1000))
    assert np.array_equal(splits.y_train, train_ids % 10) and np.array_equal(splits.y_val, val_ids % 10)
    assert np.array_equal(decode(splits.x_test), np.arange(30))  # test set kept whole, in order


def test_split_scales_to_float32_unit_interval(small_sets) -> None:
    splits = data.split(*small_sets, validation=100)
    for x in (splits.x_train, splits.x_val, splits.x_test):
        assert x.dtype == np.float32 and x.flags.c_contiguous
        assert x.min() == 0.0 and x.max() == 1.0
    for y in (splits.y_train, splits.y_val, splits.y_test):
        assert y.dtype == np.int64


def test_split_is_deterministic_per_seed(small_sets) -> None:
    first, again = (
        data.split(*small_sets, seed=7, validation=100),
        data.split(*small_sets, seed=7, validation=100),
    )
    other = data.split(*small_sets, seed=8, validation=100)
    assert np.array_equal(first.x_val, again.x_val) and np.array_equal(first.y_train, again.y_train)
    assert not np.array_equal(decode(first.x_val), decode(other.x_val))
    assert "seed=7" in repr(first)


def test_split_allows_empty_validation(small_sets) -> None:
    splits = data.split(*small_sets, validation=0)
    assert splits.x_val.shape == (0, 784) and splits.x_train.shape == (1000, 784)


@pytest.mark.parametrize("validation", [-1, 1000, 5000, 0.2, True])
def test_split_rejects_bad_validation_size(small_sets, validation) -> None:
    with pytest.raises(ValueError, match=rf"validation must be .*\[0, 1000\), got {validation}"):
        data.split(*small_sets, validation=validation)


def test_split_rejects_mismatched_arrays(small_sets) -> None:
    images, labels, test_images, test_labels = small_sets
    with pytest.raises(ValueError, match="train_labels"):
        data.split(images, labels[:-1], test_images, test_labels)
    with pytest.raises(ValueError, match="uint8"):
        data.split(images / 255.0, labels, test_images, test_labels)
    with pytest.raises(ValueError, match="test_labels"):
        data.split(images, labels, test_images, test_labels.astype(np.float32))


def test_load_splits_on_shipped_files(mnist) -> None:
    splits = data.load_splits(SHIPPED, seed=0)
    assert splits.x_train.shape == (48000, 784) and splits.x_val.shape == (12000, 784)
    assert splits.x_test.shape == (10000, 784) and splits.y_test.shape == (10000,)
    expected = data.split(*mnist, seed=0)
    assert np.array_equal(splits.y_val, expected.y_val) and np.array_equal(splits.x_val, expected.x_val)
    counts = np.bincount(splits.y_train, minlength=10) + np.bincount(splits.y_val, minlength=10)
    assert counts.tolist() == TRAIN_COUNTS


# --- download ------------------------------------------------------------------------------------


def corrupted_copy(gz: bytes) -> bytes:
    """A well-formed gzip IDX file with one label changed: only the checksum can tell."""
    raw = bytearray(gzip.decompress(gz))
    raw[-1] = (raw[-1] + 1) % 10
    return gzip.compress(bytes(raw), mtime=0)


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = self.server.routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Mirrors:
    """URLs of the local server's mirrors: good/, corrupt/ (checksum), truncated/ (gzip), missing/."""

    def __init__(self, base: str, requests: list[str]) -> None:
        self.base, self.requests = base, requests

    def __call__(self, kind: str) -> str:
        return f"{self.base}/{kind}/"


@pytest.fixture(scope="module")
def mirror_server() -> Iterator[Mirrors]:
    shipped = {name: (SHIPPED / name).read_bytes() for name in FILES.values()}
    routes = {f"/good/{name}": body for name, body in shipped.items()}
    routes[f"/corrupt/{SMALL}"] = corrupted_copy(shipped[SMALL])
    routes[f"/truncated/{SMALL}"] = shipped[SMALL][:-100]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.daemon_threads = True
    server.routes, server.requests = routes, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Mirrors(f"http://127.0.0.1:{server.server_address[1]}", server.requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def mirrors(mirror_server: Mirrors) -> Mirrors:
    mirror_server.requests.clear()
    return mirror_server


@pytest.fixture
def all_but_small(tmp_path: Path) -> Path:
    """A data directory holding every file except the small test-labels file."""
    directory = tmp_path / "mnist"
    directory.mkdir()
    for name in FILES.values():
        if name != SMALL:
            shutil.copyfile(SHIPPED / name, directory / name)
    return directory


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_fetches_verifies_and_reports_progress(tmp_path: Path, mirrors: Mirrors) -> None:
    dest = tmp_path / "new" / "mnist"
    calls: list[tuple[str, int, int | None]] = []
    assert data.download(dest, mirrors=[mirrors("good")], progress=lambda *c: calls.append(c)) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES.values())  # no temporary files
    for name in FILES.values():
        assert (dest / name).read_bytes() == (SHIPPED / name).read_bytes()
        size = (SHIPPED / name).stat().st_size
        done = [c[1] for c in calls if c[0] == name]
        assert done == sorted(done) and done[-1] == size
        assert {c[2] for c in calls if c[0] == name} == {size}
    assert len(calls) > len(FILES)  # the large files arrive in several chunks

    mirrors.requests.clear()
    data.download(dest, mirrors=[mirrors("good")])  # nothing missing: nothing fetched
    assert mirrors.requests == []


@pytest.mark.parametrize("bad", ["corrupt", "truncated", "missing"])
def test_download_falls_back_to_next_mirror(all_but_small: Path, mirrors: Mirrors, bad: str) -> None:
    data.download(all_but_small, mirrors=[mirrors(bad), mirrors("good").rstrip("/")])
    assert (all_but_small / SMALL).read_bytes() == (SHIPPED / SMALL).read_bytes()
    assert mirrors.requests == [f"/{bad}/{SMALL}", f"/good/{SMALL}"]
    assert len(list(all_but_small.iterdir())) == 4


def test_download_fails_when_every_copy_is_bad(all_but_small: Path, mirrors: Mirrors) -> None:
    before = sorted(all_but_small.iterdir())
    with pytest.raises(DataError) as error:
        data.download(all_but_small, mirrors=[mirrors("corrupt"), mirrors("truncated"), mirrors("missing")])
    assert_one_line(
        error,
        f"cannot download {SMALL}: every mirror's copy was missing or corrupt",
        "checksum mismatch",
        "corrupt gzip stream",
        "HTTP 404",
    )
    assert sorted(all_but_small.iterdir()) == before  # nothing partial, nothing temporary


def test_download_without_network_says_so(tmp_path: Path) -> None:
    dest = tmp_path / "mnist"
    with pytest.raises(DataError) as error:
        data.download(dest, mirrors=[closed_port_url(), closed_port_url()], timeout=2.0)
    assert str(error.value) == (
        f"cannot download MNIST (no network?): put the four files in {dest} or pass --data DIR"
    )
    assert list(dest.iterdir()) == []


def test_download_timeout_counts_as_no_network(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DataError) as error:
            data.download(tmp_path / "mnist", mirrors=[url], timeout=0.05)
    assert_one_line(error, "cannot download MNIST (no network?)", "--data DIR")


def test_download_reads_mirrors_from_env(all_but_small: Path, mirrors: Mirrors, monkeypatch) -> None:
    monkeypatch.setenv("DIGITS_MNIST_MIRRORS", f" {closed_port_url()} , {mirrors('good').rstrip('/')}, ")
    data.download(all_but_small)
    assert mirrors.requests == [f"/good/{SMALL}"]


def test_ensure_data_downloads_into_cache(tmp_path: Path, mirrors: Mirrors, monkeypatch) -> None:
    monkeypatch.setattr(paths, "checkout_root", lambda: tmp_path / "no-checkout")
    monkeypatch.setenv("DIGITS_MNIST_MIRRORS", mirrors("good"))
    directory = data.ensure_data()
    assert directory == paths.cache_dir() / "mnist"
    assert directory.is_relative_to(os.environ["XDG_CACHE_HOME"])
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILES.values())
    mirrors.requests.clear()
    assert data.ensure_data() == directory and mirrors.requests == []  # found now
    train_images, _, _, test_labels = data.load_mnist()
    assert train_images.shape == (60000, 28, 28) and test_labels.shape == (10000,)


def test_ensure_data_downloads_into_explicit_dir(all_but_small: Path, mirrors: Mirrors) -> None:
    assert data.ensure_data(all_but_small, mirrors=[mirrors("good")]) == all_but_small
    assert mirrors.requests == [f"/good/{SMALL}"]
    assert not (paths.cache_dir() / "mnist").exists()


def test_download_rejects_empty_mirror_list(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mirror"):
        data.download(tmp_path, mirrors=[])


# --- dependencies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["data", "data_idx", "data_files", "data_splits", "data_cache"])
def test_modules_import_only_stdlib_numpy_and_each_other(module: str) -> None:
    path = Path(data.__file__).with_name(f"{module}.py")
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    outside = {
        name
        for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] not in ("numpy", "__future__")
    }
    prefixes = ("tinygrad_digits.paths", "tinygrad_digits.data_")
    assert all(name.startswith(prefixes) for name in outside), outside


def test_no_module_of_the_data_is_long() -> None:
    for module in ("data", "data_idx", "data_files", "data_splits", "data_cache"):
        lines = Path(data.__file__).with_name(f"{module}.py").read_text().count("\n")
        assert lines <= 300, (module, lines)
