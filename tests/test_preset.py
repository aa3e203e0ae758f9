"""digits train --preset best: the preset expands to its documented recipe, options given on the
command line override it, and a tiny version of it runs end to end (all 60,000 images as the
training pool, augmentation, dropout, no validation set)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_digits import registry

from tinygrad_digits.apps import training as app
from tinygrad_digits.cli import options
from tinygrad_digits.cli.main import main
from tinygrad_digits.modelfile import load_model

MNIST_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"

# The recipe as documented (app.PRESETS, the --preset help and the README).
BEST = app.TrainRun(
    spec_args={"hidden": (800, 800), "activations": ("relu", "relu"), "alpha": 0.1, "dropout": 0.1},
    init="auto",
    epochs=40,
    batch_size=256,
    optimizer="adam",
    learning_rate=0.002,
    schedule="cosine",
    weight_decay=0.0,
    seed=0,
    train_size=None,
    augment="realistic",
    all_data=True,
    preset="best",
)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_best_expands_to_its_documented_recipe():
    assert app.preset_run("best") == BEST
    assert registry.PRESETS == tuple(app.PRESETS)
    help_text = " ".join(run("train", "--help").stdout.split())
    for words in ("800x800", "ReLU", "dropout 0.1", "realistic augmentation", "40 epochs", "all 60,000", "99.2%"):
        assert words in help_text


def test_unknown_presets_are_refused():
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        app.preset_run("fast")
    result = run("train", "--preset", "fast")
    assert result.exit_code == 2 and "--preset" in result.stderr


def context(*args):
    """The train command's parsed options, as build_train_run sees them."""
    command = main.commands["train"]
    return command.make_context("train", [str(a) for a in args])


@pytest.mark.parametrize(
    ("args", "changes"),
    [
        ([], {}),
        (["--epochs", "3", "--lr", "0.01"], {"epochs": 3, "learning_rate": 0.01}),
        (["--augment", "none", "--seed", "4"], {"augment": "none", "seed": 4}),
        (["--label-smoothing", "0.2"], {"label_smoothing": 0.2}),
        (
            ["--hidden", "64x32"],
            {"spec_args": {**BEST.spec_args, "hidden": (64, 32), "activations": ("relu", "relu")}},
        ),
        (
            ["--act", "tanh", "--dropout", "0.3"],
            {"spec_args": {**BEST.spec_args, "activations": ("tanh", "tanh"), "dropout": 0.3}},
        ),
        (["--hidden", "50"], {"spec_args": {**BEST.spec_args, "hidden": (50,), "activations": ("relu",)}}),
    ],
)
def test_options_given_override_the_preset_and_defaults_do_not(args, changes):
    ctx = context("--preset", "best", *args)
    assert options.build_train_run(ctx, "best") == app.TrainRun(**{**BEST.__dict__, **changes})


def test_without_a_preset_the_options_are_the_run():
    ctx = context("--hidden", "32", "--dropout", "0.2", "--augment", "shift", "--all-data")
    run_ = options.build_train_run(ctx, None)
    assert run_.spec_args == {"hidden": (32,), "activations": ("relu",), "alpha": 0.1, "dropout": 0.2}
    assert run_.augment == "shift" and run_.all_data and run_.preset is None
    assert run_.epochs == 10 and run_.learning_rate is None  # the train command's defaults


def test_a_tiny_version_of_the_preset_runs(tmp_path):
    out = tmp_path / "best.npz"
    result = run(
        "train",
        "--preset",
        "best",
        "--hidden",
        "32",
        "--epochs",
        "2",
        "--train-size",
        "600",
        "--batch-size",
        "30",
        "--data",
        MNIST_DIR,
        "--out",
        out,
        "--json",
        "--no-plot",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    config = report["config"]
    assert config["preset"] == "best" and config["all_data"] and config["augment"] == BEST.augment
    assert config["spec_args"]["dropout"] == BEST.spec_args["dropout"]
    assert config["learning_rate"] == BEST.learning_rate and config["epochs"] == 2
    assert report["spec"]["hidden"] == [32] and report["spec"]["dropout"] == BEST.spec_args["dropout"]
    assert "no validation set" in result.stderr
    assert all(r["val_accuracy"] is None for r in report["history"])  # strict JSON: NaN is null
    assert 0.3 < report["test_accuracy"] <= 1
    spec, _, header = load_model(out)
    assert spec.dropout == BEST.spec_args["dropout"] and header["training"]["preset"] == "best"


def test_all_data_trains_on_the_validation_images_too(mnist_splits, tmp_path):
    # 48,000 + 12,000: with train_size the first N of that pool, here reaching into the validation part
    seen = []

    def on_epoch(record, params):
        seen.append(record)

    run_ = app.TrainRun(
        spec_args={"hidden": (8,), "activations": ("relu",), "alpha": 0.1},
        epochs=1,
        all_data=True,
        batch_size=1000,
    )
    outcome = app.train_and_save(
        run_,
        mnist_splits,
        tmp_path / "m.npz",
        on_batch=lambda step, steps: seen.append(steps),
        on_epoch=on_epoch,
    )
    assert seen[0] == 60  # 60,000 images in batches of 1,000
    assert np.isnan(outcome["result"].history[0]["val_loss"])


CNN = app.preset_run("cnn")


def test_cnn_is_a_convnet_recipe_the_help_describes():
    spec = CNN.spec_args
    assert spec["conv"] == (32, (64, 64), 128) and spec["batch_norm"] and spec["hidden"] == (128,)
    assert 0.25 <= spec["dropout"] <= 0.4 and CNN.label_smoothing == 0.2
    assert CNN.augment == "realistic" and CNN.optimizer == "adam" and CNN.schedule == "cosine"
    assert CNN.batch_size == 128 and CNN.all_data and CNN.preset == "cnn"
    help_text = " ".join(run("train", "--help").stdout.split())
    for words in ("cnn:", "--conv 32,64+64,128 --batch-norm --hidden 128", f"dropout {spec['dropout']:g}",
                  f"{CNN.augment} augmentation", f"label smoothing {CNN.label_smoothing:g}",
                  f"Adam {CNN.learning_rate:g}", f"{CNN.epochs} epochs", "99.6%"):
        assert words in help_text, words


@pytest.mark.parametrize(
    ("args", "changes"),
    [
        (["--conv", "8"], {"conv": (8,)}),
        (["--conv", "none"], {"conv": ()}),
        (["--no-batch-norm"], {"batch_norm": False}),
        (["--hidden", "none"], {"hidden": (), "activations": ()}),
        (["--hidden", "64x32"], {"hidden": (64, 32), "activations": ("relu", "relu")}),
    ],
)
def test_options_given_override_the_cnn_preset(args, changes):
    run_ = options.build_train_run(context("--preset", "cnn", *args), "cnn")
    assert run_ == app.TrainRun(**{**CNN.__dict__, "spec_args": {**CNN.spec_args, **changes}})


def test_a_tiny_version_of_the_cnn_preset_runs(tmp_path):
    out = tmp_path / "cnn.npz"
    result = run("train", "--preset", "cnn", "--conv", "4", "--hidden", "8", "--epochs", "1", "--train-size", "256",
                 "--data", MNIST_DIR, "--out", out, "--json", "--no-plot")
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["config"]
    assert config["preset"] == "cnn" and config["augment"] == CNN.augment and config["all_data"]
    spec, _, header = load_model(out)
    assert spec.conv == (4,) and spec.dropout == CNN.spec_args["dropout"] and header["training"]["preset"] == "cnn"
    assert spec.batch_norm  # the preset's, kept
