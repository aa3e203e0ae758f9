"""Drawings without a screen: strokes with a round brush, the ink map, and saving labelled PNGs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strokes import DIGITS, stroke

from tinygrad_digits.apps.drawing import STEP, Sketch, save_drawing


# ---- the drawing ---------------------------------------------------------------------------
def test_a_stroke_becomes_ink_where_it_was_drawn_and_nowhere_else():
    sketch = Sketch()
    stroke(sketch, [(40, 100), (240, 100)])  # two events 200 px apart: one straight line
    ink = sketch.ink(1)
    assert ink.shape == (280, 280) and ink.dtype == np.float32 and set(np.unique(ink)) == {0.0, 1.0}
    assert ink[100, 40:241].min() == 1  # every pixel between the events, not just at them
    half = sketch.brush / 2
    assert ink[100 - int(half) + 2, 140] == 1 and ink[100 + int(half) - 2, 140] == 1
    assert ink[: 100 - math.ceil(half) - 1].max() == 0 and ink[100 + math.ceil(half) + 1 :].max() == 0
    assert ink[:, : 40 - math.ceil(half) - 1].max() == 0  # a round cap, no further
    assert sketch.strokes == [[(40.0, 100.0), (240.0, 100.0)]] and not sketch.drawing


def test_the_brush_is_round():
    sketch = Sketch()
    stroke(sketch, [(140, 140)])  # a click: a dot
    ink = sketch.ink(1)
    rows, cols = np.nonzero(ink)
    assert ink.sum() == pytest.approx(math.pi * (sketch.brush / 2) ** 2, rel=0.12)
    assert rows.max() - rows.min() == cols.max() - cols.min()
    assert np.array_equal(ink, ink.T) and np.array_equal(ink, ink[::-1, ::-1])


def test_lines_between_events_are_smooth_and_connected():
    sketch = Sketch()
    events = [(40, 200), (90, 60), (140, 200), (190, 60), (240, 200)]  # a sharp zigzag
    pieces = [p for p in stroke(sketch, events) if p]  # a dot, a line, three curves, a line
    assert [len(p) > 2 for p in pieces] == [False, False, True, True, True, False]
    for before, after in zip(pieces, pieces[1:]):
        assert after[0] == before[-1]  # each polyline starts where the last one ended
    path = [q for piece in pieces for q in piece]
    assert path[0] == events[0] and path[-1] == events[-1]
    steps = [math.dist(a, b) for a, b in zip(path, path[1:]) if a != b]
    assert max(steps) <= 80  # the first and last half-segments are straight; curves are short steps
    curve = [math.dist(a, b) for piece in pieces[2:-1] for a, b in zip(piece, piece[1:])]
    assert max(curve) <= STEP + 1e-9
    # the curve rounds the corners: it passes through the midpoints, never through the middle events
    assert (115, 130) in path and (140, 200) not in path
    ink = sketch.ink(1)
    assert ink[130, 115] == 1 and ink[200, 140] == 0


def test_clear_empties_the_drawing():
    sketch = Sketch()
    stroke(sketch, DIGITS[7])
    assert not sketch.empty and sketch.ink().sum() > 0
    sketch.clear()
    assert sketch.empty and sketch.strokes == [] and sketch.ink().max() == 0
    assert sketch.extend(10, 10) == [(10.0, 10.0)]  # a move without a press starts a stroke
    sketch.begin(20, 20)  # a press during a stroke finishes the old one
    assert len(sketch.strokes) == 2 and sketch.drawing


def test_the_ink_map_is_read_at_half_resolution():
    sketch = Sketch()
    stroke(sketch, DIGITS[0])
    full, half = sketch.ink(1), sketch.ink()
    assert half.shape == (140, 140) and half.dtype == np.float32
    np.testing.assert_allclose(half, full.reshape(140, 2, 140, 2).mean(axis=(1, 3)), atol=1 / 255)
    with pytest.raises(ValueError, match="reduce"):
        sketch.ink(0)


@pytest.mark.parametrize("bad", [{"width": 0}, {"height": -1}, {"brush": 0}])
def test_sketch_refuses_bad_sizes(bad):
    with pytest.raises(ValueError, match="Sketch"):
        Sketch(**bad)


@pytest.mark.parametrize("label", [-1, 10, 3.0, "7", True, None])
def test_save_refuses_what_is_not_a_digit(label, tmp_path):
    sketch = Sketch()
    stroke(sketch, DIGITS[1])
    with pytest.raises(ValueError, match="0-9"):
        save_drawing(sketch, label, tmp_path)


def test_save_refuses_an_empty_drawing(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        save_drawing(Sketch(), 3, tmp_path)
    assert list(tmp_path.iterdir()) == []
