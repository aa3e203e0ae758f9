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

from .autodiff import Primitive, Traced
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
    if dtype in _KERNEL_DTYPES and all(type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous
                                       for a in arrays):
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
        raise ValueError(f"dense: expected x (n, d_in), W (d_in, d_out) and b (d_out,), "
                         f"got x {x.shape}, W {W.shape} and b {b.shape}")
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
        return (_act.activation_backward(_rows(y), _c(_rows(np.asarray(g, dtype=y.dtype))), code, alpha)
                .reshape(y.shape),)

    return vjp


_ACTIVATION_OPS = {name: Primitive(name, _activation_forward(name), _activation_vjp(name)) for name in ACTIVATIONS}


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


def softmax_cross_entropy_forward(logits, labels):
    """Mean softmax cross-entropy of logits (n, k) against integer labels (n,) in [0, k): a
    float64 scalar. Stable for any finite logits (log-sum-exp, accumulated in float64)."""
    (logits,) = _float("softmax_cross_entropy", logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"softmax_cross_entropy: expected logits (n, k) and labels (n,), "
                         f"got {logits.shape} and {labels.shape}")
    if labels.dtype.kind not in "iu" or len(labels) == 0:
        raise ValueError(f"softmax_cross_entropy: expected at least one integer label, "
                         f"got {len(labels)} of dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {logits.shape[1]}), "
                         f"got {labels.min()}..{labels.max()}")
    loss, dlogits, _ = _softmax.softmax_cross_entropy(logits, labels.astype(np.int64, copy=False))
    return np.float64(loss), dlogits


def softmax_cross_entropy_vjp(dlogits, g, needs):
    return (dlogits * np.asarray(g, dtype=dlogits.dtype),)  # dlogits = (softmax - onehot) / n


softmax_cross_entropy = Primitive("softmax_cross_entropy", softmax_cross_entropy_forward,
                                  softmax_cross_entropy_vjp)


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
    keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= rate
    mask = keep.astype(x.dtype)
    mask *= x.dtype.type(1.0 / (1.0 - rate))
    return x * mask, DropoutCache(mask)


def dropout_backward(cache: DropoutCache, dy: np.ndarray) -> np.ndarray:
    """dx = dy * mask: dropped units pass no gradient, kept ones are scaled as forward."""
    return dy * cache.mask


dropout = Primitive("dropout", dropout_forward, lambda cache, g, needs: (dropout_backward(cache, g),))


# -- arithmetic, reductions and shapes, in NumPy ------------------------------------------------


def _broadcast(op: str, a, b):
    try:
        np.broadcast_shapes(np.shape(a), np.shape(b))
    except ValueError:
        raise ValueError(f"{op}: shapes {np.shape(a)} and {np.shape(b)} do not broadcast") from None


def _binary(name: str, compute, vjp) -> Primitive:
    def forward(a, b):
        _broadcast(name, a, b)
        return compute(a, b), (a, b)

    return Primitive(name, forward, vjp)


add = _binary("add", np.add, lambda ab, g, needs: (g, g))
subtract = _binary("subtract", np.subtract, lambda ab, g, needs: (g, -g))
multiply = _binary("multiply", np.multiply, lambda ab, g, needs: (g * ab[1], g * ab[0]))
divide = _binary("divide", np.divide, lambda ab, g, needs: (g / ab[1], -g * ab[0] / np.square(ab[1])))


def _maximum_vjp(ab, g, needs):
    a, b = ab
    a_wins = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))  # ties share the gradient, as in JAX
    return g * a_wins, g * (1.0 - a_wins)


maximum = _binary("maximum", np.maximum, _maximum_vjp)
negative = Primitive("negative", lambda x: (np.negative(x), None), lambda _, g, needs: (-g,))
exp = Primitive("exp", lambda x: ((y := np.exp(x)), y), lambda y, g, needs: (g * y,))
log = Primitive("log", lambda x: (np.log(x), x), lambda x, g, needs: (g / x,))
square = Primitive("square", lambda x: (np.square(x), x), lambda x, g, needs: (2 * g * x,))
sqrt = Primitive("sqrt", lambda x: ((y := np.sqrt(x)), y), lambda y, g, needs: (g / (2 * y),))


def _power_vjp(saved, g, needs):
    x, p, y = saved
    dx = g * p * np.power(x, p - 1) if needs[0] else None
    dp = g * y * np.log(x) if len(needs) > 1 and needs[1] else None  # a traced exponent: x > 0
    return dx, dp


power = Primitive("power", lambda x, p: ((y := np.power(x, p)), (x, p, y)), _power_vjp)


def matmul_forward(a, b):
    """a @ b for 1-D or 2-D a (n, k) and b (k, m)."""
    sa, sb = np.shape(a), np.shape(b)
    if len(sa) not in (1, 2) or len(sb) not in (1, 2) or sa[-1] != sb[0]:
        raise ValueError(f"matmul: expected a (n, k) and b (k, m) (or vectors), got {sa} and {sb}")
    return np.matmul(a, b), (a, b)


def matmul_vjp(ab, g, needs):
    a, b = ab
    a2 = a if np.ndim(a) == 2 else np.reshape(a, (1, -1))
    b2 = b if np.ndim(b) == 2 else np.reshape(b, (-1, 1))
    g2 = np.reshape(g, (a2.shape[0], b2.shape[1]))
    da = (g2 @ b2.T).reshape(np.shape(a)) if needs[0] else None
    db = (a2.T @ g2).reshape(np.shape(b)) if needs[1] else None
    return da, db


matmul = Primitive("matmul", matmul_forward, matmul_vjp)
transpose = Primitive("transpose", lambda x: (np.transpose(x), None), lambda _, g, needs: (np.transpose(g),))


def reshape_forward(x, shape):
    try:
        return np.reshape(x, shape), np.shape(x)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape {np.shape(x)} into {shape}") from None


reshape = Primitive("reshape", reshape_forward, lambda shape, g, needs: (np.reshape(g, shape),))


def flatten(x):
    """x (n, ...) -> (n, prod(...)): one row per example."""
    return reshape(x, shape=(np.shape(x.value if isinstance(x, Traced) else x)[0], -1))


def _expand(g, shape, axis, keepdims):
    """The cotangent of a reduction over ``axis``, broadcast back to the input's shape."""
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape)


def _reduced(shape, axis) -> int:
    if axis is None:
        return int(np.prod(shape))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return int(np.prod([shape[a] for a in axes]))


def _reduction(name: str, reduce):
    def forward(x, axis=None, keepdims=False):
        try:
            return reduce(x, axis=axis, keepdims=keepdims), (np.shape(x), axis, keepdims)
        except (np.exceptions.AxisError, ValueError) as e:
            raise ValueError(f"{name}: cannot reduce shape {np.shape(x)} over axis {axis}: {e}") from None

    return forward


sum = Primitive("sum", _reduction("sum", np.sum), lambda s, g, needs: (_expand(g, *s),))
mean = Primitive("mean", _reduction("mean", np.mean), lambda s, g, needs: (_expand(g, *s) / _reduced(s[0], s[1]),))


def _take_vjp(saved, g, needs):
    shape, dtype, index = saved
    dx = np.zeros(shape, dtype=np.result_type(dtype, g))
    parts = index if isinstance(index, tuple) else (index,)
    if all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts):
        dx[index] += g  # basic indexing: a view, no element twice
    else:
        np.add.at(dx, index, g)  # an index may repeat: its cotangents add up
    return (dx,)


take = Primitive("take", lambda x, index: (np.asarray(x)[index], (np.shape(x), np.result_type(x), index)),
                 _take_vjp)
