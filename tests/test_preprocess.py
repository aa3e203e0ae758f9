"""Tests for tinygrad_digits.apps.preprocess: MNIST's recipe, invariance to how a digit reaches us, errors.

Real MNIST test digits are redrawn large, shifted, inverted and saved in many image modes; each
must come back as (nearly) the same network input as the untouched digit.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from tinygrad_digits.apps import preprocess as pp
from tinygrad_digits.apps.preprocess import (
    ImageError,
    contact_sheet,
    load_image,
    preprocess,
    preprocess_file,
    to_ink,
)

MNIST_TEST = Path(__file__).resolve().parent.parent / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
N_DIGITS = 300
SAMPLE = range(0, N_DIGITS, 25)  # 12 digits for the heavier transformations
HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """The first 300 MNIST test digits: uint8 (300, 28, 28), white ink on black."""
    if not MNIST_TEST.exists():
        pytest.skip(f"MNIST test images not found at {MNIST_TEST}")
    with gzip.open(MNIST_TEST, "rb") as file:
        magic, _count, rows, cols = struct.unpack(">IIII", file.read(16))
        assert (magic, rows, cols) == (2051, 28, 28)
        data = file.read(N_DIGITS * rows * cols)
    return np.frombuffer(data, np.uint8).reshape(N_DIGITS, rows, cols)


@pytest.fixture(scope="module")
def references(digits) -> np.ndarray:
    """``preprocess`` of each untouched digit: float32 (300, 784)."""
    return np.stack([preprocess(to_ink(digit)) for digit in digits])


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(correlation, mean absolute difference) of two images of the same size."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(np.corrcoef(a, b)[0, 1]), float(np.abs(a - b).mean())


def redraw(digit: np.ndarray, size: int, canvas: tuple[int, int], top: int, left: int) -> np.ndarray:
    """The digit's ink redrawn (bicubic) at size x size, placed on a blank canvas: float32 in [0, 1]."""
    ink = Image.fromarray(digit.astype(np.float32) / 255).resize((size, size), Image.Resampling.BICUBIC)
    out = np.zeros(canvas, np.float32)
    out[top : top + size, left : left + size] = np.clip(np.asarray(ink), 0, 1)
    return out


def grey(ink: np.ndarray, paper: float, stroke: float) -> np.ndarray:
    """Ink blended from paper to stroke luminance (both 0..255): uint8."""
    return np.round(paper + (stroke - paper) * ink).astype(np.uint8)


def grey_palette(dark: np.ndarray) -> Image.Image:
    image = Image.frombytes("P", dark.shape[::-1], dark.tobytes())
    image.putpalette([level for level in range(256) for _ in range(3)])
    return image


def photo(ink: np.ndarray) -> Image.Image:
    """Dark ink on grey paper, lit a little unevenly, with sensor noise (seeded)."""
    rows, cols = np.mgrid[0 : ink.shape[0], 0 : ink.shape[1]]
    paper = 170 + 15 * cols / ink.shape[1] + 5 * rows / ink.shape[0]
    noise = np.random.default_rng(7).normal(0, 3, ink.shape)
    return Image.fromarray(np.clip(paper + (40 - paper) * ink + noise, 0, 255).astype(np.uint8))


def rgba(ink: np.ndarray, colour: int) -> Image.Image:
    """Strokes of one grey colour whose alpha is the ink, on a fully transparent background."""
    return Image.fromarray(np.dstack([np.full((*ink.shape, 3), colour, np.uint8), grey(ink, 0, 255)]))


# Each case: (ink canvas -> image, how the file is saved, the mode Pillow reads it back in).
CASES = {
    "L light on dark": (lambda ink: Image.fromarray(grey(ink, 0, 255)), "png", "L"),
    "L dark on light": (lambda ink: Image.fromarray(grey(ink, 255, 0)), "png", "L"),
    "RGB blue ink on cream": (
        lambda ink: Image.fromarray(
            np.dstack([grey(ink, paper, stroke) for paper, stroke in ((245, 20), (235, 30), (210, 120))])
        ),
        "png",
        "RGB",
    ),
    "RGBA black on transparent": (lambda ink: rgba(ink, 0), "png", "RGBA"),
    "RGBA white on transparent": (lambda ink: rgba(ink, 255), "png", "RGBA"),
    "LA black on transparent": (lambda ink: rgba(ink, 0).convert("LA"), "png", "LA"),
    "P dark on light": (lambda ink: grey_palette(grey(ink, 255, 0)), "png", "P"),
    "P dark on transparent": (lambda ink: grey_palette(grey(ink, 255, 0)), "png-transparent", "P"),
    "I;16 dark on light": (
        lambda ink: Image.fromarray(np.round(65535 * (1 - ink)).astype(np.uint16)),
        "png",
        "I;16",
    ),
    "I;16 12-bit light on dark": (
        lambda ink: Image.fromarray(np.round(4095 * ink).astype(np.uint16)),
        "png",
        "I;16",
    ),
    "F float light on dark": (lambda ink: Image.fromarray(ink.astype(np.float32)), "tiff", "F"),
    "1 bilevel dark on light": (lambda ink: Image.fromarray(ink < 0.5), "png", "1"),
    "JPEG photo": (photo, "jpg", "L"),
}


def save(image: Image.Image, kind: str, folder: Path) -> Path:
    path = folder / f"digit.{kind.split('-')[0]}"
    if kind == "png-transparent":
        image.save(path, transparency=255)  # the paper's palette index is transparent
    else:
        image.save(path, **({"quality": 90} if kind == "jpg" else {}))
    return path


@pytest.mark.parametrize("case", CASES)
def test_saved_redrawn_digits_come_back_as_the_same_input(case, digits, references, tmp_path):
    make, kind, mode = CASES[case]
    scores = []
    for number, index in enumerate(SAMPLE):
        size = 200 + 17 * number  # 200..387 px, on a larger canvas at varying offsets
        ink = redraw(digits[index], size, (size + 60, size + 90), 5 + 4 * number, 80 - 6 * number)
        path = save(make(ink), kind, tmp_path)
        with Image.open(path) as image:
            assert image.mode == mode  # the case tests what it says
        corr, mad = similarity(preprocess_file(path), references[index])
        assert corr > 0.95 and mad < 0.04, f"{case}: digit {index} corr {corr:.3f} mad {mad:.3f}"
        scores.append(corr)
    assert np.mean(scores) > 0.99, f"{case}: mean correlation {np.mean(scores):.4f}"


@given(
    index=st.integers(0, N_DIGITS - 1),
    size=st.integers(56, 360),
    top=st.integers(0, 50),
    left=st.integers(0, 50),
    dark_on_light=st.booleans(),
)
@HYPOTHESIS
def test_redrawn_digit_in_memory_matches(digits, references, index, size, top, left, dark_on_light):
    ink = redraw(digits[index], size, (size + top + 7, size + left + 3), top, left)
    image = grey(ink, 255, 0) if dark_on_light else grey(ink, 0, 255)
    corr, mad = similarity(preprocess(to_ink(image)), references[index])
    assert corr > 0.95 and mad < 0.05


def test_whole_pixel_shifts_change_nothing(digits, references):
    for index in SAMPLE:
        ink = redraw(digits[index], 28, (90, 70), 41, 13)
        np.testing.assert_allclose(preprocess(ink), references[index], atol=1e-5)


def test_mnist_digits_come_back_close_to_the_originals(digits, references):
    # MNIST centred its digits to the nearest whole pixel; we centre exactly, which alone costs
    # ~0.035 correlation. Against the original recentred to sub-pixel precision, the shape is kept.
    originals = digits.astype(np.float32) / 255
    raw = np.array([similarity(x, d)[0] for x, d in zip(references, originals)])
    recentred = [ndimage.shift(d, 14 - np.array(ndimage.center_of_mass(d)), order=3) for d in originals]
    shape = np.array([similarity(x, np.clip(d, 0, 1))[0] for x, d in zip(references, recentred)])
    assert raw.mean() > 0.95 and raw.min() > 0.8, (raw.mean(), raw.min())
    assert shape.mean() > 0.995 and shape.min() > 0.9, (shape.mean(), shape.min())


def test_network_inputs_follow_mnist_geometry(references):
    for x in references:
        assert x.shape == (784,) and x.dtype == np.float32 and x.flags.c_contiguous
        assert x.min() >= 0 and x.max() == 1
        field = x.reshape(28, 28)
        np.testing.assert_allclose(ndimage.center_of_mass(field), (14, 14), atol=0.1)
        rows, cols = np.nonzero(field > 0.5)
        longer = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
        assert 19 <= longer <= 21


@given(
    ink=st.lists(st.lists(st.floats(0, 1), min_size=9, max_size=9), min_size=5, max_size=5).map(np.array),
    repeat=st.integers(1, 9),
)
@HYPOTHESIS
def test_any_ink_map_gives_a_valid_input_or_none(ink, repeat):
    ink = np.kron(ink, np.ones((repeat, repeat)))  # blocky shapes, 5x9 up to 45x81 pixels
    x = preprocess(ink)
    if x is None:  # no ink, or only specks, a dot or a blob
        assert preprocess(ink.copy()) is None
        return
    assert x.shape == (784,) and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() == 1
    assert np.array_equal(x, preprocess(ink.copy()))  # deterministic


def test_a_thin_one_stays_a_visible_stroke():
    canvas = np.zeros((400, 400), np.float32)
    canvas[50:350, 200] = 1  # a '1' drawn one pixel wide, 300 pixels tall
    field = preprocess(canvas).reshape(28, 28)
    stroke = field > 0.5
    assert stroke.any(axis=1).sum() >= 18  # still ~20 px tall
    assert field.sum() / 20 >= pp.MIN_STROKE * 0.9  # about MIN_STROKE wide, not a faint hairline
    np.testing.assert_allclose(ndimage.center_of_mass(field), (14, 14), atol=0.1)


def test_thin_pens_are_thickened_towards_mnist_strokes(digits, references):
    # Digits redrawn with a pen ~1/4 as wide as MNIST's: thickening brings them back.
    scores = []
    for index in SAMPLE:
        ink = redraw(digits[index], 300, (320, 320), 10, 10)
        thin = ink * ndimage.binary_erosion(ink > 0.5, iterations=7)
        scores.append(similarity(preprocess(thin), references[index])[0])
    assert np.mean(scores) > 0.85, scores


def test_specks_far_from_the_digit_are_ignored(digits, references):
    ink = redraw(digits[3], 280, (400, 400), 100, 100)
    ink[5, 5] = ink[390, 12] = ink[8, 395] = 1.0
    assert similarity(preprocess(ink), references[3])[0] > 0.97


def test_exif_orientation_is_applied(digits, references, tmp_path):
    ink = redraw(digits[7], 200, (240, 240), 20, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(grey(np.rot90(ink), 255, 0)).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    assert similarity(preprocess_file(tmp_path / "turned.jpg"), references[7])[0] > 0.95


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (64, 48), 255),
        Image.new("L", (64, 48), 0),
        Image.new("RGB", (64, 48), (120, 130, 140)),
        Image.new("RGBA", (64, 48), (0, 0, 0, 0)),
        Image.new("RGBA", (64, 48), (255, 255, 255, 0)),
        Image.new("1", (64, 48), 1),
        Image.fromarray(np.full((48, 64), 30000, np.uint16)),
    ],
    ids=["white", "black", "grey RGB", "transparent black", "transparent white", "1-bit", "16-bit"],
)
def test_uniform_images_have_no_ink(image, tmp_path):
    image.save(tmp_path / "blank.png")
    assert preprocess_file(tmp_path / "blank.png") is None
    assert preprocess(to_ink(image)) is None


def test_near_blank_images_have_no_ink():
    rng = np.random.default_rng(0)
    paper = np.clip(200 + rng.normal(0, 2, (120, 160)), 0, 255).astype(np.uint8)  # JPEG-like noise
    assert preprocess(to_ink(paper)) is None
    paper[40:43, 70:72] -= 10  # a faint smudge
    assert preprocess(to_ink(paper)) is None
    assert preprocess(np.zeros((20, 20))) is None
    assert preprocess(np.full((20, 20), 0.6)) is None  # uniform ink is no drawing
    assert preprocess(np.where(np.eye(20) > 0, 0.15, 0.0)) is None  # only faint strokes
    specks = np.zeros((200, 200))
    specks[::12, ::12] = 1.0  # nothing but 289 scattered dots
    assert preprocess(specks) is None
    rows, cols = np.mgrid[0:100, 0:100]
    assert preprocess(np.hypot(rows - 50, cols - 40) < 12) is None  # a tapped dot, not a digit
    assert preprocess(np.pad(np.ones((3, 3)), 20)) is None  # too small to be a digit


def test_to_ink_polarity_and_alpha():
    digit = np.zeros((30, 30), np.uint8)
    digit[5:25, 12:17] = 255
    digit[5:25, (11, 17)] = 96  # anti-aliased edges
    expected = digit / 255
    np.testing.assert_allclose(to_ink(digit), expected, atol=1e-6)  # light on dark: as it is
    np.testing.assert_allclose(to_ink(255 - digit), expected, atol=1e-6)  # dark on light: inverted
    np.testing.assert_allclose(to_ink(expected), expected, atol=1e-6)  # floats in [0, 1]
    np.testing.assert_allclose(to_ink(digit.astype(np.uint16) * 257), expected, atol=1e-6)  # 16-bit
    for colour in (0, 128, 255):  # strokes of any colour on a transparent background
        ink = to_ink(rgba(digit / 255, colour))
        assert ink.dtype == np.float32 and ink.shape == (30, 30)
        np.testing.assert_allclose(ink, expected, atol=1e-6)
    # A GIF-style keyed image: fully opaque edges fading to the hidden white paper fade the ink.
    keyed = np.dstack([np.repeat(255 - digit[..., None], 3, axis=2), np.where(digit > 0, 255, 0)])
    np.testing.assert_allclose(to_ink(Image.fromarray(keyed.astype(np.uint8))), expected, atol=1e-6)
    # Transparent holes in opaque paper show paper, not ink.
    holes = keyed.astype(np.uint8)
    holes[..., 3] = 255
    holes[2:4, 2:4, 3] = 0
    np.testing.assert_allclose(to_ink(Image.fromarray(holes)), expected, atol=1e-6)
    assert not to_ink(Image.new("RGBA", (9, 9), (0, 0, 0, 0))).any()  # fully transparent


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 0)),
        np.zeros((0, 4), np.uint8),
        np.zeros((4, 4, 3)),
        np.full((4, 4), 2.0),
        np.full((4, 4), np.nan),
    ],
    ids=["0 wide", "0 tall", "3-D", "float above 1", "nan"],
)
def test_to_ink_refuses_unusable_arrays(bad):
    with pytest.raises(ImageError, match="to_ink: expected"):
        to_ink(bad)


def test_to_ink_refuses_a_zero_size_pil_image():
    with pytest.raises(ImageError, match="to_ink: expected a non-empty image"):
        to_ink(Image.new("L", (0, 3)))


@pytest.mark.parametrize(
    "bad",
    [np.zeros((3, 3, 3)), np.zeros((0, 5)), np.full((5, 5), 255, np.uint8), np.full((5, 5), np.inf)],
    ids=["3-D", "empty", "uint8 image", "inf"],
)
def test_preprocess_refuses_what_is_not_an_ink_map(bad):
    with pytest.raises(ValueError, match="preprocess: expected"):
        preprocess(bad)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height 8-bit grey pixels, with a token of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(64)))
        + chunk(b"IEND", b"")
    )


def truncated_png(path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


BAD_FILES = {
    "missing": lambda path: None,
    "directory": lambda path: path.mkdir(),
    "text named .png": lambda path: path.write_text("not an image\n"),
    "empty file": lambda path: path.write_bytes(b""),
    "truncated PNG": truncated_png,
    "zero-width PNG": lambda path: path.write_bytes(png_header(0, 5)),
    "over MAX_PIXELS": lambda path: path.write_bytes(png_header(7000, 7000)),
    "decompression bomb": lambda path: path.write_bytes(png_header(20_000, 20_000)),
    "bomb warning size": lambda path: path.write_bytes(png_header(10_000, 10_000)),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_raise_one_line_image_errors_naming_the_file(case, tmp_path):
    path = tmp_path / f"bad {case.replace(' ', '-')}.png"
    BAD_FILES[case](path)
    for read in (load_image, preprocess_file):
        with pytest.raises(ImageError) as caught:
            read(path)
        message = str(caught.value)
        assert path.name in message and "\n" not in message
        assert isinstance(caught.value, ValueError)


def test_max_pixels_is_checked_before_decoding(tmp_path, monkeypatch):
    Image.new("L", (40, 30), 255).save(tmp_path / "small.png")
    monkeypatch.setattr(pp, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError, match=r"small\.png: expected at most 1000 pixels, got 40x30"):
        load_image(tmp_path / "small.png")


@pytest.mark.parametrize(
    ("count", "labels", "scale"), [(1, False, 4), (3, True, 4), (12, True, 2), (10, False, 1)]
)
def test_contact_sheet_size_and_content(references, count, labels, scale):
    inputs = list(references[:count])
    captions = [f"#{i}" for i in range(count)] if labels else None
    sheet = contact_sheet(inputs, captions, scale=scale)
    columns, rows = min(count, 10), -(-count // 10)
    caption = 14 if labels else 0
    assert sheet.mode == "L"
    assert sheet.size == (columns * (28 * scale + 2) + 2, rows * (28 * scale + caption + 2) + 2)
    pixels = np.asarray(sheet)
    first = pixels[2 : 2 + 28 * scale : scale, 2 : 2 + 28 * scale : scale]
    np.testing.assert_array_equal(first, np.round(inputs[0].reshape(28, 28) * 255))
    strip = pixels[2 + 28 * scale : 2 + 28 * scale + caption, 2 : 2 + 28 * scale]
    assert (strip.size > 0 and strip.max() > 200) == labels  # a caption is drawn only with labels


def test_contact_sheet_refuses_bad_arguments(references):
    with pytest.raises(ValueError, match="at least one input"):
        contact_sheet([])
    with pytest.raises(ValueError, match="expected 2 labels"):
        contact_sheet(list(references[:2]), ["a"])
    with pytest.raises(ValueError, match="expected \\(784,\\) inputs"):
        contact_sheet([np.zeros(10)])
    with pytest.raises(ValueError, match="scale >= 1"):
        contact_sheet(list(references[:1]), scale=0)
