"""``digits predict`` through Click's CliRunner: text and JSON answers, the input sheet, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tinygrad_digits import paths
from tinygrad_digits.cli.main import main


@pytest.fixture
def images(tmp_path, mnist_splits):
    """The first four MNIST test digits as a person might hand them over, and a blank page."""
    files, labels = [], []
    for i in range(4):
        digit = np.round(mnist_splits.x_test[i].reshape(28, 28) * 255).astype(np.uint8)
        big = Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BICUBIC)
        page = Image.new("L", (300, 200), 255)
        page.paste(big, (10 + 40 * i, 30))
        files.append(tmp_path / f"digit{i}.png")
        page.convert(("RGB", "L", "RGBA", "P")[i]).save(files[-1])
        labels.append(int(mnist_splits.y_test[i]))
    files.append(tmp_path / "blank.png")
    Image.new("RGB", (120, 90), "white").save(files[-1])
    return files, labels + [None]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, code, *words):
    assert result.exit_code == code, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    assert result.stdout == "" and "Traceback" not in result.output
    for word in words:
        assert word in err, err


def test_predict_prints_label_confidence_and_top_three(images, model_path):
    files, labels = images
    result = run("predict", *files, "--model", model_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(files)
    for line, path, label in zip(lines, files, labels):
        if label is None:
            assert line == f"{path}: no digit"
            continue
        head, top = line.split("top 3: ")
        assert head.split()[:2] == [f"{path}:", str(label)] and head.strip().endswith("%")
        digits = [int(part.split()[0]) for part in top.split(", ")]
        assert len(digits) == 3 and digits[0] == label and len(set(digits)) == 3


def test_predict_json_gives_all_ten_probabilities(images, model_path):
    files, labels = images
    result = run("predict", *files, "--model", model_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == str(model_path)
    assert [p["image"] for p in report["predictions"]] == [str(f) for f in files]
    for entry, label in zip(report["predictions"], labels):
        assert entry["label"] == label
        if label is None:
            assert entry["probabilities"] is None and entry["confidence"] is None and entry["top3"] == []
            continue
        probs = np.array(entry["probabilities"])
        assert probs.shape == (10,) and probs.sum() == pytest.approx(1, abs=1e-5)
        assert int(np.argmax(probs)) == label and entry["confidence"] == pytest.approx(probs.max())
        assert [d for d, _ in entry["top3"]] == list(np.argsort(-probs, kind="stable")[:3])


def test_show_input_saves_the_sheet_of_network_inputs(images, model_path, tmp_path):
    files, _ = images
    sheet = tmp_path / "out" / "inputs.png"
    result = run("predict", *files, "--model", model_path, "--show-input", sheet)
    assert result.exit_code == 0, result.output
    assert f"network inputs saved to {sheet}" in result.stdout
    with Image.open(sheet) as image:
        assert image.size == (len(files) * (28 * 4 + 2) + 2, 28 * 4 + 14 + 2 + 2)
        pixels = np.asarray(image.convert("L"))
    assert pixels[2 : 2 + 112, 2 : 2 + 112].max() == 255  # a digit, white on black
    blank_left = 2 + 4 * (28 * 4 + 2)
    assert pixels[2 : 2 + 112, blank_left : blank_left + 112].max() == 0  # no digit: an empty tile


def test_predict_uses_the_latest_model_by_default(images, model_path):
    files, labels = images
    target = paths.models_dir() / "latest.npz"
    target.parent.mkdir(parents=True)
    shutil.copyfile(model_path, target)
    result = run("predict", files[0], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == str(target) and report["predictions"][0]["label"] == labels[0]


@pytest.mark.parametrize("case", ["missing", "garbage", "truncated", "directory"])
def test_a_bad_image_is_one_line_naming_it(images, model_path, tmp_path, case):
    files, _ = images
    bad = tmp_path / f"bad-{case}.png"
    if case == "garbage":
        bad.write_bytes(b"GIF89a but not really")
    elif case == "truncated":
        bad.write_bytes(files[0].read_bytes()[:150])
    elif case == "directory":
        bad.mkdir()
    result = run("predict", files[0], bad, "--model", model_path)
    assert_one_line_error(result, 1 if case != "directory" else 2, str(bad.name))


def test_an_image_over_the_pixel_limit_is_refused_naming_it(images, model_path, monkeypatch):
    from tinygrad_digits.apps import preprocess

    files, _ = images
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 20_000)  # the 300x200 pages are now "bombs"
    assert_one_line_error(run("predict", files[0], "--model", model_path), 1, str(files[0]), "pixels")


def test_without_a_model_it_says_to_train_first(images):
    files, _ = images
    assert_one_line_error(run("predict", files[0]), 1, "digits train")


def test_a_bad_model_is_one_line_naming_it(images, tmp_path):
    files, _ = images
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"PK but no zip")
    assert_one_line_error(run("predict", files[0], "--model", bad), 1, str(bad))


def test_predict_needs_an_image():
    assert_one_line_error(run("predict"), 2, "IMAGE")


def test_predict_compiles_the_kernels_up_front_once_saying_so(images, model_path, monkeypatch, tmp_path):
    """A cold (or stale) kernel cache: one "compiling kernels" line, and warm_up marks the cache
    warm, so the next run says nothing."""
    from tinygrad_digits import warmup

    (tmp_path / "kernel-cache").mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "kernel-cache"))  # where the stamp goes
    calls = []
    monkeypatch.setattr(warmup, "warm_up", lambda: (calls.append(1), warmup._write_stamp()))
    monkeypatch.setattr(warmup, "KERNEL_MODULES", ())  # the stamp alone decides here
    files, _ = images
    first = run("predict", files[0], "--model", model_path)
    second = run("predict", files[0], "--model", model_path)
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert "compiling kernels (first run only)" in first.stderr and calls == [1]
    assert "compiling" not in second.stderr and first.stdout == second.stdout
