"""The training loop: seeded mini-batches, an optimizer, per-epoch metrics and a history.

``train`` owns the loop and nothing else: it reports through callbacks (``on_batch`` for a
progress bar, ``on_epoch`` for a line or a checkpoint) and never prints. It stops early, and
says why in ``TrainResult.stopped``, when the loss stops being finite (the parameters are
rolled back to the end of the last good epoch) or on Ctrl-C (the parameters are kept as
trained so far).

Two paths run an epoch's steps and give the same results: the general path (one step at a
time, open to any change of the model or the step) and the fused path (``fastpath``: many steps
per kernel call, no Python or allocation per step), taken for float32 params and the
configurations its kernels know.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from . import model as M
from . import optimizers as O
from . import fastpath
from .kernels import softmax as _softmax


@dataclass(frozen=True)
class TrainConfig:
    """Loop settings; the optimizer's own live in ``OptimizerConfig``."""

    epochs: int = 10
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    params: dict
    history: list[dict] = field(default_factory=list)
    stopped: str | None = None  # None: ran every epoch; else "diverged: ..." or "interrupted: ..."


def evaluate_loss_accuracy(spec: M.ModelSpec, params: dict, x: np.ndarray, labels: np.ndarray, batch_size: int = 4096):
    """(mean loss, accuracy) on normalized inputs x (n, inputs) with int64 labels (n,)."""
    if len(x) == 0:
        return float("nan"), float("nan")
    total, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], labels[start : start + batch_size]
        logits, _ = M.forward(spec, params, xb)
        loss, _, hits = _softmax.softmax_cross_entropy(logits, yb)
        total += loss * len(xb)
        correct += hits
    return total / len(x), correct / len(x)


steps_per_epoch = fastpath.steps_per_epoch


def train(
    spec: M.ModelSpec,
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
) -> TrainResult:
    """Train params (updated in place) on normalized inputs x (n, inputs) with labels (n,).

    Batches are drawn from a permutation per epoch of ``np.random.default_rng(config.seed)``.
    ``on_batch(step_in_epoch, steps)`` after every step; ``on_epoch(record, params)`` after
    every epoch, with record = {epoch, train_loss, train_accuracy, val_loss, val_accuracy,
    learning_rate, seconds}. Returns the params, the history and why it stopped early, if so.

    ``augment(xb, rng) -> xb``, if given, transforms every training batch (normalized inputs,
    (b, inputs)) before the step, e.g. ``augment.BatchAugmenter``. Its draws and the dropout
    masks (``spec.dropout``) come from a second generator, ``np.random.default_rng((seed, 1))``,
    so the batch order is the same with or without them.
    """
    M.check_params(spec, params)
    dtype = params["dense0.W"].dtype
    x_train = np.ascontiguousarray(x_train, dtype=dtype)
    x_val = np.ascontiguousarray(x_val, dtype=dtype)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_val = np.asarray(y_val, dtype=np.int64)
    for what, labels in (("training", y_train), ("validation", y_val)):
        if labels.size and (labels.min() < 0 or labels.max() >= spec.outputs):
            raise ValueError(f"{what} labels must lie in [0, {spec.outputs})")
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise ValueError(f"need as many training images as labels (> 0), got {len(x_train)} and {len(y_train)}")

    rng = np.random.default_rng(config.seed)
    noise = np.random.default_rng((config.seed, 1))  # augmentation and dropout
    state = O.init(optimizer, params)
    n = len(x_train)
    result = TrainResult(params)
    good = {k: v.copy() for k, v in params.items()}
    chain = M.dense_chain(spec) if augment is None and not spec.dropout else None
    fused = fastpath.FusedSteps(chain, spec.alpha, params, x_train, y_train, config.batch_size, optimizer) if (
        fastpath.fusable(chain, params, optimizer)) else None
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(n)
        tally = _Tally()
        lr = O.learning_rate_at(optimizer, state["step"])
        try:
            if fused is None:
                diverged = _general_steps(spec, params, x_train, y_train, order, config.batch_size,
                                          optimizer, state, tally, on_batch, augment, noise)
            else:
                diverged = fused.run_epoch(order, state, tally, on_batch)
            val_loss, val_acc = (math.nan, math.nan)
            if diverged is None:
                val_loss, val_acc = evaluate_loss_accuracy(spec, params, x_val, y_val)
                # the epoch's last update can break the params without any loss seeing it yet
                if not all(np.isfinite(v).all() for v in params.values()) or (
                    len(x_val) and not math.isfinite(val_loss)
                ):
                    diverged = (steps_per_epoch(n, config.batch_size) - 1, val_loss)
            if diverged is not None:
                step, loss = diverged
                for k in params:
                    params[k][...] = good[k]
                if fused is not None:
                    fused.pack()
                result.stopped = (
                    f"diverged: the loss became {loss} at epoch {epoch}, step {step + 1}; "
                    f"kept the parameters of epoch {epoch - 1} (try a lower learning rate)"
                )
                return result
            record = {
                "epoch": epoch,
                "train_loss": tally.loss_sum / tally.seen,
                "train_accuracy": tally.correct / tally.seen,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "learning_rate": lr,
                "seconds": time.perf_counter() - started,
            }
            result.history.append(record)
            for k, v in params.items():
                good[k][...] = v
            if on_epoch is not None:
                on_epoch(record, params)
                if fused is not None:
                    fused.pack()  # on_epoch may have changed the params
        except KeyboardInterrupt:
            if fused is not None:
                fused.sync(tally)  # the params as trained so far
            result.stopped = f"interrupted during epoch {epoch}, after {tally.seen} of {n} images"
            return result
    return result


class _Tally:
    """Running sums of one epoch: loss * rows, correct predictions, rows seen."""

    def __init__(self):
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0


def _general_steps(spec, params, x_train, y_train, order, batch_size, optimizer, state, tally, on_batch,
                   augment=None, noise=None):
    """One epoch, one step at a time: model.loss_grads_correct, then optimizers.update.

    The general path, open to any change of the model or the step (augmentation and dropout
    draw from ``noise``). Returns None, or (step, loss) for the first step whose loss was not
    finite (that step is not applied).
    """
    steps = steps_per_epoch(len(x_train), batch_size)
    dropout_rng = noise if spec.dropout else None
    for step in range(steps):
        idx = order[step * batch_size : (step + 1) * batch_size]
        xb, yb = x_train[idx], y_train[idx]
        if augment is not None:
            xb = np.ascontiguousarray(augment(xb, noise), dtype=x_train.dtype)
        loss, grads, hits = M.loss_grads_correct(spec, params, xb, yb, dropout_rng)
        if not math.isfinite(loss):
            return step, loss
        O.update(optimizer, params, grads, state, check=False)
        tally.loss_sum += loss * len(idx)
        tally.correct += hits
        tally.seen += len(idx)
        if on_batch is not None:
            on_batch(step + 1, steps)
    return None


