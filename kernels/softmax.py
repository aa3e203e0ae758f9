"""Softmax and the fused, numerically stable softmax cross-entropy with integer labels.

logits (n, k) float, labels (n,) integers in [0, k). Each row is shifted by its maximum before
exp, and the log-sum-exp is accumulated in float64, so no logit overflows.
"""

import math

import numpy as np

from ._jit import kernel


@kernel
def softmax(logits):
    """Row-wise probabilities (n, k), of the logits' dtype."""
    n, k = logits.shape
    probs = np.empty_like(logits)
    for i in range(n):
        top = logits[i, 0]
        for j in range(1, k):
            top = max(top, logits[i, j])
        total = 0.0
        for j in range(k):
            e = math.exp(logits[i, j] - top)
            probs[i, j] = e
            total += e
        for j in range(k):
            probs[i, j] = probs[i, j] / total
    return probs


@kernel
def _row_exps(logits, i, out):
    """Row i's exp(logits - max) into out[i], each computed once (of the logits' dtype, so
    exactly); returns (the max, the first column holding it, the exps' float64 sum)."""
    top = logits[i, 0]
    best = 0
    for j in range(1, logits.shape[1]):
        if logits[i, j] > top:
            top = logits[i, j]
            best = j
    total = 0.0
    for j in range(logits.shape[1]):
        e = math.exp(logits[i, j] - top)
        out[i, j] = e
        total += e
    return top, best, total


@kernel(noalias=True)
def softmax_cross_entropy_rows(logits, labels, dlogits, scale):
    """Some rows of a batch: dlogits (n, k) = (softmax - onehot) * scale, written into a given
    buffer; returns (the sum of the rows' losses, the correct rows). ``scale`` is 1 / the rows
    of the whole batch.

    Each exp is computed once and kept in dlogits (an exp of the logits' dtype, so exactly)
    until the row's total is known. The training kernels call this on their own buffers, which
    share no memory (noalias, _jit.py).
    """
    n, k = logits.shape
    loss = 0.0
    correct = 0
    for i in range(n):
        top, best, total = _row_exps(logits, i, dlogits)
        label = labels[i]
        loss += top + math.log(total) - logits[i, label]
        for j in range(k):
            dlogits[i, j] = dlogits[i, j] / total * scale
        dlogits[i, label] -= scale
        if best == label:
            correct += 1
    return loss, correct


@kernel
def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against labels, its gradient, and the hit count.

    Returns (loss: float, dlogits (n, k) of the logits' dtype = (softmax - onehot) / n,
    correct: int, the rows whose first maximal logit is the label).
    """
    dlogits = np.empty_like(logits)
    scale = 1.0 / logits.shape[0]
    loss, correct = softmax_cross_entropy_rows(logits, labels, dlogits, scale)
    return loss * scale, dlogits, correct


@kernel
def smoothed_cross_entropy(logits, labels, smoothing):
    """softmax_cross_entropy against labels smoothed as Keras smooths them: the target of a row
    is (1 - smoothing) * onehot + smoothing / k. Returns (mean loss, dlogits (n, k) = (softmax -
    target) / n, correct). A row's loss is sum_j target_j * (logsumexp - logits_j)."""
    n, k = logits.shape
    dlogits = np.empty_like(logits)
    scale = 1.0 / n
    off = smoothing / k
    on = 1.0 - smoothing + off
    loss = 0.0
    correct = 0
    for i in range(n):
        top, best, total = _row_exps(logits, i, dlogits)
        log_sum = top + math.log(total)
        label = labels[i]
        for j in range(k):
            target = on if j == label else off
            loss += target * (log_sum - logits[i, j])
            dlogits[i, j] = (dlogits[i, j] / total - target) * scale
        if best == label:
            correct += 1
    return loss * scale, dlogits, correct


@kernel
def labels_within(labels, k):
    """Whether every label lies in [0, k): one pass, no temporary."""
    for i in range(labels.shape[0]):
        if labels[i] < 0 or labels[i] >= k:
            return False
    return True
