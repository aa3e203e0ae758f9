"""Bad input and faults through the CLI: every one ends in one ``Error:`` line naming the option
or the file and a non-zero exit (2 for usage errors, refused before any data loads), never a
traceback; strict JSON; quiet closed pipes; interrupts and concurrent writers lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import assert_one_line_error, run
from tinygrad_digits.modelfile import load_model, save_model

MNIST_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
T = ["--data", str(MNIST_DIR), "--train-size", "2000", "--epochs", "1", "--no-plot", "--hidden", "16"]
CLI = [sys.executable, "-c", "from tinygrad_digits.cli.main import main; main()"]


def strict_loads(text: str):
    """json.loads that refuses NaN and Infinity, which RFC 8259 does not allow."""

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def no_data(monkeypatch):
    """Fails the test if a command loads or looks for MNIST."""
    from tinygrad_digits import data
    from tinygrad_digits.cli import options

    def loaded(*args, **kwargs):
        raise AssertionError("the data was loaded before the options were checked")

    monkeypatch.setattr(options, "load_data", loaded)
    monkeypatch.setattr(data, "ensure_data", loaded)
    monkeypatch.setattr(data, "load_splits", loaded)


@pytest.fixture
def overflowing_model(tmp_path, model_path):
    """A valid model file whose logits overflow to infinity: its loss and probabilities are NaN."""
    spec, params, header = load_model(model_path)
    params = {**params, "dense0.W": params["dense0.W"] * 1e10, "dense1.W": params["dense1.W"] * 1e30}
    return save_model(tmp_path / "overflow.npz", spec, params, {"training": header["training"]})


def digit_image(path: Path, mnist_splits, index: int = 0, **save) -> Path:
    pixels = (mnist_splits.x_test[index].reshape(28, 28) * 255).astype(np.uint8)
    Image.fromarray(255 - pixels).resize((112, 112)).save(path, **save)
    return path


# ---------------------------------------------------------------- 1. outputs


def _read_only_folder(tmp_path: Path) -> Path:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere; /proc/sys is refused even to root
        locked = Path("/proc/sys")
        if os.access(locked, os.W_OK):
            pytest.skip("no folder here that this user cannot write")
    return locked


OUTPUT_CASES = {  # name -> (make the trouble in a folder and give train's options, words of the error)
    "a FIFO": (lambda d: (os.mkfifo(d / "fifo"), ["--no-plot", "--out", d / "fifo"])[1],
               ["--out", "a device or a pipe"]),
    "a device": (lambda d: (os.symlink("/dev/full", d / "dev"), ["--no-plot", "--out", d / "dev"])[1],
                 ["--out", "a device or a pipe"]),
    "a folder": (lambda d: ((d / "dir").mkdir(), ["--no-plot", "--out", d / "dir"])[1], ["--out"]),
    "curves onto the model": (lambda d: ["--out", d / "m.png"], ["--out", "overwrite"]),
    "--plot is --out": (lambda d: ["--out", d / "m.npz", "--plot", d / "m.npz"], ["--plot", "--out", "same file"]),
    "under a file": (lambda d: ((d / "f").write_text(""), ["--no-plot", "--out", d / "f" / "m.npz"])[1],
                     ["--out"]),
    "name too long": (lambda d: ["--plot", d / ("c" * 300 + ".png"), "--out", d / "m.npz"], ["--plot", "long"]),
    "read-only folder": (lambda d: ["--no-plot", "--out", _read_only_folder(d) / "m.npz"],
                         ["--out", "not writable"]),
}


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_train_refuses_unwritable_outputs_before_any_data_loads(tmp_path, no_data, case):
    make, words = OUTPUT_CASES[case]
    plotting = [a for a in T if a != "--no-plot"]
    assert_one_line_error(run("train", *plotting, *make(tmp_path)), 2, *words)
    if case == "a FIFO":
        assert (tmp_path / "fifo").is_fifo()  # not replaced by a regular file


def test_evaluate_predict_and_sweep_refuse_unwritable_outputs(tmp_path, no_data, model_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_text("")
    assert_one_line_error(run("evaluate", model_path, "--plot", tmp_path / "fifo"), 2, "--plot")
    assert_one_line_error(run("evaluate", model_path, "--misclassified", tmp_path / "file" / "m.png"), 2,
                          "--misclassified")
    assert_one_line_error(run("evaluate", model_path, "--plot", model_path), 2, "--plot", "the model")
    assert_one_line_error(run("predict", "--model", model_path, "--show-input", tmp_path / "fifo", model_path),
                          2, "--show-input")
    assert_one_line_error(run("sweep", *T, "--out", tmp_path / "file" / "results"), 2, "--out")
    assert_one_line_error(run("sweep", *T[:-3], "--out", tmp_path / "s", "--plot", tmp_path / "fifo"), 2, "--plot")
    assert (tmp_path / "fifo").is_fifo()


# ---------------------------------------------------------------- 2. concurrent writers


def test_a_run_whose_model_file_another_run_replaced_says_so(tmp_path, monkeypatch, mnist_splits):
    from tinygrad_digits.apps import training as app
    from tinygrad_digits.cli import output

    out = tmp_path / "models" / "m.npz"
    real_epoch = output.EpochProgress.epoch
    other = app.TrainRun(spec_args={"hidden": (8,), "activations": ("tanh",), "alpha": 0.1}, epochs=1,
                         train_size=500)

    def epoch_then_another_run(self, record, params):
        real_epoch(self, record, params)
        if record["epoch"] == 1:  # this run has written out; another run writes it now
            assert not app.train_and_save(other, mnist_splits, out)["replaced"]

    monkeypatch.setattr(output.EpochProgress, "epoch", epoch_then_another_run)
    result = run("train", *T, "--epochs", "2", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    assert "another run also wrote" in result.stderr and str(out) in result.stderr
    assert strict_loads(result.stdout)["replaced"] is True
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.npz"]  # no temporary file left
    load_model(out)  # every file there is a valid model


def test_two_processes_writing_one_model_file_leave_a_valid_model(tmp_path):
    out = tmp_path / "models" / "m.npz"
    args = [*CLI, "train", *T, "--epochs", "3", "--out", str(out)]
    runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in runs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0 and "Traceback" not in err, err
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.npz"]
    load_model(out)


# ---------------------------------------------------------------- 3. strict JSON


def test_json_is_strict_everywhere(tmp_path, overflowing_model, mnist_splits):
    trained = run("train", *T, "--all-data", "--out", tmp_path / "all.npz", "--json")
    assert trained.exit_code == 0, trained.output
    report = strict_loads(trained.stdout)
    assert report["history"][0]["val_loss"] is None and report["history"][0]["val_accuracy"] is None

    evaluated = run("evaluate", overflowing_model, "--data", MNIST_DIR, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert strict_loads(evaluated.stdout)["loss"] is None

    image = digit_image(tmp_path / "seven.png", mnist_splits)
    predicted = run("predict", "--model", overflowing_model, image, "--json")
    assert predicted.exit_code == 0, predicted.output
    assert strict_loads(predicted.stdout)["predictions"][0]["confidence"] is None

    swept = run("sweep", *T[:-1], "8", "--out", tmp_path / "sweep", "--no-plot", "--json")
    assert swept.exit_code == 0, swept.output
    assert strict_loads(swept.stdout)["complete"] is True


# ---------------------------------------------------------------- 4. usage errors


@pytest.mark.parametrize(
    ("command", "args", "words"),
    [
        ("train", ["--seed", "-1"], ["--seed"]),
        ("train", ["--seed", str(2**32)], ["--seed"]),
        ("train", ["--lr", "nan"], ["--lr", "finite"]),
        ("train", ["--lr", "inf"], ["--lr", "finite"]),
        ("train", ["--lr", "0"], ["--lr"]),
        ("train", ["--weight-decay", "inf"], ["--weight-decay"]),
        ("train", ["--alpha", "nan"], ["--alpha"]),
        ("train", ["--dropout", "1"], ["--dropout"]),
        ("train", ["--dropout", "nan"], ["--dropout"]),
        ("train", ["--train-size", "100000"], ["--train-size", "48,000"]),
        ("train", ["--train-size", "60001", "--all-data"], ["--train-size", "60,000"]),
        ("train", ["--hidden", "1.5"], ["--hidden", "1.5"]),
        ("train", ["--hidden", ","], ["--hidden"]),
        ("train", ["--hidden", "0x16"], ["--hidden"]),
        ("compare", ["--lr", "nan"], ["--lr"]),
        ("compare", ["--train-size", "100000"], ["--train-size"]),
        ("sweep", ["--seeds", "0,-1"], ["--seeds"]),
        ("sweep", ["--lr", "inf"], ["--lr"]),
        ("sweep", ["--train-size", "48001"], ["--train-size"]),
    ],
)
def test_bad_option_values_are_usage_errors_naming_the_option_before_any_data_loads(
        no_data, command, args, words, monkeypatch):
    from tinygrad_digits.apps import keras_twin

    monkeypatch.setattr(keras_twin, "tensorflow_available", lambda: True)  # compare checks options first
    assert_one_line_error(run(command, *args), 2, *words)


# ---------------------------------------------------------------- 5. data


def test_a_missing_data_folder_is_named_and_not_created(tmp_path, model_path):
    missing = tmp_path / "no" / "such"
    assert_one_line_error(run("train", *T, "--data", missing), 2, "--data", str(missing))
    assert_one_line_error(run("evaluate", model_path, "--data", missing), 2, "--data", str(missing))
    assert not (tmp_path / "no").exists()

    from tinygrad_digits import data

    with pytest.raises(data.DataError, match="does not exist"):
        data.ensure_data(missing)
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("kind", ["folder", "fifo", "symlink loop"])
def test_a_data_file_that_is_no_regular_file_is_named(tmp_path, kind):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for source in MNIST_DIR.glob("*.gz"):
        (folder / source.name).symlink_to(source)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.unlink()
    if kind == "folder":
        bad.mkdir()
    elif kind == "fifo":
        os.mkfifo(bad)
    else:
        (folder / "loop").symlink_to(bad)
        bad.symlink_to(folder / "loop")
    assert_one_line_error(run("train", *T[2:], "--data", folder), 1, str(bad))
    assert (bad.is_dir() if kind == "folder" else bad.is_fifo() if kind == "fifo" else bad.is_symlink())


# ---------------------------------------------------------------- 6. memory


def test_a_memory_error_anywhere_is_one_line(monkeypatch, model_path):
    from tinygrad_digits import metrics

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(metrics, "evaluate", out_of_memory)
    assert_one_line_error(run("evaluate", model_path, "--data", MNIST_DIR), 1, "not enough memory")


def test_an_architecture_too_big_for_memory_is_refused_before_any_data_loads(no_data):
    assert_one_line_error(run("train", "--hidden", "10000000"), 1, "--hidden 10000000", "memory")
    assert_one_line_error(run("sweep", "--hidden", "64,10000000"), 1, "--hidden 10000000", "memory")


# ---------------------------------------------------------------- 7. pipes


def test_a_closed_pipe_ends_the_output_quietly(model_path):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line, as after `| head -1`
    try:
        done = subprocess.run([*CLI, "evaluate", str(model_path), "--data", str(MNIST_DIR)], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=600)
    finally:
        os.close(write)
    assert done.returncode in (0, 141), done.stderr
    assert done.stderr == ""


# ---------------------------------------------------------------- 8. images


@pytest.mark.parametrize("kept", [5, 8])  # tenths kept: Pillow warns, or libtiff prints too
def test_a_truncated_tiff_is_one_line_naming_it(tmp_path, model_path, mnist_splits, kept):
    whole = tmp_path / "whole.tif"
    pixels = (mnist_splits.x_test[0].reshape(28, 28) * 255).astype(np.uint8)
    Image.fromarray(255 - pixels).save(whole, compression="tiff_lzw")
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size * kept // 10])
    # a process of its own: warnings and libtiff's messages reach its real stderr, not pytest's
    done = subprocess.run([*CLI, "predict", "--model", str(model_path), str(whole), str(truncated)],
                          capture_output=True, text=True, timeout=600)
    said = [line for line in done.stderr.splitlines() if not line.startswith("compiling kernels")]
    assert done.returncode == 1 and done.stdout == ""
    assert len(said) == 1 and said[0].startswith("Error: ") and str(truncated) in said[0], done.stderr


# ---------------------------------------------------------------- 9. interrupts

# Runs digits with a pause at one point: it says PAUSED on stderr and blocks on stdin until the
# test's SIGINT arrives (or stdin closes after it, should the signal come before the read).
PAUSING = """
import signal, sys
from tinygrad_digits.cli import options, output
from tinygrad_digits.cli.main import main

signal.signal(signal.SIGINT, signal.default_int_handler)
where, epoch, step = sys.argv.pop(1), int(sys.argv.pop(1)), int(sys.argv.pop(1))

def pause():
    print("PAUSED", file=sys.stderr, flush=True)
    sys.stdin.read()

def wrap(owner, name, when):
    real = getattr(owner, name)
    def wrapped(*args):
        if when(*args):
            pause()
        return real(*args)
    setattr(owner, name, wrapped)

if where == "data":
    wrap(options, "load_data", lambda *args: True)
elif where == "epoch":  # after the epoch's line, before the next epoch draws its batch order
    real_epoch = output.EpochProgress.epoch
    def epoch(self, record, params):
        real_epoch(self, record, params)
        if record["epoch"] == epoch:
            pause()
    output.EpochProgress.epoch = epoch
else:
    wrap(output.EpochProgress, "batch", lambda self, s, steps: self.current == epoch and s == step)
main()
"""


def _interrupt_points(count: int = 4):
    rng = np.random.default_rng(14)
    points = [("data", 0, 0)]
    for _ in range(count - 1):
        if rng.random() < 0.5:
            points.append(("epoch", int(rng.integers(1, 3)), 0))
        else:
            points.append(("batch", int(rng.integers(1, 4)), int(rng.integers(1, 16))))
    return points


@pytest.mark.parametrize("point", _interrupt_points(), ids=lambda p: "-".join(map(str, p)))
def test_sigint_at_random_points_ends_with_one_line_and_a_valid_model(tmp_path, point):
    out = tmp_path / "m.npz"
    args = [sys.executable, "-c", PAUSING, *map(str, point), "train", *T, "--epochs", "3", "--out", str(out)]
    child = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lines = []
    for line in child.stderr:
        if line.strip() == "PAUSED":
            break
        lines.append(line)
    else:
        child.wait()
        pytest.fail("the run ended before its pause: " + "".join(lines))
    child.send_signal(signal.SIGINT)
    child.stdin.close()
    stdout, rest = child.stdout.read(), child.stderr.read()
    child.wait(timeout=600)
    lines += rest.splitlines(keepends=True)
    said = [line.strip() for line in lines if line.strip() and not line.startswith("compiling kernels")]
    assert child.returncode == 130, (stdout, said)
    assert len(said) == 1 and "interrupted" in said[0], said
    assert "Traceback" not in rest and "Aborted" not in rest
    if point[0] == "data":
        assert not out.exists()
    else:
        _, params, header = load_model(out)
        assert header["stopped"].startswith("interrupted")
        assert "test accuracy" in stdout and "model saved" in stdout  # the summary


@pytest.mark.parametrize("inputs, outputs", [(784, 5), (100, 10)])
def test_evaluating_a_model_that_is_not_784_in_10_out_is_one_line_naming_it(tmp_path, inputs, outputs):
    """Labels 5-9 must never reach a 5-class loss (they would index past its rows)."""
    from tinygrad_digits import model as M
    from tinygrad_digits.modelfile import save_model

    spec = M.ModelSpec(hidden=(8,), inputs=inputs, outputs=outputs, input_mean=0.13, input_std=0.31)
    path = save_model(tmp_path / "odd.npz", spec, M.init_params(spec, np.random.default_rng(0)))
    result = run("evaluate", path, "--data", MNIST_DIR)
    assert_one_line_error(result, 1, str(path), "expected a 784-input, 10-class model")
