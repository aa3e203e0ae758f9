"""``digits augment --show sheet.png``: what an augmentation recipe does to digits, as a PNG grid."""

from __future__ import annotations

from pathlib import Path

import click

from tinygrad_digits import registry

from . import folder_options as folders
from . import options as opt
from .output import echo, emit_json


@click.command()
@click.option("--show", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG to write: one row per digit, the original first, then augmented copies.")
@click.option("--augment", "name", type=click.Choice([a for a in registry.AUGMENTATIONS if a != "none"]),
              default="realistic", show_default=True, help="The recipe to show (as in digits train --augment).")
@click.option("--count", type=click.IntRange(1, 100), default=10, show_default=True,
              help="How many digits (rows) to show.")
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="Take the digits from a folder of labelled images, DIR/<digit>/* (default: MNIST's test set).")
@folders.skip_bad_option
@opt.data_option
@click.option("--seed", type=click.IntRange(0, opt.MAX_SEED), default=0, show_default=True,
              help="Seed of the random transforms.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (recipe, rows, file) on stdout.")
def augment(show, name, count, images, skip_bad, data, seed, as_json):
    """Draw a grid of digits beside augmented copies of them (e.g. digits augment --show sheet.png)."""
    import numpy as np

    from tinygrad_digits.apps.preprocess import contact_sheet
    from tinygrad_digits.augment import augment_batch, augmentation

    opt.check_paths({"--show": show})
    if images is not None:
        folder = folders.load_images_option(images, "--images", skip_bad)
        x, labels = folder.images, folder.labels
    else:
        splits = opt.load_data(data, 0, as_json)
        x, labels = splits.x_test, splits.y_test
    x, labels = x[:count], labels[:count]
    copies = 9  # ten columns: the original, then its copies
    augmented = augment_batch(augmentation(name), np.repeat(x, copies, axis=0), np.random.default_rng(seed))
    inputs, captions = [], []
    for row, (image, label) in enumerate(zip(x, labels)):
        inputs += [image, *augmented[row * copies:(row + 1) * copies]]
        captions += [f"{label} original", *[""] * copies]
    from tinygrad_digits.outputs import write_atomically

    write_atomically(show, lambda f: contact_sheet(inputs, captions, scale=3).save(f, format="PNG"))
    if as_json:
        emit_json({"augment": name, "recipe": augmentation(name).to_json(), "rows": len(x), "copies": copies,
                   "show": str(show)})
        return
    echo(f"{len(x)} digits and {copies} '{name}' copies of each saved to {show}", as_json)
