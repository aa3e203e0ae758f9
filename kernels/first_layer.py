"""A sparse first layer's share of a fused training step (steps.py): phase 0, where each part
multiplies the whole batch by its block of W0's rows, and the sum of the parts' products that
the rows phase takes as the layer's x @ W0."""

from ._jit import kernel
from .fused import D_IN, D_OUT, W_OFFSET, _view2
from .sparse import column_sums, sparse_forward


@kernel
def first_layer_pass(data, net, parts, part, count, rows):
    """Phase 0 for part ``part`` of ``count`` (module doc): the batch's ``rows`` times the part's
    block of a sparse first layer's W, into parts.partial[part], the block's column sums into
    parts.sums[part] when the background is not 0, and where the rows' entries in the block's
    columns lie (parts.spans[part]), for the block's weight gradient in phase 2."""
    layout = net.layout
    d_in, d_out = layout[0, D_IN], layout[0, D_OUT]
    k_lo, k_hi = parts.blocks[part], parts.blocks[part + 1]
    w = _view2(net.params, layout[0, W_OFFSET], d_in, d_out)
    if data.background != 0:
        column_sums(w[k_lo:k_hi], parts.sums[part, :d_out])
    spans = parts.spans[part, : rows.size]
    sparse_forward(data.indptr, data.indices, data.values, rows, k_lo, k_hi, w,
                   _view2(parts.partial[part], 0, rows.size, d_out), spans)


@kernel(noalias=True)
def add_parts(y, lo, nb, parts, count, background):
    """y = rows lo .. of x @ W0 for a sparse first layer: the parts' products (phase 0) added up,
    part by part, each with its block's background * column sums. y shares no memory with parts'
    arrays (noalias, _jit.py)."""
    rows, d_out = y.shape
    for i in range(rows):
        for j in range(d_out):
            y[i, j] = 0.0
    for p in range(count):  # a view per part, not per row: each one counts references to the buffer
        block, sums = _view2(parts.partial[p], 0, nb, d_out), parts.sums[p]
        if background != 0:
            for i in range(rows):
                for j in range(d_out):
                    y[i, j] += background * sums[j] + block[lo + i, j]
        else:
            for i in range(rows):
                for j in range(d_out):
                    y[i, j] += block[lo + i, j]
