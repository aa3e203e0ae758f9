"""The Keras side of the twin, run as ``python -m tinygrad_digits.apps._keras_worker JOB_DIR``.

This is the only module that imports TensorFlow, and it runs in a process of its own: TensorFlow
and Numba both load LLVM and are known to crash in one process. It must never import numba,
``tinygrad_digits.kernels``, ``ops`` or ``model`` (the package ``__init__`` is light), so it
works from plain data: the twin description written by ``keras_twin.describe_twin``.

Protocol (see ``keras_twin``): reads ``JOB_DIR/job.json`` ({"threads", "tasks"}) and
``JOB_DIR/inputs.npz`` (arrays ``"<key>/<name>"``); writes ``JOB_DIR/outputs.npz`` and
``JOB_DIR/results.json`` (one dict per task, in order). Progress goes to stdout as JSON lines
(``{"event": "ready", ...}``, ``{"event": "epoch", "key": ..., "record": {...}}``); whatever
else would reach stdout is sent to stderr. A failure ends with one line
``keras worker: <error>`` on stderr and exit status 1.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from .keras_model import (NORM_KEYS, build_model, build_optimizer, data_loss_metric, dense_layers, get_params,
                          loss_of, norm_names, param_specs, set_params)

KINDS = ("gradients", "steps", "init", "train")
# LLVM a second time (numba, and our kernels, ops and model, which import it): never here
FORBIDDEN = ("tinygrad_digits.kernels", "tinygrad_digits.ops", "tinygrad_digits.model")
EVAL_BATCH_SIZE = 4096  # train.evaluate_loss_accuracy's batch size, for validation and test


def _load_tensorflow(threads: int):
    """Import TensorFlow and Keras with quiet logs, no XLA, and ``threads`` for both op pools."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf  # noqa: PLC0415 (the one place TensorFlow is imported)

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.get_logger().setLevel("ERROR")
    import keras  # noqa: PLC0415

    return tf, keras


# -- building the twin ---------------------------------------------------------------------


def task_gradients(tf, keras, task, arrays, emit):
    """Loss and GradientTape gradients of the data loss at the given params and batch."""
    key = task["key"]
    model = build_model(keras, task["twin"])
    set_params(model, task["twin"], arrays, f"{key}/params/")
    x = tf.constant(arrays[f"{key}/x"])
    y = tf.constant(arrays[f"{key}/y"])
    variables = [v for layer in dense_layers(model, task["twin"]) for v in (layer.kernel, layer.bias)]
    names = [f"{key}/grads/{layer['name']}.{p}" for layer in param_specs(task["twin"]) for p in "Wb"]
    for name in norm_names(task["twin"]):  # the statistics are no function of the loss: no gradient
        variables += model.get_layer(name).weights
        names += [f"{key}/grads/{name}.{p}" for p in NORM_KEYS]
    with tf.GradientTape() as tape:
        loss = loss_of(keras, task["twin"])(y, model(x, training=True))
    grads = tape.gradient(loss, variables)
    return {"loss": float(loss)}, {n: np.zeros(v.shape, v.dtype) if g is None else g.numpy()
                                   for n, g, v in zip(names, grads, variables)}


def task_steps(tf, keras, task, arrays, emit):
    """Optimizer steps with ``Model.train_step``, the step ``fit`` compiles, run eagerly here
    (tracing a tf.function per tiny model would cost seconds each)."""
    key = task["key"]
    twin = task["twin"]
    model = build_model(keras, twin)
    set_params(model, twin, arrays, f"{key}/params/")
    model.compile(optimizer=build_optimizer(keras, twin), loss=loss_of(keras, twin), jit_compile=False)
    xs, ys = arrays[f"{key}/x"], arrays[f"{key}/y"]
    losses, rates = [], []
    for x, y in zip(xs, ys):
        rates.append(float(model.optimizer.learning_rate))
        model.reset_metrics()  # the logged loss is a running mean: make it this step's
        logs = model.train_step((tf.constant(x), tf.constant(y)))
        losses.append(float(logs["loss"]))
    return {"losses": losses, "learning_rates": rates}, get_params(model, twin, f"{key}/params/")


def task_init(tf, keras, task, arrays, emit):
    """The twin's own initial parameters (independent-init mode) for a seed."""
    model = build_model(keras, task["twin"], task["seed"])
    params = get_params(model, task["twin"], f"{task['key']}/params/")
    return {"parameters": int(model.count_params())}, params


def _epoch_clock(keras, key: str, epochs: int, emit):
    """A Keras callback that times every epoch (training and validation, as our loop does),
    keeps a history in our record format and reports each epoch as it ends."""

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history = []

        def on_epoch_begin(self, epoch, logs=None):
            self.learning_rate = float(self.model.optimizer.learning_rate)
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.started
            logs = logs or {}
            record = {
                "epoch": epoch + 1,
                "train_loss": float(logs.get("ce", math.nan)),  # the data loss, as ours reports
                "train_accuracy": float(logs.get("acc", math.nan)),
                "val_loss": float(logs.get("val_ce", math.nan)),
                "val_accuracy": float(logs.get("val_acc", math.nan)),
                "learning_rate": self.learning_rate,
                "seconds": seconds,
                "keras_loss": float(logs.get("loss", math.nan)),  # what fit minimizes: + the L2 term
            }
            self.history.append(record)
            emit({"event": "epoch", "key": key, "epochs": epochs, "record": record})

    return EpochClock()


def _ordered_batches(tf, x, y, orders, batch_size):
    """Batches in exactly the given per-epoch orders (epochs, n), gathered lazily per batch
    as Keras's own array adapter does; each epoch ends with its own partial batch.

    No parallel map or prefetch: on 2 cores they made no epoch faster, and tearing down the
    prefetching iterator after the last epoch took seconds."""
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    index = tf.data.Dataset.from_tensor_slices(orders).flat_map(
        lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
    )
    return tf.data.Dataset.zip((index, data)).map(lambda i, d: (tf.gather(d[0], i), tf.gather(d[1], i)))


def _median_seconds(fn, x, repeats: int) -> float:
    """Median wall time of fn(x) over ``repeats`` calls, after ``repeats // 10 + 1`` warm-up calls."""
    for _ in range(repeats // 10 + 1):
        fn(x)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def task_train(tf, keras, task, arrays, emit):
    """A full ``fit``: same-init (our params and batch orders given) or Keras's own init and
    shuffling; then test logits, final params and single-image predict latency."""
    key = task["key"]
    twin = task["twin"]
    batch_size, epochs, seed = task["batch_size"], task["epochs"], task["seed"]
    keras.utils.set_random_seed(seed)
    model = build_model(keras, twin, seed)
    same_init = f"{key}/orders" in arrays
    if same_init:
        set_params(model, twin, arrays, f"{key}/params/")
    model.compile(
        optimizer=build_optimizer(keras, twin),
        loss=loss_of(keras, twin),
        metrics=[
            data_loss_metric(keras, twin),
            keras.metrics.SparseCategoricalAccuracy(name="acc"),
        ],
        jit_compile=False,
    )
    x, y = arrays[f"{key}/x_train"], arrays[f"{key}/y_train"]
    x_val, y_val = arrays[f"{key}/x_val"], arrays[f"{key}/y_val"]
    validation = (x_val, y_val) if len(x_val) else None
    clock = _epoch_clock(keras, key, epochs, emit)
    common = dict(epochs=epochs, validation_data=validation, validation_batch_size=EVAL_BATCH_SIZE,
                  callbacks=[clock], verbose=0)
    started = time.perf_counter()
    if same_init:
        steps = math.ceil(len(x) / batch_size)
        batches = _ordered_batches(tf, x, y, arrays[f"{key}/orders"], batch_size)
        model.fit(batches, steps_per_epoch=steps, **common)
    else:
        model.fit(x, y, batch_size=batch_size, shuffle=True, **common)
    total = time.perf_counter() - started

    test_logits = model.predict(arrays[f"{key}/x_test"], batch_size=EVAL_BATCH_SIZE, verbose=0)
    # Latency on one raw [0, 1] image, normalization and softmax included, as our predict_proba.
    mean, std = twin["input_mean"], twin["input_std"]
    predictor = keras.Sequential(
        [keras.Input((twin["inputs"],)), keras.layers.Rescaling(1.0 / std, offset=-mean / std), model,
         keras.layers.Softmax()]
    )
    image = arrays[f"{key}/image"].reshape(1, -1)
    repeats = task["latency_repeats"]
    eager = _median_seconds(lambda v: predictor(v, training=False).numpy(), image, repeats)
    graph_fn = tf.function(lambda v: predictor(v, training=False), jit_compile=False)
    image_t = tf.constant(image)
    graph = _median_seconds(lambda v: graph_fn(v).numpy(), image_t, repeats)

    outputs = get_params(model, twin, f"{key}/params/")
    outputs[f"{key}/test_logits"] = np.asarray(test_logits)
    result = {
        "history": clock.history,
        "total_seconds": total,
        "predict_seconds": eager,
        "predict_seconds_tf_function": graph,
        "parameters": int(model.count_params()),
    }
    return result, outputs


TASKS = {"gradients": task_gradients, "steps": task_steps, "init": task_init, "train": task_train}


# -- process -------------------------------------------------------------------------------


def _with_dtype(keras, dtype: str, fn):
    """Run fn with floatx and the global dtype policy both set to dtype (Keras caches the
    policy, so setting floatx alone leaves layers and losses in the first dtype used)."""
    previous = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        return fn()
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])


def run(job_dir: Path, emit) -> None:
    job = json.loads((job_dir / "job.json").read_text())
    tasks = job["tasks"]
    for task in tasks:  # check the job before paying for the TensorFlow import
        if task.get("kind") not in KINDS:
            raise ValueError(f"unknown task kind {task.get('kind')!r}: expected one of {', '.join(KINDS)}")
    with np.load(job_dir / "inputs.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    threads = int(job.get("threads") or os.cpu_count() or 1)
    started = time.perf_counter()
    tf, keras = _load_tensorflow(threads)
    info = {
        "event": "ready",
        "import_seconds": time.perf_counter() - started,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    emit(info)
    results, outputs = [], {}
    for task in tasks:
        fn = TASKS[task["kind"]]
        task_started = time.perf_counter()
        result, out = _with_dtype(keras, task.get("dtype", "float32"),
                                  lambda: fn(tf, keras, task, arrays, emit))
        results.append({**result, "task_seconds": time.perf_counter() - task_started})
        outputs.update(out)
    forbidden = sorted(m for m in sys.modules if m.split(".")[0] == "numba" or m.startswith(FORBIDDEN))
    info = {k: v for k, v in info.items() if k != "event"}
    np.savez(job_dir / "outputs.npz", **outputs)
    (job_dir / "results.json").write_text(
        json.dumps({"worker": {**info, "forbidden_modules": forbidden}, "results": results})
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tinygrad_digits.apps._keras_worker JOB_DIR", file=sys.stderr)
        return 2
    # Progress lines get a private copy of stdout; stray prints from libraries go to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def emit(event: dict) -> None:
        channel.write(json.dumps(event) + "\n")

    try:
        run(Path(argv[0]), emit)
    except Exception as e:  # the traceback, then one line for the parent to show
        traceback.print_exc()
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"keras worker: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
