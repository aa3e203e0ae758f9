"""Convolution and pooling kernels over NHWC images: im2col and BLAS products, chunk by chunk.

Shapes: x (n, h, w, c) images, w (kh * kw * c, c_out) the filters of a (kh, kw, c, c_out)
kernel flattened in that order, b (c_out,); y and dy (n * oh * ow, c_out), one row per output
pixel. The window rows ("cols", (pixels, kh * kw * c)) hold in row (img, i, j) the window of
output pixel (i, j), zeros where it hangs over the padding, so y = cols @ w + b. They are built
for a chunk of about a thousand output pixels at a time and used while in cache (never for a
whole batch, so that they never fill the memory), in a caller's scratch array; the backward
pass builds them again rather than keeping them. All arrays of one float dtype, C-contiguous.

Threads, as measured on the 2-core machine (benchmarks/bench_conv.py): the convolutions run in
one thread, with BLAS held to one (the caller does it). OpenBLAS on its two threads is slower
for these thin products (k = 9 for a first layer: 40 ms instead of 1.3 for its weight
gradient), and called from two of our threads at once slower than from one. The pools run in
one thread too: with the machine's two cores shared, a parallel region that waits for a
descheduled thread cost more than the pools' work (117 s an epoch instead of 18).
"""

import numpy as np

from ._jit import kernel
from .activations import RELU, activate, derivative


@kernel
def im2col(x, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols):
    """Images img0..img1-1 of x as window rows into cols ((img1 - img0) * oh * ow, kh * kw * c)."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for img in range(img0, img1):
        for i in range(oh):
            for j in range(ow):
                row = ((img - img0) * oh + i) * ow + j
                for di in range(kh):
                    y = i * stride - pad_top + di
                    for dj in range(kw):
                        xx = j * stride - pad_left + dj
                        at = (di * kw + dj) * c
                        if 0 <= y < h and 0 <= xx < w:
                            for ch in range(c):
                                cols[row, at + ch] = x[img, y, xx, ch]
                        else:
                            for ch in range(c):
                                cols[row, at + ch] = 0.0


@kernel
def col2im(dcols, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, dx):
    """The adjoint of im2col: adds each window row of dcols onto its pixels of dx[img0:img1]."""
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    for img in range(img0, img1):
        for i in range(oh):
            for j in range(ow):
                row = ((img - img0) * oh + i) * ow + j
                for di in range(kh):
                    y = i * stride - pad_top + di
                    if y < 0 or y >= h:
                        continue
                    for dj in range(kw):
                        xx = j * stride - pad_left + dj
                        if xx < 0 or xx >= w:
                            continue
                        at = (di * kw + dj) * c
                        for ch in range(c):
                            dx[img, y, xx, ch] += dcols[row, at + ch]


@kernel
def _bias_activate(z, b, act, alpha):
    """z (rows, m) = act(z + b) in place; relu in a loop LLVM vectorizes."""
    rows, m = z.shape
    if act == RELU:
        for r in range(rows):
            for j in range(m):
                v = z[r, j] + b[j]
                z[r, j] = 0.0 if v <= 0 else v  # NaN stays NaN, as in activate
    else:
        for r in range(rows):
            for j in range(m):
                z[r, j] = activate(z[r, j] + b[j], act, alpha)


@kernel
def _delta(y, dy, act, alpha, dz, db):
    """dz = dy * act'(y) for y, dy (rows, m); adds dz's column sums to db (m,), in float64."""
    rows, m = dy.shape
    if act == RELU:
        for r in range(rows):
            for j in range(m):
                dz[r, j] = dy[r, j] if y[r, j] > 0 else 0.0
    else:
        for r in range(rows):
            for j in range(m):
                dz[r, j] = dy[r, j] * derivative(y[r, j], act, alpha)
    for r in range(rows):
        for j in range(m):
            db[j] += dz[r, j]


@kernel
def conv_forward(x, w, b, kh, kw, stride, pad_top, pad_left, oh, ow, act, alpha, per_chunk, scratch):
    """y (n * oh * ow, c_out) = act(im2col(x) @ w + b), per_chunk images at a time (the window
    rows of a chunk in scratch, at least per_chunk * oh * ow * k long), each chunk's window rows
    built, multiplied and activated while they are in cache."""
    n, k, m = x.shape[0], w.shape[0], w.shape[1]
    pixels = oh * ow
    y = np.empty((n * pixels, m), dtype=x.dtype)
    for img0 in range(0, n, per_chunk):
        img1 = min(n, img0 + per_chunk)
        rows = (img1 - img0) * pixels
        cols = scratch[: rows * k].reshape((rows, k))
        im2col(x, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols)
        out = y[img0 * pixels : img1 * pixels]
        np.dot(cols, w, out)
        _bias_activate(out, b, act, alpha)
    return y


@kernel
def conv_backward(
    x, w, y, dy, kh, kw, stride, pad_top, pad_left, oh, ow, act, alpha, need_dx, per_chunk, scratch
):
    """(dx (x's shape, or (0, 0, 0, 0) when need_dx is False), dw (k, c_out), db (c_out,)) of
    y = act(im2col(x) @ w + b), from y and dy (n * oh * ow, c_out). Per chunk of images (the
    forward's): dz = dy * act'(y), the window rows again (im2col is cheaper than keeping them),
    dw += cols^T @ dz and dx += col2im(dz @ w^T). scratch: at least per_chunk * oh * ow *
    (2 k + c_out) long. db accumulates in float64."""
    n, k, m = x.shape[0], w.shape[0], w.shape[1]
    pixels = oh * ow
    dx = np.zeros(x.shape if need_dx else (0, 0, 0, 0), dtype=x.dtype)
    dw = np.zeros((k, m), dtype=x.dtype)
    db = np.zeros(m, dtype=np.float64)
    for img0 in range(0, n, per_chunk):
        img1 = min(n, img0 + per_chunk)
        rows = (img1 - img0) * pixels
        cols = scratch[: rows * k].reshape((rows, k))
        dz = scratch[rows * k : rows * (k + m)].reshape((rows, m))
        _delta(y[img0 * pixels : img1 * pixels], dy[img0 * pixels : img1 * pixels], act, alpha, dz, db)
        im2col(x, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols)
        if img0 == 0:
            np.dot(cols.T, dz, dw)
        else:
            dw += np.dot(cols.T, dz)
        if need_dx:
            dcols = scratch[rows * (k + m) : rows * (2 * k + m)].reshape((rows, k))
            np.dot(dz, w.T, dcols)
            col2im(dcols, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, dx)
    return dx, dw, db.astype(x.dtype)


@kernel
def max_pool_forward(x, size):
    """y (n, h // size, w // size, c): the maximum of each size x size window."""
    n, h, w, c = x.shape
    oh, ow = h // size, w // size
    y = np.empty((n, oh, ow, c), dtype=x.dtype)
    for img in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    y[img, i, j, ch] = x[img, i * size, j * size, ch]
                for di in range(size):
                    for dj in range(size):
                        for ch in range(c):
                            v = x[img, i * size + di, j * size + dj, ch]
                            if v > y[img, i, j, ch]:
                                y[img, i, j, ch] = v
    return y


@kernel
def max_pool_backward(x, y, dy, size):
    """dx (x's shape): each window's gradient to its first maximum in row-major order."""
    n, c = x.shape[0], x.shape[3]
    oh, ow = y.shape[1], y.shape[2]
    dx = np.zeros_like(x)
    for img in range(n):
        free = np.empty(c, dtype=np.bool_)  # per channel: no maximum met yet in this window
        for i in range(oh):
            for j in range(ow):
                free[:] = True
                for di in range(size):
                    for dj in range(size):
                        for ch in range(c):  # branch-free, so that LLVM vectorizes it
                            hit = free[ch] & (x[img, i * size + di, j * size + dj, ch] == y[img, i, j, ch])
                            dx[img, i * size + di, j * size + dj, ch] = dy[img, i, j, ch] if hit else 0.0
                            free[ch] = free[ch] & ~hit
    return dx


@kernel
def avg_pool_forward(x, size):
    """y (n, h // size, w // size, c): the mean of each size x size window."""
    n, h, w, c = x.shape
    oh, ow = h // size, w // size
    y = np.zeros((n, oh, ow, c), dtype=x.dtype)
    scale = 1.0 / (size * size)
    for img in range(n):
        for i in range(oh):
            for j in range(ow):
                for di in range(size):
                    for dj in range(size):
                        for ch in range(c):
                            y[img, i, j, ch] += x[img, i * size + di, j * size + dj, ch]
                for ch in range(c):
                    y[img, i, j, ch] *= scale
    return y


@kernel
def avg_pool_backward(dy, h, w, size):
    """dx (n, h, w, c): dy / size^2 on every pixel of its window, 0 on the floored-off edge."""
    n, oh, ow, c = dy.shape
    dx = np.zeros((n, h, w, c), dtype=dy.dtype)
    scale = 1.0 / (size * size)
    for img in range(n):
        for i in range(oh):
            for j in range(ow):
                for di in range(size):
                    for dj in range(size):
                        for ch in range(c):
                            dx[img, i * size + di, j * size + dj, ch] = dy[img, i, j, ch] * scale
    return dx
