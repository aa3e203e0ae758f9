"""The schema of a model file's JSON header: types, ranges, finite numbers, a bounded depth.

``check_header(header)`` raises ValueError naming the first field that does not fit. The
architecture itself (``spec``, ``architecture``) is checked by the classes that rebuild it
(``ModelSpec``, ``network.Network``); the fields here are the ones the program reads besides.
"""

from __future__ import annotations

import math

FORMAT = "tinygrad-digits-model"
FORMAT_VERSION = 2
MAX_DEPTH = 24  # a header's nesting of objects and lists
MAX_SEED = 2**32 - 1


def _depth(value, limit: int, where: str = "the header") -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise ValueError(f"{where} is nested deeper than {limit} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _integer(value, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _number_or_none(value, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"{name} must be a number, got {value!r}")


def check_header(header) -> None:
    """ValueError unless ``header`` (parsed JSON) is a model file's header this program can use."""
    if not isinstance(header, dict) or not (
        isinstance(header.get("spec"), dict) or isinstance(header.get("architecture"), dict)
    ):
        raise ValueError("the header is not a JSON object with an architecture")
    _depth(header, MAX_DEPTH)
    if header.get("format") != FORMAT:
        raise ValueError(f"format is {header.get('format')!r}, expected {FORMAT!r}")
    version = header.get("format_version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ValueError(f"format version {version} is newer than this program's")
    _integer(version, "format_version", 1, FORMAT_VERSION)
    if not isinstance(header.get("package_version", ""), str):
        raise ValueError(f"package_version must be a string, got {header['package_version']!r}")
    training = header.get("training", {})
    if not isinstance(training, dict):
        raise ValueError(f"training must be an object, got {training!r}")
    for name in ("seed", "split_seed"):
        if name in training:
            _integer(training[name], f"training.{name}", 0, MAX_SEED)
    for name in ("epochs", "batch_size"):
        if name in training:
            _integer(training[name], f"training.{name}", 1, 1 << 31)
    history = header.get("history", [])
    if not isinstance(history, list) or not all(isinstance(record, dict) for record in history):
        raise ValueError("history must be a list of objects")
    for record in history:
        for key, value in record.items():
            _number_or_none(value, f"history.{key}")
    metrics = header.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics must be an object, got {metrics!r}")
    for key, value in metrics.items():
        _number_or_none(value, f"metrics.{key}")
    if "epochs_done" in header:
        _integer(header["epochs_done"], "epochs_done", 0, 1 << 31)


def strict(value):
    """The value with every non-finite float replaced by None (JSON has no NaN or infinity), and
    NumPy scalars and arrays turned into Python numbers and lists (``json`` takes neither)."""
    if isinstance(value, (str, bytes, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    tolist = getattr(value, "tolist", None)  # a NumPy scalar or array, without importing NumPy
    if callable(tolist):
        return strict(tolist())
    return value
