"""Image layers: ``Conv2D``, ``MaxPool2D`` and ``AvgPool2D``, with the contract of ``layers``.

Inputs are NHWC, ``input_shape`` (height, width, channels) without the batch axis, as in Keras.
They are registered in ``layers``' table, so ``layers.from_json`` rebuilds them and a model
file can hold them; a Sequential names them ``conv2d0``, ``maxpool2d0``, ``avgpool2d0``, ...
"""

from __future__ import annotations

import math

import numpy as np

from . import layers as _layers
from . import ops
from .conv_ops import PADDINGS, conv_geometry


def _positive(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _image_shape(owner: str, input_shape) -> tuple:
    if len(input_shape) != 3:
        raise ValueError(
            f"{owner}: expected inputs of shape (height, width, channels), got {tuple(input_shape)}"
        )
    return tuple(int(n) for n in input_shape)


class Conv2D(_layers.Layer):
    """y = act(conv(x, W) + b): W (kernel_size, kernel_size, c_in, filters), b (filters,), in one
    kernel (``ops.conv2d``), stride 1, ``padding`` ``valid`` or ``same`` as in Keras.

    ``init``: He uniform for the relu family, Glorot uniform otherwise, with Keras's fans:
    fan_in = kh * kw * c_in, fan_out = kh * kw * filters (``he_uniform`` / ``glorot_uniform``)."""

    kind = "conv2d"
    has_params = True

    def __init__(
        self, filters: int, kernel_size: int = 3, padding: str = "valid", activation: str | None = None
    ):
        self.filters = _positive("Conv2D", "filters", filters)
        self.kernel_size = _positive("Conv2D", "kernel_size", kernel_size)
        if padding not in PADDINGS:
            raise ValueError(f"Conv2D: padding must be 'valid' or 'same', got {padding!r}")
        ops.activation_code(activation)
        self.padding = padding
        self.activation = None if activation == ops.IDENTITY else activation

    def init(self, rng, input_shape, dtype=np.float32):
        c_in = _image_shape("Conv2D", input_shape)[2]
        self.output_shape(input_shape)  # the kernel must fit
        k = self.kernel_size
        shape = (k, k, c_in, self.filters)
        if isinstance(rng, _layers._ShapeRng):
            return {"W": rng.uniform(0, 0, shape), "b": rng.uniform(0, 0, (self.filters,))}
        fan_in, fan_out = k * k * c_in, k * k * self.filters
        family = ops.ACTIVATIONS[self.activation].init if self.activation else "glorot"
        limit = math.sqrt(6.0 / fan_in) if family == "he" else math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, shape)
        return {"W": np.ascontiguousarray(w, dtype=dtype), "b": np.zeros(self.filters, dtype=dtype)}

    def output_shape(self, input_shape):
        height, width, _ = _image_shape("Conv2D", input_shape)
        k = self.kernel_size
        if self.padding == "valid" and (k > height or k > width):
            raise ValueError(
                f"Conv2D: a {k}x{k} kernel does not fit {height}x{width} inputs with padding='valid'"
            )
        oh, ow, _, _ = conv_geometry(height, width, k, k, self.padding, 1)
        return (oh, ow, self.filters)

    def apply(self, params, x, rng=None):
        return ops.conv2d(x, params["W"], params["b"], padding=self.padding, activation=self.activation)

    def fused_with(self, following):
        """A MaxPool2D after it: both in one op (``ops.conv2d_max_pool2d``), the same outputs."""
        if type(following) is not MaxPool2D:
            return None
        size = following.size

        def apply(params, x, rng=None):
            return ops.conv2d_max_pool2d(x, params["W"], params["b"], self.padding, 1, self.activation,
                                         size=size)

        return apply

    def _fields(self):
        return {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "padding": self.padding,
            "activation": self.activation,
        }


class _Pool2D(_layers.Layer):
    """Non-overlapping size x size windows; the edge past the last whole window is dropped."""

    def __init__(self, size: int = 2):
        self.size = _positive(type(self).__name__, "size", size)

    def output_shape(self, input_shape):
        height, width, channels = _image_shape(type(self).__name__, input_shape)
        if height < self.size or width < self.size:
            raise ValueError(f"{type(self).__name__}: {height}x{width} inputs are smaller than one window")
        return (height // self.size, width // self.size, channels)

    def _fields(self):
        return {"size": self.size}


class MaxPool2D(_Pool2D):
    """The maximum of each window (``ops.max_pool2d``; its gradient goes to the first maximum)."""

    kind = "maxpool2d"

    def apply(self, params, x, rng=None):
        return ops.max_pool2d(x, size=self.size)


class AvgPool2D(_Pool2D):
    """The mean of each window (``ops.avg_pool2d``)."""

    kind = "avgpool2d"

    def apply(self, params, x, rng=None):
        return ops.avg_pool2d(x, size=self.size)


_layers._TYPES.update({cls.__name__: cls for cls in (Conv2D, MaxPool2D, AvgPool2D)})


def simple_convnet(dropout: float = 0.5) -> _layers.Sequential:
    """Keras's "Simple MNIST convnet" example (34,826 parameters on 28x28x1 images): two 3x3 ReLU
    convolutions of 32 and 64 filters, each followed by a 2x2 max-pool, then flatten, dropout and
    a dense layer of 10 logits."""
    return _layers.Sequential(
        Conv2D(32, 3, activation="relu"),
        MaxPool2D(2),
        Conv2D(64, 3, activation="relu"),
        MaxPool2D(2),
        _layers.Flatten(),
        _layers.Dropout(dropout),
        _layers.Dense(10),
    )
