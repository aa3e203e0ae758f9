"""The plain-NumPy reference trainer: the seed project's approach, written well.

The same network, initialisation, loss and optimizer as tinygrad-digits (Keras's Adam with a
cosine-decayed rate), in float32 with float32 scalars, as ordinary NumPy array expressions:
one temporary per expression, NumPy's own BLAS for the products. No Numba is imported here.

Run ``python benchmarks/numpy_reference.py`` to train 784-128-10 for a few epochs and print the
seconds per epoch, or with ``--serve`` as a worker of ``digits bench`` (see bench_common.py).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from bench_common import Channel, blas_info, he_or_glorot_init, load_data, median_seconds, serve, steps_of_epoch

F = np.float32

ACTIVATIONS = {  # forward, and derivative from the output y
    "relu": (lambda z: np.maximum(z, F(0)), lambda y: (y > 0).astype(F)),
    "sigmoid": (lambda z: F(1) / (F(1) + np.exp(-z)), lambda y: y * (F(1) - y)),
    "tanh": (np.tanh, lambda y: F(1) - y * y),
}


class NumpyMLP:
    """MLP + softmax cross-entropy + Adam; params a list of (W, b)."""

    def __init__(self, sizes, activation="relu", learning_rate=0.002, total_steps=1, seed=0,
                 beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.layers = he_or_glorot_init(sizes, [activation] * (len(sizes) - 2), np.random.default_rng(seed))
        self.act, self.dact = ACTIVATIONS[activation]
        self.m = [(np.zeros_like(w), np.zeros_like(b)) for w, b in self.layers]
        self.v = [(np.zeros_like(w), np.zeros_like(b)) for w, b in self.layers]
        self.learning_rate, self.total_steps = learning_rate, total_steps
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.t = 0

    def forward(self, x):
        """Logits and each layer's input/output."""
        outputs = [x]
        h = x
        for i, (w, b) in enumerate(self.layers):
            z = h @ w + b
            h = self.act(z) if i < len(self.layers) - 1 else z
            outputs.append(h)
        return h, outputs

    def step(self, x, y):
        """One Adam step on a batch; returns the mean loss."""
        logits, outputs = self.forward(x)
        n = len(y)
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - shifted[np.arange(n), y]))
        dy = exp / total
        dy[np.arange(n), y] -= F(1)
        dy /= F(n)
        grads = []
        for i in range(len(self.layers) - 1, -1, -1):
            w, _ = self.layers[i]
            grads.append((outputs[i].T @ dy, dy.sum(axis=0)))
            if i > 0:
                dy = (dy @ w.T) * self.dact(outputs[i])
        grads.reverse()
        self.adam(grads)
        return loss

    def adam(self, grads):
        progress = min(self.t, self.total_steps) / self.total_steps
        lr = self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
        self.t += 1
        lr_t = F(lr * math.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t))
        b1, b2, eps = F(1 - self.beta1), F(1 - self.beta2), F(self.epsilon)
        for (w, b), (gw, gb), (mw, mb), (vw, vb) in zip(self.layers, grads, self.m, self.v):
            for p, g, m, v in ((w, gw, mw, vw), (b, gb, mb, vb)):
                m += (g - m) * b1
                v += (g * g - v) * b2
                p -= lr_t * m / (np.sqrt(v) + eps)

    def epoch(self, x, y, batch_size, rng):
        order = rng.permutation(len(x))
        total, start = 0.0, 0
        for rows in steps_of_epoch(len(x), batch_size):
            idx = order[start : start + rows]
            total += self.step(x[idx], y[idx]) * rows
            start += rows
        return total / len(x)

    def predict(self, x):
        return self.forward(x)[0].argmax(axis=1)


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
        self.model = NumpyMLP(self.sizes, "relu", learning_rate, epochs * steps, seed)
        self.batch_size, self.rng = batch_size, np.random.default_rng(seed)
        return {"ready": True}

    def info(self):
        return {"numpy": np.__version__, "blas": blas_info()}

    def epoch(self):
        start = time.perf_counter()
        loss = self.model.epoch(self.data["x_train"], self.data["y_train"], self.batch_size, self.rng)
        return {"seconds": time.perf_counter() - start, "loss": loss}

    def floor(self):
        return {"seconds": numpy_floor(self.sizes, len(self.data["x_train"]), self.batch_size)}

    def inference(self):
        images = self.data["x_test"]
        one = images[:1]
        return {
            "single_us": 1e6 * median_seconds(lambda: self.model.forward(one), 2000),
            "batch10k_ms": 1e3 * median_seconds(lambda: self.model.forward(images[:10000]), 3),
        }

    def evaluate(self):
        return {"test_accuracy": float(np.mean(self.model.predict(self.data["x_test"]) == self.data["y_test"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run as a digits bench worker")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    if args.serve:
        serve(Channel(), Worker())
        return
    from tinygrad_digits.data import load_splits  # no Numba behind it

    splits = load_splits()
    mean, std = splits.x_train.mean(), splits.x_train.std()
    x = ((splits.x_train - mean) / std).astype(F)
    steps = len(steps_of_epoch(len(x), args.batch_size))
    model = NumpyMLP([784, *args.hidden, 10], total_steps=args.epochs * steps)
    rng = np.random.default_rng(0)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss = model.epoch(x, splits.y_train, args.batch_size, rng)
        print(f"epoch {epoch}: loss {loss:.4f}  {time.perf_counter() - start:.3f} s")
    test = ((splits.x_test - mean) / std).astype(F)
    print(f"test accuracy {100 * np.mean(model.predict(test) == splits.y_test):.2f}%")


if __name__ == "__main__":
    main()
