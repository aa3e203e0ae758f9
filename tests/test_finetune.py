"""Training with extra labelled images (digits train --extra-images) and fine-tuning (--from)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import ndimage

from tinygrad_digits import paths
from tinygrad_digits.apps.finetune import tuned_path
from tinygrad_digits.apps.image_folders import load_image_folder
from tinygrad_digits.cli.main import main
from tinygrad_digits.model import predict
from tinygrad_digits.modelfile import load_model


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def distorted(image28: np.ndarray) -> np.ndarray:
    """A digit in another hand: turned 40 degrees and written with a thick pen, (112, 112) uint8."""
    big = ndimage.zoom(image28.reshape(28, 28), 4, order=1)
    big = ndimage.rotate(big, 40, reshape=False, order=1)
    big = ndimage.grey_dilation(big, size=(7, 7))
    return np.round(255 - np.clip(big, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def misread(tmp_path, mnist_splits, model_path):
    """A folder of distorted test digits (DIR/<digit>/*.png) that the session's model misreads."""
    spec, params, _ = load_model(model_path)
    root = tmp_path / "other-hand"
    x, y = mnist_splits.x_test[:400], mnist_splits.y_test[:400]
    for i in range(len(x)):
        path = root / str(y[i]) / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(distorted(x[i])).save(path)
    loaded = load_image_folder(root)
    wrong = predict(spec, params, loaded.images) != loaded.labels
    for path in np.asarray(loaded.files, dtype=object)[~wrong]:
        path.unlink()
    assert wrong.sum() >= 40  # the model misreads many of them: the test below can fail
    return root


def test_fine_tuning_on_misread_digits_teaches_them(misread, model_path, tmp_path):
    before = model_path.read_bytes()
    out = tmp_path / "tuned.npz"
    result = run("train", "--from", model_path, "--extra-images", misread, "--train-size", 5000, "--out", out,
                 "--no-plot", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert model_path.read_bytes() == before  # the original is kept
    assert report["config"]["epochs"] == 3 and report["config"]["learning_rate"] == 5e-4
    assert report["config"]["from"] == str(model_path)
    assert all(record["extra_accuracy"] is not None for record in report["history"])
    assert report["extra"]["after"] > report["extra"]["before"]
    spec, params, _ = load_model(out)
    original, _, _ = load_model(model_path)
    assert spec == original  # the same architecture and scaling
    loaded = load_image_folder(misread)
    assert np.mean(predict(spec, params, loaded.images) == loaded.labels) > 0.7  # were all wrong
    original_accuracy = load_model(model_path)[2]["metrics"]["test_accuracy"]
    assert report["test_accuracy"] > original_accuracy - 0.03, original_accuracy  # MNIST is not forgotten


def test_extra_images_join_a_fresh_run_and_are_scored_every_epoch(misread, tmp_path):
    out = tmp_path / "m.npz"
    result = run("train", "--hidden", 32, "--epochs", 2, "--train-size", 1000, "--extra-images", misread,
                 "--extra-weight", 5, "--out", out, "--no-plot")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and all("held-out extra images acc" in line for line in lines)
    n = len(load_image_folder(misread))
    held = max(1, round(0.2 * n))
    assert f"{n - held} join the training set x5, {held} held out" in result.stdout
    header = load_model(out)[2]
    assert header["training"]["extra_images"] == {"folder": str(misread), "weight": 5,
                                                  "train_images": n - held, "held_out_images": held}


def test_fine_tune_default_out_never_overwrites_the_source(model_path, tmp_path):
    assert tuned_path(model_path) == paths.models_dir() / "recognize-model-tuned.npz"
    tuned = paths.models_dir() / "x-tuned.npz"
    assert tuned_path(tuned) == paths.models_dir() / "x-tuned-2.npz"
    assert tuned_path(paths.models_dir() / "x-tuned-2.npz") == tuned


@pytest.mark.parametrize("args, words", [
    (["--hidden", "64"], ["--from", "--hidden"]),
    (["--preset", "best"], ["--preset"]),
    (["--act", "tanh", "--dropout", "0.1"], ["--act", "--dropout"]),
])
def test_architecture_options_with_from_are_one_line_errors(model_path, args, words):
    result = run("train", "--from", model_path, *args)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert all(word in result.stderr for word in words) and "Traceback" not in result.output


def test_bad_from_and_extra_options_are_one_line_errors(tmp_path, misread):
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    result = run("train", "--from", tmp_path / "junk.npz")
    assert result.exit_code == 1 and "junk.npz" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run("train", "--extra-weight", 3)
    assert result.exit_code == 2 and "--extra-images" in result.stderr
    (misread / "10").mkdir()
    result = run("train", "--extra-images", misread)
    assert result.exit_code == 2 and "'10'" in result.stderr and "--extra-images" in result.stderr


def test_from_keeps_any_network_in_the_file(tmp_path, misread):
    from tinygrad_digits import layers as L
    from tinygrad_digits.modelfile import save_model
    from tinygrad_digits.network import Network

    stack = L.Sequential(L.Dense(32, "relu"), L.Residual(L.Sequential(L.Dense(32), L.Tanh())), L.Dense(10))
    network = Network(stack, (784,), 0.13, 0.31)
    params = stack.init(np.random.default_rng(0), (784,), np.float32)
    source = save_model(tmp_path / "residual.npz", network, params)
    out = tmp_path / "tuned.npz"
    result = run("train", "--from", source, "--train-size", 500, "--epochs", 1, "--extra-images", misread,
                 "--out", out, "--no-plot")
    assert result.exit_code == 0, result.output
    tuned, tuned_params, header = load_model(out)
    assert tuned.to_json() == network.to_json() and header["training"]["from"] == str(source)
    assert set(tuned_params) == set(params) and any(
        not np.array_equal(tuned_params[k], params[k]) for k in params)
