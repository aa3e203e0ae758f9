"""``digits compare``: our network (an MLP or, with --conv, a convnet) against its Keras twin on
the same data, side by side.

Only click is imported at module level; TensorFlow is never imported in this process (the
twin trains in a worker process, see ``tinygrad_digits.apps.keras_twin``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import options as opt
from .output import EpochProgress, emit_json


@click.command("compare")
@opt.architecture_options
@opt.training_options
@opt.data_option
@click.option("--same-init/--independent-init", default=True, show_default=True,
              help="Keras starts from our initial parameters and sees our batch order, or uses its own "
                   "initializers and shuffling (seeded with --seed).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save both learning curves (loss and accuracy, train and validation) to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object on stdout.")
def compare(conv, batch_norm, hidden, act, alpha, init, epochs, batch_size, optimizer, lr, schedule,
            weight_decay, seed,
            train_size, data, same_init, plot, as_json):
    """Train our network and its Keras twin on the same data; compare accuracy, speed and size."""
    from tinygrad_digits.apps import keras_twin

    if not keras_twin.tensorflow_available():
        hint = keras_twin.INSTALL_HINT
        click.echo(f"Error: digits compare needs TensorFlow, which is not installed: {hint}", err=True)
        sys.exit(2)
    from tinygrad_digits.apps import training as app
    from tinygrad_digits.apps import compare as comparison

    spec_args = opt.build_spec_args(hidden, act, alpha, conv, batch_norm)
    opt.check_train_size(train_size)
    opt.check_memory(spec_args, batch_size)
    opt.check_paths({"--plot": plot})
    splits = opt.load_data(data, seed, as_json)
    run = app.TrainRun(
        spec_args=spec_args, init=init, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
        learning_rate=lr, schedule=schedule, weight_decay=weight_decay, seed=seed, train_size=train_size,
    )
    opt.announce_compile(as_json)
    click.echo("ours (numba, this process):", err=as_json)
    ours_progress = EpochProgress(as_json, epochs)
    keras_progress = EpochProgress(as_json, epochs)

    def on_keras_event(event):
        if event["event"] == "ready":
            click.echo(f"keras twin (tensorflow {event['tensorflow_version']}, worker process; "
                       f"imported in {event['import_seconds']:.1f} s):", err=as_json)
        elif event["event"] == "epoch":
            keras_progress.epoch(event["record"], None)

    try:
        report = comparison.compare(run, splits, same_init=same_init, on_batch=ours_progress.batch,
                                    on_epoch=ours_progress.epoch, on_keras_event=on_keras_event)
    except keras_twin.KerasTwinError as e:
        raise click.ClickException(str(e)) from None
    finally:
        ours_progress.close()
    report["plot"] = None
    if plot is not None:
        from tinygrad_digits.apps.plots import plot_history

        plot_history({"ours": report["ours"]["history"], "keras": report["keras"]["history"]}, plot,
                     title=f"{report['architecture']}: ours vs Keras ({report['mode']})")
        report["plot"] = str(plot)
    if as_json:
        emit_json(report)
    else:
        click.echo("")
        click.echo(comparison.format_table(report))
    if plot is not None:
        click.echo(f"curves saved to {plot}", err=as_json)
