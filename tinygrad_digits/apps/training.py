"""Application logic behind the CLI: one training run from options to a saved model file.

The CLI stays thin: it parses options into a ``TrainRun``, calls ``train_and_save`` with its
progress callbacks, and prints what comes back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import paths, registry
from .presets import RECIPES

INPUT_SCALING = "standardize"  # inputs are shifted and scaled by the training set's pixel mean/std


@dataclass(frozen=True)
class TrainRun:
    """Everything that defines a training run, as the CLI's options give it."""

    spec_args: dict = field(default_factory=lambda: {"hidden": (128,), "activations": ("relu",), "alpha": 0.1})
    init: str = "auto"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float | None = None
    schedule: str = "cosine"
    weight_decay: float = 3e-4
    seed: int = 0
    train_size: int | None = None
    augment: str = "none"  # a recipe of augment.AUGMENTATIONS, applied to every training batch
    label_smoothing: float = 0.0  # the cross-entropy's targets: (1 - this) * onehot + this / 10
    all_data: bool = False  # train on all 60,000 images: the validation set joins the training set
    preset: str | None = None  # the PRESETS entry this run started from, for the record

    def config(self) -> dict:
        d = asdict(self)
        d["spec_args"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.spec_args.items()}
        return d


PRESETS: dict[str, dict] = {name: RECIPES[name] for name in registry.PRESETS}


def preset_run(name: str, **overrides) -> TrainRun:
    """The TrainRun of preset ``name`` (see PRESETS), with any fields replaced by ``overrides``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return TrainRun(**{**PRESETS[name], "preset": name, **overrides})


def default_model_path(run: TrainRun) -> Path:
    """``<models dir>/<kind>-<architecture>.npz``, e.g. mlp-784-128relu-10.npz,
    cnn-28x28-conv32-conv64-128relu-10.npz."""
    from ..model import ModelSpec

    spec = ModelSpec(**run.spec_args)
    return paths.models_dir() / f"{'cnn' if spec.conv else 'mlp'}-{spec.describe()}.npz"


def resolve_model(path: str | Path | None) -> Path:
    """The given model path, or the most recently written model in the models directory."""
    if path is not None:
        return Path(path)
    candidates = sorted(paths.models_dir().glob("*.npz"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise FileNotFoundError(
            f"no trained model in {paths.models_dir()}: run 'digits train' first or pass a model file"
        )
    return candidates[-1]


@dataclass
class Prepared:
    """What a TrainRun builds before training: the spec (inputs standardized by the training
    images' mean and std), seeded initial params, the loop's and the optimizer's configs, and the
    raw [0, 1] images it trains and validates on."""

    spec: object
    params: dict
    config: object
    optimizer: object
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


# float32 copies of the parameters a run holds at once: the params, their gradients, two Adam
# slots, the best epoch's copy, and the fused kernels' flat params, gradients and slots
PARAM_COPIES = 10


def check_memory(spec, batch_size: int) -> None:
    """ValueError naming --hidden (or --conv, for a convnet) when the spec's parameters and a
    batch's activations would not fit in the memory available now; nothing is allocated to find out."""
    from .. import resources
    from ..conv_notation import format_conv

    activations = batch_size * spec.units() * 4 * 4
    needed = spec.n_params() * 4 * PARAM_COPIES + activations
    available = resources.available_memory()
    if needed > available:
        conv = f"--conv {format_conv(spec.conv)} " if spec.conv else ""
        hidden = ",".join(map(str, spec.hidden)) or "none"
        raise ValueError(f"{conv}--hidden {hidden}: {spec.n_params():,} parameters need about "
                         f"{resources.human(needed)} of memory to train, more than the "
                         f"{resources.human(available)} available")


def mean_std(x: np.ndarray, rows: int = 256) -> tuple[float, float]:
    """The mean and standard deviation of all of x's values, in float64, a block of rows at a
    time: np.std would make a float64 copy of x, and blocks of a few MB, once freed, are not
    kept by the allocator as the rest of the run's heap (4096 rows of MNIST kept 27 MB)."""
    count = x.size
    total = sum(float(x[i : i + rows].sum(dtype=np.float64)) for i in range(0, len(x), rows))
    mean = total / count
    squares = sum(float(np.square(x[i : i + rows] - mean, dtype=np.float64).sum()) for i in range(0, len(x), rows))
    return mean, (squares / count) ** 0.5


def prepare(run: TrainRun, splits) -> Prepared:
    """The model, params, configs and data of ``run`` (``train_and_save`` and ``compare`` alike).

    With ``run.all_data`` the validation images join the training set (before ``train_size`` is
    applied) and no validation is left."""
    from .. import model as M
    from .. import optimizers as O
    from .. import train as T

    x_train, y_train = splits.x_train, splits.y_train
    x_val, y_val = splits.x_val, splits.y_val
    if run.all_data:
        x_train, y_train = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
        x_val, y_val = x_val[:0], y_val[:0]
    if run.train_size is not None:
        x_train, y_train = x_train[: run.train_size], y_train[: run.train_size]
    mean, std = mean_std(x_train)
    spec = M.ModelSpec(**run.spec_args, input_mean=mean, input_std=std)
    check_memory(spec, run.batch_size)
    params = M.init_params(spec, np.random.default_rng(run.seed), run.init)
    config = T.TrainConfig(epochs=run.epochs, batch_size=run.batch_size, seed=run.seed,
                           label_smoothing=run.label_smoothing)
    optimizer = O.OptimizerConfig(
        run.optimizer, run.learning_rate, run.schedule,
        total_steps=run.epochs * T.steps_per_epoch(len(x_train), run.batch_size),
        weight_decay=run.weight_decay,
    )
    return Prepared(spec, params, config, optimizer, x_train, y_train, x_val, y_val)


def train_and_save(run: TrainRun, splits, out: str | Path, on_batch=None, on_epoch=None,
                   consume: bool = False, extra=None, start=None) -> dict:
    """Build, train and save one model; the file is rewritten atomically after every epoch.

    Returns {"spec", "result" (TrainResult), "metrics" (test metrics; {} if nothing trained),
    "saved" (bool), "config", "replaced" (bool: another writer replaced the file since this run
    last wrote it)}. An interrupted run saves what it trained so far; a diverged run saves its
    best epoch's params, if any epoch finished (else the file is left as it was). With
    ``run.all_data`` the validation images join the training set (before ``train_size`` is
    applied) and no validation is reported. With ``consume`` the training and validation images
    of ``splits`` are standardized in place, where they can be, instead of copied, and ``splits``
    lets go of them (``Splits.let_go_of_training``): a copy of MNIST's would cost 190 MB more,
    and the fused path frees them while it trains on their sparse copy.

    ``extra`` (finetune.ExtraImages) adds images to the training set and scores its held-out
    ones after every epoch (``extra_accuracy`` in each history record; ``extra`` in the result:
    the held-out accuracy before and after). ``start`` (finetune.Start) continues from a saved
    model, its architecture and scaling kept, with a fresh optimizer.
    """
    from .. import metrics as metrics_mod
    from .. import model as M
    from .. import train as T
    from ..augment import BatchAugmenter, augmentation
    from ..modelfile import save_model
    from ..outputs import Ownership

    out = Path(out)
    prepared = prepare(run, splits)
    if extra is not None or start is not None:
        from . import finetune

        prepared = finetune.adapt(prepared, run, extra, start)
    spec, params, config, optimizer = prepared.spec, prepared.params, prepared.config, prepared.optimizer
    recipe = augmentation(run.augment)
    # standardized inputs: a blank pixel is -mean / std
    augment = (BatchAugmenter(recipe, fill=-spec.input_mean / spec.input_std, scale=spec.input_std)
               if recipe is not None else None)
    meta = {
        "training": {**run.config(), "learning_rate": optimizer.learning_rate, "split_seed": splits.seed,
                     "input_scaling": INPUT_SCALING, "optimizer_config": optimizer.to_json(),
                     **({"extra_images": extra.to_json()} if extra is not None else {}),
                     **({"from": str(start.path)} if start is not None else {})},
    }
    saved = {"any": False}
    owner = Ownership(out)

    def save(params, fields: dict) -> None:
        owner.check()  # another run may have written the same file since
        save_model(out, spec, params, {**meta, "history": history, **fields})
        owner.wrote()
        saved["any"] = True

    def checkpoint(record, params):
        save(params, {"epochs_done": record["epoch"]})
        if on_epoch is not None:
            on_epoch(record, params)

    history: list = []
    held_out = _held_out_scorer(spec, params, extra)
    scale = _scale_in_place if consume else M.normalize
    inputs = [scale(spec, prepared.x_train), scale(spec, prepared.x_val)]
    prepared.x_train = prepared.x_val = None
    if consume:
        splits.let_go_of_training()
    # handed over, no reference left here: the fused path frees the training images once it
    # holds their sparse copy
    result = T.train(
        spec.network(), params, inputs.pop(0), prepared.y_train, inputs.pop(0), prepared.y_val, config, optimizer,
        on_batch=on_batch,
        on_epoch=lambda record, p: (held_out(record, p), history.append(record), checkpoint(record, p)),
        augment=augment,
    )
    metrics = {}
    interrupted = bool(result.stopped and result.stopped.startswith("interrupted"))
    if result.history or interrupted:
        metrics = metrics_mod.evaluate(spec, params, splits.x_test, splits.y_test)
        last = result.history[-1] if result.history else {}
        summary = {
            "test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"],
            "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss"),
        }
        # a diverged run's params are those of its best epoch, as train restored them
        save(params, {"metrics": summary, "epochs_done": len(history), "stopped": result.stopped})
    owner.check()
    return {"spec": spec, "result": result, "metrics": metrics, "saved": saved["any"], "config": meta["training"],
            "replaced": owner.lost, "extra": held_out(None, params)}


def _held_out_scorer(spec, params, extra):
    """``score(record, params)``: the accuracy on the extra images held out, put in the epoch's
    record (none without them); called with no record, {"before", "after"} (or None)."""
    if extra is None or not len(extra.y_held):
        return lambda record, params: None
    from .finetune import accuracy

    before = accuracy(spec, params, extra.x_held, extra.y_held)

    def score(record, params):
        now = accuracy(spec, params, extra.x_held, extra.y_held)
        if record is None:
            return {"held_out_images": len(extra.y_held), "before": before, "after": now}
        record["extra_accuracy"] = now
        return None

    return score


def _scale_in_place(spec, images: np.ndarray) -> np.ndarray:
    """model.normalize's arithmetic, on images themselves when they are a writable float32 array."""
    from .. import model as M

    if images.dtype != np.float32 or not images.flags.writeable or not images.flags.c_contiguous:
        return M.normalize(spec, images)
    images -= np.float32(spec.input_mean)
    images /= np.float32(spec.input_std)
    return M.as_input_shape(spec, images)


def train_report(outcome: dict, out: Path) -> dict:
    """The JSON object of ``digits train --json``."""
    history = outcome["result"].history
    seconds = [r["seconds"] for r in history]
    metrics = outcome["metrics"]
    return {
        "config": outcome["config"],
        "spec": outcome["spec"].to_json(),
        "history": history,
        "test_accuracy": metrics.get("accuracy"),
        "test_loss": metrics.get("loss"),
        "per_digit_accuracy": metrics.get("per_digit_accuracy"),
        "seconds_per_epoch": seconds,
        "median_seconds_per_epoch": float(np.median(seconds)) if seconds else math.nan,
        "model": str(out),
        "plot": outcome.get("plot"),
        "stopped": outcome["result"].stopped,
    }
