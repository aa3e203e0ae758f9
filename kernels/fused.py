"""The fused MLP's flat layout and forward passes: one kernel call for a whole network.

Every array lives in a flat buffer and a layer is a view into it, so one compiled kernel
serves any depth. Layer ``l`` is described by a row of ``layout`` (L, 6) int64:

    [w_offset, d_in, d_out, b_offset, out_offset, act_code]

``w_offset``/``b_offset`` index ``params``, ``grads``, ``slot1`` and ``slot2`` (all (P,) of one
float dtype): the layer's weights (d_in, d_out) and bias (d_out,) lie there C-contiguous.
``out_offset`` indexes ``outs`` and ``deltas`` (float, at least sum(batch_size * d_out)): a
layer's outputs (nb, d_out) and the loss gradient at its pre-activation.

The training kernels (steps.py) run their steps through these layouts; this module holds what
they share with inference: the layout, the gather of a batch, bias + activation and its
gradient, and the forward passes (``mlp_forward``, ``mlp_forward_sparse``, ``predict_rows``).
"""

import numpy as np

from ._jit import kernel
from .activations import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH, activate, derivative
from .softmax import softmax
from .sparse import dense_rows_forward

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


@kernel(noalias=True)
def _bias_activate(y, b, act, alpha):
    """y = act(y + b) in place (dense.dense_forward's loop), one loop per activation code so that
    each loop body is branch-free and vectorizes. y and b share no memory (noalias, _jit.py)."""
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


@kernel(noalias=True)
def _activation_grad(dz, y, db, act, alpha):
    """dz *= act'(y) in place and db = its column sums in float64 (dense.dense_backward's loop),
    one loop per activation code. dz, y and db share no memory (noalias, _jit.py)."""
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
