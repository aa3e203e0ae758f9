"""Model files: one ``.npz`` holding the parameter arrays and a JSON header, no pickle.

The header (stored as the 0-d unicode array ``__model__``) carries the format version, the
package version, the architecture (``ModelSpec``) and whatever the caller adds: the training
config, the split seed, metrics. Files are written atomically (a temporary file in the same
directory, flushed, then renamed over the target), so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .model import ModelSpec, check_params

FORMAT = "tinygrad-digits-model"
FORMAT_VERSION = 1
HEADER = "__model__"


class ModelFileError(ValueError):
    """A model file that cannot be used; the one-line message names the file."""


def save_model(path: str | Path, spec: ModelSpec, params: dict, meta: dict | None = None) -> Path:
    """Write spec, params and meta (JSON-serializable) to ``path`` atomically; returns the path."""
    from . import __version__

    check_params(spec, params)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        **(meta or {}),  # first, so that it can never overwrite the fields below
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "spec": spec.to_json(),
    }
    arrays = {key: np.ascontiguousarray(value) for key, value in params.items()}
    arrays[HEADER] = np.array(json.dumps(header))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the model from other users
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_model(path: str | Path) -> tuple[ModelSpec, dict, dict]:
    """Read a model file -> (spec, params {key: float array}, header dict).

    Raises ModelFileError for a missing, truncated, foreign or inconsistent file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a model file (expected an .npz archive written by 'digits train')")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{path}: not a readable model file ({type(e).__name__}: {e})".splitlines()[0]) from None
    raw = arrays.pop(HEADER, None)
    if raw is None or raw.dtype.kind != "U" or raw.ndim != 0:
        raise ModelFileError(f"{path}: not a tinygrad-digits model (no {HEADER} header)")
    try:
        header = json.loads(str(raw))
        if not isinstance(header, dict) or not isinstance(header.get("spec"), dict):
            raise ValueError("the header is not a JSON object with a spec")
        if header.get("format") != FORMAT:
            raise ValueError(f"format is {header.get('format')!r}, expected {FORMAT!r}")
        if header.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"format version {header['format_version']} is newer than this program's")
        spec = ModelSpec.from_json(header["spec"])
        check_params(spec, arrays)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: bad model file: {e}") from None
    for key, value in arrays.items():
        if value.dtype.kind != "f" or not np.all(np.isfinite(value)):
            raise ModelFileError(f"{path}: parameter {key} is not a finite float array")
    return spec, arrays, header
