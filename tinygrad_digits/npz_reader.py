"""A strict reader of the ``.npz`` archives model files are: sizes come from the zip directory
and are checked before anything is decompressed.

``NpzReader(path)`` opens the archive and checks its directory: every member a ``.npy`` file,
stored or deflated, not encrypted, its uncompressed size within bounds. ``read_text(name)``
reads a small 0-d unicode array (the JSON header); ``read_float(name, shape)`` reads one float
array of exactly that shape: little-endian float32 or float64, C or Fortran order, the member's
size exactly that of its ``.npy`` header plus the data (nothing appended). Any other content is
a ValueError naming what was wrong; the reader never unpickles.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

MAX_TEXT_BYTES = 4 << 20  # the JSON header
MAX_NPY_HEADER = 1 << 16
FLOAT_DTYPES = (np.dtype("<f4"), np.dtype("<f8"))
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class NpzReader:
    def __init__(self, path: str | Path):
        self.zip = zipfile.ZipFile(path)
        self.members: dict[str, zipfile.ZipInfo] = {}
        try:
            for info in self.zip.infolist():
                name = info.filename
                if not name.endswith(".npy") or "/" in name or name[:-4] in self.members:
                    raise ValueError(f"member {name!r} is not a .npy array of the model")
                if info.flag_bits & 0x1:
                    raise ValueError(f"member {name!r} is encrypted")
                if info.compress_type not in _COMPRESSIONS:
                    raise ValueError(f"member {name!r} uses compression method {info.compress_type}")
                self.members[name[:-4]] = info
        except BaseException:
            self.zip.close()
            raise

    def close(self) -> None:
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def size(self, name: str) -> int:
        """The member's uncompressed size, as its zip directory entry says."""
        return self.members[name].file_size

    def read_text(self, name: str) -> str:
        """A 0-d unicode array of at most MAX_TEXT_BYTES, as a str."""
        if self.size(name) > MAX_TEXT_BYTES:
            raise ValueError(f"{name} is {self.size(name):,} bytes, more than a header can be")
        with self.zip.open(self.members[name]) as f:
            dtype, shape, _ = _npy_header(f, name)
            if dtype.kind != "U" or shape != () or dtype.byteorder == ">":
                raise ValueError(f"{name} is not a text header")
            data = f.read(dtype.itemsize + 1)
        if len(data) != dtype.itemsize:
            raise ValueError(f"{name} holds {len(data)} bytes, its header says {dtype.itemsize}")
        return str(np.frombuffer(data, dtype=dtype)[0])

    def read_float(self, name: str, shape: tuple) -> np.ndarray:
        """The member as a float array of exactly ``shape`` (a writable, C-ordered copy)."""
        info = self.members[name]
        count = int(np.prod(shape, dtype=np.int64))
        with self.zip.open(info) as f:
            dtype, stored, fortran = _npy_header(f, name)
            if dtype not in FLOAT_DTYPES:
                raise ValueError(
                    f"parameter {name} is {dtype.str}, expected little-endian float32 or float64"
                )
            if stored != tuple(shape):
                raise ValueError(f"parameter {name} has shape {stored}, expected {tuple(shape)}")
            expected = f.tell() + count * dtype.itemsize
            if info.file_size != expected:
                raise ValueError(f"parameter {name} is {info.file_size:,} bytes, expected {expected:,}")
            data = f.read(count * dtype.itemsize + 1)
        if len(data) != count * dtype.itemsize:
            raise ValueError(f"parameter {name} is truncated")
        array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        return np.ascontiguousarray(array).astype(dtype.newbyteorder("="), copy=True)


def _npy_header(f, name: str):
    """(dtype, shape, fortran_order) from a .npy member's header; ValueError if it is not one."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"{name} is .npy version {version}")
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(f, max_header_size=MAX_NPY_HEADER)
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects")
    return dtype, tuple(shape), bool(fortran)
