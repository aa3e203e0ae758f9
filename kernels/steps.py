"""The training kernels: many mini-batch steps (gather, forward, softmax cross-entropy, backward,
optimizer update) per call, in one thread or split over several.

Their arguments come in five named tuples (the types below), whose arrays the caller allocates
once: ``TrainingSet``, ``Network`` (the flat params and their ``layout``, see fused.py),
``Optimizer``, ``Buffers`` (shared by the parts) and ``PartBuffers`` (one row per part, the leading
axis of every array, ``parts = losses.size``). ``hyper`` and ``progress`` are indexed by the
constants below.

A step runs in two phases over the ``parts``, three with a sparse first layer:

0. a sparse first layer (first_layer.py, ``first_layer_pass``): part t takes its block of W0's
   rows (below) and multiplies the whole batch's inputs in those columns by it
   (``PartBuffers.partial[t]``).
1. rows (``_rows_pass``): part t takes the batch rows [nb t / parts, nb (t + 1) / parts). It
   runs them forward through every layer (a sparse first layer's products are the parts'
   partial ones added up), takes their softmax cross-entropy, carries the loss gradient back to
   every layer's pre-activation (``deltas``), and adds up its rows' share of every weight
   gradient (``PartBuffers.grads[t]``) and bias gradient (``bias_sums[t]``, float64), but a sparse
   first layer's weight gradient. All of it is row by row, so no part waits for another.
2. weights (``_weights_pass``): part t takes rows [fan_in t / parts, fan_in (t + 1) / parts) of
   every layer's W, adds up the parts' gradients there (a sparse first layer's it computes there,
   from the whole batch's entries in its columns: no copy per part to add up) and updates them;
   part (layer % parts) does the layer's bias.

So a part reads and writes the same block of a sparse first layer's W in every step, and that
block stays in its core's cache. Where every part read all of W in phase 1, each step moved the
blocks the other cores had just updated from core to core: on a 2-core Xeon every kernel of the
step ran 1.3-1.4x slower in the parallel kernel than alone, and the blocks cut the parallel
step's time by 6-10% (one thread, where a part walks every row of the batch, takes 2-5% more).
It also lets a part run the next step's phase 0 as soon as its phase 2 is done, with no wait for
the other parts: phase 0 reads no block another part writes. A step then waits for all parts
twice, not three times, and a part that was slow in one phase can catch up in the other: the
parallel step took 0.94-0.96 of its time before (2-core AMD EPYC, the two alternated epoch by
epoch), with the same bits.

Between the phases the loss is checked: a step with a non-finite loss changes no parameter.
With ``sparse``, the first layer reads the training set as CSR rows (sparse.py: ``indptr``,
``indices``, ``values`` and its ``background``) instead of gathering dense rows.

The step loop is written once (``_steps``) and compiled twice: ``train_steps`` runs the parts one
after another in the calling thread (its ``prange`` is a ``range``: no thread launch), and
``train_steps_parallel`` runs each phase's parts over Numba's threads. Every part calls np.dot on
its share, so BLAS must be held to one thread while the parallel kernel runs (the caller does it):
its threads and ours would otherwise fight over the cores. With one part and a dense first layer
the arithmetic is that of the per-op kernels (dense, softmax, optim), operation for operation, so
a run matches the general path to the last bit (unless a subnormal number arises: see
floatenv.py, whose flush-to-zero each part sets in its thread). More parts, or the sparse layer,
add the same terms up in another order: the runs agree to rounding.
"""

import math
from collections import namedtuple

import numpy as np
from numba import prange

from ._jit import kernel
from .first_layer import add_parts, first_layer_pass
from .floatenv import FLUSH_SUBNORMALS, mxcsr, set_mxcsr
from .fused import (
    ACT,
    ADAM,
    B_OFFSET,
    D_IN,
    D_OUT,
    MOMENTUM,
    OUT_OFFSET,
    W_OFFSET,
    _activation_grad,
    _bias_activate,
    _gather,
    _view2,
)
from .optim import adam_update, momentum_update, sgd_update
from .softmax import softmax_cross_entropy_rows
from .sparse import block_weight_grad

# hyper (HYPER_SIZE,), in the params' dtype
ONE_MINUS_BETA1, ONE_MINUS_BETA2, EPSILON, MOMENTUM_COEF, WEIGHT_DECAY, BIAS_DECAY = range(6)
HYPER_SIZE = 6
# progress (PROGRESS_SIZE,) float64, after each step
STEPS_DONE, LOSS_SUM, CORRECT, LAST_LOSS = range(4)
PROGRESS_SIZE = 4

TrainingSet = namedtuple("TrainingSet", ["x", "labels", "sparse", "indptr", "indices", "values", "background"])
TrainingSet.__doc__ = """x (n, d_in) and labels (n,) int64; with ``sparse`` (bool) the first layer reads x
as CSR rows (sparse.py; empty arrays otherwise) around the scalar ``background``."""
Network = namedtuple("Network", ["params", "layout", "alpha"])
Network.__doc__ = """params (P,) flat, layout (L, 6) int64 (fused.py), alpha: leaky_relu's slope."""
Optimizer = namedtuple("Optimizer", ["rule", "hyper", "slot1", "slot2"])
Optimizer.__doc__ = """rule: fused.SGD, MOMENTUM or ADAM; hyper (HYPER_SIZE,) in the params' dtype;
slot1 (P,) Adam's m or momentum's velocity, slot2 (P,) Adam's v (empty when the rule has none)."""
Buffers = namedtuple("Buffers", ["grads", "outs", "deltas", "xbuf", "ybuf", "progress"])
Buffers.__doc__ = """grads (P,); outs and deltas (fused.py's layout); xbuf (batch_size, d_in) and ybuf
(batch_size,) int64; progress (PROGRESS_SIZE,) float64."""
PartBuffers = namedtuple("PartBuffers", ["grads", "bias_sums", "losses", "hits", "sums", "partial", "blocks",
                                         "spans"])
PartBuffers.__doc__ = """Each part's own, leading axis parts: grads (parts, P) (with one part it may be
Buffers.grads[None]), bias_sums (parts, layers, max d_out) float64, losses float64, hits int64, sums
(parts, max d_out): a sparse first layer's column sums of the part's block of W0, then of dz;
partial (parts, batch_size * d_out of the first layer; empty when not sparse): the batch's
products with the part's block of W0 (phase 0), which every part reads in phase 1; blocks
(parts + 1,) int64: part t's block of a sparse first layer's W is its rows blocks[t] .. blocks[t + 1]
(of any other layer's W, module doc); spans (parts, batch_size, 2) int64: where each row's entries in
the part's columns lie (sparse_forward, in phase 0), for the part's block of the weight gradient
(phase 2)."""


def _steps(data, net, opt, buf, parts, order, batch_size, first, last, learning_rates):
    """Run steps ``first`` .. ``last - 1`` of an epoch, in place on params and slots.

    Step s trains on the rows ``order[s * batch_size : (s + 1) * batch_size]``.
    ``learning_rates`` (last - first,) holds each step's rate in the params' dtype (Adam's already
    bias-corrected). After each step ``progress`` holds (STEPS_DONE in the epoch, LOSS_SUM of loss
    * rows, CORRECT predictions, LAST_LOSS).

    Returns -1, or the step whose loss was not finite: that step left the params untouched.
    Subnormal values are flushed to zero meanwhile (see floatenv.py).
    """
    n = data.labels.shape[0]
    count = parts.losses.size
    if data.sparse and first < last:
        for k in prange(count):
            saved = mxcsr()  # each thread has its own float environment
            set_mxcsr(saved | FLUSH_SUBNORMALS)
            first_layer_pass(data, net, parts, np.int64(k), count, _batch(order, first, batch_size, n))
            set_mxcsr(saved)
    for s in range(first, last):
        start = s * batch_size
        rows = _batch(order, s, batch_size, n)
        nb = rows.size
        for k in prange(count):
            saved = mxcsr()
            set_mxcsr(saved | FLUSH_SUBNORMALS)
            _rows_pass(data, net, buf, parts, np.int64(k), count, order, start, nb)
            set_mxcsr(saved)
        if not _step_loss(parts.losses, nb, buf.progress):
            return s
        rate = learning_rates[s - first]
        ahead = data.sparse and s + 1 < last
        for k in prange(count):
            saved = mxcsr()
            set_mxcsr(saved | FLUSH_SUBNORMALS)
            _weights_pass(data, net, opt, buf, parts, np.int64(k), count, rate, rows)
            if ahead:  # the next step's phase 0 reads only the block of W0 this part has just updated
                first_layer_pass(data, net, parts, np.int64(k), count, _batch(order, s + 1, batch_size, n))
            set_mxcsr(saved)
        _step_done(s, nb, parts.hits, buf.progress)
    return -1


@kernel
def _batch(order, s, batch_size, n):
    """The rows of step s: order[s * batch_size : (s + 1) * batch_size], the last batch shorter."""
    start = s * batch_size
    return order[start : min(start + batch_size, n)]


train_steps = kernel(_steps, name="train_steps")
train_steps_parallel = kernel(_steps, name="train_steps_parallel", parallel=True)


@kernel
def _rows_pass(data, net, buf, parts, part, count, order, start, nb):
    """Phase 1 for part ``part`` of ``count`` (module doc): its rows' forward, loss and backward,
    their share of the weight and bias gradients; the rows' loss sum and hits in parts."""
    lo, hi = nb * part // count, nb * (part + 1) // count
    params, layout, alpha, outs, deltas = net.params, net.layout, net.alpha, buf.outs, buf.deltas
    grads, bias_sums = parts.grads[part], parts.bias_sums[part]
    rows = order[start + lo : start + hi]
    yb = buf.ybuf[lo:hi]
    for i in range(hi - lo):
        yb[i] = data.labels[rows[i]]
    xb = buf.xbuf[lo:hi]
    layers = layout.shape[0]
    for layer in range(layers):
        d_in, d_out, act = layout[layer, D_IN], layout[layer, D_OUT], layout[layer, ACT]
        w = _view2(params, layout[layer, W_OFFSET], d_in, d_out)
        b = params[layout[layer, B_OFFSET] : layout[layer, B_OFFSET] + d_out]
        y = _view2(outs, layout[layer, OUT_OFFSET], nb, d_out)[lo:hi]
        if layer > 0:
            np.dot(_view2(outs, layout[layer - 1, OUT_OFFSET], nb, d_in)[lo:hi], w, y)
        elif data.sparse:
            add_parts(y, lo, nb, parts, count, data.background)
        else:
            _gather(data.x, data.labels, order, start + lo, hi - lo, xb, yb)
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
        elif not data.sparse:  # a sparse first layer's weight gradient waits for the weights phase
            np.dot(xb.T, dz, dw)
    parts.losses[part] = loss
    parts.hits[part] = correct


@kernel
def _update(opt, p, g, slot1, slot2, lr_t, weight_decay):
    hyper = opt.hyper
    if opt.rule == ADAM:
        adam_update(p, g, slot1, slot2, lr_t, hyper[ONE_MINUS_BETA1], hyper[ONE_MINUS_BETA2], hyper[EPSILON],
                    weight_decay)
    elif opt.rule == MOMENTUM:
        momentum_update(p, g, slot1, lr_t, hyper[MOMENTUM_COEF], weight_decay)
    else:
        sgd_update(p, g, lr_t, weight_decay)


@kernel
def _weights_pass(data, net, opt, buf, parts, part, count, lr_t, rows):
    """Phase 2 for part ``part`` of ``count`` (module doc), for the batch's ``rows``. The weight
    gradients are summed into buf.grads, or with one part used where they are (parts.grads[0],
    which may be buf.grads); a sparse first layer's are computed into buf.grads."""
    params, layout, grads, part_grads = net.params, net.layout, buf.grads, parts.grads
    slot1, slot2, bias_sums = opt.slot1, opt.slot2, parts.bias_sums
    for layer in range(layout.shape[0]):
        fan_in, fan_out = layout[layer, D_IN], layout[layer, D_OUT]
        w_at, b_at = layout[layer, W_OFFSET], layout[layer, B_OFFSET]
        k_lo, k_hi = fan_in * part // count, fan_in * (part + 1) // count
        if layer == 0 and data.sparse:
            k_lo, k_hi = parts.blocks[part], parts.blocks[part + 1]
        lo, hi = w_at + k_lo * fan_out, w_at + k_hi * fan_out
        total = part_grads[0, lo:hi]
        if layer == 0 and data.sparse:
            total = grads[lo:hi]
            dz_sums = parts.sums[part, :fan_out]
            for j in range(fan_out):  # colsum(dz) over the batch: the bias gradient
                db = 0.0
                for p in range(count):
                    db += bias_sums[p, 0, j]
                dz_sums[j] = db
            dz = _view2(buf.deltas, layout[0, OUT_OFFSET], rows.size, fan_out)
            block_weight_grad(data.indices, data.values, parts.spans[part, : rows.size], k_lo, dz,
                              data.background, dz_sums, total.reshape((k_hi - k_lo, fan_out)))
        elif count > 1:
            total = grads[lo:hi]
            first = part_grads[0, lo:hi]
            for i in range(total.size):  # not total[:] = first: its shape check compiles string code (3 s)
                total[i] = first[i]
            for p in range(1, count):
                share = part_grads[p, lo:hi]
                for i in range(total.size):
                    total[i] += share[i]
        _update(opt, params[lo:hi], total, slot1[lo:hi], slot2[lo:hi], lr_t, opt.hyper[WEIGHT_DECAY])
        if layer % count == part:
            for j in range(fan_out):
                db = 0.0
                for p in range(count):
                    db += bias_sums[p, layer, j]
                grads[b_at + j] = db
            end = b_at + fan_out
            _update(opt, params[b_at:end], grads[b_at:end], slot1[b_at:end], slot2[b_at:end], lr_t,
                    opt.hyper[BIAS_DECAY])


@kernel
def _step_loss(losses, nb, progress):
    """Between the phases: the step's mean loss into progress[LAST_LOSS]; False if not finite."""
    loss = losses.sum() / nb
    progress[LAST_LOSS] = loss
    return math.isfinite(loss)


@kernel
def _step_done(s, nb, hits, progress):
    progress[STEPS_DONE] = s + 1
    progress[LOSS_SUM] += progress[LAST_LOSS] * nb
    progress[CORRECT] += hits.sum()
