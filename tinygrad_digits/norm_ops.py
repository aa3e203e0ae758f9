"""Batch normalization: ``batch_norm`` (the training op, over the batch's own statistics, with
its VJP in ``kernels/batch_norm.py``), ``batch_norm_inference`` (over given statistics) and
``moments`` (a sample's statistics, for those). Import them from ``ops``.

The channels are the last axis and the statistics run over all the others, as Keras's
``BatchNormalization(axis=-1)``: per feature for (n, features), per channel for images (n,
height, width, channels). The variance is the biased one, over the batch, and ``epsilon`` is
Keras's default, 1e-3.
"""

from __future__ import annotations

import numpy as np

from .autodiff import Primitive
from .kernels import batch_norm as _kernels

EPSILON = 1e-3


def _check(op: str, x, *per_channel):
    if x.ndim < 2 or any(a.shape != (x.shape[-1],) for a in per_channel):
        got = ", ".join(str(a.shape) for a in per_channel)
        raise ValueError(
            f"{op}: expected x (n, ..., channels) and per-channel vectors (channels,), got x {x.shape} and {got}"
        )


def _epsilon(op: str, epsilon) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < 1:
        raise ValueError(f"{op}: epsilon must be a number in (0, 1), got {epsilon!r}")
    return float(epsilon)


def batch_norm_forward(x, gamma, beta, epsilon: float = EPSILON):
    """y = (x - mean) / sqrt(var + epsilon) * gamma + beta, with mean and var the batch's, per
    channel (the last axis) over every other axis."""
    x, gamma, beta = _float("batch_norm", x, gamma, beta)
    _check("batch_norm", x, gamma, beta)
    rows = x.reshape(-1, x.shape[-1])
    y, centre, inv = _kernels.batch_norm_forward(rows, gamma, beta, _epsilon("batch_norm", epsilon))
    return y.reshape(x.shape), (rows, centre, inv, gamma, x.shape)


def batch_norm_vjp(saved, g, needs):
    rows, centre, inv, gamma, shape = saved
    g = _c(np.asarray(g, dtype=rows.dtype)).reshape(rows.shape)
    dx, dgamma, dbeta = _kernels.batch_norm_backward(g, rows, centre, inv, gamma)
    return dx.reshape(shape), dgamma, dbeta


batch_norm = Primitive("batch_norm", batch_norm_forward, batch_norm_vjp)


def inference_affine(gamma, beta, mean, var, epsilon: float = EPSILON):
    """(scale, shift) with batch_norm_inference(x) = x * scale + shift: scale = gamma /
    sqrt(var + epsilon), shift = beta - mean * scale. Either may be traced, through gamma and
    beta; mean and var are constants."""
    var = np.asarray(var)
    inv = 1.0 / np.sqrt(var + var.dtype.type(_epsilon("batch_norm_inference", epsilon)))
    scale = gamma * inv
    return scale, beta - mean * scale


def batch_norm_inference(x, gamma, beta, mean, var, epsilon: float = EPSILON):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta with given statistics, as x * scale +
    shift (``inference_affine``), in NumPy's broadcasting; differentiable in x, gamma and beta."""
    _check("batch_norm_inference", np.asarray(getattr(x, "value", x)), *(
        np.asarray(getattr(a, "value", a)) for a in (gamma, beta, mean, var)))
    scale, shift = inference_affine(gamma, beta, mean, var, epsilon)
    return x * scale + shift


def moments(x) -> tuple[np.ndarray, np.ndarray, int]:
    """(sum, sum of squares, count) per channel (the last axis) of x over every other axis, in
    float64: a sample's statistics, summed over its chunks."""
    (x,) = _float("moments", x)
    rows = x.reshape(-1, x.shape[-1])
    total, squares = _kernels.column_moments(rows)
    return total, squares, len(rows)


from .ops import _c, _float  # noqa: E402 (ops imports this module at its end)
