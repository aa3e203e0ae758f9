"""A plain NumPy MLP as a careful user writes it: float32, a gather per batch, ``@``, Adam in a few
expressions. numpy_reference.py must be at least as fast (``digits bench`` times both)."""

import math

import numpy as np

F = np.float32


def adam_step(layers, m, v, grads, t, lr, b1=0.9, b2=0.999, eps=1e-7):
    lr_t = F(lr * math.sqrt(1 - b2**t) / (1 - b1**t))
    for params, ms, vs, gs in zip(layers, m, v, grads):
        for p, mi, vi, g in zip(params, ms, vs, gs):
            mi += (g - mi) * F(1 - b1)
            vi += (g * g - vi) * F(1 - b2)
            p -= lr_t * mi / (np.sqrt(vi) + F(eps))


def step(layers, m, v, x, y, t, lr):
    """One Adam step of a ReLU MLP (layers: [(W, b)]) with softmax cross-entropy; the mean loss."""
    hs = [x]
    for w, b in layers[:-1]:
        hs.append(np.maximum(hs[-1] @ w + b, F(0)))
    logits = hs[-1] @ layers[-1][0] + layers[-1][1]
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    total = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(np.mean(np.log(total[:, 0]) - logits[rows, y]))
    d = e / total
    d[rows, y] -= F(1)
    d /= F(len(y))
    grads = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        grads[i] = (hs[i].T @ d, d.sum(axis=0))
        if i:
            d = (d @ layers[i][0].T) * (hs[i] > 0)
    adam_step(layers, m, v, grads, t, lr)
    return loss
