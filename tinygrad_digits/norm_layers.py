"""``BatchNorm``, the layer of ``ops.batch_norm``, and the statistics it normalizes with at
inference (``refresh_statistics``).

While training (an rng given) the layer normalizes by the batch's own mean and variance; at
inference by its params ``mean`` and ``var``. Those two are statistics, not trained: the
training loop leaves them out of the gradient and the optimizer and, after every epoch, sets
them to the population statistics of a sample of training images, each layer's over its own
inputs with the layers before it already set ("precise BatchNorm", Wu and Johnson 2021). A
moving average of the batches' statistics, Keras's way, would average augmented batches from
parameters that kept changing; the inference statistics are those of the images as they are
read, by the final parameters.
"""

from __future__ import annotations

import contextvars

import numpy as np

from . import layers as _layers
from . import ops
from .norm_ops import EPSILON, moments

STATISTICS = ("mean", "var")  # a BatchNorm's params that are not trained
SAMPLE = 4096  # training images the statistics are measured over
CHUNK = 512  # images per forward pass while measuring

_MEASURING = contextvars.ContextVar("batch_norm_measuring", default=None)


class BatchNorm(_layers.Layer):
    """Normalizes each channel (the last axis): by the batch's statistics while training and by
    ``mean`` and ``var`` at inference, then scales by ``gamma`` and shifts by ``beta``."""

    kind = "batchnorm"
    has_params = True

    def __init__(self, epsilon: float = EPSILON):
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < 1:
            raise ValueError(f"BatchNorm: epsilon must be a number in (0, 1), got {epsilon!r}")
        self.epsilon = float(epsilon)

    def init(self, rng, input_shape, dtype=np.float32):
        channels = int(tuple(input_shape)[-1])
        ones, zeros = np.ones(channels, dtype), np.zeros(channels, dtype)
        return {"gamma": ones, "beta": zeros, "mean": zeros.copy(), "var": ones.copy()}

    def apply(self, params, x, rng=None):
        if rng is not None:
            return ops.batch_norm(x, params["gamma"], params["beta"], self.epsilon)
        measuring = _MEASURING.get()
        if measuring is not None:
            measuring.see(params["mean"], x)
        return ops.batch_norm_inference(
            x, params["gamma"], params["beta"], params["mean"], params["var"], self.epsilon
        )

    def _fields(self):
        return {} if self.epsilon == EPSILON else {"epsilon": self.epsilon}


def statistic_keys(layer: _layers.Layer, prefix: str = "") -> list[str]:
    """The keys of the params of ``layer`` that are statistics (BatchNorm's mean and var), in
    the order a forward pass reaches them."""
    if isinstance(layer, BatchNorm):
        return [prefix + key for key in STATISTICS]
    if isinstance(layer, _layers.Sequential):
        return [key for name, child in zip(layer.names, layer.layers) for key in statistic_keys(child, f"{prefix}{name}.")]
    if isinstance(layer, _layers.Residual):
        return statistic_keys(layer.block, prefix + "block.")
    return []


class _Stop(Exception):
    """Raised by the layer measured, to end the forward pass there."""


class _Measure:
    """Sums the inputs of the ``target``-th BatchNorm a forward pass reaches."""

    def __init__(self, target: int):
        self.target, self.reached, self.mean_array = target, 0, None
        self.total = self.squares = 0.0
        self.count = 0

    def see(self, mean_array, x):
        index, self.reached = self.reached, self.reached + 1
        if index < self.target:
            return
        total, squares, count = moments(np.asarray(x))
        self.mean_array = mean_array
        self.total, self.squares, self.count = self.total + total, self.squares + squares, self.count + count
        raise _Stop


def refresh_statistics(model: _layers.Layer, params: dict, images: np.ndarray) -> None:
    """Sets every BatchNorm's ``mean`` and ``var`` in params (in place) to the statistics of its
    inputs over ``images`` (normalized model inputs), the layers in the order a forward pass
    reaches them, each measured with the ones before it set."""
    keys = statistic_keys(model)
    by_array = {id(params[key]): key for key in keys[::2]}
    for target in range(len(keys) // 2):
        measure = _Measure(target)
        token = _MEASURING.set(measure)
        try:
            for start in range(0, len(images), CHUNK):
                measure.reached = 0
                try:
                    model.apply(params, images[start : start + CHUNK])
                except _Stop:
                    pass
        finally:
            _MEASURING.reset(token)
        if measure.mean_array is None:
            continue
        key = by_array[id(measure.mean_array)]
        mean = measure.total / measure.count
        var = np.maximum(measure.squares / measure.count - mean * mean, 0.0)
        params[key][...] = mean
        params[key[: -len("mean")] + "var"][...] = var


def sample(images: np.ndarray, seed: int) -> np.ndarray:
    """The training images the statistics are measured over: SAMPLE of them (all, if fewer),
    drawn once from the seed."""
    if len(images) <= SAMPLE:
        return images
    chosen = np.random.default_rng((seed, 2)).choice(len(images), SAMPLE, replace=False)
    return images[np.sort(chosen)]


_layers._TYPES["BatchNorm"] = BatchNorm
