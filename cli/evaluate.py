"""``digits evaluate``: accuracy, loss, per-digit accuracy and confusion matrix of a model, on the
MNIST test set or on a folder of labelled images (``--images DIR``: DIR/<digit>/*)."""

from __future__ import annotations

from pathlib import Path

import click

from . import folder_options as folders
from . import options as opt
from .output import emit_json


@click.command()
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@opt.data_option
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the confusion matrix as a PNG.")
@click.option("--misclassified", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save a PNG grid of the test digits the model gets most wrong (most confident mistakes).")
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="Evaluate on a folder of labelled images instead, DIR/<digit>/* in any format Pillow "
                   "reads (the layout digits draw saves), each prepared as digits predict prepares it.")
@folders.skip_bad_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object on stdout.")
def evaluate(model, data, plot, misclassified, images, skip_bad, as_json):
    """Test accuracy, loss, per-digit accuracy and confusion matrix of a model (default: the latest)."""
    from tinygrad_digits import metrics
    from tinygrad_digits.apps import training as app
    from tinygrad_digits.modelfile import load_model

    path = app.resolve_model(model)
    opt.check_paths({"--plot": plot, "--misclassified": misclassified}, inputs={"the model": path})
    folder = folders.load_images_option(images, "--images", skip_bad) if images is not None else None
    spec, params, header = load_model(path)
    if spec.inputs != 784 or spec.outputs != 10:  # MNIST's images and classes
        raise click.ClickException(f"{path}: expected a 784-input, 10-class model, got {spec.describe()}")
    if folder is None:
        seed = header.get("training", {}).get("seed", 0)
        splits = opt.load_data(data, seed, as_json)
        x, labels, where = splits.x_test, splits.y_test, "the test set"
    else:
        x, labels, where = folder.images, folder.labels, str(folder.root)
    result = metrics.evaluate(spec, params, x, labels)
    if plot:
        from tinygrad_digits.apps.plots import plot_confusion

        plot_confusion(result["confusion"], plot, title=f"{spec.describe()}: confusion on {where}")
    if misclassified:
        from tinygrad_digits.model import predict_proba
        from tinygrad_digits.apps.plots import plot_misclassified

        mistakes = metrics.most_confident_mistakes(labels, predict_proba(spec, params, x))
        if folder is not None:
            for mistake in mistakes:
                mistake["file"] = str(folder.files[mistake["index"]])
        plot_misclassified(x, mistakes, misclassified, title=f"{spec.describe()}: the most confident mistakes on {where}")
        result["misclassified"] = mistakes
    if as_json:
        extra = {} if folder is None else {"images": folder.to_json()}
        emit_json({"model": str(path), "spec": spec.to_json(), **extra, **result})
        return
    click.echo(f"model {path} ({spec.describe()}, {spec.n_params():,} parameters)")
    if folder is None:
        click.echo(f"test accuracy {100 * result['accuracy']:.2f}%  test loss {result['loss']:.4f}")
    else:
        click.echo(folder.summary())
        click.echo(f"accuracy on {where} {100 * result['accuracy']:.2f}%  loss {result['loss']:.4f}  "
                   f"({len(folder)} images)")
    click.echo("per-digit accuracy: " + "  ".join(
        f"{d}:{100 * a:.1f}%" if a == a else f"{d}:-" for d, a in enumerate(result["per_digit_accuracy"])))
    click.echo(metrics.format_confusion(result["confusion"]))
    if plot:
        click.echo(f"confusion matrix saved to {plot}")
    if misclassified:
        click.echo(f"{len(result['misclassified'])} most confident mistakes saved to {misclassified}")
