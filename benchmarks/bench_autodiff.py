"""The cost of autodiff: one training step of the 784-128-10 MLP through ``value_and_grad``
against the same step with its backward pass written by hand, in the same process and run.

The hand-written step is the general path as it was before autodiff: the dense, softmax
cross-entropy and optimizer kernels called one after the other, forward then backward, with no
record. Both then take the same Adam update. Rounds alternate the two (paired), and the ratio is
the median over rounds of autodiff's time over the hand-written one's.

    python benchmarks/bench_autodiff.py [--rounds 15] [--steps 50] [--hidden 128]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tinygrad_digits import model as M
from tinygrad_digits import ops
from tinygrad_digits import optimizers as O
from tinygrad_digits.autodiff import value_and_grad
from tinygrad_digits.data import load_splits
from tinygrad_digits.kernels import dense as dense_kernels
from tinygrad_digits.kernels import softmax as softmax_kernels

DATA = Path(__file__).resolve().parent.parent / "data" / "mnist"


def hand_written_step(spec, params, x, labels):
    """Loss and grads of the MLP with its backward pass by hand (kernels only, no record)."""
    saved, h = [], x
    layers = spec.layers()
    for name, _, _, act in layers:
        y = dense_kernels.dense_forward(
            h, params[name + ".W"], params[name + ".b"], ops.activation_code(act), 0.1
        )
        saved.append((name, h, y, ops.activation_code(act)))
        h = y
    loss, dy, _ = softmax_kernels.softmax_cross_entropy(h, labels)
    grads = {}
    for i in range(len(saved) - 1, -1, -1):
        name, h_in, y, code = saved[i]
        dy, grads[name + ".W"], grads[name + ".b"] = dense_kernels.dense_backward(
            h_in, params[name + ".W"], y, dy, code, 0.1, i > 0
        )
    return loss, grads


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)

    splits = load_splits(DATA, seed=0)
    spec = M.ModelSpec(hidden=(args.hidden,), activations=("relu",))
    x_all = M.normalize(spec, splits.x_train[: args.steps * args.batch_size])
    y_all = splits.y_train[: len(x_all)].astype(np.int64)
    network = spec.network()
    autodiff_step = value_and_grad(lambda p, x, y: ops.softmax_cross_entropy(network.apply(p, x), y))

    def timed(step) -> float:
        params = M.init_params(spec, np.random.default_rng(0))
        optimizer = O.OptimizerConfig("adam", total_steps=args.steps)
        state = O.init(optimizer, params)
        started = time.perf_counter()
        for s in range(args.steps):
            xb = x_all[s * args.batch_size : (s + 1) * args.batch_size]
            yb = y_all[s * args.batch_size : (s + 1) * args.batch_size]
            _, grads = step(params, xb, yb)
            O.update(optimizer, params, grads, state, check=False)
        return (time.perf_counter() - started) / args.steps

    by_hand = lambda p, x, y: hand_written_step(spec, p, x, y)  # noqa: E731
    timed(by_hand), timed(autodiff_step)  # compile or load the kernels, warm the caches
    hand, auto = [], []
    for _ in range(args.rounds):
        hand.append(timed(by_hand))
        auto.append(timed(autodiff_step))
    ratios = np.array(auto) / np.array(hand)
    print(
        f"one training step of {spec.describe()}, batch {args.batch_size}, Adam "
        f"({args.rounds} paired rounds of {args.steps} steps)"
    )
    print(f"  backward by hand:   {1e3 * np.median(hand):.3f} ms (median)")
    print(f"  autodiff:           {1e3 * np.median(auto):.3f} ms (median)")
    print(
        f"  autodiff / by hand: {np.median(ratios):.3f} (median of paired rounds; "
        f"range {ratios.min():.3f}-{ratios.max():.3f})"
    )


if __name__ == "__main__":
    main()
