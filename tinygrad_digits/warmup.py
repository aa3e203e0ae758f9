"""Kernel compilation up front: know whether the Numba cache is warm, and fill it.

The first run compiles every kernel (seconds); later runs load them from the per-user cache
(``NUMBA_CACHE_DIR``, set in ``tinygrad_digits/__init__``). Warming up before training keeps
the compile out of the first epoch's timing and lets the CLI say what it is doing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

KERNEL_MODULES = ("activations", "dense", "softmax", "optim", "fused", "steps", "sparse", "augment")
# in the cache folder: the kernel sources' stamp (kernels/_jit.source_stamp) warm_up last compiled
STAMP_FILE = "tinygrad-digits-kernels.stamp"


def kernels_cached() -> bool:
    """True when warm_up filled the cache from the kernel sources installed now, and it holds an
    index for every kernel module. A cold cache, or one from other sources (an upgrade, an edit,
    whose kernels would all compile again as they are called), is not."""
    from .kernels._jit import source_stamp

    root = _cache_root()
    try:
        if root is None or (root / STAMP_FILE).read_text() != source_stamp():
            return False
    except (OSError, UnicodeDecodeError):
        return False
    found = {p.name.split(".")[0] for p in root.rglob("*.nbi")}
    return all(name in found for name in KERNEL_MODULES)


def warm_up() -> None:
    """Call every kernel once on tiny float32 arrays, compiling or loading it (of the two fused
    training kernels, the one training takes on this machine: fastpath.USE_PARALLEL); then record
    in the cache that it holds the kernels of these sources (kernels_cached)."""
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

    _, grads = value_and_grad(lambda p: ops.softmax_cross_entropy(M.forward(spec, p, x), labels))(params)
    for name in ("sgd", "momentum", "adam"):
        config = O.OptimizerConfig(name)
        O.update(config, params, grads, O.init(config, params))
    M.predict_proba(spec, params, np.zeros((1, spec.inputs)))
    from .augment import AUGMENTATIONS, augment_batch

    augment_batch(AUGMENTATIONS["elastic"], np.zeros((1, spec.inputs), dtype=np.float32),
                  np.random.default_rng(0))
    if F.USE_FUSED:  # the fused training kernels (float32 only), through the same call as training
        # the kernel training takes here (parallel where it can be): a batch that threads can share
        rows = np.zeros((8, spec.inputs), dtype=np.float32)
        T.train(spec, M.init_params(spec, np.random.default_rng(0), dtype=np.float32), rows,
                np.zeros(len(rows), dtype=np.int64), x[:0], labels[:0],
                T.TrainConfig(epochs=1, batch_size=len(rows)), O.OptimizerConfig("sgd"))
        M.Predictor(spec, M.init_params(spec, np.random.default_rng(0), dtype=np.float32))(rows[0])
    _write_stamp()


def _write_stamp() -> None:
    """Record the sources the cache now holds (atomically); a cache that cannot be written skips it."""
    from .kernels._jit import source_stamp

    root = _cache_root()
    if root is None:
        return
    partial = root / f".{STAMP_FILE}.{os.getpid()}"
    try:
        partial.write_text(source_stamp())
        os.replace(partial, root / STAMP_FILE)
    except OSError:
        partial.unlink(missing_ok=True)


def _cache_root() -> Path | None:
    folder = os.environ.get("NUMBA_CACHE_DIR")
    return Path(folder) if folder and Path(folder).is_dir() else None
