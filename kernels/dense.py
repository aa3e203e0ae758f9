"""Fused dense layers: y = act(x @ w + b) forward; the activation mask, bias and weight
gradients in one pass backward. Matrix products go through BLAS via ``np.dot``.

Shapes: x (n, d_in), w (d_in, d_out), b (d_out,), y and dy (n, d_out). All of one float dtype,
C-contiguous.
"""

import numpy as np

from ._jit import kernel
from .activations import activate, derivative


@kernel
def dense_forward(x, w, b, act, alpha):
    """y = act(x @ w + b), (n, d_out), computed in place on the product."""
    y = np.dot(x, w)
    n, m = y.shape
    for i in range(n):
        for j in range(m):
            y[i, j] = activate(y[i, j] + b[j], act, alpha)
    return y


@kernel
def dense_backward(x, w, y, dy, act, alpha, need_dx):
    """Gradients of a dense layer from its input x, output y and incoming dy.

    Returns (dx (n, d_in) or an empty (0, 0) array when need_dx is False, dw (d_in, d_out),
    db (d_out,)). The bias sums accumulate in float64.
    """
    n, m = dy.shape
    dz = np.empty_like(dy)
    db = np.zeros(m, dtype=np.float64)
    for i in range(n):
        for j in range(m):
            g = dy[i, j] * derivative(y[i, j], act, alpha)
            dz[i, j] = g
            db[j] += g
    dw = np.dot(x.T, dz)
    if need_dx:
        dx = np.dot(dz, w.T)
    else:
        dx = np.empty((0, 0), dtype=dy.dtype)
    return dx, dw, db.astype(dy.dtype)
