"""In-place optimizer updates over flat (1-D, contiguous) views of one parameter and its state.

The formulas are Keras's (so the Keras twin can match step for step). ``weight_decay`` adds
the L2 gradient weight_decay * p before the update (pass 0 for biases). Every scalar must
come in the parameter's dtype: a float64 scalar would promote the whole loop to float64.
Compiled with ``nogil``: a caller may update parts of a parameter on several threads at once.
"""

import numpy as np

from ._jit import kernel


@kernel(nogil=True)
def sgd_update(p, g, learning_rate, weight_decay):
    """p -= lr * (g + wd * p)."""
    for i in range(p.size):
        p[i] -= learning_rate * (g[i] + weight_decay * p[i])


@kernel(nogil=True)
def momentum_update(p, g, velocity, learning_rate, momentum, weight_decay):
    """velocity = momentum * velocity - lr * grad; p += velocity."""
    for i in range(p.size):
        velocity[i] = momentum * velocity[i] - learning_rate * (g[i] + weight_decay * p[i])
        p[i] += velocity[i]


@kernel(nogil=True, noalias=True)
def adam_update(p, g, m, v, lr_t, one_minus_beta1, one_minus_beta2, epsilon, weight_decay):
    """Adam with the bias-corrected rate lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t):
    m += (grad - m)(1 - beta1); v += (grad^2 - v)(1 - beta2); p -= lr_t m / (sqrt(v) + eps).
    p, g, m and v share no memory (noalias, _jit.py)."""
    for i in range(p.size):
        grad = g[i] + weight_decay * p[i]
        m[i] += (grad - m[i]) * one_minus_beta1
        v[i] += (grad * grad - v[i]) * one_minus_beta2
        p[i] -= lr_t * m[i] / (np.sqrt(v[i]) + epsilon)
