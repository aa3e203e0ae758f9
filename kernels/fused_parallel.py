"""fused.train_steps with each step's two phases split across Numba's threads (prange).

The phases and every argument are fused.py's (see its module doc); ``parts = losses.size``
threads share each step. Every part calls np.dot on its share, so BLAS must be held to one thread
while this runs (the caller does it): its threads and ours would otherwise fight over the cores.
"""

import numpy as np
from numba import njit, prange

from .floatenv import FLUSH_SUBNORMALS, mxcsr, set_mxcsr
from .fused import _rows_pass, _step_done, _step_loss, _weights_pass


@njit(cache=True, error_model="numpy", parallel=True)
def train_steps(x, labels, order, batch_size, first, last, params, layout, alpha, rule, learning_rates, hyper,
                slot1, slot2, grads, outs, deltas, xbuf, ybuf, progress, part_grads, bias_sums, losses, hits,
                sparse, indptr, indices, values, background, scratch, c_ptr, c_rows, c_values):
    """fused.train_steps over ``losses.size`` threads: the same arguments and returns. The loop is
    fused._serial_steps with prange for range, and the float environment set in each thread."""
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
                x, labels, order, start, nb * part // parts, nb * (part + 1) // parts, nb, params, layout, alpha,
                outs, deltas, xbuf, ybuf, part_grads[part], bias_sums[part], sparse, indptr, indices, values,
                background, scratch[part], c_ptr[part], c_rows[part], c_values[part])
            losses[part] = loss_sum
            hits[part] = correct
            set_mxcsr(saved)
        if not _step_loss(losses, nb, progress):
            return s
        for k in prange(parts):
            part = np.int64(k)
            saved = mxcsr()
            set_mxcsr(saved | FLUSH_SUBNORMALS)
            _weights_pass(part, parts, params, layout, rule, learning_rates[s - first], hyper, slot1, slot2, grads,
                          part_grads, bias_sums)
            set_mxcsr(saved)
        _step_done(s, nb, hits, progress)
    return -1
