"""A convolution, its activation and a max-pool in one kernel: the pool's windows read the
convolution's outputs while they are in cache, and the backward pass uses what the pool makes of
the gradient, that each window's gradient reaches one output pixel per channel.

Shapes as in conv.py: x (n, h, w * c) images, w (kh * kw * c, c_out) the filters, b (c_out,);
oh and ow are the sides of the outputs the pool reads, multiples of size (the caller leaves out
the edge the pool drops). pooled and at (n, oh // size, ow // size, c_out) are the pool's outputs
and the cell of each window's first maximum in row-major order (di * size + dj), as pool.py
records it; dp is the gradient of pooled. The pooled values are act(conv(x) + b) at those cells,
so act' is read from them.

Backward, two ways to the same gradients (up to the order of float sums):

- ``conv_pool_backward_sparse``: per image, channel and window, the one output pixel that
  holds the window's maximum gives g * its window of x to that channel's filter row, and
  g * the filter row to its window of dx. A quarter of the outputs (for 2x2 pools) is all the
  work there is, where the products of conv.py's backward would multiply the zeros as well. It
  reads the filters transposed, wt (c_out, kh * kw * c), one row per channel, and pays when a
  window's rows (kw * c values each) are long enough to vectorize.
- ``conv_pool_backward_dense``: conv.py's backward, with dz built in scratch from dp chunk by
  chunk: for short window rows (a first layer's one channel), where BLAS's
  products are faster than the loop.

Threads: as in conv.py, each loop is compiled for the calling thread and over Numba's threads.
Every chunk of images keeps its own share of dw and db, added up in chunk order, and an image's
dx is written by one thread: the same bits for any number of threads.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .activations import RELU, derivative
from .conv import backward_arrays, backward_scratch, bias_activate, chunk_grads, im2col, sum_chunks
from .pool import max_pool_image


def _forward(x, c, w, b, kh, kw, stride, pad_top, pad_left, oh, ow, act, alpha, size, per_chunk, at, scratch):
    """pooled (n, oh // size, ow // size, c_out) of act(im2col(x) @ w + b), its cells into at;
    scratch (parts, at least per_chunk * oh * ow * (k + c_out)) holds a chunk's window rows and
    outputs."""
    n, k, m = x.shape[0], w.shape[0], w.shape[1]
    pixels = oh * ow
    pooled = np.empty(at.shape, dtype=x.dtype)
    chunks = (n + per_chunk - 1) // per_chunk
    parts = scratch.shape[0]
    for p in prange(parts):
        for chunk in range(p * chunks // parts, (p + 1) * chunks // parts):
            img0 = chunk * per_chunk
            img1 = min(n, img0 + per_chunk)
            rows = (img1 - img0) * pixels
            cols = scratch[p, : rows * k].reshape((rows, k))
            z = scratch[p, rows * k : rows * (k + m)].reshape((rows, m))
            im2col(x, c, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, cols)
            np.dot(cols, w, z)
            bias_activate(z, b, act, alpha)
            maps = z.reshape((img1 - img0, oh, ow, m))
            for img in range(img0, img1):  # pool.py's pool, while the chunk's outputs are in cache
                max_pool_image(maps, img - img0, size, pooled, at, img)
    return pooled


conv_pool_forward = kernel(_forward, name="conv_pool_forward")
conv_pool_forward_parallel = kernel(_forward, name="conv_pool_forward_parallel", parallel=True)


@kernel
def _slope(v, act, alpha, one):
    """act' at the output v, in one's dtype (one: a 1-element scratch array): multiplying a
    float32 gradient by a float64 would make the runs that follow float64, and slow."""
    one[0] = derivative(v, act, alpha)
    return one[0]


@kernel
def _image_grads(x, c, wt, at, pooled, dp, act, alpha, img, kh, kw, stride, size, one, dw, db, dx):
    """One image's share of ``_sparse``'s gradients, added to dw (c_out, k), db and dx."""
    m = wt.shape[0]
    ph, pw = dp.shape[1], dp.shape[2]
    run = kw * c
    for ch in range(m):
        dw_row = dw[ch]
        w_row = wt[ch]
        for i in range(ph):
            for j in range(pw):
                g = dp[img, i, j, ch]
                if g == 0:
                    continue
                if act == RELU:
                    if pooled[img, i, j, ch] <= 0:
                        continue
                else:
                    g *= _slope(pooled[img, i, j, ch], act, alpha, one)
                db[ch] += g
                cell = at[img, i, j, ch]
                top = (i * size + cell // size) * stride
                left = (j * size + cell % size) * stride * c
                for di in range(kh):
                    x_run = x[img, top + di, left : left + run]
                    dx_run = dx[img, top + di, left : left + run]
                    dw_run = dw_row[di * run : (di + 1) * run]
                    w_run = w_row[di * run : (di + 1) * run]
                    for t in range(run):
                        dw_run[t] += g * x_run[t]
                    for t in range(run):
                        dx_run[t] += g * w_run[t]


def _sparse(x, c, wt, at, pooled, dp, act, alpha, kh, kw, stride, size, per_chunk):
    """(dx (x's shape), dw (c_out, k) transposed, db (c_out,)) of a 'valid' convolution from dp,
    the gradient of pooled: each (image, channel, window) whose g = dp * act'(pooled) (the
    gradient at the window's maximum) is not 0 adds g to db, g * its window of x to dw's row and
    g * wt's row to its window of dx. (dx always: a branch in the loop would cost more than the
    first layer's dx saves.)"""
    n, (m, k) = x.shape[0], wt.shape
    chunks = (n + per_chunk - 1) // per_chunk
    ones = np.empty((chunks, 1), dtype=x.dtype)
    dws = np.zeros((chunks, m, k), dtype=x.dtype)
    dbs = np.zeros((chunks, m), dtype=np.float64)
    dx = np.zeros(x.shape, dtype=x.dtype)
    for chunk in prange(chunks):
        for img in range(chunk * per_chunk, min(n, (chunk + 1) * per_chunk)):
            _image_grads(x, c, wt, at, pooled, dp, act, alpha, img, kh, kw, stride, size, ones[chunk],
                         dws[chunk], dbs[chunk], dx)
    return dx, *sum_chunks(dws, dbs, x)


conv_pool_backward_sparse = kernel(_sparse, name="conv_pool_backward_sparse")
conv_pool_backward_sparse_parallel = kernel(_sparse, name="conv_pool_backward_sparse_parallel", parallel=True)


@kernel
def _pool_delta(at, pooled, g, act, alpha, img0, img1, oh, ow, size, dz, db):
    """dz ((img1 - img0) * oh * ow, c_out): each window's g * act'(pooled) at its cell, 0 at the
    others; adds dz's column sums to db (float64)."""
    m = dz.shape[1]
    ph, pw = g.shape[1], g.shape[2]
    for img in range(img0, img1):
        for i in range(ph):
            for di in range(size):
                for j in range(pw):
                    for dj in range(size):
                        row = ((img - img0) * oh + i * size + di) * ow + j * size + dj
                        cell = di * size + dj
                        if act == RELU:
                            for ch in range(m):  # branch-free, so that LLVM vectorizes it
                                hit = at[img, i, j, ch] == cell and pooled[img, i, j, ch] > 0
                                dz[row, ch] = g[img, i, j, ch] if hit else 0.0
                        else:
                            for ch in range(m):
                                slope = derivative(pooled[img, i, j, ch], act, alpha)
                                dz[row, ch] = g[img, i, j, ch] * slope if at[img, i, j, ch] == cell else 0.0
        for i in range(ph):  # db window by window, the order of _sparse
            for j in range(pw):
                first = ((img - img0) * oh + i * size) * ow + j * size
                for ch in range(m):
                    cell = at[img, i, j, ch]
                    db[ch] += dz[first + cell // size * ow + cell % size, ch]


def _dense(x, c, w, at, pooled, g, act, alpha, kh, kw, stride, pad_top, pad_left, oh, ow, size, need_dx,
           per_chunk, scratch):
    """The gradients of ``_sparse`` (dw (k, c_out) here) by conv.py's products, chunk by chunk:
    dz from the pool's gradient g (``_pool_delta``), cols^T @ dz, and dx += col2im(dz @ w^T).
    scratch (parts, at least per_chunk * oh * ow * (2 k + c_out))."""
    n, k, m = x.shape[0], w.shape[0], w.shape[1]
    pixels, parts = oh * ow, scratch.shape[0]
    chunks = (n + per_chunk - 1) // per_chunk
    dx, dws, dbs = backward_arrays(x, k, m, need_dx, chunks)
    for p in prange(parts):
        for chunk in range(p * chunks // parts, (p + 1) * chunks // parts):
            img0 = chunk * per_chunk
            img1 = min(n, img0 + per_chunk)
            cols, dz, dcols = backward_scratch(scratch[p], (img1 - img0) * pixels, k, m)
            _pool_delta(at, pooled, g, act, alpha, img0, img1, oh, ow, size, dz, dbs[chunk])
            chunk_grads(x, c, w, dz, img0, img1, kh, kw, stride, pad_top, pad_left, oh, ow, need_dx, cols,
                        dcols, dws[chunk], dx)
    return dx, *sum_chunks(dws, dbs, x)


conv_pool_backward_dense = kernel(_dense, name="conv_pool_backward_dense")
conv_pool_backward_dense_parallel = kernel(_dense, name="conv_pool_backward_dense_parallel", parallel=True)
