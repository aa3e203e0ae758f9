"""Model files: one ``.npz`` holding the parameter arrays and a JSON header, no pickle.

The header (stored as the 0-d unicode array ``__model__``) carries the format version, the
package version, the architecture as data (``architecture``: ``network.Network``'s JSON, a list
of layers with the input's shape and scaling), for the CLI's MLPs also their ``ModelSpec``
(``spec``), and whatever the caller adds: the training config, the split seed, metrics. Files of
format version 1 (version 0.1 of the package) hold the spec alone; they load as they did. Files are written atomically (a temporary file in the same
directory, flushed, then renamed over the target), so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import layers
from .model import ModelSpec
from .network import Network

FORMAT = "tinygrad-digits-model"
FORMAT_VERSION = 2
HEADER = "__model__"


class ModelFileError(ValueError):
    """A model file that cannot be used; the one-line message names the file."""


def save_model(path: str | Path, spec: ModelSpec | Network, params: dict, meta: dict | None = None) -> Path:
    """Write the model (a ModelSpec or a Network), params and meta (JSON-serializable) to
    ``path`` atomically; returns the path."""
    from . import __version__

    architecture = spec.architecture() if isinstance(spec, ModelSpec) else spec
    layers.check_params(architecture.layers, params, architecture.input_shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        **(meta or {}),  # first, so that it can never overwrite the fields below
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "architecture": architecture.to_json(),
    }
    if isinstance(spec, ModelSpec):
        header["spec"] = spec.to_json()
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


def load_model(path: str | Path) -> tuple[ModelSpec | Network, dict, dict]:
    """Read a model file -> (model, params {key: float array}, header dict): the model is a
    ModelSpec for the CLI's MLPs (and every version-1 file), else a Network.

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
        if not isinstance(header, dict) or not (isinstance(header.get("spec"), dict)
                                                or isinstance(header.get("architecture"), dict)):
            raise ValueError("the header is not a JSON object with an architecture")
        if header.get("format") != FORMAT:
            raise ValueError(f"format is {header.get('format')!r}, expected {FORMAT!r}")
        if header.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"format version {header['format_version']} is newer than this program's")
        spec = _model_of(header)
        architecture = spec.architecture() if isinstance(spec, ModelSpec) else spec
        layers.check_params(architecture.layers, arrays, architecture.input_shape)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: bad model file: {e}") from None
    for key, value in arrays.items():
        if value.dtype.kind != "f" or not np.all(np.isfinite(value)):
            raise ModelFileError(f"{path}: parameter {key} is not a finite float array")
    return spec, arrays, header


def _model_of(header: dict) -> ModelSpec | Network:
    """The header's model: its spec (checked against its architecture, if both are there), or its
    architecture. ValueError if they are not valid or do not agree."""
    architecture = Network.from_json(header["architecture"]) if "architecture" in header else None
    if "spec" not in header:
        return architecture
    spec = ModelSpec.from_json(header["spec"])
    if architecture is not None and architecture.to_json() != spec.architecture().to_json():
        raise ValueError("the spec and the architecture describe different models")
    return spec
