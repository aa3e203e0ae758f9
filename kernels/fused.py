"""Fused MLP training: many mini-batch steps (gather, forward, softmax cross-entropy, backward,
optimizer update) in one kernel call, so Python leaves the hot path.

Every array lives in a flat buffer and a layer is a view into it, so one compiled kernel
serves any depth. Layer ``l`` is described by a row of ``layout`` (L, 6) int64:

    [w_offset, d_in, d_out, b_offset, out_offset, act_code]

``w_offset``/``b_offset`` index ``params``, ``grads``, ``slot1`` and ``slot2`` (all (P,) of one
float dtype): the layer's weights (d_in, d_out) and bias (d_out,) lie there C-contiguous.
``out_offset`` indexes ``outs`` and ``deltas`` (float, at least sum(batch_size * d_out)): a
layer's outputs (nb, d_out) and the loss gradient at its pre-activation.

The arithmetic is that of the per-op kernels (dense, softmax, optim), operation for operation,
so a run matches the general path to the last bit (unless a subnormal number arises: see
FLUSH_SUBNORMALS).
"""

import math

import numpy as np
from numba import njit

from .activations import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH, activate, derivative
from .floatenv import FLUSH_SUBNORMALS, mxcsr, set_mxcsr
from .optim import adam_update, momentum_update, sgd_update
from .softmax import softmax_cross_entropy_into

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


@njit(cache=True, error_model="numpy")
def _view2(buffer, offset, rows, cols):
    return buffer[offset : offset + rows * cols].reshape((rows, cols))


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy", inline="always")
def _bias_activate_as(y, b, act, alpha):
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] = activate(y[i, j] + b[j], act, alpha)


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy", inline="always")
def _activation_grad_as(dz, y, db, act, alpha):
    for i in range(dz.shape[0]):
        for j in range(dz.shape[1]):
            g = dz[i, j] * derivative(y[i, j], act, alpha)
            dz[i, j] = g
            db[j] += g


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def mlp_forward(params, layout, alpha, x, outs):
    """Logits (n, k) of inputs x (n, d_in), written through every layer's slice of ``outs``.

    Returns the view of ``outs`` holding the last layer's output.
    """
    n = x.shape[0]
    h = x
    for layer in range(layout.shape[0]):
        d_in, d_out, act = layout[layer, D_IN], layout[layer, D_OUT], layout[layer, ACT]
        w = _view2(params, layout[layer, W_OFFSET], d_in, d_out)
        b = params[layout[layer, B_OFFSET] : layout[layer, B_OFFSET] + d_out]
        y = _view2(outs, layout[layer, OUT_OFFSET], n, d_out)
        np.dot(h, w, y)
        _bias_activate(y, b, act, alpha)
        h = y
    return h


@njit(cache=True, error_model="numpy")
def _update(rule, p, g, slot1, slot2, lr_t, hyper, weight_decay):
    if rule == ADAM:
        adam_update(p, g, slot1, slot2, lr_t, hyper[0], hyper[1], hyper[2], weight_decay)
    elif rule == MOMENTUM:
        momentum_update(p, g, slot1, lr_t, hyper[3], weight_decay)
    else:
        sgd_update(p, g, lr_t, weight_decay)


@njit(cache=True, error_model="numpy")
def train_steps(x, labels, order, batch_size, first, last, params, layout, alpha,
                rule, learning_rates, hyper, slot1, slot2, grads, outs, deltas, xbuf, ybuf,
                bias_sums, progress):
    """Run steps ``first`` .. ``last - 1`` of an epoch, in place on params and the slots.

    x (n, d_in) and labels (n,) int64 are the training set; step s trains on the rows
    ``order[s * batch_size : (s + 1) * batch_size]``. ``learning_rates`` (last - first,) holds
    each step's rate in the params' dtype (Adam's already bias-corrected); ``hyper`` (6,) is
    (1 - beta1, 1 - beta2, epsilon, momentum, weight_decay, 0) in that dtype. ``rule`` is SGD,
    MOMENTUM or ADAM; slot1 is Adam's m or momentum's velocity, slot2 Adam's v (an empty
    array when the rule does not use it). xbuf (batch_size, d_in), ybuf (batch_size,) int64
    and bias_sums (max d_out,) float64 are scratch. After each step ``progress`` (4,) float64
    holds (steps done in the epoch, sum of loss * rows, correct predictions, the last loss).

    Returns -1, or the step whose loss was not finite: that step left the params untouched.
    Subnormal values are flushed to zero meanwhile (see floatenv.py).
    """
    saved = mxcsr()
    set_mxcsr(saved | FLUSH_SUBNORMALS)
    failed = _train_steps(x, labels, order, batch_size, first, last, params, layout, alpha, rule, learning_rates,
                          hyper, slot1, slot2, grads, outs, deltas, xbuf, ybuf, bias_sums, progress)
    set_mxcsr(saved)
    return failed


@njit(cache=True, error_model="numpy")
def _train_steps(x, labels, order, batch_size, first, last, params, layout, alpha, rule, learning_rates,
                 hyper, slot1, slot2, grads, outs, deltas, xbuf, ybuf, bias_sums, progress):
    n = x.shape[0]
    layers = layout.shape[0]
    weight_decay = hyper[4]
    no_decay = hyper[5]
    for s in range(first, last):
        start = s * batch_size
        nb = min(batch_size, n - start)
        xb = xbuf[:nb]
        yb = ybuf[:nb]
        _gather(x, labels, order, start, nb, xb, yb)
        logits = mlp_forward(params, layout, alpha, xb, outs)
        top = layers - 1
        dlogits = _view2(deltas, layout[top, OUT_OFFSET], nb, layout[top, D_OUT])
        loss, correct = softmax_cross_entropy_into(logits, yb, dlogits)
        progress[3] = loss
        if not math.isfinite(loss):
            return s
        lr_t = learning_rates[s - first]
        for layer in range(top, -1, -1):
            fan_in, fan_out, act = layout[layer, D_IN], layout[layer, D_OUT], layout[layer, ACT]
            w_at, b_at, out_at = layout[layer, W_OFFSET], layout[layer, B_OFFSET], layout[layer, OUT_OFFSET]
            y = _view2(outs, out_at, nb, fan_out)
            dz = _view2(deltas, out_at, nb, fan_out)
            # dz = dy * act'(y), the bias gradient summed in float64 (as dense.dense_backward)
            db = bias_sums[:fan_out]
            _activation_grad(dz, y, db, act, alpha)
            inputs = xb if layer == 0 else _view2(outs, layout[layer - 1, OUT_OFFSET], nb, fan_in)
            w = _view2(params, w_at, fan_in, fan_out)
            dw = _view2(grads, w_at, fan_in, fan_out)
            np.dot(inputs.T, dz, dw)
            if layer > 0:
                np.dot(dz, w.T, _view2(deltas, layout[layer - 1, OUT_OFFSET], nb, fan_in))
            for j in range(fan_out):
                grads[b_at + j] = db[j]
            # the layer's params are no longer needed by this step: update them while hot
            size = fan_in * fan_out
            b_end = b_at + fan_out
            w_end = w_at + size
            _update(rule, params[w_at:w_end], grads[w_at:w_end], slot1[w_at:w_end], slot2[w_at:w_end],
                    lr_t, hyper, weight_decay)
            _update(rule, params[b_at:b_end], grads[b_at:b_end], slot1[b_at:b_end], slot2[b_at:b_end],
                    lr_t, hyper, no_decay)
        progress[0] = s + 1
        progress[1] += loss * nb
        progress[2] += correct
    return -1
