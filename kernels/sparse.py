"""The first layer's two products over inputs that are mostly one background value.

An MNIST image is 81% background: after normalization every such pixel holds one value,
``background`` (that of a raw 0). Writing an input row as x = background + s, with s zero on the
background, the first layer's products become

    x @ W     = background * colsum(W) + s @ W          (forward, one row)
    X.T @ dz  = background * colsum(dz) + S.T @ dz      (weight gradient, summed over rows)

and only the non-background entries of s cost work: a fifth of the dense multiply-adds. These
are the same products, to float32 rounding, whatever the data; on an input with little
background the caller keeps the dense BLAS product.

The training set is held as CSR rows: ``indptr`` (n + 1,) int64, ``indices`` (nnz,) uint16 (the
columns) and ``values`` (nnz,) of the inputs' dtype (x - background). A batch is a list of row
numbers into it, so no batch is ever copied.
"""

import numpy as np

from ._jit import kernel
from .prefetch import prefetch

MAX_COLUMNS = 1 << 16  # the widest input the uint16 column indices reach
AHEAD = 4  # sparse_forward asks for the entries of the row this many rows ahead (prefetch.py)
LINE = 64  # bytes in a cache line


@kernel
def csr_rows(x, background):
    """The non-background entries of x (n, d): (indptr, indices, values) as above."""
    n, d = x.shape
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        count = 0
        for j in range(d):
            count += x[i, j] != background
        indptr[i + 1] = indptr[i] + count
    indices = np.empty(indptr[n], dtype=np.uint16)  # d <= MAX_COLUMNS: half the memory of int32
    values = np.empty(indptr[n], dtype=x.dtype)
    for i in range(n):
        at = indptr[i]
        for j in range(d):
            if x[i, j] != background:
                indices[at] = j
                values[at] = x[i, j] - background
                at += 1
    return indptr, indices, values


@kernel
def column_sums(a, out):
    """out (m,) = the rows of a (n, m) added up, in out's dtype."""
    out[:] = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j]


@kernel
def _add_rows(out, row, values, indices, lo, hi, w):
    """out[row] += sum over p in lo:hi of values[p] * w[indices[p]], eight rows of w per pass
    (one load and store of out[row] for eight rows' products: 15-20% faster than four).

    Rows are indexed in place, never taken as views: a view per row would cost two reference
    count updates, more than the row's arithmetic."""
    m = out.shape[1]
    eights = lo + (hi - lo) // 8 * 8
    for p in range(lo, eights, 8):
        a0, a1, a2, a3 = values[p], values[p + 1], values[p + 2], values[p + 3]
        a4, a5, a6, a7 = values[p + 4], values[p + 5], values[p + 6], values[p + 7]
        k0, k1, k2, k3 = indices[p], indices[p + 1], indices[p + 2], indices[p + 3]
        k4, k5, k6, k7 = indices[p + 4], indices[p + 5], indices[p + 6], indices[p + 7]
        for j in range(m):
            out[row, j] += ((a0 * w[k0, j] + a1 * w[k1, j]) + (a2 * w[k2, j] + a3 * w[k3, j])) + (
                (a4 * w[k4, j] + a5 * w[k5, j]) + (a6 * w[k6, j] + a7 * w[k7, j]))
    for p in range(eights, hi):
        a, k = values[p], indices[p]
        for j in range(m):
            out[row, j] += a * w[k, j]


@kernel
def _prefetch_row(indptr, indices, values, r):
    """Ask for row r's entries (prefetch.py): every cache line of its indices and values."""
    lo, hi = indptr[r], indptr[r + 1]
    if hi > lo:
        for p in range(lo, hi, LINE // indices.itemsize):
            prefetch(indices, p)
        for p in range(lo, hi, LINE // values.itemsize):
            prefetch(values, p)
        prefetch(indices, hi - 1)  # the last line, when lo does not start one
        prefetch(values, hi - 1)


@kernel
def sparse_forward(indptr, indices, values, rows, background, w, w_sums, y):
    """y (r, m) = x[rows] @ w for w (d, m); w_sums (m,) must hold colsum(w) when background != 0.
    The rows' entries are asked for AHEAD rows before they are read: a batch's rows lie anywhere
    in the training set."""
    m = w.shape[1]
    for i in range(min(AHEAD, rows.size)):
        _prefetch_row(indptr, indices, values, rows[i])
    for i in range(rows.size):
        if i + AHEAD < rows.size:
            _prefetch_row(indptr, indices, values, rows[i + AHEAD])
        for j in range(m):
            y[i, j] = background * w_sums[j] if background != 0 else 0.0
        r = rows[i]
        _add_rows(y, i, values, indices, indptr[r], indptr[r + 1], w)


@kernel
def csc_entries(indptr, indices, values, rows, row0, c_ptr, c_rows, c_values):
    """The entries of x[rows] regrouped by column (CSC), for csc_weight_grad: column k's entries
    are c_ptr[k]:c_ptr[k + 1] of c_rows (int64: their rows' places in the batch, i + row0) and
    c_values, for c_ptr (d + 1,) int64 and c_rows, c_values at least as long as the entries."""
    d = c_ptr.size - 1
    c_ptr[:] = 0
    for i in range(rows.size):
        r = rows[i]
        for p in range(indptr[r], indptr[r + 1]):
            c_ptr[indices[p] + 1] += 1
    for k in range(d):
        c_ptr[k + 1] += c_ptr[k]
    for i in range(rows.size):
        r = rows[i]
        for p in range(indptr[r], indptr[r + 1]):
            k = indices[p]
            at = c_ptr[k]
            c_rows[at] = i + row0
            c_values[at] = values[p]
            c_ptr[k] = at + 1
    for k in range(d - 1, 0, -1):  # the fill moved each column's start to the next one's
        c_ptr[k] = c_ptr[k - 1]
    c_ptr[0] = 0


@kernel
def csc_weight_grad(c_ptr, c_rows, c_values, count, first, dz, background, dz_sums, dw, m_rows, m_values):
    """dw (c, m) = rows first .. first + c of x.T @ dz, for the batch's dz (rows, m), from the CSC
    entries (csc_entries) of ``count`` groups of the batch's rows (c_ptr, c_rows and c_values with a
    leading axis of groups); dz_sums (m,) must hold colsum(dz) when background != 0. A block of
    dw's rows lets threads share the product by columns of x.

    A column's entries from several groups are first merged, in the groups' order, into m_rows
    (int64) and m_values (scratch, at least as long as the batch), so that one pass of _add_rows
    takes them eight at a time whatever the number of groups; one group's are read where they are
    (the same sums, without the copy: 10% less time)."""
    m = dw.shape[1]
    for k in range(dw.shape[0]):
        for j in range(m):
            dw[k, j] = background * dz_sums[j] if background != 0 else 0.0
        col = first + k
        if count == 1:
            _add_rows(dw, k, c_values[0], c_rows[0], c_ptr[0, col], c_ptr[0, col + 1], dz)
            continue
        n = 0
        for q in range(count):
            for p in range(c_ptr[q, col], c_ptr[q, col + 1]):
                m_rows[n] = c_rows[q, p]
                m_values[n] = c_values[q, p]
                n += 1
        _add_rows(dw, k, m_values, m_rows, 0, n, dz)


@kernel
def sparse_weight_grad(indptr, indices, values, rows, background, dz, dz_sums, first, dw, c_ptr, c_rows,
                       c_values):
    """dw (c, m) = rows first .. first + c of x[rows].T @ dz, for dz (r, m), through one group of
    CSC entries: c_ptr (d + 1,) int64, c_rows int64 and c_values as long as the rows' entries
    (scratch); dz_sums (m,) must hold colsum(dz) when background != 0."""
    csc_entries(indptr, indices, values, rows, 0, c_ptr, c_rows, c_values)
    csc_weight_grad(c_ptr.reshape((1, c_ptr.size)), c_rows.reshape((1, c_rows.size)),
                    c_values.reshape((1, c_values.size)), 1, first, dz, background, dz_sums, dw,
                    np.empty(rows.size, np.int64), np.empty(rows.size, dz.dtype))


@kernel
def dense_rows_forward(x, background, w, w_sums, y):
    """y (n, m) = x @ w for dense rows x (n, d), skipping their background entries as they come:
    the forward pass of a few images (inference), where building CSR rows would cost more than
    it saves. w_sums (m,) must hold colsum(w) when background != 0."""
    m = w.shape[1]
    for i in range(x.shape[0]):
        for j in range(m):
            y[i, j] = background * w_sums[j] if background != 0 else 0.0
        for k in range(x.shape[1]):
            a = x[i, k] - background
            if a != 0:
                for j in range(m):
                    y[i, j] += a * w[k, j]
