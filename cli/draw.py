"""``digits draw``: draw digits with the mouse and watch the network read them live.

A thin Tk view over the library: a ``drawing.Sketch`` records the strokes (mirrored into an
off-screen Pillow image, never grabbed from the screen) and a ``recognize.Recognizer`` reads them.
tkinter is imported inside the command, so ``digits --help`` works without Tk or a display.

What the window shows is also exposed for tests and scripts: the title reads
``digits draw — 7 (98%)`` after each stroke (``digits draw`` when the canvas is empty), and the
hidden ``--state-file`` option rewrites a JSON file after every change.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

class DisplayError(click.ClickException):
    """No display or no Tk: one line saying what to set or install, exit status 2."""

    exit_code = 2



@click.command()
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to use (default: the most recently trained model; "
                   "the window can pick another).")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None, hidden=True,
              help="Rewrite this JSON file with what the window shows after every change (for tests).")
@click.option("--train-size", type=click.IntRange(min=1), default=None, hidden=True,
              help="Train offered models, and learn, on the first N MNIST images only (for tests).")
def draw(model, state_file, train_size):
    """Draw a digit and watch the network read it live (Esc clears, 0-9 saves it labelled, L learns
    from the saved drawings, M switches models)."""
    from tinygrad_digits.apps import recognize

    from .draw_window import DrawWindow, warm_up

    recognizer = recognize.Recognizer.load(model) if model is not None else None  # a bad file: exit 1
    tk, root = open_tk()
    if recognizer is None:
        try:
            recognizer = recognize.Recognizer.load(None)
        except FileNotFoundError:
            recognizer = None  # the window offers to train the default model
    if recognizer is not None:
        warm_up(recognizer)
    DrawWindow(tk, root, recognizer, state_file=state_file, train_size=train_size)
    root.mainloop()


def open_tk():
    """(tkinter, its root window), or DisplayError saying what to install or set."""
    if os.name == "posix" and sys.platform != "darwin" and not os.environ.get("DISPLAY"):
        raise DisplayError("no display: set DISPLAY or run under Xvfb (e.g. xvfb-run digits draw)")
    try:
        import tkinter
    except ImportError:
        raise DisplayError(
            "Tk is missing: install python3-tk (Debian/Ubuntu), python3-tkinter (Fedora) "
            "or a Python built with Tk"
        ) from None
    try:
        root = tkinter.Tk(className="digits")
    except tkinter.TclError as e:
        reason = (str(e).splitlines() or ["Tk failed"])[0]
        raise DisplayError(f"cannot open the display ({reason}): set DISPLAY or run under Xvfb") from None
    return tkinter, root
