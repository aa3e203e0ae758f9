"""Fused MLP training: many mini-batch steps (gather, forward, softmax cross-entropy, backward,
optimizer update) in one kernel call, so Python leaves the hot path.

Every array lives in a flat buffer and a layer is a view into it, so one compiled kernel
serves any depth. Layer ``l`` is described by a row of ``layout`` (L, 6) int64:

    [w_offset, d_in, d_out, b_offset, out_offset, act_code]

``w_offset``/``b_offset`` index ``params``, ``grads``, ``slot1`` and ``slot2`` (all (P,) of one
float dtype): the layer's weights (d_in, d_out) and bias (d_out,) lie there C-contiguous.
``out_offset`` indexes ``outs`` and ``deltas`` (float, at least sum(batch_size * d_out)): a
layer's outputs (nb, d_out) and the loss gradient at its pre-activation.

A step runs in two phases, written for ``parts`` threads (steps.py runs them, in one thread or
in ``parts``):

1. rows (``_rows_pass``): part t takes the batch rows [nb t / parts, nb (t + 1) / parts). It
   runs them forward through every layer, takes their softmax cross-entropy, carries the loss
   gradient back to every layer's pre-activation (``deltas``), and adds up its rows' share of
   every weight gradient (``part_grads[t]``) and bias gradient (``bias_sums[t]``, float64).
   All of it is row by row, so no part waits for another.
2. weights (``_weights_pass``): part t takes rows [fan_in t / parts, fan_in (t + 1) / parts) of
   every layer's W, adds up the parts' gradients there and updates them; part (layer % parts)
   does the layer's bias.

Between the phases the loss is checked: a step with a non-finite loss changes no parameter.
With ``sparse``, the first layer reads the training set as CSR rows (sparse.py: ``indptr``,
``indices``, ``values`` and its ``background``) instead of gathering dense rows.

With one part and a dense first layer the arithmetic is that of the per-op kernels (dense,
softmax, optim), operation for operation, so a run matches the general path to the last bit
(unless a subnormal number arises: see FLUSH_SUBNORMALS). More parts, or the sparse layer, add
the same terms up in another order: the runs agree to rounding.
"""

import math

import numpy as np

from ._jit import kernel
from .activations import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH, activate, derivative
from .optim import adam_update, momentum_update, sgd_update
from .softmax import softmax, softmax_cross_entropy_rows
from .sparse import column_sums, dense_rows_forward, sparse_forward, sparse_weight_grad

SGD = 0
MOMENTUM = 1
ADAM = 2

# layout columns
W_OFFSET = 0
D_IN = 1
D_OUT = 2
B_OFFSET = 3
OUT_OFFSET = 4
ACT = 5


@kernel
def _view2(buffer, offset, rows, cols):
    return buffer[offset : offset + rows * cols].reshape((rows, cols))


@kernel
def _gather(x, labels, order, start, nb, xb, yb):
    """xb[i] = x[order[start + i]], yb likewise, four rows at a time: four streams from memory
    in flight at once instead of one (the rows are scattered over the whole training set)."""
    d_in = x.shape[1]
    quads = nb - nb % 4
    for i in range(0, quads, 4):
        r0, r1, r2, r3 = order[start + i], order[start + i + 1], order[start + i + 2], order[start + i + 3]
        for j in range(d_in):
            xb[i, j] = x[r0, j]
            xb[i + 1, j] = x[r1, j]
            xb[i + 2, j] = x[r2, j]
            xb[i + 3, j] = x[r3, j]
    for i in range(quads, nb):
        r = order[start + i]
        for j in range(d_in):
            xb[i, j] = x[r, j]
    for i in range(nb):
        yb[i] = labels[order[start + i]]


@kernel(inline="always")
def _bias_activate_as(y, b, act, alpha):
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] = activate(y[i, j] + b[j], act, alpha)


@kernel
def _bias_activate(y, b, act, alpha):
    """y = act(y + b) in place (dense.dense_forward's loop), one loop per activation code so that
    each loop body is branch-free and vectorizes."""
    if act == RELU:
        _bias_activate_as(y, b, RELU, alpha)
    elif act == LEAKY_RELU:
        _bias_activate_as(y, b, LEAKY_RELU, alpha)
    elif act == SIGMOID:
        _bias_activate_as(y, b, SIGMOID, alpha)
    elif act == TANH:
        _bias_activate_as(y, b, TANH, alpha)
    else:
        _bias_activate_as(y, b, IDENTITY, alpha)


@kernel(inline="always")
def _activation_grad_as(dz, y, db, act, alpha):
    for i in range(dz.shape[0]):
        for j in range(dz.shape[1]):
            g = dz[i, j] * derivative(y[i, j], act, alpha)
            dz[i, j] = g
            db[j] += g


@kernel
def _activation_grad(dz, y, db, act, alpha):
    """dz *= act'(y) in place and db = its column sums in float64 (dense.dense_backward's loop),
    one loop per activation code."""
    db[:] = 0.0
    if act == RELU:
        _activation_grad_as(dz, y, db, RELU, alpha)
    elif act == LEAKY_RELU:
        _activation_grad_as(dz, y, db, LEAKY_RELU, alpha)
    elif act == SIGMOID:
        _activation_grad_as(dz, y, db, SIGMOID, alpha)
    elif act == TANH:
        _activation_grad_as(dz, y, db, TANH, alpha)
    else:
        _activation_grad_as(dz, y, db, IDENTITY, alpha)


@kernel
def mlp_forward(params, layout, alpha, x, outs):
    """Logits (n, k) of inputs x (n, d_in), written through every layer's slice of ``outs``.

    Returns the view of ``outs`` holding the last layer's output.
    """
    return _forward_from(params, layout, alpha, x, outs, 0)


@kernel
def _forward_from(params, layout, alpha, h, outs, first):
    """The layers from ``first`` on, for h (n, d_in of that layer); the last layer's output."""
    n = h.shape[0]
    for layer in range(first, layout.shape[0]):
        d_in, d_out, act = layout[layer, D_IN], layout[layer, D_OUT], layout[layer, ACT]
        w = _view2(params, layout[layer, W_OFFSET], d_in, d_out)
        b = params[layout[layer, B_OFFSET] : layout[layer, B_OFFSET] + d_out]
        y = _view2(outs, layout[layer, OUT_OFFSET], n, d_out)
        np.dot(h, w, y)
        _bias_activate(y, b, act, alpha)
        h = y
    return h


@kernel
def mlp_forward_sparse(params, layout, alpha, x, background, w_sums, outs):
    """mlp_forward for a few rows (inference): the first layer's product over x's
    non-background entries only (sparse.dense_rows_forward; w_sums = colsum of the first W, when
    background != 0), and every product in a plain loop rather than through BLAS."""
    n = x.shape[0]
    d_in, d_out = layout[0, D_IN], layout[0, D_OUT]
    y = _view2(outs, layout[0, OUT_OFFSET], n, d_out)
    dense_rows_forward(x, background, _view2(params, layout[0, W_OFFSET], d_in, d_out), w_sums, y)
    _bias_activate(y, params[layout[0, B_OFFSET] : layout[0, B_OFFSET] + d_out], layout[0, ACT], alpha)
    h = y
    for layer in range(1, layout.shape[0]):  # BLAS's set-up would outweigh these few rows' products
        d_in, d_out, act = layout[layer, D_IN], layout[layer, D_OUT], layout[layer, ACT]
        y = _view2(outs, layout[layer, OUT_OFFSET], n, d_out)
        dense_rows_forward(h, 0.0, _view2(params, layout[layer, W_OFFSET], d_in, d_out), y[0], y)
        _bias_activate(y, params[layout[layer, B_OFFSET] : layout[layer, B_OFFSET] + d_out], act, alpha)
        h = y
    return h


@kernel
def predict_rows(params, layout, alpha, images, mean, std, background, w_sums, xbuf, outs):
    """Class probabilities (n, k) of raw images (n, d_in) of the params' dtype: normalized as
    model.normalize does, (image - mean) / std, into xbuf (at least n rows), then
    mlp_forward_sparse and a softmax. One call for model.Predictor."""
    n, d_in = images.shape
    x = xbuf[:n]
    for i in range(n):
        for k in range(d_in):
            x[i, k] = (images[i, k] - mean) / std
    return softmax(mlp_forward_sparse(params, layout, alpha, x, background, w_sums, outs))


@kernel
def _update(rule, p, g, slot1, slot2, lr_t, hyper, weight_decay):
    if rule == ADAM:
        adam_update(p, g, slot1, slot2, lr_t, hyper[0], hyper[1], hyper[2], weight_decay)
    elif rule == MOMENTUM:
        momentum_update(p, g, slot1, lr_t, hyper[3], weight_decay)
    else:
        sgd_update(p, g, lr_t, weight_decay)


@kernel
def _rows_pass(x, labels, order, start, lo, hi, nb, params, layout, alpha, outs, deltas, xbuf, ybuf, grads,
               bias_sums, sparse, indptr, indices, values, background, scratch, c_ptr, c_rows, c_values):
    """Phase 1 for rows lo:hi of a batch of nb (module doc). ``grads`` (P,) and ``bias_sums``
    (layers, max d_out) are this part's; ``scratch`` (max d_out,) and the CSC buffers
    (sparse.sparse_weight_grad) too. Returns (sum of the rows' losses, correct)."""
    rows = order[start + lo : start + hi]
    yb = ybuf[lo:hi]
    for i in range(hi - lo):
        yb[i] = labels[rows[i]]
    xb = xbuf[lo:hi]
    layers = layout.shape[0]
    for layer in range(layers):
        d_in, d_out, act = layout[layer, D_IN], layout[layer, D_OUT], layout[layer, ACT]
        w = _view2(params, layout[layer, W_OFFSET], d_in, d_out)
        b = params[layout[layer, B_OFFSET] : layout[layer, B_OFFSET] + d_out]
        y = _view2(outs, layout[layer, OUT_OFFSET], nb, d_out)[lo:hi]
        if layer > 0:
            np.dot(_view2(outs, layout[layer - 1, OUT_OFFSET], nb, d_in)[lo:hi], w, y)
        elif sparse:
            if background != 0:
                column_sums(w, scratch[:d_out])
            sparse_forward(indptr, indices, values, rows, background, w, scratch[:d_out], y)
        else:
            _gather(x, labels, order, start + lo, hi - lo, xb, yb)
            np.dot(xb, w, y)
        _bias_activate(y, b, act, alpha)
    top = layers - 1
    logits = _view2(outs, layout[top, OUT_OFFSET], nb, layout[top, D_OUT])[lo:hi]
    dlogits = _view2(deltas, layout[top, OUT_OFFSET], nb, layout[top, D_OUT])[lo:hi]
    loss, correct = softmax_cross_entropy_rows(logits, yb, dlogits, 1.0 / nb)
    for layer in range(top, -1, -1):
        fan_in, fan_out, act = layout[layer, D_IN], layout[layer, D_OUT], layout[layer, ACT]
        w_at, out_at = layout[layer, W_OFFSET], layout[layer, OUT_OFFSET]
        y = _view2(outs, out_at, nb, fan_out)[lo:hi]
        dz = _view2(deltas, out_at, nb, fan_out)[lo:hi]
        _activation_grad(dz, y, bias_sums[layer, :fan_out], act, alpha)
        dw = _view2(grads, w_at, fan_in, fan_out)
        if layer > 0:
            np.dot(_view2(outs, layout[layer - 1, OUT_OFFSET], nb, fan_in)[lo:hi].T, dz, dw)
            w = _view2(params, w_at, fan_in, fan_out)
            np.dot(dz, w.T, _view2(deltas, layout[layer - 1, OUT_OFFSET], nb, fan_in)[lo:hi])
        elif sparse:
            sparse_weight_grad(indptr, indices, values, rows, background, dz, dw, scratch[:fan_out], c_ptr,
                               c_rows, c_values)
        else:
            np.dot(xb.T, dz, dw)
    return loss, correct


@kernel
def _weights_pass(part, parts, params, layout, rule, lr_t, hyper, slot1, slot2, grads, part_grads, bias_sums):
    """Phase 2 for part ``part`` (module doc). The weight gradients are summed into grads, or
    with one part used where they are (part_grads[0], which may be grads itself)."""
    for layer in range(layout.shape[0]):
        fan_in, fan_out = layout[layer, D_IN], layout[layer, D_OUT]
        w_at, b_at = layout[layer, W_OFFSET], layout[layer, B_OFFSET]
        lo = w_at + fan_in * part // parts * fan_out
        hi = w_at + fan_in * (part + 1) // parts * fan_out
        total = part_grads[0, lo:hi]
        if parts > 1:
            total = grads[lo:hi]
            first = part_grads[0, lo:hi]
            for i in range(total.size):  # not total[:] = first: its shape check compiles string code (3 s)
                total[i] = first[i]
            for p in range(1, parts):
                share = part_grads[p, lo:hi]
                for i in range(total.size):
                    total[i] += share[i]
        _update(rule, params[lo:hi], total, slot1[lo:hi], slot2[lo:hi], lr_t, hyper, hyper[4])
        if layer % parts == part:
            for j in range(fan_out):
                db = 0.0
                for p in range(parts):
                    db += bias_sums[p, layer, j]
                grads[b_at + j] = db
            end = b_at + fan_out
            _update(rule, params[b_at:end], grads[b_at:end], slot1[b_at:end], slot2[b_at:end], lr_t, hyper,
                    hyper[5])


@kernel
def _step_loss(losses, nb, progress):
    """Between the phases: the step's mean loss into progress[3]; False if it is not finite."""
    loss = losses.sum() / nb
    progress[3] = loss
    return math.isfinite(loss)


@kernel
def _step_done(s, nb, hits, progress):
    progress[0] = s + 1
    progress[1] += progress[3] * nb
    progress[2] += hits.sum()
