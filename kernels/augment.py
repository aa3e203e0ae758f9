"""Image augmentation: each image resampled bilinearly through its own affine map and smooth
displacement field.

Images are rows of ``images`` (n, side * side), row-major pixels. Output pixel (r, c) of image
i reads the input at

    (r', c') = A_i @ (r - m, c - m) + (m, m) + t_i + d_i(r, c),   m = (side - 1) / 2,

with A_i = ``matrices[i]`` (2, 2) (rotation and scaling about the centre), t_i = ``offsets[i]``
(2,) (a shift in pixels, row then column) and d_i the displacement field interpolated from the
control points ``fields[i]`` (2, g, g) (row and column displacements on a g x g grid spanning
the image; g = 0 for none) with smoothstep weights, which make the field smooth (C1) across
the grid lines. Pixels outside the image read as ``fill``. A zero transform (A = I, t = 0,
d = 0) reads every pixel exactly where it is: the identity.

Compiled with ``nogil``: a caller may warp parts of a batch on several threads at once.
"""

import math

import numpy as np

from ._jit import kernel


@kernel
def _smoothstep(t):
    return t * t * (3.0 - 2.0 * t)


@kernel
def _grid_weights(side, g):
    """For each pixel coordinate: the lower control point (0 .. g - 2) and the smoothstep
    weight of the upper one, with control points every (side - 1) / (g - 1) pixels."""
    lower = np.zeros(side, dtype=np.int64)
    weight = np.zeros(side, dtype=np.float64)
    if g >= 2:
        cell = (side - 1) / (g - 1)
        for r in range(side):
            u = r / cell
            i = min(int(math.floor(u)), g - 2)
            lower[r] = i
            weight[r] = _smoothstep(u - i)
    return lower, weight


@kernel
def _pixel(image, side, r, c, fill):
    if r < 0 or r >= side or c < 0 or c >= side:
        return fill
    return image[r * side + c]


@kernel(nogil=True)
def warp(images, out, side, matrices, offsets, fields, fill):
    """Write the warped images into out (n, side * side), of the images' dtype (see above).

    matrices (n, 2, 2), offsets (n, 2) and fields (n, 2, g, g) are float64; g is 0 or >= 2.
    """
    n = images.shape[0]
    g = fields.shape[2]
    centre = (side - 1) / 2.0
    lower, weight = _grid_weights(side, g)
    # the field is separable: interpolate each control row along the columns once per image
    # (rows[axis, i, c]), then every pixel mixes two of those rows
    rows = np.zeros((2, max(g, 1), side))
    for k in range(n):
        image = images[k]
        a00, a01 = matrices[k, 0, 0], matrices[k, 0, 1]
        a10, a11 = matrices[k, 1, 0], matrices[k, 1, 1]
        if g >= 2:
            for axis in range(2):
                for i in range(g):
                    for c in range(side):
                        j, b = lower[c], weight[c]
                        rows[axis, i, c] = fields[k, axis, i, j] * (1.0 - b) + fields[k, axis, i, j + 1] * b
        for r in range(side):
            i, a = lower[r], weight[r]
            dr = r - centre
            for c in range(side):
                dc = c - centre
                sr = a00 * dr + a01 * dc + centre + offsets[k, 0]
                sc = a10 * dr + a11 * dc + centre + offsets[k, 1]
                if g >= 2:
                    sr += rows[0, i, c] * (1.0 - a) + rows[0, i + 1, c] * a
                    sc += rows[1, i, c] * (1.0 - a) + rows[1, i + 1, c] * a
                r0 = int(math.floor(sr))
                c0 = int(math.floor(sc))
                fr = sr - r0
                fc = sc - c0
                if r0 >= 0 and c0 >= 0 and r0 + 1 < side and c0 + 1 < side:
                    at = r0 * side + c0
                    p00, p01 = image[at], image[at + 1]
                    p10, p11 = image[at + side], image[at + side + 1]
                else:
                    p00 = _pixel(image, side, r0, c0, fill)
                    p01 = _pixel(image, side, r0, c0 + 1, fill)
                    p10 = _pixel(image, side, r0 + 1, c0, fill)
                    p11 = _pixel(image, side, r0 + 1, c0 + 1, fill)
                value = (p00 * (1.0 - fc) + p01 * fc) * (1.0 - fr) + (p10 * (1.0 - fc) + p11 * fc) * fr
                out[k, r * side + c] = value
    return out
