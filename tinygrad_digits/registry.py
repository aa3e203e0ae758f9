"""The names users choose from: activations, inits, optimizers, schedules, augmentations, presets.

Each is a tuple of plain strings, in the order the CLI lists them. The library's tables are keyed
by these names (an optimizer's update rule, an augmentation's recipe, a preset's fields), and the
CLI builds its choices from them. This module imports nothing, so ``digits --help`` can read it
without loading NumPy, Numba or the kernels.
"""

from __future__ import annotations

ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "sigmoid", "tanh")
INITS: tuple[str, ...] = ("auto", "he", "glorot", "normal")
OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam")
SCHEDULES: tuple[str, ...] = ("constant", "cosine")
AUGMENTATIONS: tuple[str, ...] = ("none", "shift", "affine", "elastic", "realistic")
PRESETS: tuple[str, ...] = ("best", "cnn")
