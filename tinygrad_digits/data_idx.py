"""IDX files: the gzip-compressed arrays of unsigned bytes that MNIST ships as.

An IDX file is a big-endian header (a magic number giving the number of dimensions: 0x00000801
for labels, 0x00000803 for images; then one uint32 per dimension) followed by the bytes of the
array in C order. Integrity is checked on the *decompressed* bytes with SHA-256, because
re-compressed copies differ byte for byte but not in content. Every problem raises ``DataError``
(a ``ValueError``) whose one-line message names the file, what was expected and what was found.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["DataError", "decode", "idx_shape", "read_idx"]

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


def _read_header(stream: BinaryIO, name: str) -> tuple[bytes, bytes, tuple[int, ...]]:
    """The magic bytes, the dimension bytes and the shape they announce."""
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
    return header, dims, struct.unpack(f">{ndim}I", dims)


def _parse_idx(stream: BinaryIO, compressed_size: int, name: str, expected_sha256: str | None) -> np.ndarray:
    header, dims, shape = _read_header(stream, name)
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


def decode(compressed: BinaryIO, name: str, expected_sha256: str | None = None) -> np.ndarray:
    """``read_idx`` of an open binary stream (a file or ``io.BytesIO``); ``name`` goes in errors."""
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
            return decode(compressed, str(path), expected_sha256)
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None


def idx_shape(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """The shape a gzip IDX file announces in its header (its first bytes only are read).

    Raises:
        DataError: naming the file, if it cannot be read or its header is not IDX.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as stream:
            return _read_header(stream, str(path))[2]
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"cannot read {path}: {_one_line(error)}") from None
