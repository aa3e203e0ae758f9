"""Inverted dropout in one pass: from the uniform draws u (the generator's, in the caller), the
mask m = scale where u >= rate, else 0, and y = x * m. x, u, y and mask are flat (1-D,
contiguous) arrays of one float dtype; rate and scale scalars of that dtype.
"""

from ._jit import kernel


@kernel
def dropout_forward(x, u, rate, scale, y, mask):
    zero = scale - scale
    for i in range(x.size):
        m = scale if u[i] >= rate else zero
        mask[i] = m
        y[i] = x[i] * m
    return y, mask
