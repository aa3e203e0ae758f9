"""Recognition without a screen: real MNIST digits redrawn the way people draw or photograph them,
blank images, bad files, drawings and saved drawings read back, and training the default model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from strokes import DIGITS, stroke

from tinygrad_digits import paths

from tinygrad_digits.apps import training as app, recognize
from tinygrad_digits.modelfile import ModelFileError
from tinygrad_digits.apps.preprocess import ImageError, to_ink
from tinygrad_digits.apps.drawing import Sketch, save_drawing
from tinygrad_digits.apps.recognize import Prediction, Recognizer

N_REDRAWN = 600  # MNIST test digits redrawn large, off-centre, dark on light


@pytest.fixture(scope="module")
def recognizer(model_path):
    return Recognizer.load(model_path)


def redraw(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A (784,) MNIST digit as a photo-like page: 84-224 px tall, anywhere on a 360x300 grey
    page, dark ink on light paper."""
    size = int(rng.integers(84, 225))
    page_w, page_h = 360, 300
    big = Image.fromarray(np.round(digit.reshape(28, 28) * 255).astype(np.uint8))
    big = np.asarray(big.resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    ink = np.zeros((page_h, page_w), np.float32)
    top, left = int(rng.integers(0, page_h - size + 1)), int(rng.integers(0, page_w - size + 1))
    ink[top : top + size, left : left + size] = big
    paper, pen = 235.0, 25.0
    return Image.fromarray(np.round(paper - (paper - pen) * np.clip(ink, 0, 1)).astype(np.uint8))


# ---- recognition ---------------------------------------------------------------------------
def test_redrawn_mnist_digits_read_about_as_well_as_the_originals(recognizer, mnist_splits, record_property):
    rng = np.random.default_rng(4)
    x, y = mnist_splits.x_test[:N_REDRAWN], mnist_splits.y_test[:N_REDRAWN]
    original = float(np.mean(recognizer.probabilities(x).argmax(1) == y))
    redrawn_labels = [recognizer.predict_ink(to_ink(redraw(d, rng))).label for d in x]
    redrawn = float(np.mean(np.array(redrawn_labels) == y))
    record_property("original_accuracy", original)
    record_property("redrawn_accuracy", redrawn)
    print(f"\naccuracy on {N_REDRAWN} MNIST test digits: original {100 * original:.1f}%, "
          f"redrawn large, off-centre, dark on light {100 * redrawn:.1f}%")
    assert original > 0.9
    assert redrawn >= original - 0.03


def test_saved_redrawn_digits_are_read_from_files(recognizer, mnist_splits, tmp_path):
    rng = np.random.default_rng(5)
    files, inks = [], []
    for i in range(5):
        image = redraw(mnist_splits.x_test[i], rng)
        kind = ("RGB", "L", "P", "RGBA", "I;16")[i]
        files.append(tmp_path / f"{i}.png")
        if kind == "I;16":
            converted = Image.fromarray(np.asarray(image, np.uint16) * 257)
        else:
            converted = image.convert(kind)
        converted.save(files[-1])
        inks.append(to_ink(image))
    from_files = recognizer.predict_files(files)
    in_memory = [recognizer.predict_ink(ink) for ink in inks]
    for a, b in zip(from_files, in_memory):
        np.testing.assert_allclose(a.probs, b.probs, atol=2e-3)
    assert [p.label for p in from_files] == list(mnist_splits.y_test[:5])


@pytest.mark.parametrize("blank", [np.zeros((280, 280)), np.ones((50, 80)), np.full((28, 28), 0.5)])
def test_blank_is_no_digit_never_a_guess(recognizer, blank):
    prediction = recognizer.predict_ink(blank.astype(np.float32))
    assert prediction.probs is None and prediction.input is None
    assert prediction.label is None and prediction.confidence is None and prediction.top() == []
    assert prediction.describe() == "no digit"
    assert prediction.to_json() == {"label": None, "confidence": None, "top3": [], "probabilities": None}
    assert recognize.format_prediction("blank.png", prediction) == "blank.png: no digit"


def test_blank_files_among_digits(recognizer, mnist_splits, tmp_path):
    Image.new("RGB", (64, 48), "white").save(tmp_path / "white.png")
    Image.new("RGBA", (64, 48), (0, 0, 0, 0)).save(tmp_path / "transparent.png")
    redraw(mnist_splits.x_test[0], np.random.default_rng(0)).save(tmp_path / "seven.png")
    names = ["white.png", "seven.png", "transparent.png"]
    labels = [p.label for p in recognizer.predict_files([tmp_path / n for n in names])]
    assert labels == [None, int(mnist_splits.y_test[0]), None]


def test_prediction_top_three_and_json():
    probs = np.array([0.05, 0.6, 0.0, 0.1, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0], np.float32)
    prediction = Prediction(probs, np.zeros(784, np.float32))
    assert prediction.label == 1 and prediction.confidence == pytest.approx(0.6)
    assert [d for d, _ in prediction.top()] == [1, 7, 3]
    assert prediction.describe() == "1 (60.0%)"
    as_json = json.loads(json.dumps(prediction.to_json()))
    assert as_json["label"] == 1 and len(as_json["probabilities"]) == 10
    assert [d for d, _ in as_json["top3"]] == [1, 7, 3]
    line = recognize.format_prediction("x.png", prediction)
    assert line.startswith("x.png: 1") and "top 3: 1 60.0%, 7 25.0%, 3 10.0%" in line


def test_batched_inputs_match_one_at_a_time(recognizer, mnist_splits):
    inputs = [mnist_splits.x_test[0], None, mnist_splits.x_test[1]]
    batched = recognizer.predict_inputs(inputs)
    assert batched[1].probs is None
    for x, p in zip((inputs[0], inputs[2]), (batched[0], batched[2])):
        np.testing.assert_allclose(p.probs, recognizer.probabilities(x), rtol=1e-5, atol=1e-7)
        assert p.probs.shape == (10,) and p.probs.sum() == pytest.approx(1, abs=1e-5)


def test_input_sheet_shows_what_the_network_saw(recognizer, mnist_splits):
    predictions = recognizer.predict_inputs([mnist_splits.x_test[0], None])
    sheet = recognize.input_sheet(predictions)
    assert sheet.size == (2 * (28 * 4 + 2) + 2, 28 * 4 + 14 + 2 + 2)
    pixels = np.asarray(sheet)
    assert pixels[2 : 2 + 112, 2 : 2 + 112].max() == 255  # the digit
    assert pixels[2 : 2 + 112, 116 : 116 + 112].max() == 0  # "no digit": an empty tile


# ---- bad files and models ------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "garbage", "truncated", "empty"])
def test_a_bad_file_raises_one_line_naming_it_before_any_prediction(recognizer, mnist_splits, tmp_path, case):
    good = tmp_path / "good.png"
    redraw(mnist_splits.x_test[0], np.random.default_rng(0)).save(good)
    bad = tmp_path / f"bad-{case}.png"
    if case == "garbage":
        bad.write_bytes(b"this is not an image at all")
    elif case == "truncated":
        bad.write_bytes(good.read_bytes()[:200])
    elif case == "empty":
        bad.write_bytes(b"")
    with pytest.raises(ImageError) as error:
        recognizer.predict_files([good, bad])
    message = str(error.value)
    assert str(bad) in message and len(message.splitlines()) == 1


def test_loading_models(model_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="digits train"):
        Recognizer.load(None)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"no model here")
    with pytest.raises(ModelFileError, match=str(garbage)):
        Recognizer.load(garbage)
    latest = paths.models_dir() / "mine.npz"
    latest.parent.mkdir(parents=True)
    latest.write_bytes(model_path.read_bytes())
    assert Recognizer.load(None).path == latest


@pytest.mark.parametrize("digit", sorted(DIGITS))
def test_drawn_digits_are_read(recognizer, digit):
    sketch = Sketch()
    stroke(sketch, DIGITS[digit])
    prediction = recognizer.predict_ink(sketch.ink())
    assert prediction.label == digit, prediction.top()
    x = prediction.input.reshape(28, 28)
    rows, cols = np.nonzero(x >= 0.5)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 in (19, 20, 21)  # MNIST's box


def test_the_brush_gives_mnist_like_strokes(recognizer, mnist_splits):
    """A '1' drawn across most of the canvas: its stroke, 2-3 px wide at 28x28 like MNIST's ones."""
    sketch = Sketch()
    stroke(sketch, DIGITS[1])
    x = recognizer.predict_ink(sketch.ink()).input.reshape(28, 28)
    width = float(np.median(x[8:20].sum(axis=1)))  # ink per row across the middle of the stroke
    ones = mnist_splits.x_test[mnist_splits.y_test == 1][:200].reshape(-1, 28, 28)
    mnist_width = float(np.median(ones[:, 8:20].sum(axis=2)))
    assert 2 <= width <= 3 and abs(width - mnist_width) < 0.75, (width, mnist_width)


def test_saved_drawings_are_labelled_pngs_that_read_back(recognizer, private_home):
    sketch = Sketch()
    stroke(sketch, DIGITS[7])
    first = save_drawing(sketch, 7)
    second = save_drawing(sketch, np.int64(7))
    assert first != second and first.parent == second.parent
    assert first.parent == private_home / "xdg-data" / "tinygrad-digits" / "drawings" / "7"
    with Image.open(first) as image:
        assert image.mode == "L" and image.size == (280, 280)
        assert image.info["label"] == "7"
        assert len(json.loads(image.info["strokes"])[0]) == len(DIGITS[7])
        assert np.asarray(image)[0, 0] == 255  # dark ink on white paper
    from_file, = recognizer.predict_files([first])
    np.testing.assert_allclose(from_file.input, recognizer.predict_ink(sketch.ink(1)).input, atol=1e-6)


def test_training_the_default_model_reports_progress_and_saves_where_train_would():
    reports = []
    run = app.TrainRun(spec_args={"hidden": (16,), "activations": ("relu",), "alpha": 0.1}, epochs=2,
                       train_size=600)
    path = recognize.train_default_model(lambda f, m: reports.append((f, m)), run=run)
    assert path == paths.models_dir() / "mlp-784-16relu-10.npz" and path.is_file()
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1
    assert any("epoch 2/2" in m for _, m in reports) and "test accuracy" in reports[-1][1]
    assert Recognizer.load(None).path == path
