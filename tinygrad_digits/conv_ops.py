"""The image ops of ``ops``: 2-D convolution and pooling over NHWC images, Keras's layouts.

The same contract as ``ops`` (a forward ``(out, saved)`` and its VJP, declared once as an
``autodiff.Primitive``); the loops are Numba kernels (``kernels/conv.py``) on C-contiguous arrays
of one float dtype, made so here. Images are x (n, height, width, channels), filters
W (kh, kw, c_in, c_out), as in Keras, so its weights need no transposes. Import them from ``ops``.

A convolution is ``im2col`` (each output pixel's window as one row), one BLAS product with the
filters as a (kh * kw * c_in, c_out) matrix, and the bias and activation in one pass; its VJP
is two products (dW = cols^T @ dz, dcols = dz @ W^T) and ``col2im``, which sums the window rows
back onto the pixels.

Every image kernel has two compilations with the same arithmetic to the bit: one in the calling
thread and one over Numba's threads. For a batch's worth of work, ``CHOICE`` (thread_choice)
calls whichever is faster at the moment, so that a core taken by another process costs a little
time instead of a stall; a single image always runs in the calling thread.
"""

from __future__ import annotations

import threading

import numpy as np

from .autodiff import Primitive
from .resources import one_blas_thread
from .thread_choice import ThreadChoice
from .kernels import conv as _conv
from .kernels import pool as _pool

PADDINGS = ("valid", "same")
CHUNK_ROWS = 1024  # output pixels per chunk of images: their window rows stay in cache
PARALLEL_ROWS = 4 * CHUNK_ROWS  # convolutions with fewer output pixels run in the calling thread
PARALLEL_VALUES = 64 * CHUNK_ROWS  # pools with fewer output values too (a pool is cheap per value)
USE_PARALLEL = None  # None: the faster at the moment (thread_choice); True / False force threads / one thread
CHOICE = ThreadChoice()


def _threads(work: int, least: int) -> int:
    """How many threads a kernel over ``work`` outputs may use: Numba's, for at least ``least``."""
    if USE_PARALLEL is False or work < least:
        return 1
    import numba

    return numba.get_num_threads()


def _run(name: str, work: int, least: int, run, *site):
    """``run(threads)``, threads 1 or Numba's: chosen by CHOICE for the call site (name, work,
    *site), unless USE_PARALLEL forces it or the work is too small to share."""
    threads = _threads(work, least)
    if threads == 1 or USE_PARALLEL:
        return run(threads)
    return CHOICE.call((name, work, *site), lambda parallel: run(threads if parallel else 1))


_LOCAL = threading.local()  # each Python thread's scratch, reused from call to call


def _scratch(dtype, parts: int, size: int) -> np.ndarray:
    """A (parts, >= size) scratch array for the kernels' chunks, one row per thread, grown as needed."""
    rooms = getattr(_LOCAL, "rooms", None)
    if rooms is None:
        rooms = _LOCAL.rooms = {}
    room = rooms.get(np.dtype(dtype))
    if room is None or room.size < parts * size:
        room = rooms[np.dtype(dtype)] = np.empty(parts * size, dtype=dtype)
    return room[: parts * size].reshape(parts, size)


def conv_geometry(height: int, width: int, kh: int, kw: int, padding: str, stride: int):
    """(out_height, out_width, pad_top, pad_left) as Keras and TensorFlow compute them.

    ``valid``: no padding, out = (in - k) // stride + 1. ``same``: out = ceil(in / stride), padded
    by max((out - 1) * stride + k - in, 0) in all, half of it (rounded down) before, the rest after.
    """
    if padding == "valid":
        return (height - kh) // stride + 1, (width - kw) // stride + 1, 0, 0
    oh, ow = -(-height // stride), -(-width // stride)
    pad_h = max((oh - 1) * stride + kh - height, 0)
    pad_w = max((ow - 1) * stride + kw - width, 0)
    return oh, ow, pad_h // 2, pad_w // 2


def _check_conv(x, W, b, padding, stride):
    if padding not in PADDINGS:
        raise ValueError(f"conv2d: padding must be 'valid' or 'same', got {padding!r}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"conv2d: stride must be a positive integer, got {stride!r}")
    if x.ndim != 4 or W.ndim != 4 or b.shape != W.shape[3:] or x.shape[3] != W.shape[2]:
        raise ValueError(
            "conv2d: expected x (n, height, width, c_in), W (kh, kw, c_in, c_out) and b (c_out,), "
            f"got x {x.shape}, W {W.shape} and b {b.shape}"
        )
    if padding == "valid" and (W.shape[0] > x.shape[1] or W.shape[1] > x.shape[2]):
        raise ValueError(
            f"conv2d: a {W.shape[0]}x{W.shape[1]} kernel does not fit {x.shape[1]}x{x.shape[2]} images "
            "with padding='valid' (use padding='same')"
        )
    if min(x.shape[1:]) < 1 or min(W.shape) < 1:
        raise ValueError(f"conv2d: empty images or filters: x {x.shape}, W {W.shape}")


def conv2d_forward(
    x, W, b, padding: str = "valid", stride: int = 1, activation: str | None = None, alpha=0.1
):
    """y (n, out_height, out_width, c_out) = act(conv(x, W) + b) for x (n, height, width, c_in),
    W (kh, kw, c_in, c_out), b (c_out,); ``padding`` and the output size as in Keras (see
    ``conv_geometry``), ``activation`` one of ``ops.ACTIVATIONS`` or None, fused into the kernel."""
    x, W, b = _float("conv2d", x, W, b)
    _check_conv(x, W, b, padding, stride)
    n, height, width, c_in = x.shape
    kh, kw, _, c_out = W.shape
    oh, ow, top, left = conv_geometry(height, width, kh, kw, padding, int(stride))
    per_chunk = max(1, -(-CHUNK_ROWS // (oh * ow)))
    geometry = (kh, kw, int(stride), top, left, oh, ow)
    code = activation_code(activation)
    w2 = W.reshape(kh * kw * c_in, c_out)
    rows = x.reshape(n, height, width * c_in)
    size = min(n, per_chunk) * oh * ow * kh * kw * c_in

    def run(parts):
        forward = _conv.conv_forward_parallel if parts > 1 else _conv.conv_forward
        scratch = _scratch(x.dtype, parts, size)
        return forward(rows, c_in, w2, b, *geometry, code, float(alpha), per_chunk, scratch)

    with one_blas_thread():  # the kernels' products, one per chunk of images, are small
        y = _run("conv_forward", n * oh * ow, PARALLEL_ROWS, run, w2.shape)
    return y.reshape(n, oh, ow, c_out), (rows, c_in, w2, y, code, float(alpha), geometry, per_chunk)


def conv2d_vjp(saved, g, needs):
    rows, c_in, w2, y, code, alpha, geometry, per_chunk = saved
    dy = _c(np.asarray(g, dtype=y.dtype)).reshape(y.shape)
    k, m = w2.shape
    size = min(len(rows), per_chunk) * geometry[5] * geometry[6] * (2 * k + m)

    def run(parts):
        backward = _conv.conv_backward_parallel if parts > 1 else _conv.conv_backward
        scratch = _scratch(y.dtype, parts, size)
        return backward(rows, c_in, w2, y, dy, *geometry, code, alpha, bool(needs[0]), per_chunk, scratch)

    with one_blas_thread():
        dx, dw, db = _run("conv_backward", len(y), PARALLEL_ROWS, run, w2.shape, bool(needs[0]))
    n, height = rows.shape[:2]
    dx = dx.reshape(n, height, -1, c_in) if needs[0] else None
    return dx, dw.reshape(geometry[0], geometry[1], c_in, -1), db


conv2d_op = Primitive("conv2d", conv2d_forward, conv2d_vjp)


def conv2d(
    x, W, b, padding: str = "valid", stride: int = 1, activation: str | None = None, alpha: float = 0.1
):
    """act(conv(x, W) + b): x (n, height, width, c_in), W (kh, kw, c_in, c_out), b (c_out,) ->
    (n, out_height, out_width, c_out); see ``conv2d_forward``."""
    return conv2d_op(x, W, b, padding=padding, stride=stride, activation=activation, alpha=alpha)


def _check_pool(op: str, x, size):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{op}: size must be a positive integer, got {size!r}")
    if x.ndim != 4 or x.shape[1] < size or x.shape[2] < size:
        raise ValueError(f"{op}: expected x (n, height, width, channels) with sides >= {size}, got {x.shape}")


def _pooling(name: str, outputs: int, *args):
    """The pooling kernel ``name`` of kernels/pool.py or its threaded twin, on ``args``."""
    return _run(name, outputs, PARALLEL_VALUES,
                lambda threads: getattr(_pool, name + "_parallel" if threads > 1 else name)(*args))


def max_pool2d_forward(x, size: int = 2):
    """y (n, height // size, width // size, c): each non-overlapping size x size window's
    maximum; the rows and columns past the last whole window are dropped (Keras's 'valid')."""
    (x,) = _float("max_pool2d", x)
    _check_pool("max_pool2d", x, size)
    size = int(size)
    n, h, w, c = x.shape
    at = np.empty((n, h // size, w // size, c), dtype=np.int8 if size * size <= 127 else np.int32)
    return _pooling("max_pool_forward", at.size, x, size, at), (at, h, w, size, x.dtype)


def max_pool2d_vjp(saved, g, needs):
    """The gradient of each window goes to its FIRST maximum (row-major order within the
    window), as ties must pick one: TensorFlow's MaxPoolGrad picks one too."""
    at, h, w, size, dtype = saved
    return (_pooling("max_pool_backward", at.size, _c(np.asarray(g, dtype=dtype)), at, h, w, size),)


max_pool2d_op = Primitive("max_pool2d", max_pool2d_forward, max_pool2d_vjp)


def avg_pool2d_forward(x, size: int = 2):
    """y (n, height // size, width // size, c): each non-overlapping size x size window's mean,
    the edge past the last whole window dropped (Keras's 'valid')."""
    (x,) = _float("avg_pool2d", x)
    _check_pool("avg_pool2d", x, size)
    size = int(size)
    n, h, w, c = x.shape
    y = _pooling("avg_pool_forward", n * (h // size) * (w // size) * c, x, size)
    return y, (h, w, size, x.dtype)


def avg_pool2d_vjp(saved, g, needs):
    h, w, size, dtype = saved
    g = _c(np.asarray(g, dtype=dtype))
    return (_pooling("avg_pool_backward", g.size, g, h, w, size),)


avg_pool2d_op = Primitive("avg_pool2d", avg_pool2d_forward, avg_pool2d_vjp)


def max_pool2d(x, size: int = 2):
    """Max over non-overlapping size x size windows of x (n, height, width, c); see ``max_pool2d_forward``."""
    return max_pool2d_op(x, size=size)


def avg_pool2d(x, size: int = 2):
    """Mean over non-overlapping size x size windows of x (n, height, width, c)."""
    return avg_pool2d_op(x, size=size)


# ops imports this module at its end, and this one ops' helpers at the end too, so that either
# may be imported first: each finds the other's names defined by then.
from .ops import _c, _float, activation_code  # noqa: E402
