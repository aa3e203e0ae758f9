"""One epoch of ``digits train --preset best``'s recipe, ours against the same recipe in Keras.

Ours: tinygrad_digits.apps.training.train_and_save on the preset (800x800 ReLU, dropout 0.1, elastic +
affine augmentation, Adam, batches of 256, all 60,000 images), ``--epochs`` epochs; its epochs'
``seconds`` (no validation set: the training steps alone). Keras, in a process of its own (it and
Numba both load LLVM): the same layers, Dropout(0.1), Adam and batch size, fed our augmented
images of one epoch (so Keras is timed without the augmentation we pay for), epoch 1 (tracing)
reported apart, as is ours (its first epoch loads kernels). Beside them, the epoch's GEMM floor:
its matrix products alone, as sgemm calls of the same shapes on NumPy's BLAS (numpy_reference's
``numpy_floor``), timed after our epochs and after Keras's, so that both are seen against what
the products cost. Prints the medians and their ratios, with the load average.

    python benchmarks/preset_vs_keras.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy_reference import numpy_floor

SIZES, N, BATCH = [784, 800, 800, 10], 60000, 256  # the preset's layers, images and batch


def keras_epochs(folder: str, epochs: int) -> list[float]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    x, y = np.load(f"{folder}/x.npy"), np.load(f"{folder}/y.npy")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)),
                              keras.layers.Dense(800, activation="relu", kernel_initializer="he_uniform"),
                              keras.layers.Dropout(0.1),
                              keras.layers.Dense(800, activation="relu", kernel_initializer="he_uniform"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(0.002, epsilon=1e-7),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=256, epochs=epochs + 1, verbose=0, callbacks=[Timer()])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--keras", metavar="DIR", help=argparse.SUPPRESS)  # the worker process
    args = parser.parse_args()
    if args.keras:
        print(json.dumps(keras_epochs(args.keras, args.epochs)))
        return
    from tinygrad_digits import warmup
    from tinygrad_digits.apps import training as app
    from tinygrad_digits.augment import BatchAugmenter, augmentation
    from tinygrad_digits.data import load_splits

    if not warmup.kernels_cached():
        warmup.warm_up()
    splits = load_splits()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        done = app.train_and_save(app.preset_run("best", epochs=args.epochs), splits, Path(tmp) / "m.npz")
        ours = [r["seconds"] for r in done["result"].history]
        floors = [numpy_floor(SIZES, N, BATCH)]  # after our epochs, and again after Keras's
        x = np.concatenate([splits.x_train, splits.x_val]).astype(np.float32)
        mean, std = x.mean(), x.std()
        x = (x - mean) / std
        augment = BatchAugmenter(augmentation(app.PRESETS["best"]["augment"]), fill=-mean / std)
        x = np.concatenate([augment(x[i : i + 256], np.random.default_rng(i)) for i in range(0, len(x), 256)])
        np.save(f"{tmp}/x.npy", np.ascontiguousarray(x, np.float32))
        np.save(f"{tmp}/y.npy", np.concatenate([splits.y_train, splits.y_val]).astype(np.int64))
        keras = json.loads(subprocess.run([sys.executable, __file__, "--keras", tmp, "--epochs", str(args.epochs)],
                                          capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    floors.append(numpy_floor(SIZES, N, BATCH))
    ours_s, keras_s = float(np.median(ours[1:] or ours)), float(np.median(keras[1:]))
    floor = min(floors)
    print(f"--preset best, one epoch of 60,000 images (load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after)")
    print(f"  ours (general path, augmentation and dropout)  {ours_s:7.2f} s  (epoch 1 apart; epochs: "
          f"{', '.join(f'{s:.2f}' for s in ours)})")
    print(f"  keras, fed our augmented images                 {keras_s:7.2f} s  (epoch 1, tracing: {keras[0]:.2f})")
    print(f"  GEMM floor, the products alone                  {floor:7.2f} s  (NumPy's BLAS; "
          f"{', '.join(f'{s:.2f}' for s in floors)})")
    print(f"  keras / ours                                    {keras_s / ours_s:7.2f}x")
    print(f"  ours / floor; keras / floor                     {ours_s / floor:7.2f}x; {keras_s / floor:.2f}x")


if __name__ == "__main__":
    main()
