"""``digits predict``: classify image files (photos, scans, drawings) with a trained model."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import click

from .options import announce_compile, check_paths
from .output import echo, emit_json


@contextlib.contextmanager
def _quiet_native_stderr():
    """File descriptor 2 points at /dev/null inside (C libraries write there directly, past
    sys.stderr); Python's own errors are exceptions, reported after."""
    try:
        sys.stderr.flush()
        fd = sys.stderr.fileno()
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):  # no real descriptor (a test runner's stderr)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to use (default: the most recently trained model).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object with all ten probabilities per image on stdout.")
@click.option("--show-input", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save a PNG sheet of the 28x28 inputs the network saw, captioned with its answers.")
def predict(images, model, as_json, show_input):
    """Read the digit in each IMAGE (any format Pillow reads, dark-on-light or light-on-dark)."""
    from tinygrad_digits.apps import recognize

    recognizer = recognize.Recognizer.load(model)
    inputs = {"the model": recognizer.path, **{f"the image {path}": path for path in images}}
    check_paths({"--show-input": show_input}, inputs=inputs)
    announce_compile(as_json)
    with warnings.catch_warnings(), _quiet_native_stderr():
        # Pillow warns about a damaged file (corrupt EXIF in a truncated TIFF, ...), and libtiff
        # prints its complaints, before the read fails: the one Error line naming the file says
        # all there is to say
        warnings.simplefilter("ignore", UserWarning)
        predictions = recognizer.predict_files(images)  # a bad file stops us before any output
    if show_input:
        show_input.parent.mkdir(parents=True, exist_ok=True)
        recognize.input_sheet(predictions).save(show_input)
    if as_json:
        emit_json({
            "model": str(recognizer.path),
            "predictions": [{"image": str(path), **p.to_json()} for path, p in zip(images, predictions)],
            "show_input": str(show_input) if show_input else None,
        })
        return
    for path, prediction in zip(images, predictions):
        click.echo(recognize.format_prediction(str(path), prediction))
    if show_input:
        echo(f"network inputs saved to {show_input}", as_json)
