"""Kernel compilation up front: know whether the Numba cache is warm, and fill it.

The first run compiles every kernel (seconds); later runs load them from the per-user cache
(``NUMBA_CACHE_DIR``, set in ``tinygrad_digits/__init__``). Warming up before training keeps
the compile out of the first epoch's timing and lets the CLI say what it is doing.

Warm-up also times the one-thread training kernel against the parallel one on an MNIST-shaped
workload (choose_threads) and records the faster beside the kernels (THREADS_FILE), keyed by the
kernel sources, the thread count and the CPU: training starts with it (fastpath.FusedSteps, which
goes on timing both as it trains). Splitting a step over two cores pays on some CPUs and loses
on others, and loses wherever another process takes a core, so the choice is measured, never
assumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

KERNEL_MODULES = ("activations", "dense", "dropout", "softmax", "optim", "fused", "steps", "sparse", "augment",
                  "ink", "conv")
# in the cache folder: the kernel sources and CPU target (cache_stamp) warm_up last compiled for
STAMP_FILE = "tinygrad-digits-kernels.stamp"
# in the cache folder: which fused training kernel is faster here (choose_threads), as JSON
THREADS_FILE = "tinygrad-digits-threads.json"
# the workload timed by choose_threads: the default MLP's shapes, MNIST's share of blank pixels
CHOICE_SHAPE = {"inputs": 784, "hidden": 128, "outputs": 10, "batch_size": 128, "steps": 24, "background": 0.81}
CHOICE_ROUNDS = 7


def kernels_cached() -> bool:
    """True when warm_up filled the cache from the kernel sources installed now, for the CPU target
    they compile for now, and it holds an index for every kernel module. A cold cache, or one from
    other sources (an upgrade, an edit) or for another target (NUMBA_CPU_NAME or
    NUMBA_CPU_FEATURES set, another CPU sharing the folder), whose kernels would all compile again
    as they are called, is not."""
    root = _cache_root()
    try:
        if root is None or (root / STAMP_FILE).read_text() != cache_stamp():
            return False
    except (OSError, UnicodeDecodeError):
        return False
    found = {p.name.split(".")[0] for p in root.rglob("*.nbi")}
    return all(name in found for name in KERNEL_MODULES)


def warm_up() -> None:
    """Call every kernel once on tiny float32 arrays, compiling or loading it; time the two fused
    training kernels against each other and record the faster (choose_threads); then record in the
    cache that it holds the kernels of these sources (kernels_cached)."""
    from . import fastpath as F
    from . import model as M
    from . import optimizers as O
    from . import train as T

    spec = M.ModelSpec(hidden=(3,), activations=("relu",))
    params = M.init_params(spec, np.random.default_rng(0), dtype=np.float32)
    x = np.zeros((2, spec.inputs), dtype=np.float32)
    labels = np.zeros(2, dtype=np.int64)
    from . import ops
    from .autodiff import value_and_grad

    def loss(p):  # the plain and the label-smoothed loss, each with its own kernel
        logits = M.forward(spec, p, x)
        return ops.softmax_cross_entropy(logits, labels) + ops.softmax_cross_entropy(logits, labels, 0.1)

    _, grads = value_and_grad(loss)(params)
    for name in ("sgd", "momentum", "adam"):
        config = O.OptimizerConfig(name)
        O.update(config, params, grads, O.init(config, params))
    M.predict_proba(spec, params, np.zeros((1, spec.inputs)))
    ops.dropout_forward(x, 0.5, np.random.default_rng(0))
    from .augment import AUGMENTATIONS, augment_batch

    augment_batch(AUGMENTATIONS["realistic"], np.zeros((1, spec.inputs), dtype=np.float32),  # every kernel
                  np.random.default_rng(0))
    _warm_up_images()
    if F.USE_FUSED:  # the fused training kernels (float32 only), through the same call as training
        rows = np.zeros((8, spec.inputs), dtype=np.float32)  # a batch that threads can share
        T.train(spec, M.init_params(spec, np.random.default_rng(0), dtype=np.float32), rows,
                np.zeros(len(rows), dtype=np.int64), x[:0], labels[:0],
                T.TrainConfig(epochs=1, batch_size=len(rows)), O.OptimizerConfig("sgd"))
        M.Predictor(spec, M.init_params(spec, np.random.default_rng(0), dtype=np.float32))(rows[0])
        if F.parallel_possible(CHOICE_SHAPE["batch_size"]):
            _write_json(THREADS_FILE, choose_threads())
    _write_stamp()


def _warm_up_images() -> None:
    """The convolution and pooling kernels, forward and backward, on a tiny float32 batch."""
    from . import ops
    from .autodiff import value_and_grad

    x = np.zeros((1, 4, 4, 1), dtype=np.float32)
    conv = {"W": np.zeros((3, 3, 1, 2), dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}

    def images(p):
        h = ops.conv2d(x, p["W"], p["b"], padding="same", activation="relu")
        return (ops.max_pool2d(h).sum() + ops.avg_pool2d(ops.conv2d(x, p["W"], p["b"])).sum())

    value_and_grad(images)(conv)


def choose_threads(rounds: int = CHOICE_ROUNDS) -> dict:
    """Time the one-thread and the parallel fused kernel on CHOICE_SHAPE, in alternating rounds
    (so a burst of load from elsewhere meets both), compiling or loading both first.

    Returns {"parallel": whether it was faster (by fastpath.PARALLEL_MARGIN), "threads", "seconds": {kernel:
    its best round's s per step}, "median_seconds", "key"}: ``key`` (thread_key) names what the
    choice holds for.
    """
    from . import fastpath as F
    from . import optimizers as O

    shape, rng = CHOICE_SHAPE, np.random.default_rng(0)
    n = shape["batch_size"] * shape["steps"]
    x = rng.normal(size=(n, shape["inputs"])).astype(np.float32)
    x[rng.random(x.shape) < shape["background"]] = np.float32(-0.42)
    y = rng.integers(0, shape["outputs"], n)
    params = {"W0": rng.normal(0, 0.05, (shape["inputs"], shape["hidden"])).astype(np.float32),
              "b0": np.zeros(shape["hidden"], np.float32),
              "W1": rng.normal(0, 0.05, (shape["hidden"], shape["outputs"])).astype(np.float32),
              "b1": np.zeros(shape["outputs"], np.float32)}
    chain = (("W0", "b0", "relu"), ("W1", "b1", "identity"))
    # one set of buffers in parts for the threads: both kernels do the same arithmetic on them
    steps = F.FusedSteps(chain, 0.0, params, x, y, shape["batch_size"], O.OptimizerConfig("adam"), parallel=True)
    rates = np.full(shape["steps"], 1e-4, np.float32)
    kernels = {"one thread": False, "parallel": True}
    order = np.arange(n)
    for parallel in kernels.values():
        steps.steps(order, 0, 1, rates, parallel)  # compile or load
    seconds = {name: [] for name in kernels}
    for _ in range(rounds):
        for name, parallel in kernels.items():
            start = time.perf_counter()
            steps.steps(order, 0, shape["steps"], rates, parallel)
            seconds[name].append((time.perf_counter() - start) / shape["steps"])
    # the best round of each: what the kernel costs on this machine, whatever burst of load from
    # another process a round met (a one-off measurement must not record a passing disturbance)
    best = {name: float(np.min(s)) for name, s in seconds.items()}
    return {"parallel": best["parallel"] < F.PARALLEL_MARGIN * best["one thread"], "threads": F.numba_threads(),
            "seconds": best, "median_seconds": {name: float(np.median(s)) for name, s in seconds.items()},
            "key": thread_key()}


def thread_key() -> str:
    """What a thread choice holds for: these kernel sources, Numba's thread count, this CPU."""
    from . import fastpath as F
    from .kernels._jit import source_stamp

    return f"{source_stamp()}/{F.numba_threads()}/{cpu_model()}"


def thread_choice() -> bool | None:
    """Whether the parallel kernel was the faster when warm-up last timed them here, or None when
    no choice holds for this machine, these sources and this thread count."""
    choice = recorded_choice()
    return None if choice is None else bool(choice.get("parallel"))


def recorded_choice() -> dict | None:
    """What choose_threads returned when warm-up last ran here, if it holds for this machine, these
    sources and this thread count (thread_key); else None."""
    root = _cache_root()
    try:
        choice = json.loads((root / THREADS_FILE).read_text()) if root is not None else None
    except (OSError, ValueError):
        return None
    return choice if isinstance(choice, dict) and choice.get("key") == thread_key() else None


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), or what platform knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_stamp() -> str:
    """The kernel sources (kernels/_jit.source_stamp) and the CPU target Numba compiles them for:
    its CPU name and features, as set (NUMBA_CPU_NAME, NUMBA_CPU_FEATURES, kernels/_vectors) or
    the host's."""
    # first: the kernels package sets Numba up before Numba loads (kernels/__init__)
    from .kernels._jit import source_stamp  # noqa: I001
    from llvmlite import binding
    from numba.core import codegen, config

    name = config.CPU_NAME or binding.get_host_cpu_name()
    target = f"{name} {config.CPU_FEATURES or codegen.get_host_cpu_features()}"
    return f"{source_stamp()} {hashlib.sha256(target.encode()).hexdigest()[:16]}"


def _write_stamp() -> None:
    """Record the sources and the CPU target of the kernels the cache now holds."""
    _write_text(STAMP_FILE, cache_stamp())


def _write_json(name: str, value: dict) -> None:
    _write_text(name, json.dumps(value))


def _write_text(name: str, text: str) -> None:
    """Write a file of the cache folder atomically; a cache that cannot be written skips it."""
    root = _cache_root()
    if root is None:
        return
    partial = root / f".{name}.{os.getpid()}"
    try:
        partial.write_text(text)
        os.replace(partial, root / name)
    except OSError:
        partial.unlink(missing_ok=True)


def _cache_root() -> Path | None:
    folder = os.environ.get("NUMBA_CACHE_DIR")
    return Path(folder) if folder and Path(folder).is_dir() else None
