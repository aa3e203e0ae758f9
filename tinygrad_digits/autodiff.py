"""Reverse-mode automatic differentiation of Python functions over NumPy arrays.

The contract, as in HIPS autograd and JAX:

- ``value_and_grad(fun)(params, *args)`` calls ``fun`` with every float array of ``params`` (a
  dict, nested dicts, lists or tuples of arrays, or one array) wrapped in a ``Traced`` value, and
  returns ``(value, grads)``: fun's scalar value and its gradient with respect to each array,
  in the same structure, shapes and dtypes. ``grad(fun)`` returns the grads alone. Arguments
  other than those named by ``argnums`` are constants.
- An op is a ``Primitive``: a forward ``forward(*inputs, **attrs) -> (out, saved)`` and its
  vector-Jacobian product ``vjp(saved, g, needs) -> (one cotangent per input, None where
  needs is False)``, declared once with ``primitive``. Called on plain arrays it only computes;
  called on a traced input it also records the call.
- The backward pass is one walk of the record in reverse topological order, summing the
  cotangents that meet at a value; a cotangent is summed over broadcast axes and cast back to
  its input's shape and dtype here, so no op has to.

Python control flow, a value used twice and constants mixed with traced values need nothing
special: the record is whatever the call did.
"""

from __future__ import annotations

import functools
import itertools
import operator
from typing import Callable

import numpy as np

from .cotangents import own, unbroadcast
from .trees import check_leaf, flatten, is_flat_dict, tree_map, unflatten


_SEQUENCE = itertools.count()  # the order values are made in
_creation = operator.attrgetter("seq")


class Primitive:
    """An op declared once: ``forward(*inputs, **attrs) -> (out, saved)`` and
    ``vjp(saved, g, needs) -> tuple of cotangents`` (see the module doc)."""

    def __init__(self, name: str, forward: Callable, vjp: Callable):
        self.name, self.forward, self.vjp = name, forward, vjp

    def __call__(self, *inputs, **attrs):
        traced = tuple(type(x) is Traced for x in inputs)
        if True not in traced:
            return self.forward(*inputs, **attrs)[0]
        out, saved = self.forward(*[x.value if t else x for x, t in zip(inputs, traced)], **attrs)
        return Traced(out, self, inputs, saved, traced)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def primitive(name: str, vjp: Callable):
    """Decorator: ``@primitive("relu", relu_vjp)`` over the forward makes it a Primitive."""
    return lambda forward: functools.wraps(forward)(Primitive(name, forward, vjp))


class Traced:
    """A value recorded during ``value_and_grad``: the array, and the op call that made it.

    It supports ``+ - * / @``, unary ``-``, ``**`` (either side traced), ``.T``, ``.reshape``,
    ``.sum``/``.mean`` (with ``axis``), basic indexing, and comparisons (which give plain bool
    arrays, for control flow). NumPy functions do not see through it: use ``ops``.
    """

    __slots__ = ("value", "op", "inputs", "saved", "traced", "seq")
    __array_ufunc__ = None  # ndarray + Traced calls Traced.__radd__ instead of NumPy's loop

    def __init__(self, value, op=None, inputs=(), saved=None, traced=()):
        self.value, self.op, self.inputs, self.saved, self.traced = value, op, inputs, saved, traced
        self.seq = next(_SEQUENCE)

    shape = property(lambda self: np.shape(self.value))
    ndim = property(lambda self: np.ndim(self.value))
    dtype = property(lambda self: np.result_type(self.value))
    size = property(lambda self: np.size(self.value))

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"Traced({self.value!r})"

    def __float__(self) -> float:
        return float(self.value)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "a traced value cannot become a NumPy array inside a differentiated function: "
            "use tinygrad_digits.ops, or .value for a constant copy that gradients do not flow through"
        )

    # arithmetic, in ops (imported late: ops imports this module)
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().subtract(self, other)

    def __rsub__(self, other):
        return _ops().subtract(other, self)

    def __mul__(self, other):
        return _ops().multiply(self, other)

    def __rmul__(self, other):
        return _ops().multiply(other, self)

    def __truediv__(self, other):
        return _ops().divide(self, other)

    def __rtruediv__(self, other):
        return _ops().divide(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().negative(self)

    def __pow__(self, exponent):
        return _ops().power(self, exponent)

    def __rpow__(self, base):
        return _ops().power(base, self)

    def __getitem__(self, index):
        return _ops().take(self, index=index)

    @property
    def T(self):
        return _ops().transpose(self)

    def reshape(self, *shape):
        return _ops().reshape(self, shape=shape[0] if len(shape) == 1 else shape)

    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    # comparisons see values only: they give bool arrays, for masks and control flow
    def __lt__(self, other):
        return self.value < _value(other)

    def __le__(self, other):
        return self.value <= _value(other)

    def __gt__(self, other):
        return self.value > _value(other)

    def __ge__(self, other):
        return self.value >= _value(other)

    __hash__ = object.__hash__


def _value(x):
    return x.value if isinstance(x, Traced) else x



@functools.cache
def _ops():
    from . import ops

    return ops


def _backward(out: Traced, leaves: list[Traced]) -> list:
    """Cotangents of every leaf for d(out) = 1: one reverse topological walk, summing."""
    # every node reachable from out, then newest first: a node is made after all its inputs, so
    # decreasing creation order is a reverse topological order (no recursion, any depth)
    reached, stack = {id(out): out}, [out]
    while stack:
        for x in stack.pop().inputs:
            if type(x) is Traced and id(x) not in reached:
                reached[id(x)] = x
                stack.append(x)
    order = sorted(reached.values(), key=_creation)
    cotangents = {id(out): np.ones_like(out.value)}
    for node in reversed(order):
        g = cotangents.pop(id(node), None)
        if g is None or node.op is None:
            if node.op is None and g is not None:
                cotangents[id(node)] = g  # a leaf keeps its sum
            continue
        parts = node.op.vjp(node.saved, g, node.traced)
        for x, t, part in zip(node.inputs, node.traced, parts):
            if not t:
                continue
            value = x.value
            part = unbroadcast(part, value.shape if type(value) is np.ndarray else np.shape(value))
            key = id(x)
            if key in cotangents:
                cotangents[key] = cotangents[key] + part
            else:
                cotangents[key] = part
    return [cotangents.get(id(leaf)) for leaf in leaves]


def value_and_grad(fun: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``fun``'s value and its gradient with respect to argument(s) ``argnums`` (see module doc).

    ``fun(*args, **kwargs)`` must return a scalar (an array of one element), or with
    ``has_aux`` a pair (scalar, aux) whose aux comes back untouched: ``((value, aux), grads)``.
    The value is a NumPy scalar of fun's dtype. With a tuple ``argnums`` the grads are a tuple,
    one entry per argument. Raises ValueError for a non-scalar result or a parameter that is not
    a float array.
    """
    many = isinstance(argnums, tuple)
    positions = argnums if many else (argnums,)

    where = f"value_and_grad({getattr(fun, '__name__', 'fun')})"

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        args = list(args)
        leaves, trees = [], []
        for pos in positions:
            if pos >= len(args):
                raise ValueError(f"{where}: argnums {pos} but only {len(args)} positional arguments")
            tree = args[pos]
            if is_flat_dict(tree):  # the common case, without walking a tree
                traced = [Traced(leaf) for leaf in tree.values()]
                args[pos] = dict(zip(tree, traced))
            else:
                flat = flatten(tree)
                for path, leaf in flat:
                    check_leaf(where, path, leaf)
                traced = [Traced(leaf) for _, leaf in flat]
                args[pos] = unflatten(tree, iter(traced))
            leaves.append(traced)
            trees.append(tree)
        result = fun(*args, **kwargs)
        out, aux = result if has_aux else (result, None)
        aux = tree_map(_value, aux)
        if np.size(_value(out)) != 1:
            raise ValueError(f"{where}: the function must return a scalar, got shape {np.shape(_value(out))}")
        flat = [t for traced in leaves for t in traced]
        found = _backward(out, flat) if isinstance(out, Traced) else [None] * len(flat)
        found = iter(found)
        grads, owned = [], set()
        for tree, traced in zip(trees, leaves):
            cast = [
                np.zeros_like(t.value) if g is None else own(g, t.value, owned)
                for t, g in zip(traced, found)
            ]
            grads.append(dict(zip(tree, cast)) if is_flat_dict(tree) else unflatten(tree, iter(cast)))
        value = np.asarray(_value(out)).reshape(())[()]
        grads = tuple(grads) if many else grads[0]
        return ((value, aux) if has_aux else value), grads

    return wrapped


def grad(fun: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """The gradient part of ``value_and_grad(fun, argnums, has_aux)`` (with aux: (grads, aux))."""
    both = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        value, grads = both(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return wrapped
