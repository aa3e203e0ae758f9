"""The training loop's general path: one step at a time, autodiff's value_and_grad of the loss,
then ``optimizers.update``; open to any model, loss or augmentation (``train.train``)."""

from __future__ import annotations

import math

import numpy as np

from . import ops
from . import optimizers as O
from .autodiff import value_and_grad
from .fastpath import steps_per_epoch


class GeneralStep:
    """One epoch, one step at a time: autodiff's value_and_grad of the loss, then optimizers.update.

    ``params`` are those trained, ``everything`` them and the statistics (constants here).
    Augmentation and dropout draw from ``noise``.
    """

    def __init__(self, apply, loss, params, everything, optimizer, state, augment, noise, dtype):
        self.params, self.optimizer, self.state = params, optimizer, state
        self.augment, self.noise, self.dtype = augment, noise, dtype
        loss = loss or ops.softmax_cross_entropy
        constants = {k: v for k, v in everything.items() if k not in params}

        def objective(params, xb, yb, rng):
            outputs = apply({**params, **constants} if constants else params, xb, rng)
            return loss(outputs, yb), outputs

        self.value_and_grad = value_and_grad(objective, has_aux=True)

    def epoch(self, x_train, y_train, order, batch_size, tally, on_batch):
        """Returns None, or (step, loss) for the first step whose loss was not finite (that step
        is not applied)."""
        steps = steps_per_epoch(len(x_train), batch_size)
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if self.augment is not None:
                xb = np.ascontiguousarray(self.augment(xb, self.noise), dtype=self.dtype)
            (value, outputs), grads = self.value_and_grad(self.params, xb, yb, self.noise)
            value = float(value)
            if not math.isfinite(value):
                return step, value
            O.update(self.optimizer, self.params, grads, self.state, check=False)
            tally.loss_sum += value * len(idx)
            tally.correct += int(np.count_nonzero(np.argmax(outputs, axis=-1) == yb))
            tally.seen += len(idx)
            if on_batch is not None:
                on_batch(step + 1, steps)
        return None
