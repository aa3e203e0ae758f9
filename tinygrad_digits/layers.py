"""Layers in stax's style: pure ``init`` / ``apply`` pairs, composed by ``Sequential`` and ``Residual``.

Every layer honours one contract:

- ``init(rng, input_shape, dtype=np.float32) -> params``: fresh parameters, a flat dict of
  arrays keyed by dotted names (``{"W": ..., "b": ...}`` for a Dense; a Sequential prefixes
  each child's keys with its name, ``dense0.W``); ``input_shape`` leaves out the batch axis.
- ``output_shape(input_shape) -> shape``, also without the batch axis.
- ``apply(params, x, rng=None) -> y`` for x (n, *input_shape), built from ``ops`` only, so
  ``autodiff`` differentiates it. An ``rng`` means training: dropout draws its masks from it.
- ``to_json() -> dict``, and ``from_json`` rebuilds any layer from it: an architecture is data.

A Sequential names its children by kind and count (``dense0``, ``dropout0``, ``dense1``), so the
plain MLP's keys are those of model files since version 0.1.
"""

from __future__ import annotations

import math

import numpy as np

from . import ops, registry

INITS = registry.INITS
MAX_DEPTH = 8  # nesting of Sequential and Residual that from_json accepts


class Layer:
    """The base of every layer: no parameters, shape-preserving, and its JSON."""

    kind = "layer"
    has_params = False

    def init(self, rng: np.random.Generator, input_shape, dtype=np.float32) -> dict:
        return {}

    def output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def fused_with(self, following: "Layer"):
        """``apply(params, x, rng)`` of this layer and ``following`` in one op (with this layer's
        params), for a Sequential to call instead of the two; None when there is none."""
        return None

    def to_json(self) -> dict:
        return {"type": type(self).__name__, **self._fields()}

    def _fields(self) -> dict:
        return {}

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{type(self).__name__}({fields})"


class Dense(Layer):
    """y = act(x @ W + b): W (d_in, units), b (units,), in one kernel (``ops.dense``).

    ``init``: ``auto`` is He uniform for the relu family and Glorot uniform otherwise (Keras's
    ``he_uniform`` / ``glorot_uniform``); ``normal`` is the standard normal."""

    kind = "dense"
    has_params = True

    def __init__(self, units: int, activation: str | None = None, alpha: float = 0.1, init: str = "auto"):
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        ops.activation_code(activation)
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"Dense: alpha must be a finite number >= 0, got {alpha!r}")
        if init not in INITS:
            raise ValueError(f"Dense: unknown init {init!r}: expected one of {', '.join(INITS)}")
        self.units, self.alpha, self.init_name = int(units), float(alpha), init
        self.activation = None if activation == ops.IDENTITY else activation

    def init(self, rng, input_shape, dtype=np.float32):
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense: expected inputs of shape (features,), got {tuple(input_shape)} (add Flatten)"
            )
        fan_in, fan_out = int(input_shape[0]), self.units
        family = self.init_name
        if family == "auto":
            family = ops.ACTIVATIONS[self.activation].init if self.activation else "glorot"
        if isinstance(rng, _ShapeRng):  # param_shapes: the shapes, nothing allocated
            return {"W": rng.uniform(0, 0, (fan_in, fan_out)), "b": rng.uniform(0, 0, (fan_out,))}
        if family == "normal":
            w = rng.standard_normal((fan_in, fan_out))
        else:
            limit = math.sqrt(6.0 / fan_in) if family == "he" else math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, (fan_in, fan_out))
        return {"W": np.ascontiguousarray(w, dtype=dtype), "b": np.zeros(fan_out, dtype=dtype)}

    def output_shape(self, input_shape):
        return (self.units,)

    def apply(self, params, x, rng=None):
        return ops.dense(x, params["W"], params["b"], activation=self.activation, alpha=self.alpha)

    def _fields(self):
        fields = {"units": self.units, "activation": self.activation}
        if self.activation == "leaky_relu":
            fields["alpha"] = self.alpha
        if self.init_name != "auto":
            fields["init"] = self.init_name
        return fields


class Activation(Layer):
    """An activation by name (``ops.ACTIVATIONS``), elementwise."""

    kind = "activation"

    def __init__(self, name: str, alpha: float = 0.1):
        if name not in ops.ACTIVATIONS:
            raise ValueError(
                f"Activation: unknown activation {name!r}: expected one of {', '.join(ops.ACTIVATIONS)}"
            )
        if not (
            isinstance(alpha, (int, float))
            and not isinstance(alpha, bool)
            and math.isfinite(alpha)
            and alpha >= 0
        ):
            raise ValueError(f"Activation: alpha must be a finite number >= 0, got {alpha!r}")
        self.name, self.alpha = name, float(alpha)

    def apply(self, params, x, rng=None):
        return ops.activation(x, self.name, self.alpha)

    def _fields(self):
        return {"name": self.name, **({"alpha": self.alpha} if self.name == "leaky_relu" else {})}


def Relu() -> Activation:
    return Activation("relu")


def LeakyRelu(alpha: float = 0.1) -> Activation:
    return Activation("leaky_relu", alpha)


def Sigmoid() -> Activation:
    return Activation("sigmoid")


def Tanh() -> Activation:
    return Activation("tanh")


class Dropout(Layer):
    """Inverted dropout while training (an rng given); ``rate`` is the fraction DROPPED, as in Keras."""

    kind = "dropout"

    def __init__(self, rate: float):
        if not (isinstance(rate, (int, float)) and 0 <= rate < 1):
            raise ValueError(f"Dropout: rate is the fraction dropped, expected 0 <= rate < 1, got {rate!r}")
        self.rate = float(rate)

    def apply(self, params, x, rng=None):
        return x if rng is None or not self.rate else ops.dropout(x, self.rate, rng)

    def _fields(self):
        return {"rate": self.rate}


class Flatten(Layer):
    """(n, ...) -> (n, prod(...))."""

    kind = "flatten"

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def apply(self, params, x, rng=None):
        return ops.flatten(x)


def _scope(params: dict, name: str) -> dict:
    prefix = name + "."
    return {key[len(prefix) :]: value for key, value in params.items() if key.startswith(prefix)}


def _scopes(params: dict) -> dict:
    """{child name: its params, keys without the name} in one pass over params."""
    scopes: dict = {}
    for key, value in params.items():
        name, _, rest = key.partition(".")
        scopes.setdefault(name, {})[rest] = value
    return scopes


class Sequential(Layer):
    """Layers applied in order; child i is named by its kind and count (``dense0``, ``dense1``)."""

    kind = "sequential"

    def __init__(self, *layers: Layer):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for layer in layers:
            if not isinstance(layer, Layer):
                raise ValueError(f"Sequential: expected layers, got {type(layer).__name__}")
        self.layers = tuple(layers)
        counts: dict = {}
        self.names = []
        for layer in self.layers:
            self.names.append(f"{layer.kind}{counts.get(layer.kind, 0)}")
            counts[layer.kind] = counts.get(layer.kind, 0) + 1
        self.has_params = any(layer.has_params for layer in self.layers)
        self._plan = []  # (name, apply): each layer's apply, or one op for a layer and the next
        i = 0
        while i < len(self.layers):
            fused = self.layers[i].fused_with(self.layers[i + 1]) if i + 1 < len(self.layers) else None
            self._plan.append((self.names[i], fused or self.layers[i].apply))
            i += 2 if fused else 1

    def init(self, rng, input_shape, dtype=np.float32):
        params, shape = {}, tuple(input_shape)
        for name, layer in zip(self.names, self.layers):
            params.update({f"{name}.{key}": value for key, value in layer.init(rng, shape, dtype).items()})
            shape = layer.output_shape(shape)
        return params

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def apply(self, params, x, rng=None):
        scopes = _scopes(params)
        for name, apply in self._plan:
            x = apply(scopes.get(name, {}), x, rng)
        return x

    def to_json(self):
        return {"type": "Sequential", "layers": [layer.to_json() for layer in self.layers]}

    def __repr__(self):
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"


class Residual(Layer):
    """y = x + block(x); the block must keep the shape. Its params are the block's, under ``block.``."""

    kind = "residual"

    def __init__(self, block: Layer):
        if not isinstance(block, Layer):
            raise ValueError(f"Residual: expected a layer, got {type(block).__name__}")
        self.block, self.has_params = block, block.has_params

    def init(self, rng, input_shape, dtype=np.float32):
        if tuple(self.block.output_shape(input_shape)) != tuple(input_shape):
            raise ValueError(
                f"Residual: the block maps {tuple(input_shape)} to "
                f"{tuple(self.block.output_shape(input_shape))}; it must keep the shape"
            )
        return {f"block.{key}": value for key, value in self.block.init(rng, input_shape, dtype).items()}

    def apply(self, params, x, rng=None):
        return x + self.block.apply(_scope(params, "block"), x, rng)

    def to_json(self):
        return {"type": "Residual", "block": self.block.to_json()}

    def __repr__(self):
        return f"Residual({self.block!r})"


class _ShapeRng:
    """A stand-in generator for param_shapes: broadcast zeros of the asked shape, no memory."""

    def uniform(self, low, high, size):
        return np.broadcast_to(np.float32(0), size)

    def standard_normal(self, size):
        return np.broadcast_to(np.float32(0), size)


_TYPES = {cls.__name__: cls for cls in (Dense, Activation, Dropout, Flatten)}


# Reading architectures (from_json, and the params they need), in architecture.py
from .architecture import check_params, from_json, param_shapes  # noqa: E402, F401

# The image layers live in conv_layers.py, which adds them to _TYPES (it imports this module:
# a plain module import here works whichever of the two is imported first).
from . import conv_layers  # noqa: E402, F401
from . import norm_layers  # noqa: E402, F401  (BatchNorm, likewise)
