"""tinygrad-digits: a small, fast, honest neural-network framework for handwritten digits.

The public surface is listed in ``__all__`` and loaded lazily, so that importing the package
(as ``digits --help`` does) costs neither Numba nor the kernels. The training loop is
``tinygrad_digits.train.train`` (the name ``train`` here is its module).
"""

from __future__ import annotations

import importlib
import os
import sys

__version__ = "0.1.0"

# Compiled kernels are cached per user, so a read-only install still starts warm. Numba reads
# the variable when it is imported; if it already was, its config is set directly.
if not os.environ.get("NUMBA_CACHE_DIR"):
    from .paths import cache_dir

    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir() / "numba")
    if "numba" in sys.modules:
        sys.modules["numba"].config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

_EXPORTS = {
    "value_and_grad": "autodiff",
    "grad": "autodiff",
    "Dense": "layers",
    "Activation": "layers",
    "Relu": "layers",
    "LeakyRelu": "layers",
    "Sigmoid": "layers",
    "Tanh": "layers",
    "Dropout": "layers",
    "Flatten": "layers",
    "Sequential": "layers",
    "Residual": "layers",
    "Conv2D": "conv_layers",
    "MaxPool2D": "conv_layers",
    "AvgPool2D": "conv_layers",
    "Network": "network",
    "ModelSpec": "model",
    "init_params": "model",
    "predict_proba": "model",
    "predict": "model",
    "OptimizerConfig": "optimizers",
    "TrainConfig": "train",
    "save_model": "modelfile",
    "load_model": "modelfile",
    "load_splits": "data",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
