"""Options of image folders (--images, --extra-images, --skip-bad) and of fine-tuning (--from),
for train, evaluate and augment. Nothing heavy is imported at module level."""

from __future__ import annotations

from pathlib import Path

import click

from .options import _stack
from .output import echo

skip_bad_option = click.option(
    "--skip-bad", is_flag=True,
    help="Leave out image files that cannot be read (counted and reported) instead of stopping at the first.")


def load_images_option(folder, option: str, skip_bad: bool):
    """The ImageFolder of an --images/--extra-images DIR; a usage error naming the option when the
    folder is not one of digit folders or holds no image with ink (a bad file: a one-line error)."""
    from tinygrad_digits.apps.image_folders import ImageError, load_image_folder, list_image_folder

    try:
        list_image_folder(folder)
    except ImageError as e:
        raise click.BadParameter(str(e), param_hint=option) from None
    loaded = load_image_folder(folder, skip_bad=skip_bad)
    if not len(loaded):
        raise click.BadParameter(f"{loaded.summary()}: no image with ink to use", param_hint=option)
    return loaded


extra_images_options = _stack(
    click.option("--extra-images", type=click.Path(path_type=Path), default=None,
                 help="Add a folder of labelled images, DIR/<digit>/* (the layout digits draw saves), to the "
                      "training set; a fifth of them (at least 1 from 5) is held out and scored every epoch."),
    click.option("--extra-weight", type=click.IntRange(min=1), default=30, show_default=True,
                 help="Each extra image is repeated this many times: 40 drawings then weigh as 1,200 of the "
                      "48,000 MNIST images, enough to move the answers, too few to crowd out MNIST."),
    skip_bad_option,
    click.option("--from", "from_model", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Fine-tune this saved model (any architecture) instead of a new one: a fresh optimizer, "
                      "3 epochs and a lower learning rate by default; saved as <name>-tuned.npz unless --out."),
)

# the options that define a new network: given with --from, they would contradict the file
ARCHITECTURE_OPTIONS = ("hidden", "act", "alpha", "init", "dropout", "preset", "conv", "batch_norm")


def _given(ctx: click.Context, name: str) -> bool:
    from click.core import ParameterSource

    return name in ctx.params and ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def fine_tune_start(ctx: click.Context, from_model):
    """The finetune.Start of --from (None without it); a usage error when an architecture option
    is given with it, a one-line error for a bad model file."""
    if from_model is None:
        return None
    given = [f"--{name.replace('_', '-')}" for name in ARCHITECTURE_OPTIONS if _given(ctx, name)]
    if given:
        raise click.UsageError(f"--from keeps the architecture of {from_model}; leave out {', '.join(given)}")
    from tinygrad_digits.apps.finetune import Start

    return Start.load(from_model)


def fine_tune_run(ctx: click.Context, run, start):
    """The run with fine-tuning's defaults for the epochs and the learning rate, unless given."""
    from dataclasses import replace

    from tinygrad_digits.apps import finetune

    from tinygrad_digits.model import ModelSpec

    changes = {}
    if isinstance(start.model, ModelSpec):  # for the record: the architecture trained
        m = start.model
        changes["spec_args"] = {"hidden": m.hidden, "activations": m.activations, "alpha": m.alpha,
                                "dropout": m.dropout, **({"conv": m.conv} if getattr(m, "conv", ()) else {}),
                                **({"batch_norm": True} if m.batch_norm else {})}
    if not _given(ctx, "epochs"):
        changes["epochs"] = finetune.FINE_TUNE_EPOCHS
    if not _given(ctx, "lr"):
        changes["learning_rate"] = finetune.FINE_TUNE_LR[run.optimizer]
    return replace(run, **changes)


def extra_images(ctx: click.Context, folder, weight: int, skip_bad: bool, seed: int, as_json: bool):
    """The finetune.ExtraImages of --extra-images (None without it), its summary on stderr."""
    if folder is None:
        if _given(ctx, "extra_weight"):
            raise click.UsageError("--extra-weight weighs the images of --extra-images: give that folder too")
        return None
    from tinygrad_digits.apps import finetune

    loaded = load_images_option(folder, "--extra-images", skip_bad)
    extra = finetune.extra_images(loaded, weight, seed)
    echo(f"extra images {loaded.summary()}; {len(extra.y_train)} join the training set x{weight}, "
         f"{len(extra.y_held)} held out", as_json)
    return extra
