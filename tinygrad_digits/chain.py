"""What the fused kernels train, read from a model of layers: its *dense chain*, and where every
layer lies in the kernels' flat buffers.

A chain is a tuple of ``(weight key, bias key, activation name)``, one per dense layer, with one
leaky_relu ``alpha`` for all (``dense_chain``); ``flat_layout`` places it in flat arrays, which
``aligned_empty`` allocates on cache lines. ``background_of`` finds the value that most of the
first layer's inputs hold, which a sparse first layer skips.
"""

from __future__ import annotations

import numpy as np

from . import layers
from .kernels.activations import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH

IDENTITY_NAME = "identity"  # a dense layer without activation
ACTIVATION_CODES = {IDENTITY_NAME: IDENTITY, "relu": RELU, "leaky_relu": LEAKY_RELU, "sigmoid": SIGMOID,
                    "tanh": TANH}
LINE = 64  # bytes in a cache line
BLOCK = 16  # elements: flat_layout starts every block at a multiple (a line of float32)
CHUNK = 1 << 16  # entries that row_blocks counts at a time


def dense_chain(model):
    """``(chain, alpha)`` when the model is only dense layers (fastpath's fused kernels), else
    None. chain: ((weight key, bias key, activation), ...); an Activation right after a Dense
    without one is folded into it; dropout of rate 0 is skipped. alpha: the one leaky_relu alpha."""
    if not isinstance(model, layers.Sequential):
        return None
    chain, alphas = [], set()
    for name, layer in zip(model.names, model.layers):
        if isinstance(layer, layers.Dense):
            chain.append([f"{name}.W", f"{name}.b", layer.activation or IDENTITY_NAME])
            alphas.add(layer.alpha if layer.activation == "leaky_relu" else None)
        elif isinstance(layer, layers.Activation) and chain and chain[-1][2] == IDENTITY_NAME:
            chain[-1][2] = layer.name
            alphas.add(layer.alpha if layer.name == "leaky_relu" else None)
        elif not (isinstance(layer, layers.Dropout) and layer.rate == 0):
            return None
    alphas.discard(None)
    if not chain or len(alphas) > 1:
        return None
    return tuple(map(tuple, chain)), (alphas.pop() if alphas else 0.1)


def flat_layout(chain, params: dict, rows: int):
    """Where the fused kernels (kernels/fused.py) find every layer in flat buffers, for ``rows``
    inputs at a time: (layout (L, 6) int64, [(param key, offset, size)], params size, outputs
    size). Every block starts at a multiple of BLOCK elements, so that in a buffer from
    aligned_empty it starts on a cache line; the elements between blocks are never read."""
    layout, keys, size, out_size = [], [], 0, 0
    for w_key, b_key, act in chain:
        fan_in, fan_out = params[w_key].shape
        w_at = _block(size)
        b_at = _block(w_at + fan_in * fan_out)
        size = b_at + fan_out
        layout.append((w_at, fan_in, fan_out, b_at, out_size, ACTIVATION_CODES[act]))
        out_size = _block(out_size + rows * fan_out)
        keys += [(w_key, w_at, fan_in * fan_out), (b_key, b_at, fan_out)]
    return np.array(layout, dtype=np.int64), keys, _block(size), out_size


def _block(offset: int) -> int:
    return -(-offset // BLOCK) * BLOCK


def aligned_empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` whose data starts on a cache line (LINE bytes). NumPy aligns
    its arrays to 16 bytes only, so where an array starts on a line depends on the process: a
    vector load that spans two lines costs two. On an Intel Xeon (the ways alternated in one
    process) the fused training step took 1.07-1.15x as long with its buffers 16 or 48 bytes past
    a line and 256-bit vectors, 1.15-1.29x 16, 32 or 48 bytes past with 512-bit ones."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + LINE, dtype=np.uint8)
    start = -raw.ctypes.data % LINE
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def aligned_zeros(shape, dtype) -> np.ndarray:
    """``np.zeros(shape, dtype)`` starting on a cache line (aligned_empty)."""
    out = aligned_empty(shape, dtype)
    out[...] = 0
    return out


def background_of(x: np.ndarray):
    """The likely background value of inputs x (n, d), and how many inputs hold it: of the two
    candidates, the minimum (a blank pixel of dark-background images, normalized) and the first
    input's first value (an image's corner), the more frequent."""
    if x.size == 0:
        return x.dtype.type(0), 0
    rows = max(1, (1 << 20) // max(1, x.shape[1]))  # a block of rows at a time: no x-sized temporary

    def count(value) -> int:
        return sum(int(np.count_nonzero(x[i : i + rows] == value)) for i in range(0, len(x), rows))

    counts = [(count(value), value) for value in (x.min(), x.flat[0])]
    count_, value = max(counts, key=lambda c: c[0])
    return value, count_


def row_blocks(indices: np.ndarray, d_in: int, parts: int) -> np.ndarray:
    """Bounds (parts + 1,) int64 of the parts' blocks of a sparse first layer's W rows, for the
    column ``indices`` of the training set's entries: each block's columns hold about the same
    share of the entries, so the parts' products take about as long (MNIST's lower half holds 11%
    more ink than its upper half)."""
    counts = np.zeros(d_in, dtype=np.int64)
    for at in range(0, len(indices), CHUNK):  # bincount makes an int64 copy: a chunk at a time
        counts += np.bincount(indices[at : at + CHUNK], minlength=d_in)
    ends = np.cumsum(counts)
    if d_in == 0 or ends[-1] == 0:  # no entries: blocks of equal size
        return np.array([d_in * t // parts for t in range(parts + 1)], dtype=np.int64)
    inner = [int(np.searchsorted(ends, ends[-1] * t / parts)) + 1 for t in range(1, parts)]
    return np.minimum(np.array([0, *inner, d_in], dtype=np.int64), d_in)
