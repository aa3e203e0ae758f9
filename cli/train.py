"""``digits train``: train an MLP or a convnet on MNIST and save it, with its learning curves;
optionally with extra labelled images (``--extra-images DIR``), or continuing from a saved model
(``--from``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tinygrad_digits import registry

from . import folder_options as folders
from . import options as opt
from .output import EpochProgress, echo, emit_json


@click.command()
@opt.architecture_options
@opt.training_options
@opt.regularization_options
@click.option("--all-data", is_flag=True,
              help="Train on all 60,000 training images: the validation set joins the training set.")
@click.option("--preset", type=click.Choice(registry.PRESETS), default=None,
              help="Start from a named recipe; options given override it. best: the strongest MLP, 800x800 "
                   "ReLU, dropout 0.1, realistic augmentation (elastic, plus pens, blur, low resolution, "
                   "contrast and noise), Adam 0.002 with cosine decay, batches of 256, "
                   "40 epochs on all 60,000 images (>= 99.2% test accuracy in under 5 minutes on 2 cores). "
                   "cnn: a convnet, --conv 32,64+64,128 --batch-norm --hidden 128, dropout 0.3, realistic "
                   "augmentation, label smoothing 0.2, Adam 0.002 with cosine decay, batches of 128, 22 "
                   "epochs on all 60,000 images (>= 99.6% test accuracy in under 10 minutes on 2 cores).")
@opt.data_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to write (default: the per-user models directory).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Learning curves PNG (default: beside the model, same name with .png).")
@click.option("--no-plot", is_flag=True, help="Do not draw the learning curves.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (config, history, metrics) on stdout.")
@folders.extra_images_options
def train(conv, batch_norm, hidden, act, alpha, init, epochs, batch_size, optimizer, lr, schedule,
          weight_decay, seed,
          train_size, dropout, augment, label_smoothing, all_data, preset, data, out, plot, no_plot, as_json,
          extra_images, extra_weight, skip_bad, from_model):
    """Train an MLP or a convnet on MNIST and save it (digits train --hidden 128, digits train --conv 32,64)."""
    from tinygrad_digits.apps import training as app

    ctx = click.get_current_context()
    start = folders.fine_tune_start(ctx, from_model)
    run = opt.build_train_run(ctx, preset)
    if start is not None:
        from tinygrad_digits.apps.finetune import tuned_path

        run = folders.fine_tune_run(ctx, run, start)
        out = out or tuned_path(start.path)
    out = out or app.default_model_path(run)
    plot = None if no_plot else (plot or _default_plot(out))
    opt.check_paths({"--out": out, "--plot": plot})
    extra = folders.extra_images(ctx, extra_images, extra_weight, skip_bad, run.seed, as_json)
    splits = opt.load_data(data, run.seed, as_json)
    opt.announce_compile(as_json)
    progress = EpochProgress(as_json, run.epochs)
    outcome = app.train_and_save(run, splits, out, on_batch=progress.batch, on_epoch=progress.epoch, consume=True,
                                 extra=extra, start=start)
    progress.close()
    result = outcome["result"]
    if outcome["saved"]:
        if plot is not None and result.history:
            from tinygrad_digits.apps.plots import plot_history

            plot = plot_history({"ours": result.history}, plot, title=f"{outcome['spec'].describe()} on MNIST")
            outcome["plot"] = str(plot)
    if result.stopped and result.stopped.startswith("diverged"):
        kept = f"; last good model: {out}" if outcome["saved"] else "; no model was written"
        raise click.ClickException(result.stopped + kept)
    metrics = outcome["metrics"]
    echo(f"test accuracy {100 * metrics['accuracy']:.2f}%  test loss {metrics['loss']:.4f}", as_json)
    if outcome.get("extra"):
        held = outcome["extra"]
        echo(f"held-out extra images ({held['held_out_images']}): accuracy {100 * held['before']:.2f}% before "
             f"training, {100 * held['after']:.2f}% after", as_json)
    echo(f"model saved to {out}" + (f"; curves in {outcome['plot']}" if "plot" in outcome else ""), as_json)
    if outcome["replaced"]:
        click.echo(f"warning: another run also wrote {out} while this one trained; the file may hold "
                   "that run's model, not this one's", err=True)
    if as_json:
        emit_json({**app.train_report(outcome, out), "replaced": outcome["replaced"], "extra": outcome.get("extra")})
    if result.stopped:
        echo(f"stopped early: {result.stopped}", True)
        sys.exit(130)


def _default_plot(out: Path) -> Path:
    """The curves beside the model, named like it with .png; refused when that is the model."""
    if out.with_suffix(".png") == out:
        raise click.BadParameter(
            f"{out}: the learning curves go beside the model with the suffix .png, which would overwrite "
            "it; name the model .npz, or pass --plot FILE or --no-plot", param_hint="--out")
    return out.with_suffix(".png")
