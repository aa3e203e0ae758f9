"""Training on more than MNIST: extra labelled images beside it, and continuing from a saved model.

``ExtraImages`` holds a folder's images (``image_folders``) split into a part that joins the
training set, each image repeated ``weight`` times, and a seeded held-out part scored after every
epoch. ``Start`` is a saved model to continue from: its architecture and input scaling are kept,
its parameters are the starting point, and the optimizer starts afresh. ``adapt`` applies both
to what ``training.prepare`` built; ``training.train_and_save`` calls it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import paths

# Each extra image is repeated this many times by default: 40 drawings then make 1,200 of the
# 48,000 training images (2.5%), enough to move the answers on those digits, too few to crowd out
# MNIST (the model still sees every MNIST digit once per epoch).
EXTRA_WEIGHT = 30
HELD_OUT = 0.2  # share of the extra images held out and scored after every epoch (>= 1 from 5 images)
FINE_TUNE_EPOCHS = 3
FINE_TUNE_LR = {"adam": 5e-4, "momentum": 0.01, "sgd": 0.02}  # a fifth or less of a fresh run's


@dataclass
class ExtraImages:
    """Raw [0, 1] images float32 ``(n, 784)`` with int64 labels: ``x_train``/``y_train`` join the
    training set ``weight`` times each; ``x_held``/``y_held`` are scored after every epoch."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_held: np.ndarray
    y_held: np.ndarray
    weight: int
    source: str = ""

    def to_json(self) -> dict:
        return {"folder": self.source, "weight": self.weight, "train_images": len(self.y_train),
                "held_out_images": len(self.y_held)}


def extra_images(folder, weight: int = EXTRA_WEIGHT, seed: int = 0, share: float = HELD_OUT) -> ExtraImages:
    """An ``image_folders.ImageFolder`` as ExtraImages, with a seeded held-out share."""
    from .image_folders import held_out_split

    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
        raise ValueError(f"extra_images: expected a weight >= 1, got {weight!r}")
    train, held = held_out_split(folder, share, seed)
    return ExtraImages(folder.images[train], folder.labels[train], folder.images[held], folder.labels[held],
                       weight, str(folder.root))


@dataclass
class Start:
    """A saved model to continue from: ``model`` (ModelSpec or Network), ``params``, its file."""

    model: object
    params: dict
    path: Path

    @classmethod
    def load(cls, path: str | Path) -> Start:
        from ..modelfile import load_model

        model, params, _ = load_model(path)
        if model.inputs != 784 or model.outputs != 10:
            raise ValueError(f"{path}: expected a 784-input, 10-class model, got {model.describe()}")
        return cls(model, params, Path(path))


def adapt(prepared, run, extra: ExtraImages | None, start: Start | None):
    """``prepared`` (a training.Prepared) with the extra images appended to its training images
    and, from ``start``, its model and parameters (copies) in place of fresh ones; the
    optimizer's schedule spans the larger training set."""
    from .. import train as T

    if extra is not None and len(extra.y_train):
        prepared.x_train = np.concatenate([prepared.x_train, np.repeat(extra.x_train, extra.weight, axis=0)])
        prepared.y_train = np.concatenate([prepared.y_train, np.repeat(extra.y_train, extra.weight)])
    if start is not None:
        prepared.spec = start.model
        prepared.params = {k: np.array(v, dtype=np.float32) for k, v in start.params.items()}
    steps = run.epochs * T.steps_per_epoch(len(prepared.x_train), run.batch_size)
    prepared.optimizer = replace(prepared.optimizer, total_steps=steps)
    return prepared


def accuracy(model, params: dict, images: np.ndarray, labels: np.ndarray) -> float | None:
    """The share of raw images (n, 784) the model reads right; None for no images."""
    from ..model import predict_proba

    if not len(labels):
        return None
    return float(np.mean(np.argmax(predict_proba(model, params, images), axis=1) == labels))


def tuned_path(source: str | Path) -> Path:
    """Where a model fine-tuned from ``source`` goes by default: ``<models dir>/<name>-tuned.npz``
    (a file already so named gives ``<name>-tuned-2.npz``), never ``source`` itself."""
    base = re.sub(r"-tuned(-\d+)?$", "", Path(source).stem)
    for n in range(1, 1000):
        path = paths.models_dir() / (f"{base}-tuned.npz" if n == 1 else f"{base}-tuned-{n}.npz")
        if path.resolve() != Path(source).resolve():
            return path
    raise AssertionError("unreachable")
