"""A convolution followed by a max-pool as one op: ``max_pool2d(conv2d(x, W, b, ...), size)``
in one pass (``kernels/conv_pool.py``). A Sequential calls it for a Conv2D followed by a
MaxPool2D; import it from ``ops``.

The forward pass gives conv2d's and max_pool2d's outputs to the bit (the pool reads the same
values, while they are in cache) and keeps only the pooled outputs and each window's cell. The
convolution's outputs past the pool's last whole window, which the pool drops, are never
computed (an 11x11 map pooled by 2 needs 100 of its 121 pixels). The gradient is the
composition's, summed in another order: a 'valid' convolution whose window rows are long enough
(``SPARSE_RUN`` values) takes, per image, channel and window, the one output pixel the pool
passes the gradient to; the others go through conv2d's products, with the pool's gradient built
chunk by chunk.
"""

from __future__ import annotations

import numpy as np

from .autodiff import Primitive
from .kernels import conv_pool as _kernels
from .resources import one_blas_thread

SPARSE_RUN = 16  # the shortest window row (kw * c_in values) the sparse backward takes
SPARSE_IMAGES = 8  # images per chunk of the sparse backward (each chunk keeps its own dw)


def conv2d_max_pool2d_forward(
    x, W, b, padding: str = "valid", stride: int = 1, activation: str | None = None, alpha=0.1, size: int = 2
):
    """``max_pool2d(conv2d(x, W, b, padding, stride, activation, alpha), size)``: (n, out_height //
    size, out_width // size, c_out) for x (n, height, width, c_in), W (kh, kw, c_in, c_out)."""
    x, W, b = _float("conv2d_max_pool2d", x, W, b)
    _check_conv(x, W, b, padding, stride)
    n, height, width, c_in = x.shape
    kh, kw, _, c_out = W.shape
    oh, ow, top, left = conv_geometry(height, width, kh, kw, padding, int(stride))
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= min(oh, ow):
        raise ValueError(
            f"conv2d_max_pool2d: size must be a positive integer no larger than the {oh}x{ow} "
            f"convolution's sides, got {size!r}"
        )
    size = int(size)
    oh, ow = oh // size * size, ow // size * size  # what the pool reads: the edge it drops is never computed
    per_chunk = max(1, -(-CHUNK_ROWS // (oh * ow)))
    geometry = (kh, kw, int(stride), top, left, oh, ow)
    code = activation_code(activation)
    w2 = W.reshape(kh * kw * c_in, c_out)
    rows = x.reshape(n, height, width * c_in)
    at = np.empty((n, oh // size, ow // size, c_out), dtype=np.int8 if size * size <= 127 else np.int32)
    scratch_size = min(n, per_chunk) * oh * ow * (w2.shape[0] + c_out)

    def run(parts):
        forward = _kernels.conv_pool_forward_parallel if parts > 1 else _kernels.conv_pool_forward
        scratch = _scratch(x.dtype, parts, scratch_size)
        return forward(rows, c_in, w2, b, *geometry, code, float(alpha), size, per_chunk, at, scratch)

    with one_blas_thread():
        pooled = _run("conv_pool_forward", n * oh * ow, PARALLEL_ROWS, run, w2.shape, size)
    return pooled, (rows, c_in, w2, pooled, at, code, float(alpha), geometry, per_chunk, size)


def _inside(rows, c_in, geometry) -> bool:
    """Whether every window lies inside the images (no padding reached)."""
    kh, kw, stride, top, left, oh, ow = geometry
    height, width = rows.shape[1], rows.shape[2] // c_in
    return top == left == 0 and (oh - 1) * stride + kh <= height and (ow - 1) * stride + kw <= width


def conv2d_max_pool2d_vjp(saved, g, needs):
    rows, c_in, w2, pooled, at, code, alpha, geometry, per_chunk, size = saved
    dp = _c(np.asarray(g, dtype=pooled.dtype)).reshape(pooled.shape)
    kh, kw, stride, top, left, oh, ow = geometry
    n, k, m = len(rows), w2.shape[0], w2.shape[1]
    if kw * c_in >= SPARSE_RUN and _inside(rows, c_in, geometry):
        wt = np.ascontiguousarray(w2.T)

        def run(parts):
            backward = (_kernels.conv_pool_backward_sparse_parallel if parts > 1
                        else _kernels.conv_pool_backward_sparse)
            return backward(rows, c_in, wt, at, pooled, dp, code, alpha, kh, kw, stride, size, SPARSE_IMAGES)

        dx, dwt, db = _run("conv_pool_sparse", n * oh * ow, PARALLEL_ROWS, run, w2.shape, size)
        dw = np.ascontiguousarray(dwt.T)
    else:
        scratch_size = min(n, per_chunk) * oh * ow * (2 * k + m)

        def run(parts):
            backward = (_kernels.conv_pool_backward_dense_parallel if parts > 1
                        else _kernels.conv_pool_backward_dense)
            scratch = _scratch(pooled.dtype, parts, scratch_size)
            return backward(rows, c_in, w2, at, pooled, dp, code, alpha, *geometry, size, bool(needs[0]),
                            per_chunk, scratch)

        with one_blas_thread():
            site = (w2.shape, size, bool(needs[0]))
            dx, dw, db = _run("conv_pool_dense", n * oh * ow, PARALLEL_ROWS, run, *site)
    dx = dx.reshape(n, rows.shape[1], -1, c_in) if needs[0] else None
    return dx, dw.reshape(kh, kw, c_in, m), db


conv2d_max_pool2d_op = Primitive("conv2d_max_pool2d", conv2d_max_pool2d_forward, conv2d_max_pool2d_vjp)


def conv2d_max_pool2d(
    x, W, b, padding: str = "valid", stride: int = 1, activation: str | None = None, alpha: float = 0.1,
    size: int = 2,
):
    """``max_pool2d(conv2d(x, W, b, padding, stride, activation, alpha), size)`` in one op; see
    ``conv2d_max_pool2d_forward``."""
    return conv2d_max_pool2d_op(x, W, b, padding=padding, stride=stride, activation=activation, alpha=alpha,
                                size=size)


# As in conv_ops: ops imports this module at its end, and this one its helpers at the end too.
from .conv_ops import CHUNK_ROWS, PARALLEL_ROWS, _check_conv, _run, _scratch, conv_geometry  # noqa: E402
from .ops import _c, _float, activation_code  # noqa: E402
