"""JAX (CPU) as a ``digits bench`` worker, when it is installed: the same MLP, init and Adam.

Two ways to run an epoch: a jitted step called once per batch from Python (the batch gathered
inside the jitted function), or, with ``--scan``, the whole epoch as one jitted ``lax.scan`` over
the batches. The parameters stay on the device between epochs; an epoch is timed to
``block_until_ready``. Optional: ``pip install jax jaxlib`` (not a dependency of the package).
It runs as its own process: ``python benchmarks/jax_runner.py --serve [--scan]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_common import Channel, he_or_glorot_init, load_data, serve, steps_of_epoch


class Worker:
    def __init__(self, scan: bool):
        import jax

        jax.config.update("jax_platforms", "cpu")
        self.jax, self.scan = jax, scan

    def info(self):
        import jax

        return {"jax": jax.__version__, "jaxlib": getattr(jax, "lib", None) and jax.lib.__version__,
                "scan": self.scan}

    def setup(self, data, hidden, batch_size, epochs, seed=0, learning_rate=0.002, **_):
        jax = self.jax
        jnp = jax.numpy
        self.data = load_data(data)
        x, y = self.data["x_train"], self.data["y_train"]
        sizes = [x.shape[1], *hidden, 10]
        layers = he_or_glorot_init(sizes, ["relu"] * len(hidden), np.random.default_rng(seed))
        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in layers]
        zeros = [(jnp.zeros_like(w), jnp.zeros_like(b)) for w, b in self.params]
        self.state = (zeros, zeros, jnp.zeros((), jnp.int32))
        self.x, self.y = jnp.asarray(x), jnp.asarray(y.astype(np.int32))
        self.batch_size, self.rng = batch_size, np.random.default_rng(seed)
        total = epochs * len(steps_of_epoch(len(x), batch_size))
        b1, b2, eps = 0.9, 0.999, 1e-7

        def loss_fn(params, xb, yb):
            h = xb
            for w, b in params[:-1]:
                h = jax.nn.relu(h @ w + b)
            logits = h @ params[-1][0] + params[-1][1]
            logp = jax.nn.log_softmax(logits)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        def step(carry, idx):
            params, (m, v, t) = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, self.x[idx], self.y[idx])
            t = t + 1
            lr = learning_rate * 0.5 * (1 + jnp.cos(jnp.pi * jnp.minimum(t - 1, total) / total))
            lr_t = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
            m = jax.tree_util.tree_map(lambda m, g: m + (g - m) * (1 - b1), m, grads)
            v = jax.tree_util.tree_map(lambda v, g: v + (g * g - v) * (1 - b2), v, grads)
            params = jax.tree_util.tree_map(lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + eps), params, m, v)
            return (params, (m, v, t)), loss

        self.step = jax.jit(step)
        self.epoch_scan = jax.jit(lambda carry, idx: jax.lax.scan(step, carry, idx))
        self.loss_fn = jax.jit(loss_fn)
        return {"ready": True}

    def epoch(self):
        n, batch = len(self.data["x_train"]), self.batch_size
        order = self.rng.permutation(n).astype(np.int32)
        full = n // batch * batch
        start = time.perf_counter()
        carry, total = (self.params, self.state), 0.0
        if self.scan and full:
            carry, losses = self.epoch_scan(carry, order[:full].reshape(-1, batch))
            total = losses.sum() * batch
        else:
            losses = []
            for at in range(0, full, batch):
                carry, loss = self.step(carry, order[at : at + batch])
                losses.append(loss)
            total = sum(losses) * batch if losses else 0.0
        if full < n:
            carry, loss = self.step(carry, order[full:])
            total = total + loss * (n - full)
        self.jax.block_until_ready(carry)
        seconds = time.perf_counter() - start
        self.params, self.state = carry
        return {"seconds": seconds, "loss": float(total) / n}

    def evaluate(self):
        h = self.jax.numpy.asarray(self.data["x_test"])
        for w, b in self.params[:-1]:
            h = self.jax.nn.relu(h @ w + b)
        logits = np.asarray(h @ self.params[-1][0] + self.params[-1][1])
        return {"test_accuracy": float(np.mean(logits.argmax(axis=1) == self.data["y_test"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run as a digits bench worker")
    parser.add_argument("--scan", action="store_true", help="run each epoch as one lax.scan")
    args = parser.parse_args()
    if not args.serve:
        parser.error("use digits bench, or --serve")
    serve(Channel(), Worker(args.scan))


if __name__ == "__main__":
    main()
