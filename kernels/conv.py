"""Convolution and pooling kernels over NHWC images: im2col and BLAS products, chunk by chunk.

Shapes: x (n, h, w, c) images, w (kh * kw * c, c_out) the filters of a (kh, kw, c, c_out)
kernel flattened in that order, b (c_out,); y and dy (n * oh * ow, c_out), one row per output
pixel. The window rows ("cols", (pixels, kh * kw * c)) hold in row (img, i, j) the window of
output pixel (i, j), zeros where it hangs over the padding, so y = cols @ w + b. They are built
for a chunk of images at a time and used while in cache, never for the whole batch: the
backward pass builds them again rather than keeping them. All arrays of one float dtype,
C-contiguous. ``prange`` runs over chunks of images, whose windows and dx never meet; each
chunk's products are BLAS calls (``np.dot``), which the caller holds to one thread meanwhile.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .activations import RELU, activate, derivative


@kernel
def im2col_rows(x, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols):
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
def col2im_rows(dcols, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, dx):
    """The adjoint of im2col_rows: adds each window row of dcols onto its pixels of dx[img0:img1]."""
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
    """z (rows, m) = act(z + b) in place; relu and identity in loops LLVM vectorizes."""
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


@kernel(parallel=True)
def conv_forward(x, w, b, kh, kw, stride, pad_top, pad_left, oh, ow, act, alpha, per_chunk):
    """y (n * oh * ow, c_out) = act(im2col(x) @ w + b), per_chunk images at a time: each
    chunk's window rows are built, multiplied and activated while they are in cache."""
    n, k, m = x.shape[0], w.shape[0], w.shape[1]
    pixels = oh * ow
    y = np.empty((n * pixels, m), dtype=x.dtype)
    chunks = (n + per_chunk - 1) // per_chunk
    for t in prange(chunks):
        img0, img1 = t * per_chunk, min(n, (t + 1) * per_chunk)
        cols = np.empty(((img1 - img0) * pixels, k), dtype=x.dtype)
        im2col_rows(x, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols)
        out = y[img0 * pixels : img1 * pixels]
        np.dot(cols, w, out)
        _bias_activate(out, b, act, alpha)
    return y


@kernel(parallel=True)
def conv_backward(x, w, y, dy, kh, kw, stride, pad_top, pad_left, oh, ow, act, alpha, need_dx, per_chunk):
    """(dx (x's shape, or (0, 0, 0, 0) when need_dx is False), dw (k, c_out), db (c_out,)) of
    y = act(im2col(x) @ w + b), from y and dy (n * oh * ow, c_out). Per chunk of images (the
    forward's): dz = dy * act'(y), the window rows again, dw += cols^T @ dz and dx += col2im(dz @ w^T).
    The chunks' dw and db are summed in a fixed order (db in float64): the same sums on any
    number of threads."""
    n, k, m = x.shape[0], w.shape[0], w.shape[1]
    pixels = oh * ow
    chunks = (n + per_chunk - 1) // per_chunk
    dx = np.zeros(x.shape if need_dx else (0, 0, 0, 0), dtype=x.dtype)
    dw_parts = np.empty((chunks, k, m), dtype=x.dtype)
    db_parts = np.zeros((chunks, m), dtype=np.float64)
    for t in prange(chunks):
        img0, img1 = t * per_chunk, min(n, (t + 1) * per_chunk)
        rows = (img1 - img0) * pixels
        dz = np.empty((rows, m), dtype=x.dtype)
        _delta(
            y[img0 * pixels : img1 * pixels], dy[img0 * pixels : img1 * pixels], act, alpha, dz, db_parts[t]
        )
        cols = np.empty((rows, k), dtype=x.dtype)
        im2col_rows(x, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols)
        np.dot(cols.T, dz, dw_parts[t])
        if need_dx:
            col2im_rows(np.dot(dz, w.T), img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, dx)
    dw = dw_parts[0].copy()
    for t in range(1, chunks):
        dw += dw_parts[t]
    db = db_parts[0].copy()
    for t in range(1, chunks):
        db += db_parts[t]
    return dx, dw, db.astype(x.dtype)


@kernel(parallel=True)
def max_pool_forward(x, size):
    """y (n, h // size, w // size, c): the maximum of each size x size window."""
    n, h, w, c = x.shape
    oh, ow = h // size, w // size
    y = np.empty((n, oh, ow, c), dtype=x.dtype)
    for img in prange(n):
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


@kernel(parallel=True)
def max_pool_backward(x, y, dy, size):
    """dx (x's shape): each window's gradient to its first maximum in row-major order."""
    n, c = x.shape[0], x.shape[3]
    oh, ow = y.shape[1], y.shape[2]
    dx = np.zeros_like(x)
    for img in prange(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    top = y[img, i, j, ch]
                    done = False
                    for di in range(size):
                        for dj in range(size):
                            if not done and x[img, i * size + di, j * size + dj, ch] == top:
                                dx[img, i * size + di, j * size + dj, ch] = dy[img, i, j, ch]
                                done = True
    return dx


@kernel(parallel=True)
def avg_pool_forward(x, size):
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


@kernel(parallel=True)
def avg_pool_backward(dy, h, w, size):
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
