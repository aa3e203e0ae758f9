"""The training loop: seeded mini-batches, an optimizer, per-epoch metrics and a history.

``train`` owns the loop and nothing else: it reports through callbacks (``on_batch`` for a
progress bar, ``on_epoch`` for a line or a checkpoint) and never prints. It stops early, and
says why in ``TrainResult.stopped``, when the loss stops being finite (the parameters are
rolled back to the end of the last good epoch) or on Ctrl-C (the parameters are kept as
trained so far).

Two paths run an epoch's steps and give the same results: the general path
(``model.loss_grads_correct`` then ``optimizers.update``, one step at a time, open to any
change of the model or the step) and the fused path (many steps per kernel call, no Python or
allocation per step), taken for float32 params and the configurations its kernels know
(``_fused_ok``). Its kernels are in ``kernels/steps.py``: each step split over Numba's threads,
with BLAS held to one thread and a sparse first layer on mostly-background inputs such as
MNIST's, where it can; else in one thread (with a dense first layer, to the bit the general
path's arithmetic). It calls ``on_batch`` once per step too, in bursts after each chunk of steps
(tens of milliseconds).
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
from .kernels import fused as _fused
from .kernels import softmax as _softmax
from .kernels import sparse as _sparse
from .kernels import steps as _steps


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


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


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
    fused = _FusedSteps(spec, params, x_train, y_train, config, optimizer) if (
        augment is None and _fused_ok(spec, params, config, optimizer)) else None
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


# -- The fast path --------------------------------------------------------------------------
# kernels/steps.py runs many steps per call (gather, forward, fused softmax
# cross-entropy, backward, update of every layer) with the same arithmetic as the general path.
# It knows exactly the fields below; a config that has any other field trains on the general
# path until the kernel learns it. Fields in _FUSED_NEUTRAL it knows only at that value (dropout
# off); an augmentation hook (train's ``augment``) also takes the general path.

USE_FUSED = True  # False forces the general path (tests and benchmarks compare the two)
USE_PARALLEL = True  # False keeps the fused path on one thread (kernels/fused.py)
USE_SPARSE = True  # False keeps the parallel path's first layer dense
SPARSE_MIN_BACKGROUND = 0.5  # the fraction of background inputs from which the sparse first layer pays
_FUSED_KNOWS = {
    M.ModelSpec: {"hidden", "activations", "alpha", "inputs", "outputs", "input_mean", "input_std",
                  "dropout"},
    TrainConfig: {"epochs", "batch_size", "seed"},
    O.OptimizerConfig: {"name", "learning_rate", "schedule", "total_steps", "weight_decay", "momentum",
                        "beta1", "beta2", "epsilon"},
}
_FUSED_NEUTRAL = {M.ModelSpec: {"dropout": 0.0}}
_FUSED_RULES = {"sgd": _fused.SGD, "momentum": _fused.MOMENTUM, "adam": _fused.ADAM}
_CHUNK_WORK = 5e8  # rows * parameters per kernel call: ~10-30 ms, so Ctrl-C and progress stay live


def _fused_ok(spec, params, config, optimizer) -> bool:
    """Whether the fused kernel does exactly what the general path would (float32 only)."""
    if not USE_FUSED or params["dense0.W"].dtype != np.float32 or optimizer.name not in _FUSED_RULES:
        return False
    for obj in (spec, config, optimizer):
        known = _FUSED_KNOWS.get(type(obj))
        if known is None or set(obj.__dataclass_fields__) != known:
            return False
        if any(getattr(obj, name) != value for name, value in _FUSED_NEUTRAL.get(type(obj), {}).items()):
            return False
    return True


class _FusedSteps:
    """The params, optimizer slots and scratch of the fused kernels, as flat buffers.

    The params dict stays the truth between calls: ``pack`` copies it in, ``sync`` copies the
    kernel's params back out after every chunk of steps.

    The steps run in kernels/steps.train_steps_parallel, split over Numba's threads, when there
    are at least two and threadpoolctl holds BLAS to one thread meanwhile; else in
    kernels/steps.train_steps, in this thread. The first layer reads a CSR copy of the training
    set (kernels/sparse.py) when at least SPARSE_MIN_BACKGROUND of its inputs hold the
    background value (see _background).
    """

    def __init__(self, spec, params, x_train, y_train, config, optimizer):
        dtype = params["dense0.W"].dtype
        self.spec, self.params, self.optimizer = spec, params, optimizer
        # writable C arrays: a read-only or strided one would compile another kernel signature
        self.x = x_train if x_train.flags.writeable else x_train.copy()
        self.y = np.require(y_train, np.int64, ["C", "W"])
        self.batch_size = batch = config.batch_size
        self.layout, self.keys, size, out_size = M.flat_layout(spec, batch)
        self.flat = np.empty(size, dtype=dtype)
        self.grads = np.empty(size, dtype=dtype)
        self.outs = np.empty(out_size, dtype=dtype)
        self.deltas = np.empty(out_size, dtype=dtype)
        self.xbuf = np.empty((batch, spec.inputs), dtype=dtype)
        self.ybuf = np.empty(batch, dtype=np.int64)
        slots = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer.name]
        self.slot1 = np.zeros(size if slots >= 1 else 0, dtype=dtype)
        self.slot2 = np.zeros(size if slots >= 2 else 0, dtype=dtype)
        self.rule = _FUSED_RULES[optimizer.name]
        self.hyper = np.array([1.0 - optimizer.beta1, 1.0 - optimizer.beta2, optimizer.epsilon,
                               optimizer.momentum, optimizer.weight_decay, 0.0], dtype=dtype)
        self.alpha = float(spec.alpha)
        self.progress = np.zeros(4, dtype=np.float64)
        self.chunk = int(min(64, max(1, _CHUNK_WORK // (batch * size))))

        self.blas = _blas_limiter(batch) if USE_PARALLEL else None
        self.parts = parts = 1 if self.blas is None else _numba_threads()
        self.kernel = _steps.train_steps if parts == 1 else _steps.train_steps_parallel
        self.part_grads = self.grads[None] if parts == 1 else np.empty((parts, size), dtype=dtype)
        widest, d_in = int(self.layout[:, 2].max()), spec.inputs
        self.bias_sums = np.zeros((parts, len(self.layout), widest), dtype=np.float64)
        self.losses = np.zeros(parts, dtype=np.float64)
        self.hits = np.zeros(parts, dtype=np.int64)
        self.scratch = np.zeros((parts, widest), dtype=dtype)
        background, count = _background(self.x) if USE_SPARSE else (0, 0)  # two passes over x: only if used
        self.background = dtype.type(background)
        self.sparse = USE_SPARSE and count >= SPARSE_MIN_BACKGROUND * self.x.size > 0
        if self.sparse:
            self.csr = _sparse.csr_rows(self.x, self.background)
        else:
            self.csr = (np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, dtype))
        share = -(-batch // parts) * d_in if self.sparse else 0
        self.c_ptr = np.zeros((parts, d_in + 1), dtype=np.int64)
        self.c_rows = np.zeros((parts, share), dtype=np.int64)
        self.c_values = np.zeros((parts, share), dtype=dtype)
        self.pack()

    def pack(self) -> None:
        for key, at, count in self.keys:
            self.flat[at : at + count] = self.params[key].reshape(-1)

    def sync(self, tally) -> None:
        """Params and the epoch's tally as of the last step the kernel finished."""
        for key, at, count in self.keys:
            self.params[key].reshape(-1)[...] = self.flat[at : at + count]
        done = int(self.progress[0])
        tally.loss_sum, tally.correct = float(self.progress[1]), int(self.progress[2])
        tally.seen = min(done * self.batch_size, len(self.x))

    def _learning_rates(self, t: int, count: int) -> np.ndarray:
        """The rates optimizers.update would use for steps t .. t + count - 1, in the params' dtype."""
        opt = self.optimizer
        rates = []
        for step in range(t, t + count):
            lr = O.learning_rate_at(opt, step)
            if opt.name == "adam":
                lr *= math.sqrt(1.0 - opt.beta2 ** (step + 1)) / (1.0 - opt.beta1 ** (step + 1))
            rates.append(lr)
        return np.array(rates, dtype=self.flat.dtype)

    def steps(self, order, first: int, last: int, rates) -> int:
        """Steps first .. last - 1 of the epoch ``order`` through the kernel (its return)."""
        with self.blas.limit(limits=1) if self.blas is not None else contextlib.nullcontext():
            return self.kernel(
                self.x, self.y, order, self.batch_size, first, last, self.flat, self.layout, self.alpha,
                self.rule, rates, self.hyper, self.slot1, self.slot2, self.grads, self.outs, self.deltas,
                self.xbuf, self.ybuf, self.progress, self.part_grads, self.bias_sums, self.losses, self.hits,
                self.sparse, *self.csr, self.background, self.scratch, self.c_ptr, self.c_rows, self.c_values,
            )

    def run_epoch(self, order, state, tally, on_batch):
        """Like _general_steps, in chunks of steps; on_batch calls come after each chunk."""
        steps = steps_per_epoch(len(self.x), self.batch_size)
        self.progress[:] = 0.0
        done = 0
        while done < steps:
            last = min(steps, done + self.chunk)
            failed = self.steps(order, done, last, self._learning_rates(state["step"], last - done))
            self.sync(tally)
            reached = int(self.progress[0])
            state["step"] += reached - done
            if on_batch is not None:
                for step in range(done, reached):
                    on_batch(step + 1, steps)
            if failed >= 0:
                return failed, float(self.progress[3])
            done = reached
        return None


def _numba_threads() -> int:
    import numba

    return numba.get_num_threads()


def _blas_limiter(batch_size: int):
    """threadpoolctl's handle on the BLAS libraries, when the parallel kernel can run: Numba
    has two threads or more, the batch gives each two rows or more, and BLAS is found."""
    if _numba_threads() < 2 or batch_size < 2 * _numba_threads():
        return None
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None


def _background(x: np.ndarray):
    """The likely background value of inputs x (n, d), and how many inputs hold it: of the two
    candidates, the minimum (a blank pixel of dark-background images, normalized) and the first
    input's first value (an image's corner), the more frequent."""
    if x.size == 0:
        return x.dtype.type(0), 0
    counts = [(int(np.count_nonzero(x == value)), value) for value in (x.min(), x.flat[0])]
    count, value = max(counts, key=lambda c: c[0])
    return value, count
