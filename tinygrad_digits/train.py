"""The training loop: seeded mini-batches, an optimizer, per-epoch metrics and a history.

``train`` trains any model with any loss: a layer (``layers``), anything with a ``network()``
(a ``ModelSpec``), or a plain function ``apply(params, x, rng=None) -> outputs``; the loss is
``loss(outputs, labels) -> scalar``, softmax cross-entropy unless given. It owns the loop and
nothing else: it reports through callbacks (``on_batch`` for a progress bar, ``on_epoch`` for a
line or a checkpoint) and never prints. It stops early, and says why in ``TrainResult.stopped``,
when the loss stops being finite (the parameters are rolled back to the end of the last good
epoch) or on Ctrl-C (the parameters are kept as trained so far). A BatchNorm's statistics are
params it never trains: it measures them after every epoch (``norm_layers``).

Two paths run an epoch's steps and give the same results: the general path (``autodiff``'s
value_and_grad of the loss, then ``optimizers.update``, one step at a time, open to any model,
loss or augmentation) and the fused path (``fastpath``: many steps per kernel call, no Python
or allocation per step), taken for models that are a plain chain of dense layers
(``fastpath.dense_chain``) with float32 params, the default loss and no augmentation.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from . import fastpath, layers, norm_layers, ops, resources
from . import optimizers as O
from .divergence import Best, gone_wrong
from .general_step import GeneralStep as _GeneralStep


@dataclass(frozen=True)
class TrainConfig:
    """Loop settings; the optimizer's own live in ``OptimizerConfig``."""

    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    label_smoothing: float = 0.0  # of the default loss (``ops.softmax_cross_entropy``'s)

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label smoothing must lie in [0, 1), got {self.label_smoothing}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    params: dict
    history: list[dict] = field(default_factory=list)
    stopped: str | None = None  # None: ran every epoch; else "diverged: ..." or "interrupted: ..."


steps_per_epoch = fastpath.steps_per_epoch


def network_of(model) -> layers.Layer | None:
    """The layers of a model given as a layer or as anything with ``network()``; None for a function."""
    if isinstance(model, layers.Layer):
        return model
    if hasattr(model, "network"):
        return model.network()
    if callable(model):
        return None
    raise ValueError(
        f"train: expected a layer, a ModelSpec or a function apply(params, x, rng), "
        f"got {type(model).__name__}"
    )


def _apply_of(model) -> Callable:
    network = network_of(model)
    return model if network is None else network.apply


def evaluate_loss_accuracy(
    model,
    params: dict,
    x: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 4096,
    loss: Callable | None = None,
):
    """(mean loss, accuracy) of ``model`` on normalized inputs x (n, ...) with int labels (n,);
    accuracy counts the rows whose first largest output is the label."""
    if len(x) == 0:
        return float("nan"), float("nan")
    apply, loss = _apply_of(model), loss or ops.softmax_cross_entropy
    total, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], labels[start : start + batch_size]
        outputs = apply(params, xb)
        total += float(loss(outputs, yb)) * len(xb)
        correct += int(np.count_nonzero(np.argmax(outputs, axis=-1) == yb))
    return total / len(x), correct / len(x)


def train(
    model,
    params: dict,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig,
    optimizer: O.OptimizerConfig,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[dict, dict], None] | None = None,
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    loss: Callable | None = None,
) -> TrainResult:
    """Train params (updated in place) of ``model`` on normalized inputs x (n, ...) with labels (n,).

    Batches are drawn from a permutation per epoch of ``np.random.default_rng(config.seed)``.
    ``on_batch(step_in_epoch, steps)`` after every step; ``on_epoch(record, params)`` after
    every epoch, with record = {epoch, train_loss, train_accuracy, val_loss, val_accuracy,
    learning_rate, seconds, train_seconds} (``seconds`` with validation, ``train_seconds`` the
    steps alone). Returns the params, the history and why it stopped early, if so.

    Without ``loss``, the loss is ``ops.softmax_cross_entropy`` with ``config.label_smoothing``;
    the records' losses are that loss (smoothed, as Keras reports them).

    ``augment(xb, rng) -> xb``, if given, transforms every training batch before the step, e.g.
    ``augment.BatchAugmenter``. Its draws and the dropout masks come from a second generator,
    ``np.random.default_rng((seed, 1))``, so the batch order is the same with or without them.
    """
    for key, value in params.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise ValueError(f"train: parameter {key!r} must be a float array")
    dtype = np.result_type(*params.values())
    x_train = np.ascontiguousarray(x_train, dtype=dtype)
    x_val = np.ascontiguousarray(x_val, dtype=dtype)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_val = np.asarray(y_val, dtype=np.int64)
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise ValueError(
            f"need as many training images as labels (> 0), got {len(x_train)} and {len(y_train)}"
        )
    network = network_of(model)
    if network is not None:
        layers.check_params(network, params, x_train.shape[1:])
    apply = model if network is None else network.apply
    classes = None
    if loss is None:  # the cross-entropy's classes: the model's output width
        classes = np.shape(apply(params, x_train[:1]))[-1]
        for what, labels in (("training", y_train), ("validation", y_val)):
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise ValueError(f"{what} labels must lie in [0, {classes})")
        if config.label_smoothing:
            loss = functools.partial(ops.softmax_cross_entropy, label_smoothing=config.label_smoothing)

    rng = np.random.default_rng(config.seed)
    noise = np.random.default_rng((config.seed, 1))  # augmentation and dropout
    statistics = norm_layers.statistic_keys(network) if network is not None else []
    trained_params = {k: v for k, v in params.items() if k not in statistics}  # the same arrays
    if statistics:  # measured after every epoch over images as they are, not augmented ones
        sample = norm_layers.sample(x_train, config.seed)
    state = O.init(optimizer, trained_params)
    n = len(x_train)
    result = TrainResult(params)
    good = {k: v.copy() for k, v in params.items()}  # the best epoch's params (the initial ones at first)
    best = Best()
    fused = _fused_steps(model, params, x_train, y_train, config, optimizer, augment, loss)
    if fused is not None:  # it holds what its kernels read: a caller that let go of x_train frees it now
        x_train = None
    step = _GeneralStep(apply, loss, trained_params, params, optimizer, state, augment, noise, dtype)
    # BLAS on one thread for image models: their many mid-sized products lose more to BLAS's
    # threads waking and waiting than they gain (benchmarks/bench_conv.py: 75 s an epoch of the
    # simple convnet against 20 on one thread)
    blas = resources.one_blas_thread if network is not None and _has_images(network) else contextlib.nullcontext
    if fused is None:  # autodiff's steps allocate and free the same arrays every step
        resources.keep_freed_memory()
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        tally = _Tally()
        lr = O.learning_rate_at(optimizer, state["step"])
        try:
            order = rng.permutation(n)
            if fused is None:
                with blas():
                    diverged = step.epoch(x_train, y_train, order, config.batch_size, tally, on_batch)
            else:
                diverged = fused.run_epoch(order, state, tally, on_batch)
            trained = time.perf_counter() - started
            if statistics and diverged is None:
                norm_layers.refresh_statistics(network, params, sample)
            val_loss, val_acc = (math.nan, math.nan)
            if diverged is None:
                val_loss, val_acc = evaluate_loss_accuracy(apply, params, x_val, y_val, loss=loss)
                # the epoch's last update can break the params without any loss seeing it yet
                if not all(np.isfinite(v).all() for v in params.values()) or (
                    len(x_val) and not math.isfinite(val_loss)
                ):
                    diverged = (steps_per_epoch(n, config.batch_size) - 1, val_loss)
            record = None
            if diverged is None:
                record = {
                    "epoch": epoch,
                    "train_loss": tally.loss_sum / tally.seen,
                    "train_accuracy": tally.correct / tally.seen,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                    "learning_rate": lr,
                    "seconds": time.perf_counter() - started,
                    "train_seconds": trained,
                }
                why = gone_wrong(record, result.history, classes if len(x_val) else None)
            else:
                at, value = diverged
                why = f"the loss became {value} at epoch {epoch}, step {at + 1}"
            if why is not None:
                for k in params:
                    params[k][...] = good[k]
                if fused is not None:
                    fused.pack()
                result.stopped = (f"diverged: {why}; kept the parameters of epoch {best.epoch} "
                                  "(try a lower learning rate)")
                return result
            result.history.append(record)
            if best.improved_by(record):
                for k, v in params.items():
                    good[k][...] = v
            if on_epoch is not None:
                on_epoch(record, params)
                if fused is not None:
                    fused.pack()  # on_epoch may have changed the params
        except KeyboardInterrupt:
            if fused is not None:
                fused.sync(tally)  # the params as trained so far
            if statistics:
                norm_layers.refresh_statistics(network, params, sample)
            result.stopped = f"interrupted during epoch {epoch}, after {tally.seen} of {n} images"
            return result
    return result


def _has_images(layer) -> bool:
    """Whether a model holds convolution or pooling layers (their kernels run in one thread)."""
    if hasattr(layer, "layers"):
        return any(_has_images(child) for child in layer.layers)
    if hasattr(layer, "block"):
        return _has_images(layer.block)
    return layer.kind in ("conv2d", "maxpool2d", "avgpool2d")


class _Tally:
    """Running sums of one epoch: loss * rows, correct predictions, rows seen."""

    def __init__(self):
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0


def _fused_steps(model, params, x_train, y_train, config, optimizer, augment, loss):
    """fastpath.FusedSteps when it does exactly what the general path would, else None."""
    network = network_of(model)
    found = fastpath.dense_chain(network) if network is not None and augment is None and loss is None else None
    if found is None or x_train.ndim != 2:
        return None
    chain, alpha = found
    if not fastpath.fusable(chain, params, optimizer) or params[chain[0][0]].shape[0] != x_train.shape[1]:
        return None
    return fastpath.FusedSteps(chain, alpha, params, x_train, y_train, config.batch_size, optimizer)
