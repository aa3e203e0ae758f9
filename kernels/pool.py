"""Pooling kernels over NHWC images (n, h, w, c): non-overlapping size x size windows, the rows
and columns past the last whole window dropped (Keras's ``padding="valid"``).

Max-pooling records, per output value, which cell of its window held the first maximum in
row-major order (``at``, int8 or int32: di * size + dj), so that its backward pass reads only the
small arrays (dy and ``at``) and writes dx once. Each loop is written once and compiled twice, as
the convolutions are (conv.py): by images in the calling thread, or split over Numba's threads
(``*_parallel``). The threads never write the same image: every variant gives the same bits.
"""

import numpy as np
from numba import prange

from ._jit import kernel


@kernel
def max_pool_image(x, src, size, y, at, dst):
    """Image src of x (n, h, w, c) max-pooled into y[dst] and at[dst] (y's and at's windows:
    h // size by w // size): each window's maximum, and its cell."""
    oh, ow, c = y.shape[1], y.shape[2], y.shape[3]
    for i in range(oh):
        for j in range(ow):
            for ch in range(c):
                y[dst, i, j, ch] = x[src, i * size, j * size, ch]
                at[dst, i, j, ch] = 0
            for di in range(size):
                for dj in range(size):
                    cell = di * size + dj
                    for ch in range(c):  # strictly greater: the first maximum stays
                        v = x[src, i * size + di, j * size + dj, ch]
                        if v > y[dst, i, j, ch]:
                            y[dst, i, j, ch] = v
                            at[dst, i, j, ch] = cell


def _max_forward(x, size, at):
    """y (n, h // size, w // size, c): each window's maximum; its cell into at (y's shape)."""
    n, h, w, c = x.shape
    y = np.empty((n, h // size, w // size, c), dtype=x.dtype)
    for img in prange(n):
        max_pool_image(x, img, size, y, at, img)
    return y


max_pool_forward = kernel(_max_forward, name="max_pool_forward")
max_pool_forward_parallel = kernel(_max_forward, name="max_pool_forward_parallel", parallel=True)


def _max_backward(dy, at, h, w, size):
    """dx (n, h, w, c): each window's gradient dy to its cell ``at``, 0 elsewhere and on the
    floored-off edge."""
    n, oh, ow, c = dy.shape
    dx = np.empty((n, h, w, dy.shape[3]), dtype=dy.dtype)
    for img in prange(n):
        for i in range(oh):
            for di in range(size):
                row = i * size + di
                for j in range(ow):
                    for dj in range(size):
                        cell = di * size + dj
                        col = j * size + dj
                        for ch in range(c):  # branch-free, so that LLVM vectorizes it
                            dx[img, row, col, ch] = dy[img, i, j, ch] if at[img, i, j, ch] == cell else 0.0
                for col in range(ow * size, w):
                    for ch in range(c):
                        dx[img, row, col, ch] = 0.0
        for row in range(oh * size, h):
            for col in range(w):
                for ch in range(c):
                    dx[img, row, col, ch] = 0.0
    return dx


max_pool_backward = kernel(_max_backward, name="max_pool_backward")
max_pool_backward_parallel = kernel(_max_backward, name="max_pool_backward_parallel", parallel=True)


def _avg_forward(x, size):
    """y (n, h // size, w // size, c): the mean of each size x size window."""
    n, h, w, c = x.shape
    oh, ow = h // size, w // size
    y = np.zeros((n, oh, ow, c), dtype=x.dtype)
    scale = 1.0 / (size * size)
    for img in prange(n):
        for i in range(oh):
            for j in range(ow):
                for di in range(size):
                    for dj in range(size):
                        for ch in range(c):
                            y[img, i, j, ch] += x[img, i * size + di, j * size + dj, ch]
                for ch in range(c):
                    y[img, i, j, ch] *= scale
    return y


avg_pool_forward = kernel(_avg_forward, name="avg_pool_forward")
avg_pool_forward_parallel = kernel(_avg_forward, name="avg_pool_forward_parallel", parallel=True)


def _avg_backward(dy, h, w, size):
    """dx (n, h, w, c): dy / size^2 on every pixel of its window, 0 on the floored-off edge."""
    n, oh, ow, c = dy.shape
    dx = np.zeros((n, h, w, c), dtype=dy.dtype)
    scale = 1.0 / (size * size)
    for img in prange(n):
        for i in range(oh):
            for j in range(ow):
                for di in range(size):
                    for dj in range(size):
                        for ch in range(c):
                            dx[img, i * size + di, j * size + dj, ch] = dy[img, i, j, ch] * scale
    return dx


avg_pool_backward = kernel(_avg_backward, name="avg_pool_backward")
avg_pool_backward_parallel = kernel(_avg_backward, name="avg_pool_backward_parallel", parallel=True)
