"""Optimizers as init/update pairs over flat parameter dicts, with learning-rate schedules.

- ``state = init(config, params)``: zeroed moments for every key, and the step count;
- ``update(config, params, grads, state)``: one step. **It updates ``params`` and ``state``
  in place** (the arrays are reused, so no step allocates), and returns ``params``.

The formulas are Keras's: SGD ``p -= lr g``; momentum ``v = mu v - lr g; p += v``; Adam with
``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)`` and epsilon outside the square root. Weight decay is
L2 on the weights only (``.W`` keys): it adds ``weight_decay * W`` to their gradient, which is
Keras's ``L2(weight_decay / 2)`` kernel regularizer. The learning rate of step t (0-based) is
``schedule(config, t)``: constant, or cosine decay to 0 over ``total_steps`` (Keras's
``CosineDecay``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .kernels import optim as _optim
from .registry import OPTIMIZERS, SCHEDULES
from .thread_choice import ThreadChoice

DEFAULT_LEARNING_RATE = {"sgd": 0.1, "momentum": 0.05, "adam": 0.003}
PARALLEL_VALUES = 1 << 16  # smaller parameters are updated in the calling thread
CHOICE = ThreadChoice()  # larger ones here or in parts on several threads, the faster at the moment


@dataclass(frozen=True)
class OptimizerConfig:
    """What one optimizer run needs; ``learning_rate=None`` takes the optimizer's default."""

    name: str = "adam"
    learning_rate: float | None = None
    schedule: str = "cosine"
    total_steps: int = 1
    weight_decay: float = 0.0
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}: expected one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}: expected one of {', '.join(SCHEDULES)}")
        if self.learning_rate is None:
            object.__setattr__(self, "learning_rate", DEFAULT_LEARNING_RATE[self.name])
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning rate must be a positive number, got {self.learning_rate}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.epsilon > 0):
            raise ValueError("adam needs 0 <= beta1, beta2 < 1 and epsilon > 0")
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")

    def to_json(self) -> dict:
        return asdict(self)


def learning_rate_at(config: OptimizerConfig, step: int) -> float:
    """The learning rate of 0-based step ``step`` under the config's schedule."""
    if config.schedule == "cosine":
        progress = min(step, config.total_steps) / config.total_steps
        return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.learning_rate


def init(config: OptimizerConfig, params: dict) -> dict:
    """Optimizer state: {"step": 0, "m.<key>": zeros, "v.<key>": zeros} as the optimizer needs."""
    state = {"step": 0}
    slots = {"sgd": (), "momentum": ("m",), "adam": ("m", "v")}[config.name]
    for slot in slots:
        for key, p in params.items():
            state[f"{slot}.{key}"] = np.zeros(p.shape, dtype=p.dtype)
    return state


def _check_keys(params: dict, grads: dict) -> None:
    if params.keys() != grads.keys():
        missing = sorted(set(params) - set(grads))
        extra = sorted(set(grads) - set(params))
        raise ValueError(f"gradients do not match parameters: missing {missing}, extra {extra}")


def update(config: OptimizerConfig, params: dict, grads: dict, state: dict, check: bool = True) -> dict:
    """One optimizer step, in place on params and state (see the module docstring)."""
    if check:
        _check_keys(params, grads)
    t = state["step"]
    lr = learning_rate_at(config, t)
    state["step"] = t + 1
    if config.name == "adam":
        lr *= math.sqrt(1.0 - config.beta2 ** (t + 1)) / (1.0 - config.beta1 ** (t + 1))
    for key, p in params.items():
        f = p.dtype.type  # scalars in the parameter's dtype: no silent float64 loop
        # reshape(-1) of a C-contiguous array is a view; any other layout is updated in a copy
        # and written back, so the step is never lost.
        contiguous = p.flags.c_contiguous
        flat = p.reshape(-1) if contiguous else np.ascontiguousarray(p).reshape(-1)
        g = grads[key].reshape(-1)
        wd = f(config.weight_decay if key.endswith(".W") else 0.0)
        if config.name == "adam":
            _update("adam_update", flat, g, state["m." + key].reshape(-1), state["v." + key].reshape(-1),
                    f(lr), f(1.0 - config.beta1), f(1.0 - config.beta2), f(config.epsilon), wd)
        elif config.name == "momentum":
            _update("momentum_update", flat, g, state["m." + key].reshape(-1), f(lr), f(config.momentum), wd)
        else:
            _update("sgd_update", flat, g, f(lr), wd)
        if not contiguous:
            p[...] = flat.reshape(p.shape)
    return params


def _update(name: str, flat: np.ndarray, g: np.ndarray, *args) -> None:
    """kernels/optim's update ``name`` on one parameter and its state (flat arrays after g, then
    scalars): whole in this thread, or for a large parameter in parts on several threads at once,
    whichever is faster at the moment (CHOICE; the same bits either way)."""
    update = getattr(_optim, name)

    def run(start: int, stop: int) -> None:
        update(*(a[start:stop] if isinstance(a, np.ndarray) else a for a in (flat, g, *args)))

    CHOICE.split(update, flat.size, PARALLEL_VALUES, run)
