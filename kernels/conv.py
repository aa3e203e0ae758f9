"""Convolution kernels over NHWC images: im2col and BLAS products, chunk by chunk, over threads.

Shapes: x (n, h, w * c) images, their last two axes merged (C-contiguous, so that one image row
is one run of memory), w (kh * kw * c, c_out) the filters of a (kh, kw, c, c_out) kernel
flattened in that order, b (c_out,); y and dy (n * oh * ow, c_out), one row per output pixel.
The window rows ("cols", (pixels, kh * kw * c)) hold in row (img, i, j) the window of output
pixel (i, j), zeros where it hangs over the padding, so y = cols @ w + b: each of its kh pieces
is one run of kw * c values of an image row. They are built for a chunk of about a thousand
output pixels at a time and used while in cache (never for a whole batch, so that they never
fill the memory), in a caller's scratch; the backward pass builds them again rather than keeping
them. All arrays of one float dtype, C-contiguous.

Threads: the images' chunks are split into ``parts`` runs of chunks, one per thread, each with
its row of ``scratch`` (parts, size) and, backward, its own dw and db rows, added up in part
order at the end. The loop is written once and compiled twice, as the training kernels are
(steps.py): ``conv_forward`` / ``conv_backward`` run the parts in the calling thread (prange is a
range there), ``conv_forward_parallel`` / ``conv_backward_parallel`` over Numba's threads. Each
part calls np.dot on its chunks, so BLAS must be held to one thread meanwhile (the caller does
it): BLAS's own threads are slower for these thin products (k = 9 for a first layer) and would
fight ours for the cores. Both passes give the same bits for any ``parts``: the backward pass
keeps each chunk's share of dw and db and adds them up in chunk order.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .activations import RELU, activate, derivative


@kernel
def im2col(x, c, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols):
    """Images img0..img1-1 of x (n, h, w * c) as window rows into cols ((img1 - img0) * oh * ow,
    kh * kw * c): each window row's kh runs of kw * c values copied from its image rows."""
    h, w = x.shape[1], x.shape[2] // c
    run = kw * c
    for img in range(img0, img1):
        for i in range(oh):
            for j in range(ow):
                row = ((img - img0) * oh + i) * ow + j
                left = j * stride - pad_left
                inside = left >= 0 and left + kw <= w
                for di in range(kh):
                    y = i * stride - pad_top + di
                    at = di * run
                    if y < 0 or y >= h:
                        for t in range(run):
                            cols[row, at + t] = 0.0
                    elif inside:
                        start = left * c
                        for t in range(run):
                            cols[row, at + t] = x[img, y, start + t]
                    else:
                        for dj in range(kw):
                            xx = left + dj
                            for ch in range(c):
                                v = x[img, y, xx * c + ch] if 0 <= xx < w else 0.0
                                cols[row, at + dj * c + ch] = v


@kernel
def col2im(dcols, c, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, dx):
    """The adjoint of im2col: adds each window row of dcols onto its pixels of dx[img0:img1]
    (n, h, w * c), run by run."""
    h, w = dx.shape[1], dx.shape[2] // c
    run = kw * c
    for img in range(img0, img1):
        for i in range(oh):
            for j in range(ow):
                row = ((img - img0) * oh + i) * ow + j
                left = j * stride - pad_left
                inside = left >= 0 and left + kw <= w
                for di in range(kh):
                    y = i * stride - pad_top + di
                    if y < 0 or y >= h:
                        continue
                    at = di * run
                    if inside:
                        start = left * c
                        for t in range(run):
                            dx[img, y, start + t] += dcols[row, at + t]
                    else:
                        for dj in range(kw):
                            xx = left + dj
                            if 0 <= xx < w:
                                for ch in range(c):
                                    dx[img, y, xx * c + ch] += dcols[row, at + dj * c + ch]


@kernel
def bias_activate(z, b, act, alpha):
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


def _forward(x, c, w, b, kh, kw, stride, pad_top, pad_left, oh, ow, act, alpha, per_chunk, scratch):
    """y (n * oh * ow, c_out) = act(im2col(x) @ w + b), per_chunk images at a time, the chunks
    split over scratch's rows (parts, at least per_chunk * oh * ow * k)."""
    n, k, m = x.shape[0], w.shape[0], w.shape[1]
    pixels = oh * ow
    y = np.empty((n * pixels, m), dtype=x.dtype)
    chunks = (n + per_chunk - 1) // per_chunk
    parts = scratch.shape[0]
    for p in prange(parts):
        for chunk in range(p * chunks // parts, (p + 1) * chunks // parts):
            img0 = chunk * per_chunk
            img1 = min(n, img0 + per_chunk)
            rows = (img1 - img0) * pixels
            cols = scratch[p, : rows * k].reshape((rows, k))
            im2col(x, c, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols)
            out = y[img0 * pixels : img1 * pixels]
            np.dot(cols, w, out)
            bias_activate(out, b, act, alpha)
    return y


conv_forward = kernel(_forward, name="conv_forward")
conv_forward_parallel = kernel(_forward, name="conv_forward_parallel", parallel=True)


@kernel
def chunk_grads(x, c, w, dz, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, need_dx, cols, dcols, dw,
                dx):
    """Images img0..img1-1's share of a convolution's gradients from their dz (rows, c_out):
    dw = cols^T @ dz, the window rows built again into cols (cheaper than keeping them), and,
    when need_dx, dx += col2im(dz @ w^T) through dcols."""
    im2col(x, c, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols)
    np.dot(cols.T, dz, dw)
    if need_dx:
        np.dot(dz, w.T, dcols)
        col2im(dcols, c, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, dx)


@kernel
def backward_arrays(x, k, m, need_dx, chunks):
    """A backward pass's dx (x's shape, zeros; (0, 0, 0) without need_dx) and its chunks' dw
    (chunks, k, m), each written whole, and db (chunks, m), float64 zeros."""
    dx = np.zeros(x.shape if need_dx else (0, 0, 0), dtype=x.dtype)
    return dx, np.empty((chunks, k, m), dtype=x.dtype), np.zeros((chunks, m), dtype=np.float64)


@kernel
def backward_scratch(room, rows, k, m):
    """A thread's scratch row as a chunk's window rows (rows, k), dz (rows, m) and dcols (rows, k)."""
    return (room[: rows * k].reshape((rows, k)), room[rows * k : rows * (k + m)].reshape((rows, m)),
            room[rows * (k + m) : rows * (2 * k + m)].reshape((rows, k)))


@kernel
def sum_chunks(dws, dbs, x):
    """(dw, db in x's dtype): the chunks' shares (chunks, ...) added up in chunk order."""
    dw = dws[0].copy()
    db = dbs[0].copy()
    for chunk in range(1, dws.shape[0]):
        dw += dws[chunk]
        db += dbs[chunk]
    return dw, db.astype(x.dtype)


def _backward(x, c, w, y, dy, kh, kw, stride, pad_top, pad_left, oh, ow, act, alpha, need_dx, per_chunk,
              scratch):
    """(dx (x's shape, or (0, 0, 0) when need_dx is False), dw (k, c_out), db (c_out,)) of
    y = act(im2col(x) @ w + b), from y and dy (n * oh * ow, c_out). Per chunk of images (the
    forward's): dz = dy * act'(y), then ``chunk_grads``. scratch (parts, at least per_chunk * oh *
    ow * (2 k + c_out)). The chunks' dw and db (float64) are added up in chunk order at the end,
    so that any ``parts`` gives the same bits."""
    n, k, m = x.shape[0], w.shape[0], w.shape[1]
    pixels, parts = oh * ow, scratch.shape[0]
    chunks = (n + per_chunk - 1) // per_chunk
    dx, dws, dbs = backward_arrays(x, k, m, need_dx, chunks)
    for p in prange(parts):
        for chunk in range(p * chunks // parts, (p + 1) * chunks // parts):
            img0 = chunk * per_chunk
            img1 = min(n, img0 + per_chunk)
            cols, dz, dcols = backward_scratch(scratch[p], (img1 - img0) * pixels, k, m)
            span = slice(img0 * pixels, img1 * pixels)
            _delta(y[span], dy[span], act, alpha, dz, dbs[chunk])
            chunk_grads(x, c, w, dz, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, need_dx, cols,
                        dcols, dws[chunk], dx)
    return dx, *sum_chunks(dws, dbs, x)


conv_backward = kernel(_backward, name="conv_backward")
conv_backward_parallel = kernel(_backward, name="conv_backward_parallel", parallel=True)
