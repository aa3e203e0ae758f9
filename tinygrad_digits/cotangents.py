"""Cotangents as the backward pass hands them on: summed back over broadcast axes
(``unbroadcast``), and made into gradients a caller may update in place (``own``)."""

from __future__ import annotations

import numpy as np


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum g over the axes that broadcasting added or stretched, back to ``shape``."""
    if type(g) is not np.ndarray:
        g = np.asarray(g)
    if g.shape == shape:
        return g
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g.reshape(shape)


def own(g, like: np.ndarray, owned: set) -> np.ndarray:
    """g as a writable array with like's dtype and shape that shares no memory with another
    gradient: a cotangent may be a read-only broadcast view, or the same memory as another
    input's (add passes g to both sides). Fresh arrays, as the kernels return, are not copied."""
    if type(g) is not np.ndarray or g.dtype != like.dtype:
        g = np.asarray(g, dtype=like.dtype)
    if g.shape != like.shape:
        g = g.reshape(like.shape)
    root = g
    while type(root.base) is np.ndarray:
        root = root.base
    if id(root) in owned or not g.flags.writeable or (0 in g.strides and g.size > 1):
        g = root = np.array(g, dtype=like.dtype, order="C")
    owned.add(id(root))
    return g
