"""Options shared by the commands that build and train a network (train, compare, bench, sweep),
their parsing, and the data and kernels those commands need first. Nothing heavy is imported at
module level: the choices come from ``tinygrad_digits.registry``, which imports nothing."""

from __future__ import annotations

import math
from pathlib import Path

import click

from tinygrad_digits import registry

from .output import download_progress

MAX_SEED = 2**32 - 1  # numpy's seeds, as a model file's header records them
TRAIN_IMAGES, VALIDATION_IMAGES = 60_000, 12_000  # MNIST's training set and our validation share


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and infinity (a range check lets nan through)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number, got {value!r}", param, ctx)
        return super().convert(number, param, ctx)


def check_train_size(train_size: int | None, all_data: bool = False) -> None:
    """Usage error naming --train-size when it asks for more images than training has."""
    available = TRAIN_IMAGES if all_data else TRAIN_IMAGES - VALIDATION_IMAGES
    if train_size is not None and train_size > available:
        where = "all training images (--all-data)" if all_data else "training images (60,000 with --all-data)"
        raise click.BadParameter(f"{train_size} is more than the {available:,} {where}", param_hint="--train-size")


def check_memory(spec_args: dict, batch_size: int) -> None:
    """app.check_memory before any data loads (the input scaling does not change the sizes)."""
    from tinygrad_digits.apps import training as app
    from tinygrad_digits.model import ModelSpec

    app.check_memory(ModelSpec(**spec_args), batch_size)


def check_paths(outputs: dict, inputs: dict | None = None) -> None:
    """Usage error naming the option unless every output path (option -> path or None) can be
    written as a regular file, no two share a file, and none is one of the ``inputs``."""
    from tinygrad_digits import outputs as out_mod

    try:
        out_mod.check_outputs(outputs, inputs or {})
    except ValueError as e:
        raise click.UsageError(str(e)) from None


NONE = "none"  # --hidden none: no hidden layer; --conv none: no convolution


def _positive(part: str, option: str, expected: str, what: str) -> int:
    """int(part), or a usage error naming ``option``: ``expected`` if it is no integer, else that
    ``what`` must be positive."""
    try:
        number = int(part)
    except ValueError:
        raise click.BadParameter(expected, param_hint=option) from None
    if number <= 0:
        raise click.BadParameter(f"{what} must be positive, got {number}", param_hint=option)
    return number


def parse_hidden(values) -> tuple[int, ...]:
    """'--hidden 128 --hidden 64', '--hidden 128,64' or '--hidden 128x64' -> (128, 64);
    '--hidden none' -> () (no hidden layer: the inputs go straight to the output layer)."""
    if [str(v).strip().lower() for v in values] == [NONE]:
        return ()
    sizes = []
    for value in values:
        for part in str(value).replace("x", ",").split(","):
            part = part.strip()
            if part:
                sizes.append(_positive(part, "--hidden", f"expected positive integers or none, got {part!r}",
                                       "layer sizes"))
    if not sizes:
        raise click.BadParameter("give at least one hidden layer size", param_hint="--hidden")
    return tuple(sizes)


def parse_conv(values, inputs: int = 784) -> tuple:
    """'--conv 32,64' or '--conv 32 --conv 64' -> (32, 64): the filters of each conv block (a 3x3
    convolution with ReLU, then a 2x2 max-pool); a block of several convolutions joins their
    filters with '+': '32,64+64' -> (32, (64, 64)); '--conv none' or no option -> (). Usage error
    naming --conv for anything else, or for more blocks than fit the 28x28 images."""
    values = [str(v).strip() for v in values or ()]
    if values == [NONE] or not values:
        return ()
    blocks = []
    for value in values:
        for part in value.split(","):
            block = tuple(
                _positive(f.strip(), "--conv", f"expected filter counts like 32,64 or 32,64+64, got "
                          f"{part.strip()!r} in {value!r}", "filter counts") for f in part.split("+"))
            blocks.append(block if len(block) > 1 else block[0])
    from tinygrad_digits.model import conv_sides

    try:
        conv_sides(int(round(inputs**0.5)), blocks)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--conv") from None
    return tuple(blocks)


def parse_acts(values, layers: int) -> tuple[str, ...]:
    """'--act relu' (all layers) or one per layer, repeated or comma-separated."""
    acts = [a.strip() for value in values for a in str(value).split(",") if a.strip()]
    for a in acts:
        if a not in registry.ACTIVATIONS:
            raise click.BadParameter(
                f"unknown activation {a!r}: expected one of {', '.join(registry.ACTIVATIONS)}",
                param_hint="--act",
            )
    if len(acts) == 1:
        acts = acts * layers
    if len(acts) != layers:
        raise click.BadParameter(
            f"{len(acts)} activations for {layers} hidden layers: give one for all or one per layer",
            param_hint="--act",
        )
    return tuple(acts)


def build_spec_args(hidden, act, alpha, conv=(), batch_norm: bool = False) -> dict:
    sizes = parse_hidden(hidden)
    args = {"hidden": sizes, "activations": parse_acts(act, len(sizes)) if sizes else (), "alpha": alpha}
    filters = parse_conv(conv)
    if filters:
        args["conv"] = filters
    if batch_norm:
        args["batch_norm"] = True
    return args


def _stack(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


alpha_option = click.option("--alpha", type=FiniteFloat(min=0), default=0.1, show_default=True,
                            help="Negative slope of leaky_relu.")
init_option = click.option("--init", type=click.Choice(registry.INITS), default="auto", show_default=True,
                           help="Weight init of the dense layers: auto (He for the relu family, Glorot "
                                "otherwise), he, glorot, normal (convolutions: He, for their ReLU).")
epochs_option = click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
                             help="Passes over the training set.")
train_size_option = click.option("--train-size", type=click.IntRange(min=1), default=None,
                                 help="Train on the first N of the 48,000 training images (quick runs).")

conv_option = click.option(
    "--conv", multiple=True, default=(), metavar="FILTERS",
    help="Convolution blocks before the dense layers, filters per block (32,64): each a 3x3 "
         "convolution with ReLU, then a 2x2 max-pool; '+' joins several convolutions in one block "
         "(32,64+64); then flatten and the dense head. none: no convolution (default).")
batch_norm_option = click.option(
    "--batch-norm/--no-batch-norm", default=False, show_default=True,
    help="Batch normalization after every convolution (after the pool, for a block's last one) and "
         "between every hidden dense layer and its activation.")

architecture_options = _stack(
    conv_option,
    batch_norm_option,
    click.option("--hidden", multiple=True, default=("128",), show_default=True,
                 help="Hidden layer sizes: repeat the option or give a list (128,64 or 128x64); none for no "
                      "hidden layer."),
    click.option("--act", multiple=True, default=("relu",), show_default=True,
                 help="Hidden activation, one for all layers or one per layer: "
                      f"{', '.join(registry.ACTIVATIONS)}."),
    alpha_option,
    init_option,
)

# the optimizer's options, shared by training_options and digits sweep (which has --seeds)
optimizer_options = _stack(
    click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True, help="Mini-batch size."),
    click.option("--optimizer", type=click.Choice(registry.OPTIMIZERS), default="adam", show_default=True,
                 help="Update rule."),
    click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=None,
                 help="Learning rate (default: adam 0.003, momentum 0.05, sgd 0.1)."),
    click.option("--schedule", type=click.Choice(registry.SCHEDULES), default="cosine", show_default=True,
                 help="Learning-rate schedule over the whole run."),
    click.option("--weight-decay", type=FiniteFloat(min=0), default=3e-4, show_default=True,
                 help="L2 weight decay on the weights."),
)

training_options = _stack(
    epochs_option,
    optimizer_options,
    click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                 help="Seed of the init, the batch order and the train/validation split."),
    train_size_option,
)

regularization_options = _stack(
    click.option("--dropout", type=FiniteFloat(min=0, max=1, max_open=True), default=0.0,
                 show_default=True,
                 help="Fraction of units dropped at each training step (Keras's rate), after each hidden "
                      "layer (and after the flatten of --conv); 0 is off."),
    click.option("--augment", type=click.Choice(registry.AUGMENTATIONS), default="none", show_default=True,
                 help="Random transforms of every training batch: shift (up to 2 px), affine (shift, "
                      "rotation up to 10 degrees, scaling up to 10%), elastic (affine + elastic distortion), realistic "
                      "(elastic, then thicker or thinner pens, blur, low resolution, contrast, noise)."),
    click.option("--label-smoothing", type=FiniteFloat(min=0, max=1, max_open=True), default=0.0,
                 show_default=True,
                 help="Train against smoothed targets, (1 - S) * onehot + S / 10, as Keras's "
                      "label_smoothing; 0 is off. The training loss reported is the smoothed one."),
)


def build_train_run(ctx: click.Context, preset: str | None):
    """The TrainRun of the train command's options (architecture, training, regularization,
    --all-data). With a preset, the preset's fields, replaced by each option given on the
    command line (an option left at its default keeps the preset's value). A --train-size
    larger than the training set, or an architecture too big for the memory available, is
    refused here, before any data loads."""
    run = _train_run(ctx, preset)
    check_train_size(run.train_size, run.all_data)
    check_memory(run.spec_args, run.batch_size)
    return run


def _train_run(ctx: click.Context, preset: str | None):
    from click.core import ParameterSource

    from tinygrad_digits.apps import training as app

    p = ctx.params
    if preset is None:
        spec_args = {**build_spec_args(p["hidden"], p["act"], p["alpha"], p["conv"], p["batch_norm"]),
                     "dropout": p["dropout"]}
        return app.TrainRun(spec_args=spec_args, **{field: p[name] for name, field in _RUN_FIELDS.items()})
    given = {name for name in p if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}
    run = app.preset_run(preset)
    spec_args = dict(run.spec_args)
    if "hidden" in given or "act" in given:
        hidden = parse_hidden(p["hidden"]) if "hidden" in given else spec_args["hidden"]
        acts = p["act"] if "act" in given else spec_args["activations"]
        if "act" not in given and len(set(acts)) <= 1:
            acts = acts[:1] or ("relu",)
        spec_args["hidden"], spec_args["activations"] = hidden, parse_acts(acts, len(hidden)) if hidden else ()
    if "conv" in given:
        spec_args["conv"] = parse_conv(p["conv"])
    for name in ("alpha", "dropout", "batch_norm"):
        if name in given:
            spec_args[name] = p[name]
    overrides = {field: p[name] for name, field in _RUN_FIELDS.items() if name in given}
    return app.preset_run(preset, spec_args=spec_args, **overrides)


_RUN_FIELDS = {  # option name -> TrainRun field
    "init": "init", "epochs": "epochs", "batch_size": "batch_size", "optimizer": "optimizer",
    "lr": "learning_rate", "schedule": "schedule", "weight_decay": "weight_decay", "seed": "seed",
    "train_size": "train_size", "augment": "augment", "all_data": "all_data",
    "label_smoothing": "label_smoothing",
}

data_option = click.option(
    "--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
    help="Directory with the four MNIST .gz files (default: $DIGITS_DATA, the checkout's data/mnist, "
         "the per-user cache, else download).",
)


def load_data(data_dir, seed: int, as_json: bool):
    """The 48k/12k/10k splits, with a download progress line on stderr when one is needed."""
    from tinygrad_digits import data

    return data.load_splits(data_dir, seed=seed, progress=download_progress())


def announce_compile(as_json: bool) -> None:
    """Compile the kernels now when the cache lacks them, saying so (a warm cache loads each
    kernel as it is first called, which costs a fraction of loading them all)."""
    from tinygrad_digits import warmup

    if not warmup.kernels_cached():
        click.echo("compiling kernels (first run only)...", err=True)
        warmup.warm_up()
