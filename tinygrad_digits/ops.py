"""Ops: pure forward/backward pairs over a flat parameter dict.

Contract shared by every op here:
- ``y, cache = <op>_forward(...)`` computes the output and a tuple of what backward needs;
- ``dx, grads = <op>_backward(params, cache, dy)`` (or ``dx = ...`` for parameter-free ops)
  returns the gradient for the input and a dict of parameter gradients keyed like ``params``.
Arrays are 2-D ``(batch, features)``; weights are ``(in, out)`` and a dense layer is
``x @ W + b``. Inputs are made C-contiguous here so kernels never recompile for a layout.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .kernels import activations as _act
from .kernels import dense as _dense
from .kernels import softmax as _softmax


class Activation(NamedTuple):
    code: int
    init: str  # the initializer family that suits it
    keras: str  # the Keras activation name


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(_act.RELU, "he", "relu"),
    "leaky_relu": Activation(_act.LEAKY_RELU, "he", "leaky_relu"),
    "sigmoid": Activation(_act.SIGMOID, "glorot", "sigmoid"),
    "tanh": Activation(_act.TANH, "glorot", "tanh"),
}
IDENTITY = "identity"  # the output layer's activation: softmax is fused into the loss


def activation_code(name: str) -> int:
    """The kernel code of an activation name (``identity`` included)."""
    if name == IDENTITY:
        return _act.IDENTITY
    try:
        return ACTIVATIONS[name].code
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}: expected one of {', '.join(ACTIVATIONS)}"
        ) from None


def _c(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def activation_forward(name: str, x: np.ndarray, alpha: float = 0.1):
    """y = act(x) for x (n, m); cache = (y, code, alpha)."""
    code = activation_code(name)
    y = _act.activation_forward(_c(x), code, float(alpha))
    return y, (y, code, float(alpha))


def activation_backward(cache, dy: np.ndarray) -> np.ndarray:
    """dx (n, m) = dy * act'(x), from the forward output kept in cache."""
    y, code, alpha = cache
    return _act.activation_backward(y, _c(dy), code, alpha)


def dense_forward(params, name: str, x: np.ndarray, activation: str = IDENTITY, alpha: float = 0.1):
    """y = act(x @ params[name.W] + params[name.b]), fused in one kernel.

    x (n, d_in) -> y (n, d_out); cache = (name, x, y, code, alpha).
    """
    code = activation_code(activation)
    x = _c(x)
    y = _dense.dense_forward(x, params[name + ".W"], params[name + ".b"], code, float(alpha))
    return y, (name, x, y, code, float(alpha))


def dense_backward(params, cache, dy: np.ndarray, need_dx: bool = True):
    """dx (n, d_in) and {name.W: (d_in, d_out), name.b: (d_out,)} from dy (n, d_out).

    With ``need_dx=False`` (the first layer) dx is skipped and returned as None.
    """
    name, x, y, code, alpha = cache
    w = params[name + ".W"]
    dx, dw, db = _dense.dense_backward(x, w, y, _c(dy), code, alpha, need_dx)
    return (dx if need_dx else None), {name + ".W": dw, name + ".b": db}


class DropoutCache(NamedTuple):
    mask: np.ndarray  # (n, m): 0 where dropped, 1 / (1 - rate) where kept


def dropout_forward(x: np.ndarray, rate: float, rng: np.random.Generator | None):
    """Inverted dropout with Keras's meaning of ``rate``: the fraction of units DROPPED.

    Each unit of x (n, m) is zeroed with probability ``rate`` and the kept ones are scaled by
    1 / (1 - rate), so E[y] = x and inference needs no rescaling. The mask comes from
    ``rng.random(x.shape) >= rate`` (Keras's draw). With ``rng=None`` (inference) or
    ``rate=0`` the op is the identity. Returns y (n, m) of x's dtype and a ``DropoutCache``.
    """
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"dropout_forward: rate is the fraction dropped, expected 0 <= rate < 1, got {rate}")
    x = np.asarray(x)
    if rng is None or rate == 0.0:
        return x, DropoutCache(np.ones_like(x))
    keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= rate
    mask = keep.astype(x.dtype)
    mask *= x.dtype.type(1.0 / (1.0 - rate))
    return x * mask, DropoutCache(mask)


def dropout_backward(cache: DropoutCache, dy: np.ndarray) -> np.ndarray:
    """dx (n, m) = dy * mask: dropped units pass no gradient, kept ones are scaled as forward."""
    return dy * cache.mask


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax probabilities (n, k) of logits (n, k)."""
    return _softmax.softmax(_c(logits))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """Mean softmax cross-entropy and its gradient: (loss: float, dlogits (n, k)).

    labels (n,) are integers in [0, k). Stable for any finite logits (log-sum-exp).
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"softmax_cross_entropy: expected logits (n, k) and labels (n,), "
            f"got {logits.shape} and {labels.shape}"
        )
    if labels.dtype.kind not in "iu" or len(labels) == 0:
        raise ValueError(
            f"softmax_cross_entropy: expected at least one integer label, got {len(labels)} of dtype {labels.dtype}"
        )
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(
            f"softmax_cross_entropy: labels must lie in [0, {logits.shape[1]}), "
            f"got {labels.min()}..{labels.max()}"
        )
    loss, dlogits, _ = _softmax.softmax_cross_entropy(_c(logits), labels.astype(np.int64))
    return loss, dlogits
