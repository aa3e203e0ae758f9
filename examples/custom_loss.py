"""A custom loss, differentiated automatically: label smoothing on an MLP, in a loop of our own.

python examples/custom_loss.py [--train-size 48000] [--epochs 5] [--smoothing 0.1]
"""

import argparse

import numpy as np

import tinygrad_digits as td
from tinygrad_digits import ops
from tinygrad_digits import optimizers as O

parser = argparse.ArgumentParser(description="Label smoothing on MNIST.")
parser.add_argument("--train-size", type=int, default=48_000)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--smoothing", type=float, default=0.1)
args = parser.parse_args()

splits = td.load_splits()
x, y = splits.x_train[: args.train_size], splits.y_train[: args.train_size]
mean, std = x.mean(), x.std()
scale = lambda images: ((images - mean) / std).astype(np.float32)  # noqa: E731


def loss_fn(params, x, labels):
    """Cross-entropy against (1 - s) one-hot + s / 10 everywhere: a loss no kernel knows."""
    h = ops.relu(ops.dense(x, params["w1"], params["b1"]))
    log_probs = ops.log_softmax(ops.dense(h, params["w2"], params["b2"]))
    targets = np.full(log_probs.shape, args.smoothing / 10, np.float32)
    targets[np.arange(len(labels)), labels] += 1 - args.smoothing
    return -(log_probs * targets).sum() / len(labels)


rng = np.random.default_rng(0)
params = {}  # He uniform for the ReLU layer, Glorot uniform for the logits: the layers' own initializers
params["w1"], params["b1"] = td.Dense(256, "relu").init(rng, (784,)).values()
params["w2"], params["b2"] = td.Dense(10).init(rng, (256,)).values()
optimizer = O.OptimizerConfig("adam", learning_rate=0.002, total_steps=args.epochs * (len(x) // 128 + 1))
state, step = O.init(optimizer, params), td.value_and_grad(loss_fn)
for epoch in range(args.epochs):
    order = rng.permutation(len(x))
    for start in range(0, len(x), 128):
        batch = order[start : start + 128]
        loss, grads = step(params, scale(x[batch]), y[batch])
        O.update(optimizer, params, grads, state)
    print(f"epoch {epoch + 1}: loss {loss:.4f}")
h = np.maximum(scale(splits.x_test) @ params["w1"] + params["b1"], 0)
print(f"test accuracy: {np.mean(np.argmax(h @ params['w2'] + params['b2'], 1) == splits.y_test):.2%}")
