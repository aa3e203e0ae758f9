"""Ink filters for augmentation: stroke thickness (grey dilation and erosion), blur, and low
resolution (scale down, then back up).

Images are rows of ``images`` (n, side * side), row-major pixels, larger values = more ink;
each filter writes ``out`` of the same shape and dtype and takes one parameter per image.
Pixels outside the image read as ``fill`` (the background). A zero parameter (amount 0,
sigma 0, size == side) copies the image unchanged. Max, min and weighted means with weights
summing to 1 commute with any increasing affine map of the pixel values, so the filters work
the same on raw [0, 1] images and on standardized ones (with the matching ``fill``).

``peak_one`` brings each image's raw peak to 1; ``tone`` changes the contrast and adds noise,
given the draws (and the gamma already applied, by NumPy). Every kernel here is compiled with
``nogil``: a caller may run parts of a batch on several threads at once.
"""

import math

import numpy as np

from ._jit import kernel


@kernel
def _morph_pass(src, dst, side, grow, fill):
    """One pass of dilation (grow) or erosion over the 3x3 cross (the pixel and its 4 neighbours)."""
    for r in range(side):
        for c in range(side):
            best = src[r * side + c]
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                v = fill if rr < 0 or rr >= side or cc < 0 or cc >= side else src[rr * side + cc]
                if (grow and v > best) or (not grow and v < best):
                    best = v
            dst[r * side + c] = best


@kernel(nogil=True)
def thickness(images, out, side, amounts, fill):
    """Thicker strokes for amount > 0, thinner for < 0: |amount| whole passes of dilation or
    erosion, the fractional part a blend towards one more pass (continuous in the amount)."""
    n = images.shape[0]
    cur = np.empty(side * side, images.dtype)
    nxt = np.empty(side * side, images.dtype)
    for k in range(n):
        a = amounts[k]
        cur[:] = images[k]
        passes = int(math.ceil(abs(a)))
        for p in range(passes):
            _morph_pass(cur, nxt, side, a > 0, fill)
            t = min(1.0, abs(a) - p)
            for i in range(side * side):
                cur[i] = cur[i] + t * (nxt[i] - cur[i])
        out[k] = cur
    return out


@kernel(nogil=True)
def blur(images, out, side, sigmas, fill):
    """A separable Gaussian blur of standard deviation sigmas[k] pixels (radius ceil(2 sigma))."""
    n = images.shape[0]
    tmp = np.empty(side * side, np.float64)
    for k in range(n):
        s = sigmas[k]
        if s <= 0:
            out[k] = images[k]
            continue
        radius = int(math.ceil(2 * s))
        weights = np.empty(2 * radius + 1)
        for d in range(-radius, radius + 1):
            weights[d + radius] = math.exp(-0.5 * d * d / (s * s))
        weights /= weights.sum()
        for r in range(side):  # along the rows
            for c in range(side):
                acc = 0.0
                for d in range(-radius, radius + 1):
                    cc = c + d
                    acc += weights[d + radius] * (images[k, r * side + cc] if 0 <= cc < side else fill)
                tmp[r * side + c] = acc
        for r in range(side):  # then along the columns
            for c in range(side):
                acc = 0.0
                for d in range(-radius, radius + 1):
                    rr = r + d
                    acc += weights[d + radius] * (tmp[rr * side + c] if 0 <= rr < side else fill)
                out[k, r * side + c] = acc
    return out


@kernel(nogil=True)
def low_resolution(images, out, side, sizes, fill):
    """Each image averaged down to sizes[k] x sizes[k] cells (a cell: the pixels whose centres it
    covers), then sampled back up bilinearly at the pixel centres (edges clamped)."""
    n = images.shape[0]
    low = np.empty((side, side), np.float64)
    count = np.empty((side, side), np.float64)
    for k in range(n):
        m = sizes[k]
        if m >= side or m < 1:
            out[k] = images[k]
            continue
        scale = side / m
        low[:m, :m] = 0.0
        count[:m, :m] = 0.0
        for r in range(side):
            i = min(int((r + 0.5) / scale), m - 1)
            for c in range(side):
                j = min(int((c + 0.5) / scale), m - 1)
                low[i, j] += images[k, r * side + c]
                count[i, j] += 1.0
        for i in range(m):
            for j in range(m):
                low[i, j] = low[i, j] / count[i, j] if count[i, j] > 0 else fill
        for r in range(side):
            u = min(max((r + 0.5) / scale - 0.5, 0.0), m - 1.0)
            i0 = min(int(u), m - 1)
            i1 = min(i0 + 1, m - 1)
            fu = u - i0
            for c in range(side):
                v = min(max((c + 0.5) / scale - 0.5, 0.0), m - 1.0)
                j0 = min(int(v), m - 1)
                j1 = min(j0 + 1, m - 1)
                fv = v - j0
                top = low[i0, j0] * (1.0 - fv) + low[i0, j1] * fv
                bottom = low[i1, j0] * (1.0 - fv) + low[i1, j1] * fv
                out[k, r * side + c] = top * (1.0 - fu) + bottom * fu
    return out


@kernel(nogil=True)
def peak_one(images, out, scale, mean, floor):
    """Raw pixel values raw = x * scale + mean, each image divided by max(its peak, floor)."""
    n, size = images.shape
    for k in range(n):
        row = out[k]
        peak = images[k, 0] * scale + mean
        for i in range(size):
            row[i] = images[k, i] * scale + mean
            if row[i] > peak:
                peak = row[i]
        peak = max(peak, floor)
        for i in range(size):
            row[i] = row[i] / peak
    return out


@kernel(nogil=True)
def tone(images, out, scale, mean, unit, raw, toned, paper, rest, powered, noisy, sigma, normals):
    """Contrast and noise, given their draws, written as (raw - mean) / scale, where raw values
    x * scale + mean have the paper at 0. All scalars and arrays in the images' dtype.

    When ``raw`` is True the images hold raw values (``peak_one``'s), and each image k with
    toned[k] >= 0 takes paper[k] + rest[k] * powered[toned[k]] (powered: its clipped pixels
    raised to its gamma; rest = 1 - paper). Then each image k with noisy[k] >= 0 takes raw +
    sigma[k] * normals[noisy[k]], clipped to [0, unit].
    """
    n, size = images.shape
    zero = unit - unit
    for k in range(n):
        t, j = toned[k], noisy[k]
        for i in range(size):
            value = images[k, i]
            if raw:
                if t >= 0:
                    value = paper[k] + rest[k] * powered[t, i]
                value = (value - mean) / scale
            if j >= 0:
                value = value * scale + mean + sigma[k] * normals[j, i]
                value = (min(max(value, zero), unit) - mean) / scale
            out[k, i] = value
    return out
