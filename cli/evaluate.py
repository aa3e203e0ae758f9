"""``digits evaluate``: test accuracy, loss, per-digit accuracy and confusion matrix of a model."""

from __future__ import annotations

from pathlib import Path

import click

from . import options as opt
from .output import emit_json


@click.command()
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@opt.data_option
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the confusion matrix as a PNG.")
@click.option("--misclassified", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save a PNG grid of the test digits the model gets most wrong (most confident mistakes).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object on stdout.")
def evaluate(model, data, plot, misclassified, as_json):
    """Test accuracy, loss, per-digit accuracy and confusion matrix of a model (default: the latest)."""
    from tinygrad_digits import metrics
    from tinygrad_digits.apps import training as app
    from tinygrad_digits.modelfile import load_model

    path = app.resolve_model(model)
    opt.check_paths({"--plot": plot, "--misclassified": misclassified}, inputs={"the model": path})
    spec, params, header = load_model(path)
    if spec.inputs != 784 or spec.outputs != 10:  # MNIST's images and classes
        raise click.ClickException(f"{path}: expected a 784-input, 10-class model, got {spec.describe()}")
    seed = header.get("training", {}).get("seed", 0)
    splits = opt.load_data(data, seed, as_json)
    result = metrics.evaluate(spec, params, splits.x_test, splits.y_test)
    if plot:
        from tinygrad_digits.apps.plots import plot_confusion

        plot_confusion(result["confusion"], plot, title=f"{spec.describe()}: confusion on the test set")
    if misclassified:
        from tinygrad_digits.model import predict_proba
        from tinygrad_digits.apps.plots import plot_misclassified

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
