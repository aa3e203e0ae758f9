"""Trees of arrays, as value_and_grad takes its parameters: dicts (nested too), lists, tuples
(namedtuples included) and bare arrays, walked in one fixed order."""

from __future__ import annotations

import numpy as np


def tree_map(fn, tree):
    """The tree with fn applied to every leaf."""
    if isinstance(tree, dict):
        return {key: tree_map(fn, value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return _rebuild(tree, [tree_map(fn, value) for value in tree])
    return fn(tree)


def _rebuild(tree, items: list):
    """A list or tuple of tree's type holding items (a namedtuple takes them positionally)."""
    return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)


def flatten(tree, path=""):
    """[(path, leaf)] of a dict / list / tuple tree of arrays, in a fixed order."""
    if isinstance(tree, dict):
        return [item for key in tree for item in flatten(tree[key], f"{path}.{key}" if path else str(key))]
    if isinstance(tree, (list, tuple)):
        return [item for i, sub in enumerate(tree) for item in flatten(sub, f"{path}[{i}]")]
    return [(path, tree)]


def unflatten(tree, leaves):
    """The tree's structure with its leaves replaced, in _flatten's order, from an iterator."""
    if isinstance(tree, dict):
        return {key: unflatten(tree[key], leaves) for key in tree}
    if isinstance(tree, (list, tuple)):
        return _rebuild(tree, [unflatten(sub, leaves) for sub in tree])
    return next(leaves)


def check_leaf(where: str, path: str, leaf) -> None:
    if not isinstance(leaf, np.ndarray) or leaf.dtype.kind != "f":
        what = f"{leaf.dtype} array" if isinstance(leaf, np.ndarray) else type(leaf).__name__
        name = f"parameter {path!r}" if path else "the parameter"
        raise ValueError(f"{where}: {name} is a {what}, expected a float array (float32 or float64)")


def is_flat_dict(tree) -> bool:
    """A plain dict of float arrays (checked as _check_leaf would, and nothing else)."""
    return type(tree) is dict and all(type(v) is np.ndarray and v.dtype.kind == "f" for v in tree.values())
