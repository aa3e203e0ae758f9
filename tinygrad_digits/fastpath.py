"""The fused path of ``train``: many steps of a plain MLP per kernel call (kernels/steps.py).

It trains a *dense chain*: a model that is nothing but dense layers, each with an activation the
kernels know, ending in logits for the default loss, softmax cross-entropy. The chain is a tuple
of ``(weight key, bias key, activation name)``, one per layer, and one leaky_relu ``alpha`` for
all; ``chain.dense_chain`` finds it in a model of layers, reading each Sequential's names for its
children's parameters. A run here gives the general path's parameters to float32 rounding.

The steps run in kernels/steps.train_steps, in this thread, or in
kernels/steps.train_steps_parallel, split over Numba's threads. Where there are at least two
threads and the batch gives each two rows or more, a step is split into ``parts = threads`` parts
either way (BLAS held to one thread by threadpoolctl), so the two kernels do the same arithmetic to
the bit and the trainer may take whichever is faster at the moment: it starts with the one warm-up
found faster on this machine (warmup.thread_choice), times every chunk of steps, runs a few steps
of the other kernel now and then, and keeps the faster by the ratio of the two kernels' times in
runs side by side (thread_choice.PairedChoice; the parallel one only while it wins by
PARALLEL_MARGIN): on a shared host a core slows down and recovers within tenths of a second, and
the whole machine's speed changes by half within minutes, so one slow chunk must not send the
trainer to the slower kernel, nor may times taken minutes apart be compared. The first step after
a change of kernel wakes threads and moves data between the cores' caches: it is not timed (on a
Xeon it made short runs of the parallel kernel read 650-700 us a step, long ones 450-500, and a
run stayed in one thread, 0.19 s an epoch against the parallel kernel's 0.17). A parallel step
waits at two barriers for every thread, and a thread whose core another process has taken stalls
it: the one-thread kernel never waits. USE_PARALLEL = True or False forces either (False: one
part, the general path's arithmetic to the bit with a dense first layer). The first layer reads a
CSR copy of the training set (kernels/sparse.py) when at least SPARSE_MIN_BACKGROUND of its inputs
hold the background value.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from . import optimizers as O
from .chain import ACTIVATION_CODES, dense_chain, flat_layout  # noqa: F401 (the fused path's reading of a model)
from .chain import aligned_empty, aligned_zeros, background_of, row_blocks
from .kernels import fused as _fused
from .kernels import sparse as _sparse
from .kernels import steps as _steps
from .thread_choice import PairedChoice

USE_FUSED = True  # False forces the general path (tests and benchmarks compare the two)
USE_PARALLEL = None  # None: as warm-up measured (module doc); True / False force the parallel / one-thread kernel
USE_SPARSE = True  # False keeps the parallel path's first layer dense
SPARSE_MIN_BACKGROUND = 0.5  # the fraction of background inputs from which the sparse first layer pays
_RULES = {"sgd": _fused.SGD, "momentum": _fused.MOMENTUM, "adam": _fused.ADAM}
# OptimizerConfig's fields the kernels implement; a config with any other trains on the general path
_OPTIMIZER_FIELDS = {"name", "learning_rate", "schedule", "total_steps", "weight_decay", "momentum", "beta1",
                     "beta2", "epsilon"}
_CHUNK_WORK = 5e8  # rows * parameters per kernel call: ~10-30 ms, so Ctrl-C and progress stay live
PROBE_EVERY = (2, 64)  # chunks between two short runs of the kernel not in use, at first and at most
PROBE_STEPS = 4  # steps of such a run, and of each kernel's first (its load) run
# the parallel kernel is taken only while it beats the one-thread kernel by this factor: a
# parallel step stalls while another process holds a core, the one-thread kernel never does
PARALLEL_MARGIN = 0.9
_clock = time.perf_counter


def fusable(chain, params: dict, optimizer) -> bool:
    """Whether the fused kernels do exactly what the general path would for this chain (float32
    params of exactly the chain's keys, 2-D weights, an optimizer the kernels know)."""
    if not USE_FUSED or chain is None or optimizer.name not in _RULES:
        return False
    if set(optimizer.__dataclass_fields__) != _OPTIMIZER_FIELDS:
        return False
    keys = [key for w_key, b_key, _ in chain for key in (w_key, b_key)]
    if sorted(keys) != sorted(params) or len(set(keys)) != len(keys):
        return False
    if any(act not in ACTIVATION_CODES for _, _, act in chain):
        return False
    return all(params[key].dtype == np.float32 for key in keys) and all(
        params[w].ndim == 2 and params[b].shape == params[w].shape[1:] for w, b, _ in chain)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


class FusedSteps:
    """The params, optimizer slots and scratch of the fused kernels, as flat buffers.

    The params dict stays the truth between calls: ``pack`` copies it in, ``sync`` copies the
    kernel's params back out after every chunk of steps.
    """

    def __init__(self, chain, alpha: float, params, x_train, y_train, batch_size: int, optimizer,
                 parallel: bool | None = None):
        """``parallel`` None follows USE_PARALLEL: None chooses the kernel as it goes (module doc),
        True / False force either (where the parallel one can run: parallel_possible)."""
        dtype = np.dtype(np.float32)
        self.params, self.optimizer = params, optimizer
        # writable C arrays: a read-only or strided one would compile another kernel signature
        x = x_train if x_train.flags.writeable else x_train.copy()
        self.n = len(x)
        self.y = np.require(y_train, np.int64, ["C", "W"])
        self.batch_size = batch = batch_size
        self.layout, self.keys, size, out_size = flat_layout(chain, params, batch)
        # on cache lines, as every block in them (chain.flat_layout): the kernels' vector loads never span two
        self.flat = aligned_zeros(size, dtype)  # the elements between blocks too: a run is bytes alike
        self.grads = aligned_empty(size, dtype)
        self.outs = aligned_empty(out_size, dtype)
        self.deltas = aligned_empty(out_size, dtype)
        d_in = int(self.layout[0, 1])
        self.xbuf = aligned_empty((batch, d_in), dtype)
        self.ybuf = np.empty(batch, dtype=np.int64)
        slots = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer.name]
        self.slot1 = aligned_zeros(size if slots >= 1 else 0, dtype)
        self.slot2 = aligned_zeros(size if slots >= 2 else 0, dtype)
        hyper = np.zeros(_steps.HYPER_SIZE, dtype=dtype)
        for at, value in ((_steps.ONE_MINUS_BETA1, 1.0 - optimizer.beta1), (_steps.ONE_MINUS_BETA2, 1.0 - optimizer.beta2),
                          (_steps.EPSILON, optimizer.epsilon), (_steps.MOMENTUM_COEF, optimizer.momentum),
                          (_steps.WEIGHT_DECAY, optimizer.weight_decay), (_steps.BIAS_DECAY, 0.0)):
            hyper[at] = value
        self.alpha = float(alpha)
        self.progress = np.zeros(_steps.PROGRESS_SIZE, dtype=np.float64)
        self.chunk = int(min(64, max(1, _CHUNK_WORK // (batch * size))))

        mode = USE_PARALLEL if parallel is None else parallel
        self.blas = _blas_limiter(batch) if mode is not False and parallel_possible(batch) else None
        self.parts = parts = 1 if self.blas is None else numba_threads()
        self.adaptive = mode is None and parts > 1
        self.parallel = parts > 1 and (mode is True or (mode is None and _recorded_choice() is not False))
        self.choice = PairedChoice(self.parallel, PARALLEL_MARGIN, PROBE_STEPS, PROBE_EVERY)
        self._ran = None  # the kernel of the last run
        sparse = USE_SPARSE and x.shape[1] <= _sparse.MAX_COLUMNS
        background, count = background_of(x) if sparse else (0, 0)  # two passes over x: only if used
        self.background = dtype.type(background)
        self.sparse = sparse and count >= SPARSE_MIN_BACKGROUND * x.size > 0
        if self.sparse:  # the kernels read the CSR copy only: x itself is not kept
            csr, x = _sparse.csr_rows(x, self.background), np.empty((0, x.shape[1]), dtype)
        else:
            csr = (np.zeros(1, np.int64), np.zeros(0, np.uint16), np.zeros(0, dtype))
        widest = int(self.layout[:, 2].max())
        first_products = batch * int(self.layout[0, 2]) if self.sparse else 0  # x @ a part's block of W0
        self.data = _steps.TrainingSet(x, self.y, self.sparse, *csr, self.background)
        self.net = _steps.Network(self.flat, self.layout, self.alpha)
        self.opt = _steps.Optimizer(_RULES[optimizer.name], hyper, self.slot1, self.slot2)
        self.buffers = _steps.Buffers(self.grads, self.outs, self.deltas, self.xbuf, self.ybuf, self.progress)
        self.part_buffers = _steps.PartBuffers(
            self.grads[None] if parts == 1 else aligned_empty((parts, size), dtype),
            np.zeros((parts, len(self.layout), widest), dtype=np.float64), np.zeros(parts, dtype=np.float64),
            np.zeros(parts, dtype=np.int64), np.zeros((parts, widest), dtype=dtype),
            aligned_zeros((parts, first_products), dtype), row_blocks(csr[1], d_in, parts),
            np.zeros((parts, batch if self.sparse else 0, 2), dtype=np.int64))
        self.pack()

    def pack(self) -> None:
        for key, at, count in self.keys:
            self.flat[at : at + count] = self.params[key].reshape(-1)

    def sync(self, tally) -> None:
        """Params and the epoch's tally as of the last step the kernel finished."""
        for key, at, count in self.keys:
            self.params[key].reshape(-1)[...] = self.flat[at : at + count]
        done = int(self.progress[_steps.STEPS_DONE])
        tally.loss_sum, tally.correct = float(self.progress[_steps.LOSS_SUM]), int(self.progress[_steps.CORRECT])
        tally.seen = min(done * self.batch_size, self.n)

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

    @property
    def kernel(self):
        """The kernel the next steps take."""
        return _steps.train_steps_parallel if self.parallel else _steps.train_steps

    def steps(self, order, first: int, last: int, rates, parallel: bool | None = None) -> int:
        """Steps first .. last - 1 of the epoch ``order`` through the kernel (its return); with
        ``parallel`` given, through that kernel (the same arithmetic, when parts > 1)."""
        parallel = self.parallel if parallel is None else parallel
        assert not parallel or self.parts > 1, "the parallel kernel needs two parts or more"
        kernel = _steps.train_steps_parallel if parallel else _steps.train_steps
        with self.blas.limit(limits=1) if self.blas is not None else contextlib.nullcontext():
            return kernel(self.data, self.net, self.opt, self.buffers, self.part_buffers, order,
                          self.batch_size, first, last, rates)

    def _plan(self) -> tuple[bool, int]:
        """The kernel and the most steps of the next chunk (thread_choice.PairedChoice)."""
        return self.choice.plan(self.chunk) if self.adaptive else (self.parallel, self.chunk)

    def _timed(self, parallel: bool, count: int, seconds: float) -> None:
        self.choice.timed(parallel, count, seconds)
        self.parallel = self.choice.parallel

    def _run(self, order, state, tally, on_batch, steps: int, first: int, last: int, parallel: bool):
        """Steps first .. last - 1 of the epoch (of ``steps``) through one kernel, the params and
        tally synced after; returns (steps reached, seconds in the kernel, the failed step or -1)."""
        rates = self._learning_rates(state["step"], last - first)
        started = _clock()
        failed = self.steps(order, first, last, rates, parallel)
        elapsed = _clock() - started
        self.sync(tally)
        reached = int(self.progress[_steps.STEPS_DONE])
        state["step"] += reached - first
        if on_batch is not None:
            for step in range(first, reached):
                on_batch(step + 1, steps)
        self._ran = parallel
        return reached, elapsed, failed

    def run_epoch(self, order, state, tally, on_batch):
        """One epoch in chunks of steps; on_batch calls come after each chunk. Returns None, or
        (step, loss) for the first step whose loss was not finite (that step is not applied)."""
        steps = steps_per_epoch(self.n, self.batch_size)
        self.progress[:] = 0.0
        done = 0
        while done < steps:
            parallel, most = self._plan()
            failed = -1
            changed = parallel != self._ran and parallel in self.choice.loaded
            if self.adaptive and changed and steps - done > 1:
                # a change of kernel: its first step wakes the threads and moves the data between the
                # cores' caches, a cost of the change and not of the kernel, so it is not timed
                done, _, failed = self._run(order, state, tally, on_batch, steps, done, done + 1, parallel)
            if failed < 0:
                reached, elapsed, failed = self._run(order, state, tally, on_batch, steps, done,
                                                     min(steps, done + most), parallel)
                self._timed(parallel, reached - done, elapsed)
                done = reached
            if failed >= 0:
                return failed, float(self.progress[_steps.LAST_LOSS])
        return None


def numba_threads() -> int:
    import numba

    return numba.get_num_threads()


def parallel_possible(batch_size: int) -> bool:
    """Whether the parallel kernel can run: Numba has two threads or more, and the batch gives
    each two rows or more."""
    return numba_threads() >= 2 and batch_size >= 2 * numba_threads()


def _recorded_choice() -> bool | None:
    from . import warmup

    return warmup.thread_choice()


def _blas_limiter(batch_size: int):
    """threadpoolctl's handle on the BLAS libraries (None if none is found)."""
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None
