"""The logic behind the drawing window's models: which models there are to switch between, the
models it offers to train when there is none, and learning from the drawings saved so far.

``learn_from_drawings`` fine-tunes a model (``digits train --from MODEL --extra-images DIR`` with
the window's settings) on a share of MNIST plus every saved drawing, and scores the saved
drawings before and after. Progress comes as ``progress(fraction, message)`` calls from the
calling thread (the window runs this in a worker thread and hands them to its own). Nothing
here imports tkinter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .. import paths, registry
from . import training as app

# (preset name or None for the default MLP, what the window's button says); those whose preset
# does not exist in this version are not offered
OFFERS = ((None, "Quick MLP, 784-128relu-10 (seconds)"), ("cnn", "CNN preset (minutes)"))
LEARN_MNIST = 10_000  # MNIST images trained on beside the drawings, so that MNIST is not forgotten


def offers() -> list[tuple[str | None, str]]:
    """The models the window offers to train: the default MLP, then the presets that exist."""
    return [(name, text) for name, text in OFFERS if name is None or name in registry.PRESETS]


def offer_run(name: str | None, train_size: int | None = None) -> app.TrainRun:
    """The TrainRun of an offer (``train_size``: the first N MNIST images only, for quick runs)."""
    run = app.TrainRun() if name is None else app.preset_run(name)
    return replace(run, train_size=train_size) if train_size else run


def available_models() -> list[Path]:
    """The model files in the per-user models directory, by name."""
    folder = paths.models_dir()
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def next_model(current: Path | None) -> Path | None:
    """The model after ``current`` among ``available_models()`` (wrapping round), or None when
    there is no other."""
    models = available_models()
    where = [p.resolve() for p in models]
    if current is not None and Path(current).resolve() in where:
        at = where.index(Path(current).resolve())
        return models[(at + 1) % len(models)] if len(models) > 1 else None
    return models[0] if models else None


def learn_from_drawings(
    model: str | Path,
    folder: str | Path | None = None,
    progress: Callable[[float, str], None] | None = None,
    train_size: int | None = None,
    data_dir: str | Path | None = None,
) -> dict:
    """Fine-tune ``model`` on ``train_size`` (default LEARN_MNIST) MNIST images plus every drawing
    in ``folder`` (default: where the window saves them; bad files are left out), and save it as
    ``finetune.tuned_path(model)``.

    Returns {"path", "before", "after" (accuracy on the saved drawings, as fractions),
    "drawings" (how many), "summary" (image_folders' one line)}. Raises ValueError when there is
    no drawing to learn from, and what loading or training raises; a run that diverges or is
    interrupted raises RuntimeError.
    """
    from .. import data, warmup
    from . import finetune
    from .drawing import drawings_dir
    from .image_folders import load_image_folder

    report = progress or (lambda fraction, message: None)
    folder = Path(folder) if folder is not None else drawings_dir()
    if not folder.is_dir():
        raise ValueError("no saved drawings yet: draw a digit and press its key (0-9) to save it")
    drawings = load_image_folder(folder, skip_bad=True)
    if not len(drawings):
        raise ValueError("no saved drawings with ink yet: draw a digit and press its key (0-9) to save it")
    start = finetune.Start.load(model)
    before = finetune.accuracy(start.model, start.params, drawings.images, drawings.labels)
    extra = finetune.extra_images(drawings, finetune.EXTRA_WEIGHT, share=0.0)  # learn from all of them
    run = app.TrainRun(epochs=finetune.FINE_TUNE_EPOCHS, learning_rate=finetune.FINE_TUNE_LR["adam"],
                       train_size=train_size or LEARN_MNIST)
    report(0.0, "loading MNIST")
    splits = data.load_splits(data_dir, seed=run.seed)
    report(0.0, "compiling kernels")
    warmup.warm_up()
    out = finetune.tuned_path(start.path)
    epoch = {"done": 0}

    def on_batch(step: int, steps: int) -> None:
        report(min((epoch["done"] + step / steps) / run.epochs, 1.0),
               f"learning your {len(drawings)} drawings: epoch {epoch['done'] + 1}/{run.epochs}")

    def on_epoch(record: dict, params) -> None:
        epoch["done"] = record["epoch"]

    outcome = app.train_and_save(run, splits, out, on_batch=on_batch, on_epoch=on_epoch, extra=extra, start=start)
    stopped = outcome["result"].stopped
    if stopped or not outcome["saved"]:
        raise RuntimeError(f"learning stopped: {stopped or 'nothing was trained'}")
    tuned = finetune.Start.load(out)
    after = finetune.accuracy(tuned.model, tuned.params, drawings.images, drawings.labels)
    report(1.0, f"saved {out.name}")
    return {"path": out, "before": before, "after": after, "drawings": len(drawings), "summary": drawings.summary()}
