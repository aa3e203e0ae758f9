"""On-the-fly augmentation of MNIST-style square images: random shifts, rotations, scalings and
(optionally) elastic distortion, resampled bilinearly by one Numba kernel (``kernels/augment``).

Contract: images are rows (n, side * side) of a float dtype, returned as a new array of the same
shape and dtype; labels are never touched (the transforms are small enough to keep a digit the
digit it was). Randomness comes in as an ``np.random.Generator``: the same generator state gives
the same images. All draws happen here, in NumPy; the kernel is deterministic.

``AUGMENTATIONS`` names the recipes the CLI offers (``--augment``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import registry
from .kernels import augment as _augment


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transform, each drawn uniformly and independently per image.

    max_shift: pixels, along each axis (the shift is continuous, in [-max_shift, max_shift]).
    max_rotation: degrees, either way. max_scale: relative size change, scale in
    [1 - max_scale, 1 + max_scale]. elastic: standard deviation, in pixels, of the random
    displacement at each of ``elastic_grid`` x ``elastic_grid`` control points, interpolated
    smoothly in between (0: no elastic distortion); a cheap stand-in for the Gaussian-smoothed
    random field of Simard et al. (2003).
    """

    max_shift: float = 2.0
    max_rotation: float = 10.0
    max_scale: float = 0.1
    elastic: float = 0.0
    elastic_grid: int = 5

    def __post_init__(self):
        for name in ("max_shift", "max_rotation", "max_scale", "elastic"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"AugmentConfig: {name} must be a finite number >= 0, got {value}")
        if self.max_scale >= 1:
            raise ValueError(
                f"AugmentConfig: max_scale must be < 1 (a scale of 1 +- max_scale), got {self.max_scale}"
            )
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


def warp(
    images: np.ndarray,
    matrices: np.ndarray,
    offsets: np.ndarray,
    fields: np.ndarray | None = None,
    fill: float = 0.0,
) -> np.ndarray:
    """Resample each image through its transform (deterministic; see ``kernels/augment``).

    images (n, side * side) float; matrices (n, 2, 2) map output to input coordinates about
    the centre; offsets (n, 2) are shifts in pixels (row, column); fields (n, 2, g, g) the
    displacement control points, or None. Pixels from outside the image take ``fill``.
    Returns (n, side * side) of the images' dtype.
    """
    images = np.asarray(images)
    if images.dtype.kind != "f":
        images = images.astype(np.float32)
    side = _side(images)
    n = len(images)
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
    images = np.ascontiguousarray(images)
    out = np.empty_like(images)
    return _augment.warp(images, out, side, matrices, offsets, fields, images.dtype.type(fill))


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
    config: AugmentConfig, images: np.ndarray, rng: np.random.Generator, fill: float = 0.0
) -> np.ndarray:
    """Randomly transformed copies of images (n, side * side), same dtype; see the module doc.

    ``fill`` is the background value: 0 for raw [0, 1] images, ``-mean / std`` for standardized
    ones (bilinear sampling commutes with that affine map, so either order gives the same).
    """
    matrices, offsets, fields = random_transforms(config, len(images), rng)
    return warp(images, matrices, offsets, fields, fill)


class BatchAugmenter:
    """The training loop's hook: ``augmenter(xb, rng) -> xb`` for batches of normalized inputs.

    Built from a config and the background value of the network's inputs; picklable.
    """

    def __init__(self, config: AugmentConfig, fill: float = 0.0):
        self.config, self.fill = config, float(fill)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = xb.reshape(len(xb), -1)  # images (n, 28, 28, 1) are rows of pixels too
        return augment_batch(self.config, rows, rng, self.fill).reshape(xb.shape)

    def __repr__(self) -> str:
        return f"BatchAugmenter({self.config}, fill={self.fill})"
