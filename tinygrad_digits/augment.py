"""On-the-fly augmentation of MNIST-style square images: random shifts, rotations, scalings and
(optionally) elastic distortion, resampled bilinearly by one Numba kernel (``kernels/augment``);
then, for digits from other sources, stroke thickness, blur, low resolution (``kernels/ink``),
contrast and background noise, each applied to a random share of the images.

Contract: images are rows (n, side * side) of a float dtype, returned as a new array of the same
shape and dtype; labels are never touched (the transforms are small enough to keep a digit the
digit it was). Randomness comes in as an ``np.random.Generator``: the same generator state gives
the same images. All draws happen here, in NumPy, before any kernel runs; the kernels are
deterministic, and a share of the batch goes through all of them in one go, in the calling thread
or one share per thread at once, with the same bits (CHOICE decides, by what is faster).

``AUGMENTATIONS`` names the recipes the CLI offers (``--augment``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import registry
from .kernels import augment as _augment
from .kernels import ink as _ink
from .thread_choice import ThreadChoice

PARALLEL_IMAGES = 16  # fewer images than this are augmented in the calling thread
CHOICE = ThreadChoice()  # otherwise a batch is augmented here or shared among threads, the faster now
_FILTERS = {"thickness": _ink.thickness, "blur": _ink.blur, "low_res": _ink.low_resolution}


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transform, each drawn uniformly and independently per image.

    max_shift: pixels, along each axis (the shift is continuous, in [-max_shift, max_shift]).
    max_rotation: degrees, either way. max_scale: relative size change, scale in
    [1 - max_scale, 1 + max_scale]. elastic: standard deviation, in pixels, of the random
    displacement at each of ``elastic_grid`` x ``elastic_grid`` control points, interpolated
    smoothly in between (0: no elastic distortion); a cheap stand-in for the Gaussian-smoothed
    random field of Simard et al. (2003).

    The ink changes, each applied to an image with probability ``ink_share``: thickness: the
    strokes grow by up to this many pixels or shrink by up to half that (grey dilation or erosion:
    MNIST's thin strokes would break); blur: a Gaussian
    of standard deviation up to this many pixels; low_res: the image is scaled down to a side
    drawn from [low_res, side - 1] pixels and back up (0: never); contrast: every image's peak is
    brought to 1 (as preprocessing leaves a digit from any source), then the ink is raised to a
    power exp(u), u in [-contrast, contrast], and the paper rises by up to a quarter of
    ``contrast``; noise: Gaussian noise of standard deviation up to this, in [0, 1] pixel units,
    clipped to [0, 1].
    """

    max_shift: float = 2.0
    max_rotation: float = 10.0
    max_scale: float = 0.1
    elastic: float = 0.0
    elastic_grid: int = 5
    thickness: float = 0.0
    blur: float = 0.0
    low_res: int = 0
    contrast: float = 0.0
    noise: float = 0.0
    ink_share: float = 0.5

    def __post_init__(self):
        for name in ("max_shift", "max_rotation", "max_scale", "elastic", "thickness", "blur", "contrast", "noise"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"AugmentConfig: {name} must be a finite number >= 0, got {value}")
        if self.max_scale >= 1:
            raise ValueError(
                f"AugmentConfig: max_scale must be < 1 (a scale of 1 +- max_scale), got {self.max_scale}"
            )
        for name, top in (("thickness", 3), ("blur", 3), ("contrast", 2), ("noise", 0.5), ("ink_share", 1)):
            if not 0 <= getattr(self, name) <= top:
                raise ValueError(f"AugmentConfig: {name} must lie in [0, {top}], got {getattr(self, name)}")
        if self.low_res != 0 and not 4 <= self.low_res:
            raise ValueError(f"AugmentConfig: low_res must be 0 (off) or a side >= 4 pixels, got {self.low_res}")
        if self.elastic_grid < 2:
            raise ValueError(
                f"AugmentConfig: elastic_grid must be >= 2 control points, got {self.elastic_grid}"
            )

    def to_json(self) -> dict:
        return asdict(self)


_RECIPES: dict[str, AugmentConfig | None] = {
    "none": None,
    "shift": AugmentConfig(max_shift=2.0, max_rotation=0.0, max_scale=0.0),
    "affine": AugmentConfig(max_shift=2.0, max_rotation=10.0, max_scale=0.1),
    "elastic": AugmentConfig(max_shift=2.0, max_rotation=10.0, max_scale=0.1, elastic=1.0),
    # digits from other sources: elastic's distortions, then, each on 30% of the images, thicker or
    # thinner pens, blur, low resolution (10-27 px), stroke edges fainter or bolder, a lighter paper, background noise
    "realistic": AugmentConfig(max_shift=2.0, max_rotation=10.0, max_scale=0.1, elastic=1.0, thickness=1.0,
                               blur=1.0, low_res=10, contrast=0.5, noise=0.05, ink_share=0.3),
}
AUGMENTATIONS: dict[str, AugmentConfig | None] = {name: _RECIPES[name] for name in registry.AUGMENTATIONS}


def augmentation(name: str) -> AugmentConfig | None:
    """The recipe called ``name`` in ``AUGMENTATIONS`` (None for ``none``)."""
    try:
        return AUGMENTATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown augmentation {name!r}: expected one of {', '.join(AUGMENTATIONS)}"
        ) from None


def _side(images: np.ndarray) -> int:
    side = math.isqrt(images.shape[1]) if images.ndim == 2 else 0
    if images.ndim != 2 or side * side != images.shape[1] or side < 2:
        raise ValueError(
            f"augment: expected square images as rows (n, side * side), got shape {images.shape}"
        )
    return side


def warp(images: np.ndarray, matrices: np.ndarray, offsets: np.ndarray, fields: np.ndarray | None = None,
         fill: float = 0.0) -> np.ndarray:
    """Resample each image through its transform (deterministic; see ``kernels/augment``).

    images (n, side * side) float; matrices (n, 2, 2) map output to input coordinates about
    the centre; offsets (n, 2) are shifts in pixels (row, column); fields (n, 2, g, g) the
    displacement control points, or None. Pixels from outside the image take ``fill``.
    Returns (n, side * side) of the images' dtype.
    """
    images = _float_rows(images)
    return _in_parts(images, fill, 1.0, _geometry(len(images), matrices, offsets, fields), None)


def _float_rows(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype.kind != "f":
        images = images.astype(np.float32)
    _side(images)
    return images


def _geometry(n: int, matrices, offsets, fields) -> tuple:
    """The warp's (matrices, offsets, fields) as the kernel takes them, their shapes checked."""
    matrices = np.ascontiguousarray(matrices, dtype=np.float64)
    offsets = np.ascontiguousarray(offsets, dtype=np.float64)
    fields = np.zeros((n, 2, 0, 0)) if fields is None else np.ascontiguousarray(fields, dtype=np.float64)
    if matrices.shape != (n, 2, 2) or offsets.shape != (n, 2) or fields.shape[:2] != (n, 2):
        raise ValueError(
            f"augment.warp: expected matrices ({n}, 2, 2), offsets ({n}, 2) and fields ({n}, 2, g, g), "
            f"got {matrices.shape}, {offsets.shape} and {fields.shape}"
        )
    if fields.shape[2] == 1 or fields.shape[2] != fields.shape[3]:
        raise ValueError(
            f"augment.warp: fields need g x g control points with g = 0 or g >= 2, got {fields.shape}"
        )
    return matrices, offsets, fields


def random_transforms(config: AugmentConfig, n: int, rng: np.random.Generator):
    """Draw n transforms: (matrices (n, 2, 2), offsets (n, 2), fields (n, 2, g, g) or None).

    The draws, in this order: rotation angles, scales, shifts, then the elastic control points.
    """
    angles = np.deg2rad(rng.uniform(-config.max_rotation, config.max_rotation, n))
    scales = rng.uniform(1.0 - config.max_scale, 1.0 + config.max_scale, n)
    offsets = rng.uniform(-config.max_shift, config.max_shift, (n, 2))
    # output -> input coordinates: the inverse of "rotate by angle, scale by s" is R(-angle) / s
    cos, sin = np.cos(angles) / scales, np.sin(angles) / scales
    matrices = np.empty((n, 2, 2))
    matrices[:, 0, 0], matrices[:, 0, 1] = cos, sin
    matrices[:, 1, 0], matrices[:, 1, 1] = -sin, cos
    fields = None
    if config.elastic > 0:
        g = config.elastic_grid
        fields = rng.normal(0.0, config.elastic, (n, 2, g, g))
    return matrices, offsets, fields


def augment_batch(
    config: AugmentConfig, images: np.ndarray, rng: np.random.Generator, fill: float = 0.0, scale: float = 1.0
) -> np.ndarray:
    """Randomly transformed copies of images (n, side * side), same dtype; see the module doc.

    ``fill`` is the background value: 0 for raw [0, 1] images, ``-mean / std`` for standardized
    ones (bilinear sampling commutes with that affine map, so either order gives the same), and
    ``scale`` the std (1 for raw images): contrast and noise act on raw pixel values.
    The geometric draws come first (``random_transforms``), then those of the ink changes in the
    order of the config's fields, each only when it is on: a recipe without them draws as before.
    """
    images = _float_rows(images)
    geometry = _geometry(len(images), *random_transforms(config, len(images), rng))
    return _in_parts(images, fill, scale, geometry, _InkDraws(config, images, rng))


def ink_changes(config: AugmentConfig, images: np.ndarray, rng: np.random.Generator, fill: float = 0.0,
                scale: float = 1.0) -> np.ndarray:
    """The config's thickness, blur, low resolution, contrast and noise on a random share of
    images (n, side * side); returns a new array (or ``images`` itself when all are off).

    Contrast: as preprocessing leaves every input, each image's peak is brought to 1 (blur and
    low resolution lower it), then the chosen images take a gamma (fainter or bolder stroke
    edges) and a lighter paper. All draws are NumPy's, in a fixed order; kernels/ink applies them.
    """
    images = _float_rows(images)
    ink = _InkDraws(config, images, rng)
    return _in_parts(images, fill, scale, None, ink) if ink.stages else images


class _InkDraws:
    """Every draw of the config's ink changes for the images, in the order of the config's fields
    (each only when it is on), one row per image; ``stages`` names the kernels that apply them."""

    def __init__(self, config: AugmentConfig, images: np.ndarray, rng: np.random.Generator):
        n, side, dtype = len(images), _side(images), images.dtype.type

        def chosen() -> np.ndarray:
            return rng.random(n) < config.ink_share

        self.stages = [name for name in ("thickness", "blur", "low_res") if getattr(config, name)]
        if config.thickness:
            amounts = rng.uniform(-config.thickness / 2, config.thickness, n)
            self.thickness = np.ascontiguousarray(amounts * chosen())
        if config.blur:
            self.blur = np.ascontiguousarray(rng.uniform(0, config.blur, n) * chosen())
        if config.low_res:
            self.low_res = np.where(chosen(), rng.integers(config.low_res, side, n), side).astype(np.int64)
        self.raw, self.toned = bool(config.contrast), np.full(n, -1, np.int64)  # toned: a row of gamma
        self.gamma, self.paper = np.zeros((0, 1), dtype), np.zeros(n, dtype)
        if config.contrast:
            on = np.flatnonzero(chosen())
            gamma = np.exp(rng.uniform(-config.contrast, config.contrast, len(on)))
            self.gamma = gamma.astype(dtype)[:, None]
            self.toned[on], self.paper[on] = np.arange(len(on)), rng.uniform(0, config.contrast / 4, len(on))
        self.noisy, self.sigma = np.full(n, -1, np.int64), np.zeros(n, dtype)  # noisy: a row of normals
        self.normals = np.zeros((0, side * side), dtype)
        if config.noise:
            on = np.flatnonzero(chosen())
            self.noisy[on], self.sigma[on] = np.arange(len(on)), rng.uniform(0, config.noise, len(on))
            normals = rng.standard_normal((len(on), side * side), dtype=np.float32)
            self.normals = normals.astype(dtype, copy=False)
        self.stages += ["peak_one"] * self.raw + ["tone"] * bool(config.contrast or config.noise)


def _in_parts(images: np.ndarray, fill: float, scale: float, geometry: tuple | None, ink: _InkDraws | None):
    """The warp (``geometry``: its matrices, offsets and fields), then the ink kernels (``ink``),
    on the images, into a new array. A share of the images goes through all of them at once, in
    the calling thread or one share per thread at the same time, whichever is faster at the
    moment (CHOICE): every image's pixels are the same either way."""
    images = np.ascontiguousarray(images)
    side, dtype = _side(images), images.dtype.type
    mean = dtype(-fill * scale)  # raw = x * scale + mean; raw paper is 0
    fill, scale = dtype(fill), dtype(scale)
    stages = (["warp"] if geometry is not None else []) + (ink.stages if ink is not None else [])
    out = np.empty_like(images)
    spare = np.empty_like(images) if len(stages) > 1 else out

    def run(lo: int, hi: int) -> None:
        # stage i writes out when an even number of stages follow it, else spare: the last writes out
        source, targets = images[lo:hi], (out[lo:hi], spare[lo:hi])
        for i, stage in enumerate(stages):
            target = targets[(len(stages) - 1 - i) % 2]
            if stage == "warp":
                _augment.warp(source, target, side, *(a[lo:hi] for a in geometry), fill)
            elif stage == "peak_one":  # every image's raw peak to 1
                _ink.peak_one(source, target, scale, mean, dtype(1e-3))
            elif stage == "tone":
                toned, powered = ink.toned[lo:hi], np.zeros((0, side * side), dtype)
                if ink.raw:  # the chosen images' pixels raised to their gamma
                    on = np.flatnonzero(toned >= 0)
                    powered = np.power(np.clip(source[on], 0, 1), ink.gamma[toned[on]])
                    toned = np.full(hi - lo, -1, np.int64)
                    toned[on] = np.arange(len(on))
                _ink.tone(source, target, scale, mean, dtype(1), ink.raw, toned, ink.paper[lo:hi],
                          1 - ink.paper[lo:hi], powered, ink.noisy[lo:hi], ink.sigma[lo:hi], ink.normals)
            else:  # thickness, blur, low_res: one parameter per image
                _FILTERS[stage](source, target, side, getattr(ink, stage)[lo:hi], fill)
            source = target

    CHOICE.split(tuple(stages), len(images), PARALLEL_IMAGES, run)
    return out


class BatchAugmenter:
    """The training loop's hook: ``augmenter(xb, rng) -> xb`` for batches of normalized inputs,
    rows (n, side * side) or images (n, side, side, 1), returned in the shape they came in.

    Built from a config, the background value of the network's inputs and their std (the
    input scaling's; 1 for raw images); picklable.
    """

    def __init__(self, config: AugmentConfig, fill: float = 0.0, scale: float = 1.0):
        self.config, self.fill, self.scale = config, float(fill), float(scale)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = xb.reshape(len(xb), -1)  # images (n, 28, 28, 1) are rows of pixels too
        return augment_batch(self.config, rows, rng, self.fill, self.scale).reshape(xb.shape)

    def __repr__(self) -> str:
        return f"BatchAugmenter({self.config}, fill={self.fill}, scale={self.scale})"
