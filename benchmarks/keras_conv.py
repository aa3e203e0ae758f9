"""Keras's "Simple MNIST convnet" timed by ``model.fit``, for bench_conv.py (its own process:
TensorFlow and Numba must not share one).

    python benchmarks/keras_conv.py DATA.npz EPOCHS BATCH_SIZE

DATA.npz holds ``x`` (n, 28, 28, 1) float32 and ``y`` (n,) int64. The network is the example's:
Conv 32 3x3 relu, max-pool 2, Conv 64 3x3 relu, max-pool 2, flatten, dropout 0.5, dense 10;
Adam (Keras's defaults), sparse cross-entropy from logits. Each epoch is timed inside ``fit``
(on_epoch_begin to on_epoch_end); the first includes tracing. Prints one JSON line:
``{"epoch_seconds": [...], "keras": version, "tensorflow": version}``.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main(path: str, epochs: int, batch_size: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    data = np.load(path)
    x, y = data["x"], data["y"]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    seconds = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[Clock()])
    return {"epoch_seconds": seconds, "keras": keras.__version__, "tensorflow": tf.__version__}


if __name__ == "__main__":
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever TensorFlow prints goes to stderr; the JSON line alone to stdout
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))), file=out, flush=True)
