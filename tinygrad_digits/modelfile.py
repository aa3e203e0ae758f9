"""Model files: one ``.npz`` holding the parameter arrays and a JSON header, no pickle.

The header (stored as the 0-d unicode array ``__model__``) carries the format version, the
package version, the architecture as data (``architecture``: ``network.Network``'s JSON, a list
of layers with the input's shape and scaling), for the CLI's MLPs and convnets also their ``ModelSpec``
(``spec``), and whatever the caller adds: the training config, the split seed, metrics. Files of
format version 1 (version 0.1 of the package) hold the spec alone; they load as they did.

Files are written atomically (a temporary file in the same directory, flushed, then renamed over
the target), so a crash never leaves half a model. Loading trusts nothing in the file: the header
is checked against a schema (``schema.py``) and the arrays are read by ``npz_reader``, sizes
first, from the zip directory.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from . import layers, resources
from .model import ModelSpec
from .network import Network
from .npz_reader import MAX_NPY_HEADER, NpzReader
from .outputs import write_atomically
from .schema import FORMAT, FORMAT_VERSION, strict
from .schema import check_header as _check_header

HEADER = "__model__"


class ModelFileError(ValueError):
    """A model file that cannot be used; the one-line message names the file."""


def save_model(path: str | Path, spec: ModelSpec | Network, params: dict, meta: dict | None = None) -> Path:
    """Write the model (a ModelSpec or a Network), params and meta (JSON-serializable) to
    ``path`` atomically; returns the path."""
    from . import __version__

    architecture = spec.architecture() if isinstance(spec, ModelSpec) else spec
    layers.check_params(architecture.layers, params, architecture.input_shape)
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
    arrays[HEADER] = np.array(json.dumps(strict(header), allow_nan=False))
    return write_atomically(path, lambda f: np.savez(f, **arrays))


def load_model(path: str | Path) -> tuple[ModelSpec | Network, dict, dict]:
    """Read a model file -> (model, params {key: float array}, header dict): the model is a
    ModelSpec for the CLI's MLPs and convnets (and every version-1 file), else a Network.

    The header is checked against its schema (``_check_header``) and every array's size, from
    the zip directory, against the shapes the architecture gives, before any array is read.
    Raises ModelFileError, naming the file, for anything that is not a valid model file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"{path}: no such model file" if not path.exists() else f"{path}: not a regular file"
        )
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a model file (expected an .npz archive written by 'digits train')")
    try:
        with NpzReader(path) as npz:
            if HEADER not in npz.members:
                raise ModelFileError(f"{path}: not a tinygrad-digits model (no {HEADER} header)")
            try:
                text = npz.read_text(HEADER)
            except ValueError:
                raise ModelFileError(f"{path}: not a tinygrad-digits model (no {HEADER} header)") from None
            header = _parse_header(text)
            spec = _model_of(header)
            architecture = spec.architecture() if isinstance(spec, ModelSpec) else spec
            shapes = architecture.param_shapes()
            names = set(npz.members) - {HEADER}
            if names != set(shapes):
                raise ValueError(
                    f"parameters do not fit the model: missing {sorted(set(shapes) - names)}, "
                    f"extra {sorted(names - set(shapes))}"
                )
            _check_sizes(npz, shapes)
            arrays = {key: npz.read_float(key, shapes[key]) for key in shapes}
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(f"{path}: not enough memory to load this model") from None
    except RecursionError:
        raise ModelFileError(f"{path}: bad model file: its header is nested too deeply") from None
    except Exception as e:  # a model file is untrusted input: any failure is a bad file
        message = f"{e}" if isinstance(e, (ValueError, KeyError, TypeError)) else f"{type(e).__name__}: {e}"
        raise ModelFileError(f"{path}: bad model file: {message}".splitlines()[0]) from None
    for key, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise ModelFileError(f"{path}: parameter {key} is not a finite float array")
    return spec, arrays, header


def _parse_header(text: str) -> dict:
    header = json.loads(text)
    _check_header(header)
    return header


def _check_sizes(npz: NpzReader, shapes: dict) -> None:
    """Every array's uncompressed size (from the zip directory) fits its shape, and the whole fits
    in the memory available, before anything is decompressed."""
    total = 0
    for key, shape in shapes.items():
        count = int(np.prod(shape, dtype=np.int64))
        if not count * 4 <= npz.size(key) <= count * 8 + MAX_NPY_HEADER:
            raise ValueError(
                f"parameter {key} is {npz.size(key):,} bytes, not an array of shape {tuple(shape)}"
            )
        total += npz.size(key)
    available = resources.available_memory()
    if total > available:
        raise ValueError(
            f"its parameters need {resources.human(total)}, more than the "
            f"{resources.human(available)} of memory available"
        )


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
