"""Ops: pure functions on arrays, each declared once as a forward and its vector-Jacobian product.

Every op is an ``autodiff.Primitive``: on plain arrays it computes, on traced values (inside
``value_and_grad``) it is also recorded. The pairs follow one contract:

- ``<op>_forward(*inputs, **attrs) -> (out, saved)``: the output and what the VJP needs;
- ``<op>_vjp(saved, g, needs) -> (one cotangent per input)``: ``g`` has out's shape; an input
  whose ``needs`` entry is False may get None. Broadcasting is undone by autodiff, not here.

The network's ops (``dense``, the activations, ``softmax``, ``softmax_cross_entropy``) run in
Numba kernels (``kernels/``) on C-contiguous arrays of one float dtype, made so here; the
elementwise arithmetic and reductions are NumPy's own loops. Weights are ``(in, out)``: a dense
layer is ``act(x @ W + b)``, Keras's layout. Elementwise ops keep NumPy's broadcasting. Shapes
that do not fit raise ValueError naming the op and the shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import registry
from .autodiff import Primitive
from .kernels import activations as _act
from .kernels import dense as _dense
from .kernels import dropout as _dropout
from .kernels import softmax as _softmax


class Activation(NamedTuple):
    code: int
    init: str  # the initializer family that suits it
    keras: str  # the Keras activation name


_ACTIVATION_TABLE = {
    "relu": Activation(_act.RELU, "he", "relu"),
    "leaky_relu": Activation(_act.LEAKY_RELU, "he", "leaky_relu"),
    "sigmoid": Activation(_act.SIGMOID, "glorot", "sigmoid"),
    "tanh": Activation(_act.TANH, "glorot", "tanh"),
}
ACTIVATIONS: dict[str, Activation] = {name: _ACTIVATION_TABLE[name] for name in registry.ACTIVATIONS}
IDENTITY = "identity"  # no activation (a dense layer's logits)


def activation_code(name: str | None) -> int:
    """The kernel code of an activation name (None and ``identity`` included)."""
    if name is None or name == IDENTITY:
        return _act.IDENTITY
    try:
        return ACTIVATIONS[name].code
    except KeyError:
        raise ValueError(f"unknown activation {name!r}: expected one of {', '.join(ACTIVATIONS)}") from None


def _c(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float(op: str, *arrays) -> list[np.ndarray]:
    """The arrays as C-contiguous arrays of their common float dtype, or a ValueError."""
    dtype = getattr(arrays[0], "dtype", None)
    if dtype in _KERNEL_DTYPES and all(
        type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous for a in arrays
    ):
        return arrays  # as the kernels take them already
    arrays = [np.asarray(a) for a in arrays]
    dtype = np.result_type(*arrays)
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        got = ", ".join(str(a.dtype) for a in arrays)
        raise ValueError(f"{op}: expected float32 or float64 arrays, got {got}")
    return [_c(a.astype(dtype, copy=False)) for a in arrays]


def _rows(a: np.ndarray) -> np.ndarray:
    """A 2-D view of a for the row kernels: (n, rest) or (1, size)."""
    return a.reshape(a.shape[0], -1) if a.ndim >= 2 else a.reshape(1, -1)


# -- the network's ops, in kernels --------------------------------------------------------------


def dense_forward(x, W, b, activation: str | None = None, alpha: float = 0.1):
    """y (n, d_out) = act(x @ W + b) in one kernel, for x (n, d_in), W (d_in, d_out), b (d_out,)."""
    x, W, b = _float("dense", x, W, b)
    if x.ndim != 2 or W.ndim != 2 or b.shape != W.shape[1:] or x.shape[1] != W.shape[0]:
        raise ValueError(
            f"dense: expected x (n, d_in), W (d_in, d_out) and b (d_out,), "
            f"got x {x.shape}, W {W.shape} and b {b.shape}"
        )
    code = activation_code(activation)
    y = _dense.dense_forward(x, W, b, code, float(alpha))
    return y, (x, W, y, code, float(alpha))


def dense_vjp(saved, g, needs):
    x, W, y, code, alpha = saved
    dx, dw, db = _dense.dense_backward(x, W, y, _c(np.asarray(g, dtype=y.dtype)), code, alpha, bool(needs[0]))
    return (dx if needs[0] else None), dw, db


dense = Primitive("dense", dense_forward, dense_vjp)


def _activation_forward(name):
    code = activation_code(name)

    def forward(x, alpha: float = 0.1):
        (x,) = _float(name, x)
        y = _act.activation_forward(_rows(x), code, float(alpha)).reshape(x.shape)
        return y, (y, float(alpha))

    return forward


def _activation_vjp(name):
    code = activation_code(name)

    def vjp(saved, g, needs):
        y, alpha = saved
        return (
            _act.activation_backward(_rows(y), _c(_rows(np.asarray(g, dtype=y.dtype))), code, alpha).reshape(
                y.shape
            ),
        )

    return vjp


_ACTIVATION_OPS = {
    name: Primitive(name, _activation_forward(name), _activation_vjp(name)) for name in ACTIVATIONS
}


def relu(x):
    return _ACTIVATION_OPS["relu"](x)


def leaky_relu(x, alpha: float = 0.1):
    """x where x > 0, alpha * x elsewhere."""
    return _ACTIVATION_OPS["leaky_relu"](x, alpha=alpha)


def sigmoid(x):
    return _ACTIVATION_OPS["sigmoid"](x)


def tanh(x):
    return _ACTIVATION_OPS["tanh"](x)


def activation(x, name: str | None, alpha: float = 0.1):
    """x through the activation called ``name`` (None or ``identity``: x itself)."""
    if name is None or name == IDENTITY:
        return x
    activation_code(name)
    return _ACTIVATION_OPS[name](x, alpha=alpha) if name == "leaky_relu" else _ACTIVATION_OPS[name](x)


def softmax_forward(x, axis: int = -1):
    """Probabilities along ``axis`` (the rows' kernel for 2-D x and the last axis)."""
    (x,) = _float("softmax", x)
    if x.ndim == 2 and axis in (-1, 1):
        y = _softmax.softmax(x)
    else:
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_vjp(saved, g, needs):
    y, axis = saved
    return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)


softmax = Primitive("softmax", softmax_forward, softmax_vjp)


def log_softmax_forward(x, axis: int = -1):
    """log(softmax(x)) along ``axis``, stable: x - max - log(sum(exp(x - max)))."""
    (x,) = _float("log_softmax", x)
    shifted = x - x.max(axis=axis, keepdims=True)
    y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return y, (y, axis)


def log_softmax_vjp(saved, g, needs):
    y, axis = saved
    return (g - np.exp(y) * g.sum(axis=axis, keepdims=True),)


log_softmax = Primitive("log_softmax", log_softmax_forward, log_softmax_vjp)


def softmax_cross_entropy_forward(logits, labels, label_smoothing: float = 0.0):
    """Mean softmax cross-entropy of logits (n, k) against integer labels (n,) in [0, k): a
    float64 scalar. Stable for any finite logits (log-sum-exp, accumulated in float64).

    ``label_smoothing`` in [0, 1) smooths the targets as Keras's ``CategoricalCrossentropy``
    does: (1 - label_smoothing) * onehot + label_smoothing / k."""
    if not 0 <= label_smoothing < 1:  # also refuses nan
        raise ValueError(f"softmax_cross_entropy: label_smoothing must lie in [0, 1), got {label_smoothing}")
    (logits,) = _float("softmax_cross_entropy", logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"softmax_cross_entropy: expected logits (n, k) and labels (n,), "
            f"got {logits.shape} and {labels.shape}"
        )
    if labels.dtype.kind not in "iu" or len(labels) == 0:
        raise ValueError(
            f"softmax_cross_entropy: expected at least one integer label, "
            f"got {len(labels)} of dtype {labels.dtype}"
        )
    labels = labels if labels.dtype == np.int64 else labels.astype(np.int64)
    if not _softmax.labels_within(labels, logits.shape[1]):
        raise ValueError(
            f"softmax_cross_entropy: labels must lie in [0, {logits.shape[1]}), "
            f"got {labels.min()}..{labels.max()}"
        )
    if label_smoothing:
        loss, dlogits, _ = _softmax.smoothed_cross_entropy(logits, labels, float(label_smoothing))
    else:
        loss, dlogits, _ = _softmax.softmax_cross_entropy(logits, labels)
    return np.float64(loss), dlogits


def softmax_cross_entropy_vjp(dlogits, g, needs):
    return (dlogits * np.asarray(g, dtype=dlogits.dtype),)  # dlogits = (softmax - onehot) / n


softmax_cross_entropy = Primitive(
    "softmax_cross_entropy", softmax_cross_entropy_forward, softmax_cross_entropy_vjp
)


class DropoutCache(NamedTuple):
    mask: np.ndarray  # x's shape: 0 where dropped, 1 / (1 - rate) where kept


def dropout_forward(x, rate: float, rng: np.random.Generator | None):
    """Inverted dropout with Keras's meaning of ``rate``: the fraction of units DROPPED.

    Each unit of x is zeroed with probability ``rate`` and the kept ones are scaled by
    1 / (1 - rate), so E[y] = x and inference needs no rescaling. The mask comes from
    ``rng.random(x.shape) >= rate`` (Keras's draw). With ``rng=None`` (inference) or
    ``rate=0`` the op is the identity. Returns y of x's dtype and a ``DropoutCache``.
    """
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"dropout: rate is the fraction dropped, expected 0 <= rate < 1, got {rate}")
    x = np.asarray(x)
    if rng is None or rate == 0.0:
        return x, DropoutCache(np.ones_like(x))
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = np.ascontiguousarray(x, dtype=dtype)
    u = rng.random(x.shape, dtype=dtype)
    y, mask = np.empty_like(x), np.empty_like(x)
    _dropout.dropout_forward(x.reshape(-1), u.reshape(-1), dtype(rate), dtype(1.0 / (1.0 - rate)),
                             y.reshape(-1), mask.reshape(-1))
    return y, DropoutCache(mask)


def dropout_backward(cache: DropoutCache, dy: np.ndarray) -> np.ndarray:
    """dx = dy * mask: dropped units pass no gradient, kept ones are scaled as forward."""
    return dy * cache.mask


dropout = Primitive("dropout", dropout_forward, lambda cache, g, needs: (dropout_backward(cache, g),))


# arithmetic, reductions and shapes, in NumPy (array_ops.py), also used by traced values' operators
from .array_ops import (  # noqa: E402, F401
    add,
    divide,
    exp,
    flatten,
    log,
    matmul,
    maximum,
    mean,
    multiply,
    negative,
    power,
    reshape,
    sqrt,
    square,
    subtract,
    sum,
    take,
    transpose,
)
from .conv_ops import avg_pool2d, conv2d, max_pool2d  # noqa: E402, F401  (images: conv_ops.py)
from .conv_pool_ops import conv2d_max_pool2d  # noqa: E402, F401
from .norm_ops import batch_norm, batch_norm_inference  # noqa: E402, F401  (batch statistics: norm_ops.py)
