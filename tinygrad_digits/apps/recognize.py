"""Recognize digits in image files and drawings: the logic behind ``digits predict`` and ``digits draw``.

Every path ends in the same steps: an ink map (``preprocess``'s float32 ``(H, W)`` in ``[0, 1]``,
1 = ink) becomes a network input (float32 ``(784,)``, or ``None`` when there is no ink), and a
loaded ``Recognizer`` turns inputs into a ``Prediction``: ten probabilities (float32 ``(10,)``,
summing to 1) or "no digit", never a guess. Drawings come from ``drawing.Sketch`` as ink maps.
Nothing here imports tkinter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from . import training as app
from .drawing import drawing_ink  # noqa: F401  (the ink map of a drawing, also read from here)
from .preprocess import contact_sheet, preprocess, preprocess_file

NO_DIGIT = "no digit"


@dataclass(frozen=True)
class Prediction:
    """What the network made of one image.

    ``probs``: float32 ``(10,)`` class probabilities, or None when the image holds no ink.
    ``input``: the float32 ``(784,)`` network input it saw, or None likewise.
    """

    probs: np.ndarray | None
    input: np.ndarray | None

    @property
    def label(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))

    @property
    def confidence(self) -> float | None:
        return None if self.probs is None else float(np.max(self.probs))

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        """The k likeliest digits as (digit, probability), likeliest first; [] for no digit."""
        if self.probs is None:
            return []
        order = np.argsort(-self.probs, kind="stable")[:k]
        return [(int(d), float(self.probs[d])) for d in order]

    def describe(self) -> str:
        """``"7 (98.2%)"``, or ``"no digit"``."""
        if self.probs is None:
            return NO_DIGIT
        return f"{self.label} ({100 * self.confidence:.1f}%)"

    def to_json(self) -> dict:
        """{"label", "confidence", "top3", "probabilities"}: plain Python types, None for no digit."""
        probs = None if self.probs is None else [float(p) for p in self.probs]
        return {"label": self.label, "confidence": self.confidence,
                "top3": [list(pair) for pair in self.top(3)], "probabilities": probs}


@dataclass(frozen=True)
class Recognizer:
    """A trained model ready to classify network inputs (``spec``, ``params``, and its file)."""

    spec: object
    params: dict
    path: Path

    @classmethod
    def load(cls, path: str | Path | None = None) -> Recognizer:
        """Load ``path``, or the most recent model in the models directory when it is None.

        Raises FileNotFoundError (with a hint to run ``digits train``) when there is no model and
        ModelFileError (a ValueError naming the file) for an unusable one.
        """
        from ..modelfile import load_model

        resolved = app.resolve_model(path)
        spec, params, _ = load_model(resolved)
        if spec.inputs != 784 or spec.outputs != 10:
            raise ValueError(f"{resolved}: expected a 784-input, 10-class model, got {spec.describe()}")
        return cls(spec, params, resolved)

    @cached_property
    def predictor(self):
        """model.Predictor for the CLI's MLPs and convnets (one kernel call per drawing or small
        batch of files for an MLP); predict_proba for any other network."""
        from ..model import ModelSpec, Predictor, predict_proba

        if isinstance(self.spec, ModelSpec):
            return Predictor(self.spec, self.params)
        return lambda inputs: predict_proba(self.spec, self.params, inputs)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Class probabilities float32 ``(n, 10)`` for network inputs ``(n, 784)`` (or ``(10,)`` for one)."""
        return self.predictor(inputs)

    def predict_inputs(self, inputs: Sequence[np.ndarray | None]) -> list[Prediction]:
        """One Prediction per network input (None = no ink), in one batched forward pass."""
        present = [i for i, x in enumerate(inputs) if x is not None]
        probs = self.probabilities(np.stack([inputs[i] for i in present])) if present else []
        by_index = dict(zip(present, probs))
        return [Prediction(by_index.get(i), x) for i, x in enumerate(inputs)]

    def predict_ink(self, ink: np.ndarray) -> Prediction:
        """Preprocess one ``(H, W)`` ink map and classify it (image to probabilities)."""
        x = preprocess(ink)
        return Prediction(None if x is None else self.probabilities(x), x)

    def predict_files(self, files: Iterable[str | Path]) -> list[Prediction]:
        """Classify image files. Every file is read first, so a bad one raises ImageError (a
        ValueError naming it) before any prediction is made."""
        return self.predict_inputs([load_and_preprocess(f) for f in files])


def load_and_preprocess(path: str | Path) -> np.ndarray | None:
    """An image file as the network input float32 ``(784,)``, or None when it holds no ink."""
    return preprocess_file(path)


def format_prediction(name: str, prediction: Prediction) -> str:
    """One line: ``"name: 7  98.2%   top 3: 7 98.2%, 1 1.1%, 9 0.3%"`` or ``"name: no digit"``."""
    if prediction.probs is None:
        return f"{name}: {NO_DIGIT}"
    top = ", ".join(f"{d} {100 * p:.1f}%" for d, p in prediction.top(3))
    return f"{name}: {prediction.label}  {100 * prediction.confidence:5.1f}%   top 3: {top}"


def input_sheet(predictions: Sequence[Prediction], scale: int = 4) -> Image.Image:
    """A contact sheet of the 28x28 inputs the network saw, captioned with its answers."""
    blank = np.zeros(784, np.float32)
    inputs = [blank if p.input is None else p.input for p in predictions]
    captions = [NO_DIGIT if p.probs is None else f"{p.label} {100 * p.confidence:.0f}%" for p in predictions]
    return contact_sheet(inputs, captions, scale=scale)


def train_default_model(
    progress: Callable[[float, str], None] | None = None,
    run: app.TrainRun | None = None,
    data_dir: str | Path | None = None,
) -> Path:
    """Train the default model (``app.TrainRun()`` unless ``run`` is given) and save it where
    ``digits train`` would; returns its path.

    ``progress(fraction, message)`` is called with fraction in [0, 1] as data loads, after every
    batch and at the end (from the calling thread: a window runs this in a worker thread and
    hands the calls to its own). Raises what loading the data or training raises; a run that
    diverges or is interrupted raises RuntimeError.
    """
    from .. import data, warmup

    run = run or app.TrainRun()
    report = progress or (lambda fraction, message: None)
    report(0.0, "loading MNIST")
    splits = data.load_splits(data_dir, seed=run.seed)
    report(0.0, "compiling kernels")
    warmup.warm_up()
    out = app.default_model_path(run)
    epoch = {"done": 0}

    def on_batch(step: int, steps: int) -> None:
        fraction = (epoch["done"] + step / steps) / run.epochs
        report(min(fraction, 1.0), f"training: epoch {epoch['done'] + 1}/{run.epochs}")

    def on_epoch(record: dict, params) -> None:
        epoch["done"] = record["epoch"]

    outcome = app.train_and_save(run, splits, out, on_batch=on_batch, on_epoch=on_epoch)
    stopped = outcome["result"].stopped
    if stopped or not outcome["saved"]:
        raise RuntimeError(f"training stopped: {stopped or 'nothing was trained'}")
    report(1.0, f"test accuracy {100 * outcome['metrics']['accuracy']:.2f}%; saved {out.name}")
    return out
