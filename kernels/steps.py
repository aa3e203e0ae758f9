"""The training kernels: many mini-batch steps per call, in one thread or split over several.

A step is fused.py's two phases (``_rows_pass`` then ``_weights_pass``, see its module doc) over
``parts = losses.size`` parts. ``train_steps`` runs them in the calling thread (one part: the
arithmetic of the general path, to the bit, with a dense first layer); ``train_steps_parallel``
runs each phase's parts over Numba's threads (prange). Every part calls np.dot on its share, so
BLAS must be held to one thread while the parallel kernel runs (the caller does it): its
threads and ours would otherwise fight over the cores.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .floatenv import FLUSH_SUBNORMALS, mxcsr, set_mxcsr
from .fused import _rows_pass, _step_done, _step_loss, _weights_pass


@kernel
def train_steps(x, labels, order, batch_size, first, last, params, layout, alpha, rule, learning_rates, hyper,
                slot1, slot2, grads, outs, deltas, xbuf, ybuf, progress, part_grads, bias_sums, losses, hits,
                sparse, indptr, indices, values, background, scratch, c_ptr, c_rows, c_values):
    """Run steps ``first`` .. ``last - 1`` of an epoch in one thread, in place on params and slots.

    x (n, d_in) and labels (n,) int64 are the training set; step s trains on the rows
    ``order[s * batch_size : (s + 1) * batch_size]``. ``learning_rates`` (last - first,) holds
    each step's rate in the params' dtype (Adam's already bias-corrected); ``hyper`` (6,) is
    (1 - beta1, 1 - beta2, epsilon, momentum, weight_decay, 0) in that dtype. ``rule`` is SGD,
    MOMENTUM or ADAM; slot1 is Adam's m or momentum's velocity, slot2 Adam's v (an empty array
    when the rule does not use it). After each step ``progress`` (4,) float64 holds (steps done
    in the epoch, sum of loss * rows, correct predictions, the last loss).

    Scratch: grads (P,); outs and deltas; xbuf (batch_size, d_in) and ybuf (batch_size,) int64;
    then, each with a leading axis of ``parts = losses.size``: part_grads (parts, P) (here
    grads[None] saves a buffer), bias_sums (parts, layers, max d_out) float64, losses float64, hits
    int64, scratch (parts, max d_out), c_ptr (parts, d_in + 1) int64, c_rows (parts, rows *
    d_in) int64 and c_values (parts, rows * d_in), where rows = ceil(batch_size / parts).
    ``sparse`` (bool): read the first layer's inputs from the CSR arrays (empty ones otherwise).

    Returns -1, or the step whose loss was not finite: that step left the params untouched.
    Subnormal values are flushed to zero meanwhile (see floatenv.py).
    """
    saved = mxcsr()
    set_mxcsr(saved | FLUSH_SUBNORMALS)
    failed = _serial_steps(x, labels, order, batch_size, first, last, params, layout, alpha, rule,
                           learning_rates, hyper, slot1, slot2, grads, outs, deltas, xbuf, ybuf, progress,
                           part_grads, bias_sums, losses, hits, sparse, indptr, indices, values, background,
                           scratch, c_ptr, c_rows, c_values)
    set_mxcsr(saved)
    return failed


@kernel
def _serial_steps(x, labels, order, batch_size, first, last, params, layout, alpha, rule, learning_rates,
                  hyper, slot1, slot2, grads, outs, deltas, xbuf, ybuf, progress, part_grads, bias_sums,
                  losses, hits, sparse, indptr, indices, values, background, scratch, c_ptr, c_rows,
                  c_values):
    # train_steps_parallel with range for prange: keep the two alike
    n = labels.shape[0]
    parts = losses.size
    for s in range(first, last):
        start = s * batch_size
        nb = min(batch_size, n - start)
        for k in range(parts):
            part = np.int64(k)
            loss_sum, correct = _rows_pass(
                x, labels, order, start, nb * part // parts, nb * (part + 1) // parts, nb, params, layout,
                alpha, outs, deltas, xbuf, ybuf, part_grads[part], bias_sums[part], sparse, indptr, indices,
                values, background, scratch[part], c_ptr[part], c_rows[part], c_values[part])
            losses[part] = loss_sum
            hits[part] = correct
        if not _step_loss(losses, nb, progress):
            return s
        for k in range(parts):
            part = np.int64(k)
            _weights_pass(part, parts, params, layout, rule, learning_rates[s - first], hyper, slot1, slot2,
                          grads, part_grads, bias_sums)
        _step_done(s, nb, hits, progress)
    return -1


@kernel(parallel=True)
def train_steps_parallel(x, labels, order, batch_size, first, last, params, layout, alpha, rule,
                         learning_rates, hyper, slot1, slot2, grads, outs, deltas, xbuf, ybuf, progress,
                         part_grads, bias_sums, losses, hits, sparse, indptr, indices, values, background,
                         scratch, c_ptr, c_rows, c_values):
    """train_steps over ``losses.size`` threads: the same arguments and returns. The loop is
    _serial_steps's with prange for range, and the float environment set in each thread."""
    n = labels.shape[0]
    parts = losses.size
    for s in range(first, last):
        start = s * batch_size
        nb = min(batch_size, n - start)
        for k in prange(parts):
            part = np.int64(k)
            saved = mxcsr()  # each thread has its own float environment: flush subnormals (floatenv.py)
            set_mxcsr(saved | FLUSH_SUBNORMALS)
            loss_sum, correct = _rows_pass(
                x, labels, order, start, nb * part // parts, nb * (part + 1) // parts, nb, params, layout,
                alpha, outs, deltas, xbuf, ybuf, part_grads[part], bias_sums[part], sparse, indptr, indices,
                values, background, scratch[part], c_ptr[part], c_rows[part], c_values[part])
            losses[part] = loss_sum
            hits[part] = correct
            set_mxcsr(saved)
        if not _step_loss(losses, nb, progress):
            return s
        for k in prange(parts):
            part = np.int64(k)
            saved = mxcsr()
            set_mxcsr(saved | FLUSH_SUBNORMALS)
            _weights_pass(part, parts, params, layout, rule, learning_rates[s - first], hyper, slot1, slot2,
                          grads, part_grads, bias_sums)
            set_mxcsr(saved)
        _step_done(s, nb, hits, progress)
    return -1
