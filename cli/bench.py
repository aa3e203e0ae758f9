"""``digits bench``: time our trainer against the NumPy reference, Keras and the GEMM floor; with
``--conv``, on Keras's Simple MNIST convnet."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import options as opt
from .output import echo, emit_json


@click.command()
@click.option("--conv", is_flag=True,
              help="Time Keras's Simple MNIST convnet instead (conv 32 and 64, 3x3 ReLU, 2x2 max-pools, dropout "
                   "0.5, dense 10; Adam): our epoch, its GEMM floor and Keras's, GFLOP/s and one image's "
                   "forward pass. --train-size, the first --batch-size, --keras and --json apply.")
@click.option("--hidden", multiple=True, default=("128",), show_default=True,
              help="Hidden sizes to time, one architecture per option (128, or 128x64 for two layers); "
                   "several make a sweep.")
@click.option("--batch-size", "batch_sizes", multiple=True, type=click.IntRange(min=1), default=(128,),
              show_default=True, help="Mini-batch sizes to time; several make a sweep.")
@click.option("--epochs", type=click.IntRange(min=2), default=10, show_default=True,
              help="Epochs per trainer and configuration; the first is reported apart.")
@click.option("--keras/--no-keras", default=True, show_default=True,
              help="Time Keras (TensorFlow CPU) too, in a process of its own.")
@click.option("--general/--no-general", default=True, show_default=True,
              help="Time our earlier paths too, the figures before: the fused kernel on one thread, and the "
                   "general path (one op per kernel).")
@click.option("--startup/--no-startup", default=True, show_default=True,
              help="Time a cold kernel compile, a warm start of training and digits --help.")
@click.option("--train-size", type=click.IntRange(min=1), default=None,
              help="Time on the first N of the 48,000 training images (quick runs).")
@opt.data_option
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as one JSON object on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save seconds per epoch against hidden and batch size (or per trainer) as a PNG.")
def bench(conv, hidden, batch_sizes, epochs, keras, general, startup, train_size, data, as_json, plot):
    """Seconds per epoch of our trainer, the NumPy reference and Keras, against the GEMM floor."""
    from tinygrad_digits.apps import bench as B

    if conv:
        if plot:
            raise click.BadParameter("bench --conv draws no plot", param_hint="--plot")
        _bench_conv(B, train_size, batch_sizes[0], keras, data, as_json)
        return

    sizes = tuple(opt.parse_hidden([h]) for h in hidden)
    if () in sizes:
        raise click.BadParameter("bench times MLPs with at least one hidden layer", param_hint="--hidden")
    plan = B.BenchPlan(
        hidden=sizes, batch_sizes=tuple(batch_sizes), epochs=epochs,
        keras=keras, general=general, startup=startup, train_size=train_size,
    )
    splits = opt.load_data(data, 0, as_json)
    try:
        report = B.run_bench(plan, splits, log=lambda message: click.echo(message, err=True))
    except B.BenchError as e:
        raise click.ClickException(str(e)) from None
    if plot:
        report["plot"] = str(B.plot_report(report, plot))
    if as_json:
        emit_json(report)
    else:
        click.echo(B.format_report(report))
    if plot:
        echo(f"plot saved to {plot}", as_json)
    sys.stdout.flush()


def _bench_conv(B, train_size, batch_size, keras, data, as_json):
    splits = opt.load_data(data, 0, as_json)
    opt.announce_compile(as_json)
    try:
        report = B.run_conv_bench(splits, train_size, batch_size, keras,
                                  log=lambda message: click.echo(message, err=True))
    except B.BenchError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json(report)
    else:
        click.echo(B.format_conv_report(report))
    sys.stdout.flush()
