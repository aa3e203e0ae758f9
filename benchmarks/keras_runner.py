"""Keras 3 (TensorFlow backend, CPU) as a ``digits bench`` worker: the same MLP and optimizer.

Dense layers with He/Glorot uniform init, sparse softmax cross-entropy from logits, Adam
(epsilon 1e-7) with a cosine-decayed rate, ``model.fit`` on NumPy arrays with Keras's defaults
(shuffling each epoch; XLA as ``jit_compile="auto"`` decides). The epoch time is taken inside
the worker between ``on_epoch_begin`` and ``on_epoch_end``; between epochs ``fit`` waits in the
callback for the parent's next command, so one ``fit`` call runs the whole schedule.

Never import this next to Numba: TensorFlow and Numba both load LLVM. It runs as its own
process: ``python benchmarks/keras_runner.py --serve`` (see bench_common.py).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from bench_common import Channel, answer, load_data, median_seconds, serve, steps_of_epoch  # noqa: E402


class Worker:
    def __init__(self, channel: Channel):
        import keras
        import tensorflow as tf

        self.keras, self.tf = keras, tf
        self.channel = channel
        self.versions = {"keras": keras.__version__, "tensorflow": tf.__version__}

    def setup(self, data, hidden, batch_size, epochs, seed=0, learning_rate=0.002, **_):
        keras = self.keras
        keras.utils.set_random_seed(seed)
        self.data = load_data(data)
        x = self.data["x_train"]
        layers = [keras.Input((x.shape[1],))]
        layers += [keras.layers.Dense(h, activation="relu", kernel_initializer="he_uniform") for h in hidden]
        layers.append(keras.layers.Dense(10, kernel_initializer="glorot_uniform"))
        self.model = keras.Sequential(layers)
        steps = len(steps_of_epoch(len(x), batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)
        self.model.compile(
            optimizer=keras.optimizers.Adam(schedule, epsilon=1e-7),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        self.batch_size, self.epochs = batch_size, epochs
        return {"ready": True, **self.versions}

    def info(self):
        return dict(self.versions)

    def epoch(self):
        """Start ``fit``; later epochs are released from inside the callback."""
        worker = self

        class Pace(self.keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch > 0:
                    worker._wait_for_epoch()
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                reply = {"seconds": time.perf_counter() - self.started, "loss": float(logs["loss"])}
                if epoch + 1 < worker.epochs:
                    worker.channel.send(reply)
                else:
                    worker.last = reply

        self.model.fit(self.data["x_train"], self.data["y_train"], batch_size=self.batch_size,
                       epochs=self.epochs, shuffle=True, verbose=0, callbacks=[Pace()])
        return self.last

    def _wait_for_epoch(self):
        while True:
            command = self.channel.receive()
            if command["cmd"] == "epoch":
                return
            answer(self.channel, self, command)

    def inference(self):
        x = self.data["x_test"]
        one = x[:1]
        self.model(one, training=False)
        self.model.predict(x[:10000], batch_size=10000, verbose=0)
        return {
            "single_us": 1e6 * median_seconds(lambda: self.model(one, training=False), 200),
            "batch10k_ms": 1e3 * median_seconds(
                lambda: self.model.predict(x[:10000], batch_size=10000, verbose=0), 3),
        }

    def evaluate(self):
        logits = self.model.predict(self.data["x_test"], batch_size=10000, verbose=0)
        return {"test_accuracy": float(np.mean(logits.argmax(axis=1) == self.data["y_test"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run as a digits bench worker")
    args = parser.parse_args()
    if args.serve:
        channel = Channel()
        serve(channel, Worker(channel))
        return
    parser.error("use digits bench, or --serve")


if __name__ == "__main__":
    main()
