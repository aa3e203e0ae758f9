"""Folders of labelled images (DIR/<digit>/*): the library and ``digits evaluate --images``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tinygrad_digits.apps.image_folders import ImageError, held_out_split, load_image_folder
from tinygrad_digits.apps.preprocess import preprocess_file
from tinygrad_digits.cli.main import main


def save_digit(path, image28, size=84, mode="L"):
    """An MNIST digit (784,) in [0, 1] as dark ink on white paper, scaled up, in ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.round(255 - np.asarray(image28).reshape(28, 28) * 255).astype(np.uint8)
    Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC).convert(mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path, mnist_splits):
    """Two MNIST test digits per class 0-4 (PNG, JPEG and a nested sub-folder), a blank page."""
    root = tmp_path / "drawings"
    x, y = mnist_splits.x_test, mnist_splits.y_test
    for digit in range(5):
        for k, index in enumerate(np.flatnonzero(y == digit)[:2]):
            name = f"{digit}/sub/{k}.jpg" if digit == 3 and k == 1 else f"{digit}/{k}.png"
            save_digit(root / name, x[index], mode="RGB" if name.endswith("jpg") else "L")
    Image.new("L", (60, 60), 255).save(root / "4" / "blank.png")
    (root / "7").mkdir()
    (root / ".thumbnails").mkdir()
    (root / ".thumbnails" / "junk.txt").write_text("not an image")
    (root / "README").write_text("plain files beside the digit folders are ignored")
    return root


def test_a_folder_reads_every_image_through_predicts_preprocessing(folder):
    loaded = load_image_folder(folder)
    assert len(loaded) == 10 and loaded.counts() == [2, 2, 2, 2, 2, 0, 0, 0, 0, 0]
    assert loaded.blank == [folder / "4" / "blank.png"] and loaded.empty == [7] and loaded.skipped == []
    assert folder / "3" / "sub" / "1.jpg" in loaded.files
    for x, path, label in zip(loaded.images, loaded.files, loaded.labels):
        assert int(path.relative_to(folder).parts[0]) == label
        np.testing.assert_array_equal(x, preprocess_file(path))
    assert "1 with no ink" in loaded.summary() and "empty digit folders: 7" in loaded.summary()


def test_a_bad_file_is_named_or_skipped_and_counted(folder):
    bad = folder / "2" / "deep" / "er" / "broken.png"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "1" / "notes.txt").write_text("hello")
    with pytest.raises(ImageError, match="notes.txt"):
        load_image_folder(folder)
    loaded = load_image_folder(folder, skip_bad=True)
    assert sorted(p for p, _ in loaded.skipped) == sorted([bad, folder / "1" / "notes.txt"])
    assert len(loaded) == 10 and "2 bad files skipped" in loaded.summary()


@pytest.mark.parametrize("name", ["10", "seven", "-1"])
def test_a_folder_not_named_by_a_digit_is_an_error_naming_it(folder, name):
    (folder / name).mkdir()
    with pytest.raises(ImageError, match=f"{name}'"):
        load_image_folder(folder)


def test_no_digit_folder_and_no_folder_are_errors(tmp_path):
    with pytest.raises(ImageError, match="no such folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ImageError, match="no digit folders"):
        load_image_folder(tmp_path)


def test_held_out_share_is_seeded_and_at_least_one_from_five():
    from tinygrad_digits.apps.image_folders import ImageFolder

    def of(n):
        return ImageFolder(None, np.zeros((n, 784), np.float32), np.zeros(n, np.int64), [None] * n)

    assert [len(held_out_split(of(n), 0.2, 0)[1]) for n in (1, 4, 5, 9, 10, 50)] == [0, 0, 1, 2, 2, 10]
    train, held = held_out_split(of(50), 0.2, 3)
    assert sorted([*train, *held]) == list(range(50))
    np.testing.assert_array_equal(held, held_out_split(of(50), 0.2, 3)[1])
    assert not np.array_equal(held, held_out_split(of(50), 0.2, 4)[1])


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_evaluate_images_reports_what_numpy_computes(folder, model_path, tmp_path):
    from tinygrad_digits.model import predict_proba
    from tinygrad_digits.modelfile import load_model

    spec, params, _ = load_model(model_path)
    loaded = load_image_folder(folder)
    probs = predict_proba(spec, params, loaded.images).astype(np.float64)
    predicted = probs.argmax(1)
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (loaded.labels, predicted), 1)
    loss = -np.mean(np.log(probs[np.arange(len(probs)), loaded.labels]))
    result = run("evaluate", model_path, "--images", folder, "--json", "--misclassified", tmp_path / "w.png",
                 "--plot", tmp_path / "cm.png")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["confusion"] == confusion.tolist()
    assert report["accuracy"] == pytest.approx(np.mean(predicted == loaded.labels))
    assert report["loss"] == pytest.approx(loss, rel=1e-4)
    per_digit = report["per_digit_accuracy"]
    assert per_digit[:5] == pytest.approx([confusion[d, d] / 2 for d in range(5)]) and per_digit[5:] == [None] * 5
    assert report["images"]["no_ink"] == [str(folder / "4" / "blank.png")] and report["images"]["empty_digits"] == [7]
    wrong = [str(p) for p, label, guess in zip(loaded.files, loaded.labels, predicted) if label != guess]
    assert sorted(m["file"] for m in report["misclassified"]) == sorted(wrong)
    assert (tmp_path / "w.png").stat().st_size > 0 and (tmp_path / "cm.png").stat().st_size > 0

    text = run("evaluate", model_path, "--images", folder)
    assert text.exit_code == 0, text.output
    assert f"accuracy on {folder} {100 * report['accuracy']:.2f}%" in text.stdout
    assert "5:-" in text.stdout and "confusion matrix" in text.stdout


def test_evaluate_images_bad_input_is_one_line(folder, model_path, tmp_path):
    (folder / "10").mkdir()
    result = run("evaluate", model_path, "--images", folder)
    assert result.exit_code == 2 and "--images" in result.stderr and "'10'" in result.stderr
    (folder / "10").rmdir()
    (folder / "0" / "bad.gif").write_bytes(b"GIF89a")
    result = run("evaluate", model_path, "--images", folder)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "bad.gif" in result.stderr and "--skip-bad" in result.stderr and "Traceback" not in result.output
    skipped = run("evaluate", model_path, "--images", folder, "--skip-bad", "--json")
    assert skipped.exit_code == 0 and json.loads(skipped.stdout)["images"]["skipped"][0]["file"].endswith("bad.gif")
    empty = tmp_path / "empty"
    (empty / "3").mkdir(parents=True)
    result = run("evaluate", model_path, "--images", empty)
    assert result.exit_code == 2 and "no image with ink" in result.stderr and "--images" in result.stderr


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with no pixel data: a decompression bomb's
    first bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_a_huge_image_is_refused_from_its_header(folder):
    bomb = folder / "6" / "nested" / "bomb.png"
    bomb.parent.mkdir(parents=True)
    bomb.write_bytes(png_header_only(50_000, 50_000))
    with pytest.raises(ImageError, match="bomb.png.*pixels"):
        load_image_folder(folder)
    loaded = load_image_folder(folder, skip_bad=True)
    assert [p for p, _ in loaded.skipped] == [bomb] and "pixels" in loaded.skipped[0][1]
