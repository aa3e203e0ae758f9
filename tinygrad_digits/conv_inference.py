"""A convnet's forward pass for a few images at a time, for ``Predictor``: kernel after kernel.

The same kernels as ``ops.conv2d``, ``ops.conv2d_max_pool2d`` (for a Conv2D and the MaxPool2D
after it, as a Sequential runs them), ``ops.max_pool2d``, ``ops.avg_pool2d``, a BatchNorm's
``ops.batch_norm_inference``, the activations and the dense layers, in the calling thread, with
everything they need worked out once (the filters as matrices, the geometry, the activation
codes, the scratch) instead of on every call, and without the autodiff wrappers: one image's
pass spends its time in the kernels, not between them. The outputs are ``network.apply``'s to
the bit.
"""

from __future__ import annotations

import numpy as np

from .conv_ops import CHUNK_ROWS, conv_geometry
from .kernels import activations as _act
from .kernels import conv as _conv
from .kernels import conv_pool as _conv_pool_kernels
from .kernels import dense as _dense
from .kernels import pool as _pool
from .norm_ops import inference_affine
from .ops import activation_code
from .resources import one_blas_thread


class ConvnetForward:
    """``forward(x)``: the logits of inputs x (n <= rows, *input_shape), for a Sequential of
    Conv2D (stride 1), MaxPool2D, AvgPool2D, BatchNorm, Activation, Flatten, Dropout (the
    identity here) and Dense layers; ``ConvnetForward.of`` gives None for any other network."""

    def __init__(self, steps: list):
        self.steps = steps

    @classmethod
    def of(cls, network, params: dict, input_shape: tuple, rows: int) -> ConvnetForward | None:
        layers = getattr(network, "layers", None)
        if layers is None or len(input_shape) != 3:
            return None
        dtype = np.result_type(*params.values())
        steps, shape, i = [], tuple(input_shape), 0
        while i < len(layers):
            name, layer = network.names[i], layers[i]
            following = layers[i + 1] if i + 1 < len(layers) else None
            pool = following if following is not None and layer.fused_with(following) is not None else None
            step = _step(layer, {k[len(name) + 1:]: v for k, v in params.items() if k.startswith(name + ".")},
                         shape, rows, dtype, pool)
            if step is None:
                return None
            steps.append(step)
            shape = layer.output_shape(shape)
            if pool is not None:
                shape, i = pool.output_shape(shape), i + 1
            i += 1
        return cls(steps)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            for kind, args in self.steps:
                x = _RUN[kind](x, *args)
        return x


def _step(layer, params: dict, shape: tuple, rows: int, dtype, pool=None):
    """(kind, args) of one layer on inputs of ``shape`` (a conv2d with the MaxPool2D ``pool``
    after it: both), or None where this pass has no kernel."""
    kind = layer.kind
    if kind == "conv2d" and len(shape) == 3:
        w = params["W"]
        kh, kw, c_in, c_out = w.shape
        height, width = shape[0], shape[1]
        oh, ow, top, left = conv_geometry(height, width, kh, kw, layer.padding, 1)
        size = 1 if pool is None else int(pool.size)
        oh, ow = oh // size * size, ow // size * size  # as conv2d_max_pool2d: the pixels its pool reads
        per_chunk = max(1, -(-CHUNK_ROWS // (oh * ow)))  # as the ops: the same chunks, the same sums
        k = kh * kw * c_in
        scratch = np.empty((1, min(rows, per_chunk) * oh * ow * (k + (c_out if pool else 0))), dtype=dtype)
        geometry = (kh, kw, 1, top, left, oh, ow)
        args = (c_in, np.ascontiguousarray(w.reshape(k, c_out)), params["b"], geometry,
                activation_code(layer.activation), per_chunk, scratch)
        if pool is None:
            return "conv2d", (*args, (oh, ow, c_out))
        return "conv_pool", (*args, size)
    if kind in ("maxpool2d", "avgpool2d") and len(shape) == 3:
        return kind, (int(layer.size),)
    if kind == "flatten":
        return "flatten", ()
    if kind == "dropout":
        return "identity", ()
    if kind == "batchnorm":  # x * scale + shift, as ops.batch_norm_inference computes it
        return "affine", inference_affine(params["gamma"], params["beta"], params["mean"], params["var"],
                                          layer.epsilon)
    if kind == "activation":
        return "activation", (activation_code(layer.name), float(layer.alpha))
    if kind == "dense" and len(shape) == 1:
        return "dense", (params["W"], params["b"], activation_code(layer.activation), float(layer.alpha))
    return None


def _conv2d(x, c_in, matrix, b, geometry, code, per_chunk, scratch, out_shape):
    n = len(x)
    rows = np.ascontiguousarray(x).reshape(n, x.shape[1], -1)
    y = _conv.conv_forward(rows, c_in, matrix, b, *geometry, code, 0.1, per_chunk, scratch)
    return y.reshape(n, *out_shape)


def _conv_pool(x, c_in, matrix, b, geometry, code, per_chunk, scratch, size):
    n, oh, ow = len(x), geometry[5], geometry[6]
    rows = np.ascontiguousarray(x).reshape(n, x.shape[1], -1)
    cells = np.int8 if size * size <= 127 else np.int32
    at = np.empty((n, oh // size, ow // size, matrix.shape[1]), dtype=cells)
    return _conv_pool_kernels.conv_pool_forward(rows, c_in, matrix, b, *geometry, code, 0.1, size, per_chunk,
                                                at, scratch)


def _max_pool(x, size):
    n, h, w, c = x.shape
    at = np.empty((n, h // size, w // size, c), dtype=np.int8 if size * size <= 127 else np.int32)
    return _pool.max_pool_forward(x, size, at)


_RUN = {
    "conv2d": _conv2d,
    "conv_pool": _conv_pool,
    "maxpool2d": _max_pool,
    "avgpool2d": lambda x, size: _pool.avg_pool_forward(x, size),
    "flatten": lambda x: x.reshape(len(x), -1),
    "identity": lambda x: x,
    "affine": lambda x, scale, shift: x * scale + shift,
    "activation": lambda x, code, alpha: _act.activation_forward(x.reshape(len(x), -1), code, alpha).reshape(
        x.shape),
    "dense": lambda x, w, b, code, alpha: _dense.dense_forward(np.ascontiguousarray(x), w, b, code, alpha),
}
