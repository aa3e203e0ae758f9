"""``digits predict``: classify image files (photos, scans, drawings) with a trained model."""

from __future__ import annotations

from pathlib import Path

import click

from .options import announce_compile
from .output import echo, emit_json


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
    from tinygrad_digits import recognize

    recognizer = recognize.Recognizer.load(model)
    announce_compile(as_json)
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
