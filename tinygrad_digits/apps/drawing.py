"""Drawings: strokes with a round brush, mirrored into an off-screen Pillow image, and saved.

A ``Sketch`` records what a person draws (canvas pixels, x right, y down) and keeps a mode "L"
image of it (0 = paper, 255 = ink), so the ``digits draw`` window is a thin view and everything
here is tested without a screen. ``Sketch.ink`` is the ink map ``recognize`` reads (float32
``(H, W)`` in ``[0, 1]``, 1 = ink); ``save_drawing`` writes a labelled PNG. Nothing here imports
tkinter, NumPy kernels or a model.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps, PngImagePlugin

from .. import paths

CANVAS = 280  # the drawing canvas, in screen pixels (10x MNIST's 28)
# A 22 px brush gives 2.2 px strokes at 28x28 for a digit drawn 200 px tall (its box becomes
# MNIST's 20 px), MNIST's typical stroke; the preprocessing thickens strokes that come out thinner.
BRUSH = 22
STEP = 3.0  # curves between pointer events are flattened into segments about this long (px)
# The canvas is read at half resolution: 140x140 is still 7x the network's 20 px digit box (the
# block average is the first step of the anti-aliasing anyway), and costs the preprocessing a
# quarter of the pixels, which keeps a live prediction within its 2 ms.
INK_REDUCE = 2


class Sketch:
    """Strokes drawn with a round brush, mirrored into an off-screen Pillow image.

    Coordinates are canvas pixels (x right, y down). Between pointer events a stroke follows a
    quadratic B-spline through the events (from midpoint to midpoint, each event the control
    point), flattened into segments of about ``STEP`` px; the segments are drawn into ``image``
    (mode "L", 0 = paper, 255 = ink) with round joins and caps, and returned so that a screen
    view draws exactly the same lines. ``strokes`` keeps the raw events of every stroke.
    """

    def __init__(self, width: int = CANVAS, height: int = CANVAS, brush: float = BRUSH):
        if width < 1 or height < 1 or not brush > 0:
            raise ValueError(
                f"Sketch: expected a positive size and brush, got {width}x{height}, brush {brush}"
            )
        self.width, self.height, self.brush = int(width), int(height), float(brush)
        self.strokes: list[list[tuple[float, float]]] = []
        self.clear()

    @property
    def empty(self) -> bool:
        return not self.strokes

    @property
    def drawing(self) -> bool:
        """True between ``begin`` and ``end``."""
        return self._drawn is not None

    def clear(self) -> None:
        """Forget every stroke; the image becomes blank paper."""
        self.image = Image.new("L", (self.width, self.height), 0)
        self._pen = ImageDraw.Draw(self.image)
        self.strokes = []
        self._drawn = None  # the last point drawn of the stroke in progress

    def begin(self, x: float, y: float) -> list[tuple[float, float]]:
        """Start a stroke at (x, y); returns the points to draw (one: a dot)."""
        if self.drawing:
            self.end()
        point = (float(x), float(y))
        self.strokes.append([point])
        self._drawn = point
        return self._draw([point])

    def extend(self, x: float, y: float) -> list[tuple[float, float]]:
        """Continue the stroke to (x, y); returns the new polyline (its first point is where the
        last one ended), or [] when the point adds nothing."""
        if not self.drawing:
            return self.begin(x, y)
        events = self.strokes[-1]
        point = (float(x), float(y))
        if point == events[-1]:
            return []
        events.append(point)
        if len(events) == 2:  # a straight start up to the first midpoint
            return self._draw(_line(self._drawn, _mid(events[0], point)))
        return self._draw(_quadratic(self._drawn, events[-2], _mid(events[-2], point)))

    def end(self) -> list[tuple[float, float]]:
        """Finish the stroke at its last event; returns the closing polyline ([] if none)."""
        if not self.drawing:
            return []
        last = self.strokes[-1][-1]
        points = self._draw(_line(self._drawn, last)) if last != self._drawn else []
        self._drawn = None
        return points

    def ink(self, reduce: int = INK_REDUCE) -> np.ndarray:
        """The drawing as an ink map: float32 ``(ceil(height / reduce), ceil(width / reduce))`` in
        [0, 1], 1 = ink, each value the mean over a ``reduce`` x ``reduce`` block of the image."""
        return drawing_ink(self.image, reduce)

    def paper_image(self) -> Image.Image:
        """The drawing as dark ink on white paper (mode "L"), as a person would save it."""
        return ImageOps.invert(self.image)

    def _draw(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        r = self.brush / 2
        if len(points) > 1:
            self._pen.line(points, fill=255, width=max(1, round(self.brush)), joint="curve")
        for x, y in points:  # round caps and joins: a disc at every vertex
            self._pen.ellipse((x - r + 0.5, y - r + 0.5, x + r - 0.5, y + r - 0.5), fill=255)
        if points:
            self._drawn = points[-1]
        return points


def drawing_ink(image: Image.Image, reduce: int = INK_REDUCE) -> np.ndarray:
    """A mode "L" drawing (0 = paper, 255 = ink) as a float32 ink map in [0, 1], averaged over
    ``reduce`` x ``reduce`` blocks (1 keeps every pixel)."""
    if isinstance(reduce, bool) or not isinstance(reduce, int) or reduce < 1:
        raise ValueError(f"drawing_ink: expected an integer reduce >= 1, got {reduce!r}")
    if reduce > 1:
        image = image.reduce(reduce)
    return np.asarray(image, dtype=np.float32) / np.float32(255)


def _mid(a, b) -> tuple[float, float]:
    return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)


def _line(a, b) -> list[tuple[float, float]]:
    return [a, b]


def _quadratic(start, control, end) -> list[tuple[float, float]]:
    """The quadratic Bezier start -> end pulled towards control, as a polyline from start."""
    length = math.dist(start, control) + math.dist(control, end)
    steps = max(1, math.ceil(length / STEP))
    out = []
    for i in range(steps + 1):
        t = i / steps
        a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t * t
        out.append((a * start[0] + b * control[0] + c * end[0], a * start[1] + b * control[1] + c * end[1]))
    return out


def drawings_dir() -> Path:
    """Where ``digits draw`` saves labelled drawings: ``<data home>/drawings/<digit>/``."""
    return paths.data_home() / "drawings"


def save_drawing(sketch: Sketch, label: int, folder: str | Path | None = None) -> Path:
    """Save the drawing as dark ink on white paper: ``<folder>/<label>/<label>-<time>-<n>.png``.

    ``folder`` defaults to ``drawings_dir()``. The PNG carries the label and the raw strokes as
    text chunks ("label", "strokes"), so a folder of drawings is a labelled test set of one's own
    handwriting (``digits predict`` reads it back). Never overwrites a file. Raises ValueError for
    a label outside 0-9 or an empty drawing.
    """
    if isinstance(label, bool) or not isinstance(label, int | np.integer) or not 0 <= label <= 9:
        raise ValueError(f"save_drawing: expected a digit label 0-9, got {label!r}")
    if sketch.empty:
        raise ValueError("save_drawing: the drawing is empty; draw a digit first")
    target = Path(folder) if folder is not None else drawings_dir()
    target = target / str(int(label))
    target.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("label", str(int(label)))
    info.add_text("strokes", json.dumps([[[round(x, 1), round(y, 1)] for x, y in s] for s in sketch.strokes]))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        path = target / f"{int(label)}-{stamp}-{n}.png"
        try:
            with open(path, "xb") as f:
                sketch.paper_image().save(f, format="PNG", pnginfo=info)
            return path
        except FileExistsError:
            continue
    raise OSError(f"{target}: could not find a free file name for the drawing")
