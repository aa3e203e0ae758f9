"""Elementwise activations by integer code, forward and backward.

Each activation's derivative is written in terms of its *output* y, so a layer only has to keep
y for its backward pass: relu' = [y > 0], leaky_relu' = 1 or alpha (alpha > 0 keeps the sign of
the input), sigmoid' = y (1 - y), tanh' = 1 - y^2, identity' = 1.
"""

import math

import numpy as np

from ._jit import kernel

IDENTITY = 0
RELU = 1
LEAKY_RELU = 2
SIGMOID = 3
TANH = 4


@kernel
def activate(z, act, alpha):
    """One value through the activation with code ``act``."""
    if act == RELU:
        return z if z > 0 or z != z else 0.0
    if act == LEAKY_RELU:
        return z if z > 0 else alpha * z
    if act == SIGMOID:
        # Stable on both sides: exp never sees a large positive argument.
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if act == TANH:
        return math.tanh(z)
    return z


@kernel
def derivative(y, act, alpha):
    """The activation's derivative at the input that produced output ``y``."""
    if act == RELU:
        return 1.0 if y > 0 else 0.0
    if act == LEAKY_RELU:
        return 1.0 if y > 0 else alpha
    if act == SIGMOID:
        return y * (1.0 - y)
    if act == TANH:
        return 1.0 - y * y
    return 1.0


@kernel
def activation_forward(z, act, alpha):
    """y = act(z) for a 2-D array z (n, m); returns a new array of z's dtype."""
    y = np.empty_like(z)
    n, m = z.shape
    for i in range(n):
        for j in range(m):
            y[i, j] = activate(z[i, j], act, alpha)
    return y


@kernel
def activation_backward(y, dy, act, alpha):
    """dz = dy * act'(z), from the forward output y (n, m) and the incoming gradient dy (n, m)."""
    dz = np.empty_like(dy)
    n, m = dy.shape
    for i in range(n):
        for j in range(m):
            dz[i, j] = dy[i, j] * derivative(y[i, j], act, alpha)
    return dz
