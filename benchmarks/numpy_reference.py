"""The plain-NumPy reference trainer: the seed project's approach, as fast as plain NumPy allows.

The same network, initialisation, loss and optimizer as tinygrad-digits (Keras's Adam with a
cosine-decayed rate), in float32 with float32 scalars, NumPy's own BLAS for the products, and no
allocation per step: every buffer is made once and written with ``out=``. ``digits bench`` also
times numpy_minimal.py (the 40 lines a careful user writes, allocating as it goes) beside it, so
that the reference is seen to be at least as fast. No Numba is imported here.

Run ``python benchmarks/numpy_reference.py`` to train 784-128-10 for a few epochs and print the
seconds per epoch, or with ``--serve`` as a worker of ``digits bench`` (see bench_common.py).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from bench_common import (
    Channel,
    blas_info,
    he_or_glorot_init,
    load_data,
    median_seconds,
    serve,
    steps_of_epoch,
)

F = np.float32


def _relu_grad(y, d, tmp):
    np.sign(y, out=tmp)  # y = relu(z) >= 0: its sign is relu'(z)
    d *= tmp


def _sigmoid_grad(y, d, tmp):
    np.subtract(F(1), y, out=tmp)
    tmp *= y
    d *= tmp


def _tanh_grad(y, d, tmp):
    np.multiply(y, y, out=tmp)
    np.subtract(F(1), tmp, out=tmp)
    d *= tmp


ACTIVATIONS = {  # in place on z; the gradient through it from the output y, in place on d
    "relu": (lambda z: np.maximum(z, F(0), out=z), _relu_grad),
    "sigmoid": (lambda z: (np.negative(z, out=z), np.exp(z, out=z), np.add(z, F(1), out=z),
                           np.reciprocal(z, out=z)), _sigmoid_grad),
    "tanh": (lambda z: np.tanh(z, out=z), _tanh_grad),
}


class NumpyMLP:
    """MLP + softmax cross-entropy + Adam; params a list of (W, b).

    Every array a step touches is allocated once, for a full batch (a last, smaller batch uses
    the first rows): the batch is gathered with ``np.take(out=, mode="clip")`` (with the default
    mode, NumPy buffers ``out``: a copy more per step), every product is a ``np.matmul(out=)``,
    every elementwise expression writes into a buffer. The parameters, their gradients and
    Adam's moments each live in one flat buffer (``flat_views``), so that Adam is one pass of a
    few whole-buffer expressions rather than one per array.
    """

    def __init__(self, sizes, activation="relu", learning_rate=0.002, total_steps=1, seed=0,
                 beta1=0.9, beta2=0.999, epsilon=1e-7, batch_size=128):
        initial = he_or_glorot_init(sizes, [activation] * (len(sizes) - 2), np.random.default_rng(seed))
        self.act, self.dact = ACTIVATIONS[activation]
        self.flat, self.layers = flat_views(initial)
        for (w, b), (w0, b0) in zip(self.layers, initial):
            w[...], b[...] = w0, b0
        self.flat_grads, self.grads = flat_views(initial)
        self.flat_m, self.m = flat_views(initial)
        self.flat_v, self.v = flat_views(initial)
        self.flat_tmp = np.zeros_like(self.flat)
        self.learning_rate, self.total_steps = learning_rate, total_steps
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.t = 0
        self._buffers(batch_size)

    def _buffers(self, batch_size):
        sizes = [self.layers[0][0].shape[0]] + [w.shape[1] for w, _ in self.layers]
        self.batch_size = batch_size
        self.hs = [np.empty((batch_size, s), F) for s in sizes]  # hs[0]: the gathered batch
        self.ds = [np.empty((batch_size, s), F) for s in sizes]  # loss gradients at each layer's output
        self.scratch = [np.empty((batch_size, s), F) for s in sizes]  # for the activations' gradients
        self.rows = np.arange(batch_size)
        self.row_max = np.empty((batch_size, 1), F)
        self.row_sum = np.empty((batch_size, 1), F)

    def forward(self, x):
        """Logits (allocating: inference and evaluation)."""
        h = x
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                self.act(h)
        return h

    def step(self, x, y, idx=None):
        """One Adam step on the rows idx of x (or on all of x); returns the mean loss."""
        n = len(y) if idx is None else len(idx)
        if n > self.batch_size:
            self._buffers(n)
        hs, ds = [h[:n] for h in self.hs], [d[:n] for d in self.ds]
        if idx is None:
            hs[0][...] = x
        else:
            np.take(x, idx, axis=0, out=hs[0], mode="clip")
        top = len(self.layers)
        for i, (w, b) in enumerate(self.layers):
            np.matmul(hs[i], w, out=hs[i + 1])
            hs[i + 1] += b
            if i < top - 1:
                self.act(hs[i + 1])
        logits, d, rows = hs[top], ds[top], self.rows[:n]
        row_max, row_sum = self.row_max[:n], self.row_sum[:n]
        np.max(logits, axis=1, keepdims=True, out=row_max)
        np.subtract(logits, row_max, out=d)
        picked = d[rows, y]
        np.exp(d, out=d)
        np.sum(d, axis=1, keepdims=True, out=row_sum)
        loss = float(np.mean(np.log(row_sum[:, 0]) - picked))
        np.divide(d, row_sum, out=d)
        d[rows, y] -= F(1)
        d *= F(1.0 / n)
        for i in range(top - 1, -1, -1):
            w, _ = self.layers[i]
            gw, gb = self.grads[i]
            np.matmul(hs[i].T, ds[i + 1], out=gw)
            np.sum(ds[i + 1], axis=0, out=gb)
            if i > 0:
                np.matmul(ds[i + 1], w.T, out=ds[i])
                self.dact(hs[i], ds[i], self.scratch[i][:n])
        self.adam()
        return loss

    def adam(self):
        progress = min(self.t, self.total_steps) / self.total_steps
        lr = self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
        self.t += 1
        lr_t = F(lr * math.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t))
        b1, b2, eps = F(1 - self.beta1), F(1 - self.beta2), F(self.epsilon)
        p, g, m, v, tmp = self.flat, self.flat_grads, self.flat_m, self.flat_v, self.flat_tmp
        np.subtract(g, m, out=tmp)  # m += (g - m) (1 - beta1)
        tmp *= b1
        m += tmp
        np.multiply(g, g, out=tmp)  # v += (g^2 - v) (1 - beta2)
        tmp -= v
        tmp *= b2
        v += tmp
        np.sqrt(v, out=tmp)  # p -= lr_t m / (sqrt(v) + epsilon)
        tmp += eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        p -= tmp

    def epoch(self, x, y, batch_size, rng):
        order = rng.permutation(len(x))
        total, start = 0.0, 0
        for rows in steps_of_epoch(len(x), batch_size):
            idx = order[start : start + rows]
            total += self.step(x, y[idx], idx) * rows
            start += rows
        return total / len(x)

    def predict(self, x):
        return self.forward(x).argmax(axis=1)


def flat_views(layers):
    """(flat, views): one zeroed float32 buffer with a (W, b) view into it per layer, shaped as
    ``layers``."""
    flat = np.zeros(sum(w.size + b.size for w, b in layers), F)
    views, at = [], 0
    for w, b in layers:
        view_w = flat[at : at + w.size].reshape(w.shape)
        at += w.size
        views.append((view_w, flat[at : at + b.size]))
        at += b.size
    return flat, views


def numpy_floor(sizes, n, batch_size) -> float:
    """Seconds for the matrix products of one epoch on NumPy's BLAS, outputs preallocated."""
    b = batch_size
    ws = [np.ones((i, o), F) for i, o in zip(sizes[:-1], sizes[1:])]
    hs = [np.ones((b, s), F) for s in sizes]
    ds = [np.ones((b, s), F) for s in sizes]
    gs = [np.empty_like(w) for w in ws]
    start = time.perf_counter()
    for rows in steps_of_epoch(n, batch_size):
        for i, w in enumerate(ws):
            np.matmul(hs[i][:rows], w, out=hs[i + 1][:rows])
        for i in range(len(ws) - 1, -1, -1):
            np.matmul(hs[i][:rows].T, ds[i + 1][:rows], out=gs[i])
            if i > 0:
                np.matmul(ds[i + 1][:rows], ws[i].T, out=ds[i][:rows])
    return time.perf_counter() - start


class Worker:
    def __init__(self):
        self.model = None

    def setup(self, data, hidden, batch_size, epochs, seed=0, learning_rate=0.002, **_):
        self.data = load_data(data)
        x = self.data["x_train"]
        steps = len(steps_of_epoch(len(x), batch_size))
        self.sizes = [x.shape[1], *hidden, 10]
        self.model = NumpyMLP(self.sizes, "relu", learning_rate, epochs * steps, seed, batch_size=batch_size)
        self.batch_size, self.rng = batch_size, np.random.default_rng(seed)
        return {"ready": True}

    def info(self):
        return {"numpy": np.__version__, "blas": blas_info()}

    def epoch(self):
        start = time.perf_counter()
        loss = self.model.epoch(self.data["x_train"], self.data["y_train"], self.batch_size, self.rng)
        return {"seconds": time.perf_counter() - start, "loss": loss}

    def floor(self, first_inputs=None):
        """The GEMM floor; with ``first_inputs``, the work floor (the first layer that wide)."""
        sizes = [first_inputs or self.sizes[0], *self.sizes[1:]]
        return {"seconds": numpy_floor(sizes, len(self.data["x_train"]), self.batch_size)}

    def inference(self):
        images = self.data["x_test"]
        one = images[:1]
        return {
            "single_us": 1e6 * median_seconds(lambda: self.model.forward(one), 2000),
            "batch10k_ms": 1e3 * median_seconds(lambda: self.model.forward(images[:10000]), 3),
        }

    def evaluate(self):
        return {"test_accuracy": float(np.mean(self.model.predict(self.data["x_test"]) == self.data["y_test"]))}


class MinimalWorker(Worker):
    """numpy_minimal.py's step as a worker: the same init, schedule and batches."""

    def epoch(self):
        import numpy_minimal

        model, x, y = self.model, self.data["x_train"], self.data["y_train"]
        start = time.perf_counter()
        order, total, at = self.rng.permutation(len(x)), 0.0, 0
        for rows in steps_of_epoch(len(x), self.batch_size):
            idx = order[at : at + rows]
            progress = min(model.t, model.total_steps) / model.total_steps
            lr = model.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
            model.t += 1
            total += numpy_minimal.step(model.layers, model.m, model.v, x[idx], y[idx], model.t, lr) * rows
            at += rows
        return {"seconds": time.perf_counter() - start, "loss": total / len(x)}

    def floor(self, first_inputs=None):
        raise ValueError("the minimal script's worker times no floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run as a digits bench worker")
    parser.add_argument("--minimal", action="store_true", help="serve numpy_minimal.py's step instead")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    if args.serve:
        serve(Channel(), MinimalWorker() if args.minimal else Worker())
        return
    from tinygrad_digits.data import load_splits  # no Numba behind it

    splits = load_splits()
    mean, std = splits.x_train.mean(), splits.x_train.std()
    x = ((splits.x_train - mean) / std).astype(F)
    steps = len(steps_of_epoch(len(x), args.batch_size))
    model = NumpyMLP([784, *args.hidden, 10], total_steps=args.epochs * steps, batch_size=args.batch_size)
    rng = np.random.default_rng(0)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss = model.epoch(x, splits.y_train, args.batch_size, rng)
        print(f"epoch {epoch}: loss {loss:.4f}  {time.perf_counter() - start:.3f} s")
    test = ((splits.x_test - mean) / std).astype(F)
    print(f"test accuracy {100 * np.mean(model.predict(test) == splits.y_test):.2f}%")


if __name__ == "__main__":
    main()
