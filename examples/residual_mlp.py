"""A residual MLP on MNIST, written with the layer library and trained by ``train``.

python examples/residual_mlp.py [--train-size 48000] [--epochs 6]
"""

import argparse

import numpy as np

import tinygrad_digits as td
from tinygrad_digits.train import TrainConfig, evaluate_loss_accuracy, train

parser = argparse.ArgumentParser(description="A residual MLP on MNIST.")
parser.add_argument("--train-size", type=int, default=48_000)
parser.add_argument("--epochs", type=int, default=6)
args = parser.parse_args()

splits = td.load_splits()
x_train, y_train = splits.x_train[: args.train_size], splits.y_train[: args.train_size]
mean, std = x_train.mean(), x_train.std()
scale = lambda images: ((images - mean) / std).astype(np.float32)  # noqa: E731

block = td.Sequential(td.Dense(256, "relu"), td.Dense(256))  # x + block(x): a residual connection
model = td.Sequential(td.Dense(256, "relu"), td.Residual(block), td.Relu(), td.Dropout(0.1), td.Dense(10))
params = model.init(np.random.default_rng(0), (784,))

config = TrainConfig(epochs=args.epochs, batch_size=128, seed=0)
steps = args.epochs * -(-len(x_train) // config.batch_size)
optimizer = td.OptimizerConfig("adam", learning_rate=0.002, total_steps=steps)
result = train(
    model,
    params,
    scale(x_train),
    y_train,
    scale(splits.x_val),
    splits.y_val,
    config,
    optimizer,
    on_epoch=lambda r, p: print(f"epoch {r['epoch']}: validation {r['val_accuracy']:.2%}"),
)
_, accuracy = evaluate_loss_accuracy(model, params, scale(splits.x_test), splits.y_test)
print(f"test accuracy: {accuracy:.2%}")
