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
from .row_sums import MOST_VECTORS, add_row_sums, add_scaled_row, lanes

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


@kernel(noalias=True)
def column_sums(a, out):
    """out (m,) = the rows of a (n, m) added up, in out's dtype; out is not part of a (noalias,
    _jit.py)."""
    out[:] = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j]


@kernel(noalias=True)
def _add_rows(out, row, values, indices, lo, hi, w):
    """out[row] += sum over p in lo:hi of values[p] * w[indices[p]]: each element adds its entries
    one at a time, in order, the row held in vector registers (row_sums.py) a few vectors at a
    time, or in a plain loop where it is narrower than one vector.

    Rows are indexed in place, never taken as views: a view per row would cost two reference
    count updates, more than the row's arithmetic. out shares no memory with the others
    (noalias, _jit.py)."""
    m, width = out.shape[1], lanes(out)
    if m < width:
        for p in range(lo, hi):
            a, k = values[p], indices[p]
            for j in range(m):
                out[row, j] += a * w[k, j]
        return
    j = 0
    while m - j > MOST_VECTORS * width:  # what is left stays a vector wide at least
        add_row_sums(out, row, j, j + (MOST_VECTORS - 1) * width, values, indices, lo, hi, w)
        j += (MOST_VECTORS - 1) * width
    add_row_sums(out, row, j, m, values, indices, lo, hi, w)


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
def _entry_at(indptr, indices, r, k):
    """The place of row r's first entry whose column is k or more (a row's columns ascend), by a
    bisection without branches on the data (a select): a branch per halving would be mispredicted
    half the time."""
    base, n = indptr[r], indptr[r + 1] - indptr[r]
    if n == 0:
        return base
    while n > 1:
        half = n // 2
        base = base + half if indices[base + half] < k else base
        n -= half
    return base + 1 if indices[base] < k else base


@kernel
def _span(indptr, indices, r, first, last, d):
    """Row r's entries in columns first .. last - 1 of d: the range of their places."""
    lo = indptr[r] if first == 0 else _entry_at(indptr, indices, r, first)
    hi = indptr[r + 1] if last == d else _entry_at(indptr, indices, r, last)
    return lo, hi


@kernel
def sparse_forward(indptr, indices, values, rows, first, last, w, y, spans):
    """y (r, m) = s[rows][:, first:last] @ w[first:last] for w (d, m): the products of x[rows]'s
    non-background entries in columns first .. last - 1 (module doc: add background * colsum(w)
    for x @ w). Rows block [first, last) of w is all it reads, so threads that each own a block of
    w's rows share the product without moving them. The rows' entries are asked for AHEAD rows
    before they are read: a batch's rows lie anywhere in the training set. Row i's entries in
    those columns are values[spans[i, 0]:spans[i, 1]] (spans (r, 2) int64, written here)."""
    m, d = w.shape[1], w.shape[0]
    for i in range(min(AHEAD, rows.size)):
        _prefetch_row(indptr, indices, values, rows[i])
    for i in range(rows.size):
        if i + AHEAD < rows.size:
            _prefetch_row(indptr, indices, values, rows[i + AHEAD])
        for j in range(m):
            y[i, j] = 0.0
        lo, hi = _span(indptr, indices, rows[i], first, last, d)
        spans[i, 0], spans[i, 1] = lo, hi
        _add_rows(y, i, values, indices, lo, hi, w)


@kernel(noalias=True)
def _add_outer(dw, first, values, indices, lo, hi, dz, i):
    """dw[indices[p] - first] += values[p] * dz[i] for p in lo:hi (one row's entries: no two
    alike), in that order, dz[i] held in vector registers a few vectors at a time (row_sums.py),
    the last columns (fewer than a vector's) in a plain loop. dw shares no memory with the others
    (noalias, _jit.py)."""
    m, width = dw.shape[1], lanes(dw)
    j = 0
    while m - j >= width:
        vectors = min((m - j) // width, MOST_VECTORS)
        add_scaled_row(dw, first, values, indices, lo, hi, dz, i, j, vectors)
        j += vectors * width
    if j < m:
        for p in range(lo, hi):
            a, k = values[p], indices[p] - first
            for c in range(j, m):
                dw[k, c] += a * dz[i, c]


@kernel
def block_weight_grad(indices, values, spans, first, dz, background, dz_sums, dw):
    """dw (c, m) = rows first .. first + c - 1 of x[rows].T @ dz for the batch's dz (r, m), where
    row i's entries in those columns are values[spans[i, 0]:spans[i, 1]] (sparse_forward's
    spans); dz_sums (m,) must hold colsum(dz) when background != 0. Each entry adds its row of dz
    to its row of dw where it lies: a row of dw adds up its column's entries in the rows' order,
    whatever block it is computed in."""
    m = dw.shape[1]
    for k in range(dw.shape[0]):
        for j in range(m):
            dw[k, j] = background * dz_sums[j] if background != 0 else 0.0
    for i in range(spans.shape[0]):
        _add_outer(dw, first, values, indices, spans[i, 0], spans[i, 1], dz, i)


@kernel
def sparse_weight_grad(indptr, indices, values, rows, first, last, d, dz, background, dz_sums, dw):
    """dw (last - first, m) = rows first .. last - 1 of x[rows].T @ dz for x (n, d), dz (r, m);
    dz_sums (m,) must hold colsum(dz) when background != 0."""
    spans = np.empty((rows.size, 2), np.int64)
    for i in range(rows.size):
        spans[i, 0], spans[i, 1] = _span(indptr, indices, rows[i], first, last, d)
    block_weight_grad(indices, values, spans, first, dz, background, dz_sums, dw)


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
