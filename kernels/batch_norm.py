"""Batch normalization over the rows of a 2-D array (m, c): each column (a channel) is scaled to
mean 0 and variance 1 over the rows, then by gamma and shifted by beta.

The sums run in float64, over the rows in order, whatever x's dtype; the rest stays in x's
dtype (a float32 factor times a float64 sum would make the loops float64). The variance is
E[x^2] - E[x]^2 of those sums: exact enough in float64 for a mean up to ~1e4 standard deviations.
"""

import numpy as np

from ._jit import kernel


@kernel
def column_moments(x):
    """(sum, sum of squares) of each column of x (m, c), in float64."""
    m, c = x.shape
    total = np.zeros(c, np.float64)
    squares = np.zeros(c, np.float64)
    for i in range(m):
        for j in range(c):
            v = np.float64(x[i, j])
            total[j] += v
            squares[j] += v * v
    return total, squares


@kernel
def batch_norm_forward(x, gamma, beta, eps):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta, mean and var over the rows of x (m, c),
    the biased variance (as Keras). Returns y, and for the backward the mean and
    inv = 1 / sqrt(var + eps), of x's dtype."""
    m, c = x.shape
    total, squares = column_moments(x)
    mean = total / m
    var = np.maximum(squares / m - mean * mean, 0.0)
    inv = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    centre = mean.astype(x.dtype)
    scale = (gamma * inv).astype(x.dtype)
    y = np.empty_like(x)
    for i in range(m):
        for j in range(c):
            y[i, j] = (x[i, j] - centre[j]) * scale[j] + beta[j]
    return y, centre, inv


@kernel
def batch_norm_backward(g, x, centre, inv, gamma):
    """The VJP of batch_norm_forward at cotangent g (m, c): (dx, dgamma, dbeta), with x_hat =
    (x - centre) * inv and dx = gamma * inv / m * (m * g - dbeta - x_hat * dgamma), the batch's
    statistics differentiated."""
    m, c = g.shape
    dbeta = np.zeros(c, np.float64)
    dgamma = np.zeros(c, np.float64)
    for i in range(m):
        for j in range(c):
            dbeta[j] += g[i, j]
            dgamma[j] += g[i, j] * ((x[i, j] - centre[j]) * inv[j])
    scale = (gamma * inv).astype(g.dtype)
    shift = (scale * dbeta / m).astype(g.dtype)
    tilt = (scale * inv * dgamma / m).astype(g.dtype)  # times (x - centre), which is x_hat / inv
    dx = np.empty_like(g)
    for i in range(m):
        for j in range(c):
            dx[i, j] = scale[j] * g[i, j] - shift[j] - tilt[j] * (x[i, j] - centre[j])
    return dx, dgamma.astype(g.dtype), dbeta.astype(g.dtype)
