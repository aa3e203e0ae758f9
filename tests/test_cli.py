"""The digits CLI through Click's CliRunner: help, real runs on tiny data, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_digits.cli import options
from tinygrad_digits.cli.main import main
from tinygrad_digits.modelfile import load_model


MNIST_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
TINY = ["--data", str(MNIST_DIR), "--train-size", "600", "--epochs", "2", "--hidden", "16"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, code, *words):
    assert result.exit_code == code, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("Error: ")
    assert "Traceback" not in result.output
    for word in words:
        assert word in err


@pytest.mark.parametrize("command", [[]] + [[name] for name in main.commands])
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_help_imports_neither_numba_nor_tensorflow():
    code = (
        "import sys\n"
        "from tinygrad_digits.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'tensorflow', 'matplotlib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_main_imports_no_command_module_back():
    """Commands import their helpers from cli.output and cli.options, never from the group."""
    import ast

    cli_dir = Path(options.__file__).parent
    for path in sorted(cli_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("main", "tinygrad_digits.cli.main"), f"{path.name} imports main"


def test_choices_come_from_the_registry():
    from tinygrad_digits import registry

    params = {p.name: p for p in main.commands["train"].params}
    assert tuple(params["optimizer"].type.choices) == registry.OPTIMIZERS
    assert tuple(params["schedule"].type.choices) == registry.SCHEDULES
    assert tuple(params["init"].type.choices) == registry.INITS
    assert tuple(params["augment"].type.choices) == registry.AUGMENTATIONS
    assert tuple(params["preset"].type.choices) == registry.PRESETS
    assert all(name in params["act"].help for name in registry.ACTIVATIONS)


def test_registry_imports_nothing():
    import ast

    from tinygrad_digits import registry

    tree = ast.parse(Path(registry.__file__).read_text())
    imported = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [getattr(n, "module", None) for n in imported] == ["__future__"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [(("128",), (128,)), (("128", "64"), (128, 64)), (("128,64",), (128, 64)), (("256x128x64",), (256, 128, 64))],
)
def test_hidden_option_forms(given, expected):
    assert options.parse_hidden(given) == expected


def test_train_json_then_evaluate(tmp_path):
    out = tmp_path / "m.npz"
    result = run("train", *TINY, "--act", "tanh", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout holds exactly one JSON object
    assert report["model"] == str(out)
    assert len(report["history"]) == 2 and len(report["seconds_per_epoch"]) == 2
    assert report["spec"]["activations"] == ["tanh"]
    assert 0.3 < report["test_accuracy"] <= 1  # 10 steps: well above chance (0.1)
    assert (tmp_path / "m.png").stat().st_size > 0
    assert "epoch 2/2" in result.stderr

    spec, params, header = load_model(out)
    assert spec.hidden == (16,) and header["training"]["seed"] == 0
    evaluated = run("evaluate", out, "--data", MNIST_DIR, "--json", "--plot", tmp_path / "cm.png")
    metrics = json.loads(evaluated.stdout)
    assert metrics["accuracy"] == pytest.approx(report["test_accuracy"])
    assert np.sum(metrics["confusion"]) == 10_000
    assert (tmp_path / "cm.png").stat().st_size > 0


def test_train_defaults_to_the_models_dir_and_evaluate_finds_the_latest(private_home):
    result = run("train", *TINY, "--act", "relu,", "--no-plot")
    assert result.exit_code == 0, result.output
    assert "epoch 1/2" in result.stdout and "test accuracy" in result.stdout
    saved = private_home / "xdg-data" / "tinygrad-digits" / "models" / "mlp-784-16relu-10.npz"
    assert saved.is_file()
    evaluated = run("evaluate", "--data", MNIST_DIR)
    assert evaluated.exit_code == 0
    assert str(saved) in evaluated.stdout
    assert "per-digit accuracy" in evaluated.stdout and "confusion matrix" in evaluated.stdout


def test_same_seed_same_model(tmp_path):
    for name in ("a", "b"):
        assert run("train", *TINY, "--seed", "3", "--no-plot", "--out", tmp_path / f"{name}.npz").exit_code == 0
    _, a, _ = load_model(tmp_path / "a.npz")
    _, b, _ = load_model(tmp_path / "b.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--act", "swish"], ["--act", "swish", "relu"]),
        (["--hidden", "0"], ["--hidden", "positive"]),
        (["--hidden", "-3"], ["--hidden"]),
        (["--hidden", "12a"], ["--hidden", "12a"]),
        (["--lr", "0"], ["--lr"]),
        (["--lr", "-1"], ["--lr"]),
        (["--act", "relu,tanh"], ["--act", "2 activations for 1 hidden layers"]),
        (["--epochs", "0"], ["--epochs"]),
        (["--label-smoothing", "1"], ["--label-smoothing"]),
        (["--label-smoothing", "nan"], ["--label-smoothing"]),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args, words):
    assert_one_line_error(run("train", *args), 2, *words)


def test_unreadable_model_files(tmp_path):
    missing = tmp_path / "none.npz"
    assert_one_line_error(run("evaluate", missing), 1, str(missing))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a model at all")
    assert_one_line_error(run("evaluate", garbage), 1, str(garbage))
    out = tmp_path / "m.npz"
    assert run("train", *TINY, "--no-plot", "--out", out).exit_code == 0
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    assert_one_line_error(run("evaluate", truncated, "--data", MNIST_DIR), 1, str(truncated))


def test_evaluate_without_any_model_says_train_first():
    assert_one_line_error(run("evaluate"), 1, "digits train")


def test_missing_data_offline(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run("train", "--data", empty), 1, "cannot download MNIST", str(empty))


def test_diverging_run_exits_nonzero_and_keeps_no_bad_model(tmp_path):
    out = tmp_path / "m.npz"
    result = run("train", *TINY, "--optimizer", "sgd", "--lr", "1e9", "--schedule", "constant", "--out", out)
    assert_one_line_error(result, 1, "diverged", "no model was written")
    assert not out.exists()


def test_interrupted_run_saves_what_it_trained(tmp_path, mnist_splits):
    from tinygrad_digits.apps import training as app

    calls = []

    def interrupt(step, steps):
        calls.append(step)
        if len(calls) == 7:
            raise KeyboardInterrupt

    run_ = app.TrainRun(spec_args={"hidden": (16,), "activations": ("relu",), "alpha": 0.1}, epochs=3, train_size=1000)
    outcome = app.train_and_save(run_, mnist_splits, tmp_path / "m.npz", on_batch=interrupt)
    assert outcome["result"].stopped.startswith("interrupted during epoch 1")
    assert outcome["saved"]
    spec, params, header = load_model(tmp_path / "m.npz")
    assert header["stopped"].startswith("interrupted")
    assert all(np.isfinite(v).all() for v in params.values())


# ---------------------------------------------------------------- convnets: --conv, --hidden none

CONV_TINY = ["--data", str(MNIST_DIR), "--train-size", "256", "--epochs", "1"]
EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.png"))


@pytest.mark.parametrize(
    ("given", "expected"),
    [((), ()), (("none",), ()), (("32,64",), (32, 64)), (("32", "64"), (32, 64)), ((" 8 , 16 ",), (8, 16)),
     (("4,4,4",), (4, 4, 4)), (("32,64+64",), (32, (64, 64))), (("8+8 , 16",), ((8, 8), 16))],
)
def test_conv_option_forms(given, expected):
    assert options.parse_conv(given) == expected


def test_hidden_none_means_no_hidden_layer():
    assert options.parse_hidden(("none",)) == () and options.parse_hidden(("None",)) == ()
    assert options.build_spec_args(("none",), ("relu",), 0.1) == {"hidden": (), "activations": (), "alpha": 0.1}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--conv", "0"], ["--conv", "positive"]),
        (["--conv", "abc"], ["--conv", "'abc'"]),
        (["--conv", "32,,64"], ["--conv", "''"]),
        (["--conv", "-8"], ["--conv", "positive"]),
        (["--conv", "8,8,8,8"], ["--conv", "at most 3 blocks"]),
        (["--conv", "none,8"], ["--conv", "'none'"]),
        (["--conv", "8,16+"], ["--conv", "'16+'"]),
        (["--conv", "8+8+8+8,8+8+8+8+8"], ["--conv", "at most 1 blocks"]),
        (["--hidden", "none,16"], ["--hidden", "'none'"]),
    ],
)
def test_bad_conv_and_hidden_values_are_refused_before_data_loads(args, words, monkeypatch):
    monkeypatch.setattr(options, "load_data", lambda *a: pytest.fail("data loaded before the options were checked"))
    assert_one_line_error(run("train", *args), 2, *words)


def test_a_convnet_trains_saves_evaluates_and_predicts(tmp_path):
    """digits train --conv on 256 images, then evaluate and predict read the model file."""
    out = tmp_path / "cnn.npz"
    result = run("train", *CONV_TINY, "--conv", "4,8", "--hidden", "16", "--dropout", "0.2", "--augment", "affine",
                 "--out", out, "--json", "--no-plot")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["spec"]["conv"] == [4, 8] and report["spec"]["hidden"] == [16]
    assert 0 <= report["test_accuracy"] <= 1 and len(report["history"]) == 1
    spec, params, header = load_model(out)
    assert spec.conv == (4, 8) and spec.dropout == 0.2 and spec.input_shape == (28, 28, 1)
    assert params["conv2d0.W"].shape == (3, 3, 1, 4) and params["conv2d1.W"].shape == (3, 3, 4, 8)
    assert params["dense0.W"].shape == (5 * 5 * 8, 16)
    assert header["architecture"]["input_shape"] == [28, 28, 1]

    evaluated = run("evaluate", out, "--data", MNIST_DIR, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(report["test_accuracy"])
    text = run("evaluate", out, "--data", MNIST_DIR)
    assert "28x28-conv4-conv8-16relu-10" in text.stdout and f"{spec.n_params():,} parameters" in text.stdout

    predicted = run("predict", "--model", out, "--json", *EXAMPLES)
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    assert len(rows) == len(EXAMPLES)
    for row in rows:
        assert len(row["probabilities"]) == 10 and sum(row["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert row["label"] == int(np.argmax(row["probabilities"]))


def test_a_convnet_of_two_convolutions_a_block_with_batch_norm_trains_and_predicts(tmp_path):
    out = tmp_path / "bn.npz"
    result = run("train", *CONV_TINY, "--conv", "4,8+8", "--batch-norm", "--hidden", "16", "--out", out,
                 "--json", "--no-plot")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["spec"]["conv"] == [4, [8, 8]]
    spec, params, _ = load_model(out)
    assert spec.conv == (4, (8, 8)) and spec.batch_norm and params["conv2d2.W"].shape == (3, 3, 8, 8)
    assert params["batchnorm3.var"].shape == (16,) and (params["batchnorm3.var"] > 0).all()
    predicted = run("predict", "--model", out, "--json", *EXAMPLES)
    assert predicted.exit_code == 0, predicted.output
    evaluated = run("evaluate", out, "--data", MNIST_DIR)
    assert "28x28-conv4-conv8+8-16relu-10-bn" in evaluated.stdout


def test_a_convnet_goes_to_the_models_dir_as_cnn(private_home):
    result = run("train", *CONV_TINY, "--conv", "2", "--hidden", "none", "--no-plot")
    assert result.exit_code == 0, result.output
    saved = private_home / "xdg-data" / "tinygrad-digits" / "models" / "cnn-28x28-conv2-10.npz"
    assert saved.is_file()
    spec, params, _ = load_model(saved)
    assert spec.hidden == () and sorted(params) == ["conv2d0.W", "conv2d0.b", "dense0.W", "dense0.b"]


def test_hidden_none_without_conv_is_softmax_regression(tmp_path):
    out = tmp_path / "softmax.npz"
    result = run("train", *CONV_TINY, "--hidden", "none", "--out", out, "--no-plot", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["spec"]["hidden"] == []
    spec, params, _ = load_model(out)
    assert spec.describe() == "784-10" and params["dense0.W"].shape == (784, 10)
