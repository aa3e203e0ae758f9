"""Architectures as data: a layer rebuilt from its JSON (``from_json``), and the params a model
needs (``param_shapes``, ``check_params``), found without allocating them.

The layer classes are ``layers``'; this module reads them through ``L`` at call time (it is
imported by ``layers`` itself, at its end).
"""

from __future__ import annotations

import numpy as np


def param_shapes(model: L.Layer, input_shape, dtype=np.float32) -> dict:
    """{key: shape} of the params ``model.init`` makes for ``input_shape``, allocating nothing big."""
    shapes = {}
    for key, value in model.init(L._ShapeRng(), input_shape, dtype).items():
        shapes[key] = value.shape
    return shapes


def check_params(model: L.Layer, params: dict, input_shape) -> None:
    """ValueError unless params has exactly the keys and shapes model.init makes."""
    expected = param_shapes(model, input_shape)
    missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    if missing or extra:
        raise ValueError(f"parameters do not fit the model: missing {missing}, extra {extra}")
    for key, shape in expected.items():
        if np.shape(params[key]) != shape:
            raise ValueError(f"parameter {key} has shape {np.shape(params[key])}, expected {shape}")


def from_json(data, depth: int = 0) -> L.Layer:
    """The layer a ``to_json`` dict describes (a list is a Sequential's layers). ValueError if
    it is not one."""
    if depth > L.MAX_DEPTH:
        raise ValueError(f"architecture nested deeper than {L.MAX_DEPTH} levels")
    if isinstance(data, list):
        return L.Sequential(*[from_json(item, depth + 1) for item in data])
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ValueError(f"a layer must be an object with a type, got {str(data)[:60]}")
    fields = {k: v for k, v in data.items() if k != "type"}
    kind = data["type"]
    if kind == "Sequential":
        if set(fields) != {"layers"} or not isinstance(fields["layers"], list):
            raise ValueError(f"Sequential: expected one field, layers (a list), got {sorted(fields)}")
        return from_json(fields["layers"], depth)  # the list's items are one level down, as for a bare list
    if kind == "Residual":
        if set(fields) != {"block"}:
            raise ValueError(f"Residual: expected one field, block, got {sorted(fields)}")
        return L.Residual(from_json(fields["block"], depth + 1))
    if kind not in L._TYPES:
        raise ValueError(
            f"unknown layer type {kind!r}: expected one of {', '.join([*L._TYPES, 'Sequential', 'Residual'])}"
        )
    try:
        return L._TYPES[kind](**fields)
    except TypeError as e:
        raise ValueError(f"{kind}: {e}".replace("__init__() ", "")) from None


from . import layers as L  # noqa: E402 (after the functions: layers imports this module at its end)
