"""Turn drawn, scanned or photographed digits into the inputs MNIST trained the network on.

An *ink map* is a float32 ``(H, W)`` array in ``[0, 1]``, 1 = ink, 0 = paper, whatever the image's
colours. A *network input* is a C-contiguous float32 ``(784,)`` array in ``[0, 1]``: a 28x28 field,
rows first, ink = 1, made by MNIST's recipe: the digit's bounding box scaled (anti-aliased) so its
longer side is 20 px, keeping the aspect ratio, and its centre of mass put at (row 14, column 14).
We centre to sub-pixel precision (MNIST rounded to whole pixels), so shifting or rescaling a
drawing never makes its input jump by a pixel. ``None`` means "no ink": callers never guess.
Unusable images raise ``ImageError`` (a ``ValueError``) with a one-line message naming the file.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps
from scipy import ndimage

MAX_PIXELS = 40_000_000  # larger images are refused before decoding (decompression bombs)
MIN_INK = 0.2  # an ink map with a smaller range (max - min) holds no ink
NOISE = 0.1  # ink fainter than NOISE * peak is paper noise and is dropped
EDGE = 0.5  # an anti-aliased stroke's edge lies where it reaches half its peak
SPECK = 0.01  # connected blobs holding less than this share of all ink are specks
MIN_SPAN = 2.5  # a digit spans this many stroke widths or more (MNIST: 3.2); a dot spans 2
MIN_STROKE = 1.5  # thinnest stroke (28x28 pixels) we feed the net: MNIST's lower quartile
FULL_CONTRAST = 0.25  # weaker paper/ink contrast is not stretched to full ink
BOX, FIELD = 20, 28  # MNIST's digit box and field sizes, in pixels
SHEET_COLUMNS, GAP, CAPTION = 10, 2, 14  # contact sheet layout, in sheet pixels


class ImageError(ValueError):
    """An image that cannot be used; the one-line message names the file."""


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as a float32 ``(H, W)`` ink map in ``[0, 1]`` (see ``to_ink``).

    ``path`` may be any file Pillow reads (L, RGB, RGBA, LA, P with or without transparency,
    I;16, I, F, 1, ...); EXIF orientation is applied, multi-frame files give their first frame.
    Raises ImageError for a missing or unreadable file, a non-image, a zero-size image, or one
    over MAX_PIXELS pixels (checked from the header, before decoding).
    """
    path = Path(path)
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "no such file"
        raise ImageError(f"{path}: {problem}; expected an image file (PNG, JPEG, ...)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_size(image.size, str(path))  # from the header, before decoding
                image.load()
                image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: expected at most {MAX_PIXELS} pixels, got a decompression bomb") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image; expected a format Pillow reads (PNG, JPEG, ...)") from None
    except Exception as error:  # noqa: BLE001 - a broken or hostile file can raise any type
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise ImageError(f"{path}: unreadable image ({reason}); expected a complete image file") from None
    return _to_ink(image, str(path))


def to_ink(image: Image.Image | np.ndarray) -> np.ndarray:
    """Turn a PIL image (any mode) or a 2-D array into a float32 ``(H, W)`` ink map in ``[0, 1]``.

    Arrays may be uint8 0..255, bool, wider integers (scaled by their real range, e.g. 16-bit)
    or floats in ``[0, 1]``. Where alpha varies and the border is transparent, the opaque strokes
    are the ink whatever their colour. Otherwise the paper is the median of the 1-pixel border
    (transparent pixels show paper), the ink is the side, darker or lighter, reaching farther
    from it, and that contrast is stretched to 1 (contrasts below FULL_CONTRAST proportionally).
    Raises ImageError for arrays not 2-D, zero size, non-finite or out-of-range floats.
    """
    return _to_ink(image, "to_ink")


def preprocess(ink: np.ndarray) -> np.ndarray | None:
    """Prepare an ``(H, W)`` float ink map in ``[0, 1]`` the way MNIST digits were prepared.

    Returns a C-contiguous float32 ``(784,)`` network input in ``[0, 1]`` with peak 1: the digit's
    longer side 20 px, its centre of mass at (14, 14), strokes thinner than MIN_STROKE thickened;
    or ``None`` when there is no ink (the map's range, max - min, is below MIN_INK) or only a dot
    or blob (see MIN_SPAN). Faint noise and small specks are ignored. Raises ValueError unless ``ink`` is a non-empty 2-D array of
    finite values in ``[0, 1]``.
    """
    ink = np.asarray(ink)
    if ink.ndim != 2 or ink.size == 0 or ink.dtype.kind not in "biuf":
        raise ValueError(f"preprocess: expected a non-empty 2-D ink map, got {ink.dtype} {ink.shape}")
    ink = ink.astype(np.float32)
    if not (np.isfinite(ink).all() and ink.min() >= 0 and ink.max() <= 1):
        raise ValueError("preprocess: expected finite ink values in [0, 1]; use to_ink for images")
    if ink.max() - ink.min() < MIN_INK:  # blank, uniform or too faint to be a drawing
        return None
    ink = _without_noise(ink, float(ink.max()))
    if not ink.any():  # nothing but scattered specks
        return None
    ink /= ink.max()  # from here on the peak is 1, so that the result does not depend on it
    mask = ink >= EDGE
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    longer = int(max(rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]))
    # Stroke width = area / half-perimeter; thicken by r so (width + 2r) * 20 / (longer + 2r)
    # reaches MIN_STROKE, growing the box with the strokes.
    perimeter = sum(np.count_nonzero(np.diff(np.pad(mask, 1), axis=axis)) for axis in (0, 1))
    width = 2 * float(ink.sum()) / perimeter
    if longer < 4 or longer < MIN_SPAN * width:  # a dot or a blob, not a digit
        return None
    radius = max(0.0, (MIN_STROKE * longer - BOX * width) / (2 * BOX - 2 * MIN_STROKE))
    scale = BOX / (longer + 2 * radius)
    # Crop with room for the thickening and the filter's support, then average k x k blocks so
    # that huge photos cost no more than a ~200-pixel digit (still 10x the output's resolution).
    block = max(1, longer // 200)
    margin = math.ceil(radius + 4 / scale) + 2
    top, left = rows[0] - margin, cols[0] - margin
    side = -(-(longer + 2 * margin) // block) * block
    crop, mask = (_window(plane, top, left, side) for plane in (ink, mask))
    crop = crop.reshape(side // block, block, side // block, block).mean(axis=(1, 3))
    mask = mask.reshape(side // block, block, side // block, block).any(axis=(1, 3))
    radius, scale = radius / block, scale * block
    if radius > 0:  # a soft-edged disc dilation, continuous in the radius
        distance = ndimage.distance_transform_edt(~mask)
        crop = np.maximum(crop, np.clip(radius + 0.5 - distance, 0, 1))
    field = _centre(crop.astype(np.float32), scale)
    return np.ascontiguousarray((field / field.max()).ravel(), dtype=np.float32)


def preprocess_file(path: str | Path) -> np.ndarray | None:
    """``preprocess(load_image(path))``: float32 ``(784,)`` network input, or ``None`` if no ink."""
    return preprocess(load_image(path))


def contact_sheet(
    inputs: Sequence[np.ndarray], labels: Sequence[str] | None = None, scale: int = 4
) -> Image.Image:
    """Lay out network inputs as the network sees them, scaled up, with optional captions.

    ``inputs`` are float ``(784,)`` (or ``(28, 28)``) arrays in ``[0, 1]``; ``labels`` gives one
    caption per input (drawn under it) or None; ``scale`` is a whole-pixel magnification >= 1.
    Returns a mode "L" image of ``cols = min(n, 10)`` by ``rows = ceil(n / 10)`` cells, white ink
    on black with grey gutters, of size (width, height) = ``(cols * (28 * scale + 2) + 2,
    rows * (28 * scale + c + 2) + 2)`` where c = 14 with labels and 0 without.
    """
    if len(inputs) == 0:
        raise ValueError("contact_sheet: expected at least one input, got none")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"contact_sheet: expected an integer scale >= 1, got {scale!r}")
    if labels is not None and len(labels) != len(inputs):
        raise ValueError(f"contact_sheet: expected {len(inputs)} labels, got {len(labels)}")
    columns, cell = min(len(inputs), SHEET_COLUMNS), FIELD * scale
    caption = CAPTION if labels is not None else 0
    rows = math.ceil(len(inputs) / columns)
    size = (columns * (cell + GAP) + GAP, rows * (cell + caption + GAP) + GAP)
    sheet = Image.new("L", size, 96)
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for index, x in enumerate(inputs):
        x = np.asarray(x, dtype=np.float32)
        if x.size != FIELD * FIELD:
            raise ValueError(f"contact_sheet: expected (784,) inputs, got shape {x.shape}")
        pixels = np.round(np.clip(np.nan_to_num(x), 0, 1) * 255).astype(np.uint8)
        tile = Image.fromarray(pixels.reshape(FIELD, FIELD)).resize((cell, cell), Image.Resampling.NEAREST)
        left, top = GAP + (index % columns) * (cell + GAP), GAP + (index // columns) * (cell + caption + GAP)
        sheet.paste(tile, (left, top))
        if labels is not None:
            draw.text((left + 1, top + cell), str(labels[index]), fill=255, font=font)
    return sheet


def _check_size(size: tuple[int, int], source: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"{source}: expected a non-empty image, got {width}x{height} pixels")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{source}: expected at most {MAX_PIXELS} pixels, got {width}x{height}")


def _to_ink(image: Image.Image | np.ndarray, source: str) -> np.ndarray:
    alpha = None
    if isinstance(image, Image.Image):
        _check_size(image.size, source)
        if image.mode in ("I", "F") or image.mode.startswith("I;16"):
            lum = _scaled(np.asarray(image), source, strict=False)
        else:
            try:
                if image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
                    # via RGBA: Pillow's direct RGBa -> LA drops the alpha
                    rgba = image.convert("LA" if image.mode == "La" else "RGBA")
                    planes = np.asarray(rgba.convert("LA"), np.float32) / 255
                    lum, alpha = planes[..., 0], planes[..., 1]
                else:
                    lum = np.asarray(image.convert("L"), np.float32) / 255
            except ValueError:
                raise ImageError(f"{source}: unsupported image mode {image.mode}") from None
    else:
        array = np.asarray(image)
        if array.ndim != 2:
            raise ImageError(f"{source}: expected a 2-D (H, W) array, got shape {array.shape}")
        _check_size(array.shape[::-1], source)
        lum = _scaled(array, source, strict=True)
    return _polarity(lum, alpha)


def _scaled(array: np.ndarray, source: str, strict: bool) -> np.ndarray:
    """[0, 1] luminance: uint8 / 255, bool and [0, 1] floats as they are (other floats refused if
    ``strict``); wider data from its minimum over its range, at least 255 (8-bit values) or 4095."""
    if array.dtype in (np.uint8, bool):
        return array.astype(np.float32) / (255 if array.dtype == np.uint8 else 1)
    if array.dtype.kind not in "iuf":
        raise ImageError(f"{source}: expected numeric pixels, got dtype {array.dtype}")
    floats, array = array.dtype.kind == "f", array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ImageError(f"{source}: expected finite pixel values")
    low, high = float(array.min()), float(array.max())
    if floats and 0 <= low and high <= 1:
        return array.astype(np.float32)
    if strict and floats:
        raise ImageError(f"{source}: expected float pixels in [0, 1], got {low:g}..{high:g}")
    span = max(high - low, 255.0 if high <= 255 else 4095.0)
    return ((array - low) / span).astype(np.float32)


def _without_noise(ink: np.ndarray, peak: float) -> np.ndarray:
    """Zero ink fainter than NOISE * peak and connected blobs holding under SPECK of the ink."""
    ink = np.where(ink >= NOISE * peak, ink, 0).astype(np.float32)
    blobs, count = ndimage.label(ink > 0, structure=_EIGHT_NEIGHBOURS)
    if count > 1:
        mass = np.bincount(blobs.ravel(), ink.ravel(), minlength=count + 1)
        speck = mass < SPECK * mass[1:].sum()
        speck[0] = False  # label 0 is the paper
        ink[speck[blobs]] = 0
    return ink


_EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


def _centre_of_mass(plane: np.ndarray) -> np.ndarray:
    """(row, column) of the mass centre of a 2-D array, like ndimage.center_of_mass, cheaper."""
    total = float(plane.sum())
    rows = plane.sum(axis=1) @ np.arange(plane.shape[0]) / total
    cols = plane.sum(axis=0) @ np.arange(plane.shape[1]) / total
    return np.array([rows, cols])


def _window(plane: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """The ``(side, side)`` square of ``plane`` at (top, left), zero outside the plane."""
    inside = plane[max(top, 0) : top + side, max(left, 0) : left + side]
    before = (max(-top, 0), max(-left, 0))
    return np.pad(inside, [(b, side - b - n) for b, n in zip(before, inside.shape)])


def _polarity(lum: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    border = np.ones(lum.shape, bool)
    border[1:-1, 1:-1] = False
    if alpha is not None and float(alpha.max() - alpha.min()) > 0.1:
        if np.median(alpha[border]) < 0.5:
            # Transparent paper: opaque strokes are ink whatever their colour, but an opaque fringe
            # fading to the hidden paper colour (a GIF's anti-aliasing) fades the ink with it.
            fade = np.abs(lum - float(np.median(lum[alpha < 0.5])))
            contrast = float(fade[alpha >= float(alpha.max()) / 2].max())
            fade = np.clip(fade / contrast, 0, 1) if contrast >= FULL_CONTRAST else 1
            return (alpha * fade).astype(np.float32)
        paper = float(np.median(lum[border & (alpha >= 0.5)]))
        lum = alpha * lum + (1 - alpha) * paper
    elif alpha is not None and float(alpha.max()) < 1 / 255:  # fully transparent: nothing drawn
        return np.zeros(lum.shape, np.float32)
    paper = float(np.median(lum[border]))
    dark, light = paper - float(lum.min()), float(lum.max()) - paper
    ink = (paper - lum) if dark > light else (lum - paper)
    return np.clip(ink / max(dark, light, FULL_CONTRAST), 0, 1).astype(np.float32)


def _centre(crop: np.ndarray, scale: float) -> np.ndarray:
    """Resample ``crop`` by ``scale`` (Lanczos, anti-aliased) onto the 28x28 field so that its
    centre of mass lands on (14, 14); a second pass corrects for the clipped filter ringing."""
    pad = math.ceil(1 / scale) + 2  # Pillow's box must stay inside the image
    image = Image.fromarray(np.pad(crop, pad))
    centre = _centre_of_mass(crop) + 0.5 + pad  # in pixel-edge coordinates
    for _ in range(2):
        origin = centre - (FIELD // 2 + 0.5) / scale  # the field's corner, in the source
        low = np.clip(np.floor((pad - origin) * scale), 0, FIELD).astype(int)
        high = np.clip(np.ceil((pad + np.array(crop.shape) - origin) * scale), 0, FIELD).astype(int)
        box = (*(origin + low / scale)[::-1], *(origin + high / scale)[::-1])  # left, top, ...
        part = image.resize(tuple(high - low)[::-1], Image.Resampling.LANCZOS, box=box)
        field = np.zeros((FIELD, FIELD), np.float32)
        field[low[0] : high[0], low[1] : high[1]] = np.clip(part, 0, 1)
        centre += (_centre_of_mass(field) - FIELD // 2) / scale
    return field
