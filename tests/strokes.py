"""Digits as a person draws them on the 280x280 canvas, in canvas pixels: shared by the
windowless drawing and recognition tests and the real GUI test, so all draw the same strokes."""

from __future__ import annotations

import math


def along(*corners, step=8.0):
    """Points every ``step`` px along the polyline through ``corners``."""
    points = [corners[0]]
    for a, b in zip(corners[:-1], corners[1:]):
        n = max(1, math.ceil(math.dist(a, b) / step))
        points += [(a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n) for i in range(1, n + 1)]
    return points


def ellipse(cx, cy, rx, ry, n=48):
    """Points once round an ellipse and a little over, as a hand closes a 0."""
    angles = [2 * math.pi * i / n for i in range(n + 3)]
    return [(cx + rx * math.sin(a), cy - ry * math.cos(a)) for a in angles]


DIGITS = {
    1: along((150, 45), (132, 235)),
    0: ellipse(140, 140, 62, 95),
    7: along((82, 55), (198, 55), (118, 235)),
}


def stroke(sketch, points) -> list[list[tuple[float, float]]]:
    """Draw ``points`` into a ``drawing.Sketch`` as one stroke (press, moves, release); returns
    the polylines each event gave."""
    pieces = [sketch.begin(*points[0])]
    pieces += [sketch.extend(*p) for p in points[1:]]
    pieces.append(sketch.end())
    return pieces
