"""``digits compare`` through CliRunner: help, the missing-TensorFlow message, and one real
same-init SGD run (6,000 training images, one epoch) whose report every other test reads."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_digits.apps import training as app, keras_twin
from tinygrad_digits.apps import compare as C
from tinygrad_digits.cli.main import main

MNIST_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
needs_tf = pytest.mark.skipif(not keras_twin.tensorflow_available(), reason="TensorFlow is not installed")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_lists_the_options():
    result = run("compare", "--help")
    assert result.exit_code == 0
    for option in ("--hidden", "--act", "--optimizer", "--lr", "--schedule", "--weight-decay", "--train-size",
                   "--same-init / --independent-init", "--plot", "--json"):
        assert option in result.stdout


def test_without_tensorflow_one_line_and_exit_2(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("tensorflow", "keras") else real(name, *a))
    result = run("compare", "--data", MNIST_DIR, "--epochs", "1")
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error: ")
    assert "pip install 'tinygrad-digits[keras]'" in err
    assert result.stdout == ""


@pytest.fixture(scope="module")
def sgd_run(tmp_path_factory):
    """One real same-init run: digits compare --optimizer sgd --epochs 1 --train-size 6000."""
    if not keras_twin.tensorflow_available():
        pytest.skip("TensorFlow is not installed")
    plot = tmp_path_factory.mktemp("compare") / "curves.png"
    result = run("compare", "--data", MNIST_DIR, "--train-size", "6000", "--epochs", "1",
                 "--optimizer", "sgd", "--json", "--plot", plot)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result, plot


@needs_tf
def test_same_init_sgd_agrees_after_one_epoch(sgd_run):
    report = sgd_run[0]
    assert report["mode"] == "same-init"
    assert report["accuracy_gap_pp"] < 0.2
    same = report["same_init"]
    assert same["relative_param_difference"] < 1e-5  # float32 round-off, not a different model
    assert same["largest_param_difference"] < 1e-3
    assert same["prediction_agreement"] > 0.998
    ours, keras = report["ours"]["history"][0], report["keras"]["history"][0]
    for field in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert keras[field] == pytest.approx(ours[field], rel=1e-3), field


@needs_tf
def test_report_has_every_figure_of_the_table(sgd_run):
    report, result, plot = sgd_run
    assert report["config"]["train_images"] == 6000 and report["config"]["optimizer"] == "sgd"
    for side in ("ours", "keras"):
        s = report[side]
        assert 0.8 < s["test_accuracy"] <= 1 and s["test_loss"] > 0
        assert len(s["per_digit_accuracy"]) == 10
        assert len(s["seconds_per_epoch"]) == 1 and s["first_epoch_seconds"] > 0
        assert s["median_seconds_per_epoch"] is None  # one epoch: no "rest" to take a median of
        assert s["total_training_seconds"] > 0 and s["predict_seconds"] > 0
        assert s["parameters"] == 784 * 128 + 128 + 128 * 10 + 10
    assert report["keras"]["predict_seconds_tf_function"] > 0
    assert report["keras"]["threads"]["intra_op"] >= 1
    call = report["keras_model"]["optimizer_call"]
    assert call.startswith("SGD(learning_rate=CosineDecay(0.1, decay_steps=47)")
    assert report["plot"] == str(plot) and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "keras twin (tensorflow" in result.stderr  # progress goes to stderr with --json


@needs_tf
def test_tensorflow_stays_out_of_this_process(sgd_run):
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules


@needs_tf
def test_table(sgd_run):
    report = sgd_run[0]
    table = C.format_table(report)
    for row in ("test accuracy", "test loss", "digit 9 accuracy", "median s/epoch (no later epochs)",
                "first epoch (s)", "total training (s)", "predict 1 image (ms)", "tf.function", "parameters",
                "101,770", "largest final parameter difference", "accuracy gap", "same init"):
        assert row in table, row
    independent = copy.deepcopy(report)
    independent["mode"], independent["same_init"] = "independent-init", None
    table = C.format_table(independent)
    assert "independent init" in table and "largest final parameter difference" not in table


@needs_tf
def test_same_init_convnet_agrees_after_one_epoch():
    """digits compare --conv: the twin has the same conv, pool and dense layers and parameters."""
    result = run("compare", "--data", MNIST_DIR, "--conv", "4", "--hidden", "none", "--train-size", "512",
                 "--epochs", "1", "--optimizer", "sgd", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["architecture"] == "28x28-conv4-10" and report["spec"]["conv"] == [4]
    assert [block["name"] for block in report["keras_model"]["conv"]] == ["conv2d0"]
    parameters = 3 * 3 * 4 + 4 + 13 * 13 * 4 * 10 + 10
    assert report["ours"]["parameters"] == report["keras"]["parameters"] == parameters
    same = report["same_init"]
    assert set(same["param_differences"]) == {"conv2d0.W", "conv2d0.b", "dense0.W", "dense0.b"}
    assert same["relative_param_difference"] < 1e-5 and same["prediction_agreement"] > 0.998
    assert abs(report["ours"]["test_accuracy"] - report["keras"]["test_accuracy"]) < 0.002


@needs_tf
@pytest.mark.parametrize("conv", ["0", "abc", "32,,64", "8,8,8,8"])
def test_a_bad_conv_is_refused_before_any_work(conv):
    result = run("compare", "--data", MNIST_DIR, "--conv", conv, "--epochs", "1")
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "--conv" in err and "Traceback" not in result.output


def test_setup_matches_train_and_save(mnist_splits, tmp_path):
    """compare.setup builds the run as app.train_and_save does (checked on what it saves)."""
    from tinygrad_digits.modelfile import load_model

    run_ = app.TrainRun(spec_args={"hidden": (8,), "activations": ("tanh",), "alpha": 0.1}, epochs=1,
                        train_size=300, optimizer="momentum", weight_decay=1e-3, seed=4)
    app.train_and_save(run_, mnist_splits, tmp_path / "m.npz")
    spec, _, header = load_model(tmp_path / "m.npz")
    s = C.setup(run_, mnist_splits)
    assert s.spec == spec
    assert s.optimizer.to_json() == header["training"]["optimizer_config"]
    assert s.config.to_json() == {"epochs": 1, "batch_size": 128, "seed": 4, "label_smoothing": 0.0}
    assert len(s.x_train) == 300
    np.testing.assert_array_equal(s.x_train, mnist_splits.x_train[:300])
