"""The array ops of ``ops``: arithmetic with NumPy's broadcasting, reductions and shapes.

The same contract as ``ops`` (a forward ``(out, saved)`` and its VJP, declared once as an
``autodiff.Primitive``); the loops are NumPy's own. Cotangents come back at the broadcast shape:
autodiff sums them back to each input's shape. Import them from ``ops``.
"""

from __future__ import annotations

import numpy as np

from .autodiff import Primitive, Traced


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
mean = Primitive(
    "mean", _reduction("mean", np.mean), lambda s, g, needs: (_expand(g, *s) / _reduced(s[0], s[1]),)
)


def _take_vjp(saved, g, needs):
    shape, dtype, index = saved
    dx = np.zeros(shape, dtype=np.result_type(dtype, g))
    parts = index if isinstance(index, tuple) else (index,)
    if all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts):
        dx[index] += g  # basic indexing: a view, no element twice
    else:
        np.add.at(dx, index, g)  # an index may repeat: its cotangents add up
    return (dx,)


take = Primitive(
    "take", lambda x, index: (np.asarray(x)[index], (np.shape(x), np.result_type(x), index)), _take_vjp
)
