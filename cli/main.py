"""The ``digits`` command group. Each command parses its options, calls the library, prints.

Heavy imports (the library, Numba, matplotlib, TensorFlow) happen inside the commands, so
``digits --help`` stays fast. Library errors (ValueError, OSError) become one ``Error:`` line
and exit status 1; Click's usage errors exit with 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import options as opt


class DigitsGroup(click.Group):
    """Every error is one ``Error:`` line on stderr: library errors (exit 1) and usage errors,
    which Click would print with the usage text (exit 2)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            click.echo(f"Error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, OSError) as e:
            message = str(e).strip().splitlines()
            raise click.ClickException(message[0] if message else type(e).__name__) from None


@click.group(cls=DigitsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tinygrad-digits", prog_name="digits")
def main():
    """tinygrad-digits: train, test and play with a from-scratch MLP on MNIST."""


def echo(message: str, as_json: bool) -> None:
    """Human-readable lines go to stdout, or to stderr when stdout carries JSON."""
    click.echo(message, err=as_json)


def emit_json(obj: dict) -> None:
    click.echo(json.dumps(obj, indent=2, default=float))


@main.command()
@opt.architecture_options
@opt.training_options
@opt.regularization_options
@click.option("--all-data", is_flag=True,
              help="Train on all 60,000 training images: the validation set joins the training set.")
@click.option("--preset", type=click.Choice(opt.PRESET_NAMES), default=None,
              help="Start from a named recipe; options given override it. best: 800x800 ReLU, dropout 0.1, "
                   "elastic augmentation, Adam 0.002 with cosine decay, batches of 256, 16 epochs on all "
                   "60,000 images (>= 99% test accuracy in under 5 minutes on 2 cores).")
@opt.data_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to write (default: the per-user models directory).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Learning curves PNG (default: beside the model, same name with .png).")
@click.option("--no-plot", is_flag=True, help="Do not draw the learning curves.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (config, history, metrics) on stdout.")
def train(hidden, act, alpha, init, epochs, batch_size, optimizer, lr, schedule, weight_decay, seed,
          train_size, dropout, augment, all_data, preset, data, out, plot, no_plot, as_json):
    """Train an MLP on MNIST and save it (e.g. digits train --hidden 128 --act relu)."""
    from tinygrad_digits import app

    run = opt.build_train_run(click.get_current_context(), preset)
    splits = opt.load_data(data, run.seed, as_json)
    opt.announce_compile(as_json)
    out = out or app.default_model_path(run)
    progress = opt.EpochProgress(as_json, run.epochs)
    outcome = app.train_and_save(run, splits, out, on_batch=progress.batch, on_epoch=progress.epoch)
    progress.close()
    result = outcome["result"]
    if outcome["saved"]:
        if not no_plot and result.history:
            from tinygrad_digits.plots import plot_history

            plot = plot_history({"ours": result.history}, plot or out.with_suffix(".png"),
                                title=f"{outcome['spec'].describe()} on MNIST")
            outcome["plot"] = str(plot)
    if result.stopped and result.stopped.startswith("diverged"):
        kept = f"; last good model: {out}" if outcome["saved"] else "; no model was written"
        raise click.ClickException(result.stopped + kept)
    metrics = outcome["metrics"]
    echo(f"test accuracy {100 * metrics['accuracy']:.2f}%  test loss {metrics['loss']:.4f}", as_json)
    echo(f"model saved to {out}" + (f"; curves in {outcome['plot']}" if "plot" in outcome else ""), as_json)
    if as_json:
        emit_json(app.train_report(outcome, out))
    if result.stopped:
        echo(f"stopped early: {result.stopped}", True)
        sys.exit(130)


@main.command()
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@opt.data_option
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the confusion matrix as a PNG.")
@click.option("--misclassified", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save a PNG grid of the test digits the model gets most wrong (most confident mistakes).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object on stdout.")
def evaluate(model, data, plot, misclassified, as_json):
    """Test accuracy, loss, per-digit accuracy and confusion matrix of a model (default: the latest)."""
    from tinygrad_digits import app, metrics
    from tinygrad_digits.modelfile import load_model

    path = app.resolve_model(model)
    spec, params, header = load_model(path)
    seed = header.get("training", {}).get("seed", 0)
    splits = opt.load_data(data, seed, as_json)
    result = metrics.evaluate(spec, params, splits.x_test, splits.y_test)
    if plot:
        from tinygrad_digits.plots import plot_confusion

        plot_confusion(result["confusion"], plot, title=f"{spec.describe()}: confusion on the test set")
    if misclassified:
        from tinygrad_digits.model import predict_proba
        from tinygrad_digits.plots import plot_misclassified

        mistakes = metrics.most_confident_mistakes(splits.y_test, predict_proba(spec, params, splits.x_test))
        plot_misclassified(splits.x_test, mistakes, misclassified,
                           title=f"{spec.describe()}: the most confident mistakes on the test set")
        result["misclassified"] = mistakes
    if as_json:
        emit_json({"model": str(path), "spec": spec.to_json(), **result})
        return
    click.echo(f"model {path} ({spec.describe()}, {spec.n_params():,} parameters)")
    click.echo(f"test accuracy {100 * result['accuracy']:.2f}%  test loss {result['loss']:.4f}")
    click.echo("per-digit accuracy: " + "  ".join(
        f"{d}:{100 * a:.1f}%" for d, a in enumerate(result["per_digit_accuracy"])))
    click.echo(app.format_confusion(result["confusion"]))
    if plot:
        click.echo(f"confusion matrix saved to {plot}")
    if misclassified:
        click.echo(f"{len(result['misclassified'])} most confident mistakes saved to {misclassified}")


# Commands that live in their own modules (each imports only click at module level).
# One line per module: <name>.register(main)
from . import bench  # noqa: E402
bench.register(main)
from . import compare  # noqa: E402
compare.register(main)
from . import draw, predict  # noqa: E402
predict.register(main)
draw.register(main)
from . import sweep  # noqa: E402
sweep.register(main)
