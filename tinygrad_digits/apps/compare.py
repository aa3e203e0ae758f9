"""Application logic of ``digits compare``: our network (an MLP or a convnet) and its Keras twin,
trained side by side.

``compare`` trains ours in this process, then the twin (``keras_twin``) in the Keras worker
process, one after the other so neither steals the other's cores; it evaluates both on the test
set with the same NumPy definitions and returns one JSON-ready report, which ``format_table``
renders. Both sides report the first epoch (Keras traces its graphs there) apart from the
median of the others.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

LATENCY_REPEATS = 200
OURS_PREDICT = "model.predict_proba(spec, params, image)"
KERAS_PREDICT = "model(x, training=False), eager"
KERAS_PREDICT_GRAPH = "the same call in a tf.function"
ADAM_NOTE = (
    "note: Keras computes Adam's bias correction 1 - beta^t in float32 (beta_2 = 0.999 becomes\n"
    "0.99900001), so its steps are up to 7e-6 shorter than ours; training amplifies that:\n"
    "same-init Adam runs drift apart and end at similar accuracy (same-init SGD runs stay together)"
)


def setup(run, splits):
    """``app.prepare`` of ``run``, which the twin can mirror: no augmentation, validation kept."""
    from .training import prepare

    if getattr(run, "augment", "none") != "none" or getattr(run, "all_data", False):
        raise ValueError("compare: the Keras twin has no augmentation and keeps the validation set; "
                         "compare runs without --augment and --all-data")
    return prepare(run, splits)


def median_seconds(fn, repeats: int = LATENCY_REPEATS) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``repeats // 10 + 1`` warm-up
    calls (the worker times Keras the same way)."""
    for _ in range(repeats // 10 + 1):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _timing(history: list[dict]) -> dict:
    seconds = [r["seconds"] for r in history]
    return {
        "seconds_per_epoch": seconds,
        "first_epoch_seconds": seconds[0] if seconds else None,
        "median_seconds_per_epoch": float(np.median(seconds[1:])) if len(seconds) > 1 else None,
    }


def compare(run, splits, same_init: bool = True, on_batch=None, on_epoch=None, on_keras_event=None) -> dict:
    """Train ``run`` (an ``app.TrainRun``) with our framework, then its Keras twin; compare.

    same_init: the twin starts from our initial params and sees our batch order; otherwise it
    uses Keras's own initializers and shuffling, seeded with ``run.seed``.
    on_batch(step, steps), on_epoch(record, params): our training's progress.
    on_keras_event(event): the worker's progress ({"event": "ready" | "epoch", ...}).

    Returns the report: {"mode", "architecture", "spec", "config", "keras_model", "ours",
    "keras", "accuracy_gap_pp", "same_init"} (see ``format_table``). Raises KeyboardInterrupt
    if our training is interrupted, and keras_twin.KerasTwinError if the worker fails.
    """
    from .. import metrics
    from . import keras_twin
    from .. import model as M
    from .. import train as T

    s = setup(run, splits)
    spec = s.spec
    initial = {k: v.copy() for k, v in s.params.items()}
    x_train = M.normalize(spec, s.x_train)
    x_val = M.normalize(spec, splits.x_val)
    x_test = M.normalize(spec, splits.x_test)

    started = time.perf_counter()
    result = T.train(spec, s.params, x_train, s.y_train, x_val, splits.y_val, s.config, s.optimizer,
                     on_batch=on_batch, on_epoch=on_epoch)
    ours_total = time.perf_counter() - started
    if result.stopped and result.stopped.startswith("interrupted"):
        raise KeyboardInterrupt(result.stopped)
    params = result.params
    evaluated = metrics.evaluate(spec, params, splits.x_test, splits.y_test)
    ours_predictions = M.predict(spec, params, splits.x_test)
    image = splits.x_test[0]
    ours = {
        "engine": "numba",
        "test_accuracy": evaluated["accuracy"],
        "test_loss": evaluated["loss"],
        "per_digit_accuracy": evaluated["per_digit_accuracy"],
        "history": result.history,
        **_timing(result.history),
        "total_training_seconds": ours_total,
        "predict_seconds": median_seconds(lambda: M.predict_proba(spec, params, image)),
        "predict_method": OURS_PREDICT,
        "parameters": spec.n_params(),
        "threads": os.cpu_count(),
        "stopped": result.stopped,
    }

    job = keras_twin.Job()
    data = {"x_train": x_train, "y_train": s.y_train, "x_val": x_val, "y_val": splits.y_val, "x_test": x_test}
    key = job.add_train(spec, s.optimizer, s.config, run.init, data, image,
                        params=initial if same_init else None)
    job.run(on_event=on_keras_event)
    answer = job.result(key)
    logits = job.array(key, "test_logits")
    keras_loss, keras_accuracy = softmax_cross_entropy(logits, splits.y_test)
    keras_predictions = np.argmax(logits, axis=1)
    confusion = metrics.confusion_matrix(splits.y_test, keras_predictions, spec.outputs)
    worker = job.worker
    keras = {
        "engine": f"tensorflow {worker['tensorflow_version']}, keras {worker['keras_version']}",
        "test_accuracy": keras_accuracy,
        "test_loss": keras_loss,
        "per_digit_accuracy": [float(a) for a in metrics.per_class_accuracy(confusion)],
        "history": answer["history"],
        **_timing(answer["history"]),
        "total_training_seconds": answer["total_seconds"],
        "predict_seconds": answer["predict_seconds"],
        "predict_method": KERAS_PREDICT,
        "predict_seconds_tf_function": answer["predict_seconds_tf_function"],
        "predict_method_tf_function": KERAS_PREDICT_GRAPH,
        "parameters": answer["parameters"],
        "threads": {"intra_op": worker["intra_op_threads"], "inter_op": worker["inter_op_threads"]},
        "tensorflow_import_seconds": worker["import_seconds"],
    }

    same = None
    if same_init:
        final = job.params(key)
        diffs = {k: float(np.max(np.abs(final[k].astype(np.float64) - params[k]))) for k in params}
        worst = max(diffs, key=diffs.get)
        squared = sum(float(np.sum((final[k].astype(np.float64) - params[k]) ** 2)) for k in params)
        norm = sum(float(np.sum(params[k].astype(np.float64) ** 2)) for k in params)
        same = {
            "largest_param_difference": diffs[worst],
            "largest_param_difference_at": worst,
            "param_differences": diffs,
            # |keras - ours| / |ours| over all parameters: round-off drift, where the largest
            # difference also catches a rare ReLU flip (one pre-activation on either side of 0)
            "relative_param_difference": math.sqrt(squared / norm) if norm else 0.0,
            "prediction_agreement": float(np.mean(ours_predictions == keras_predictions)),
        }
    twin = keras_twin.describe_twin(spec, s.optimizer, run.init)
    return {
        "mode": "same-init" if same_init else "independent-init",
        "architecture": spec.describe(),
        "spec": spec.to_json(),
        "config": {**run.config(), "learning_rate": s.optimizer.learning_rate, "train_images": len(x_train),
                   "split_seed": splits.seed},
        "keras_model": {**twin, "optimizer_call": keras_twin.describe_optimizer(twin)},
        "ours": ours,
        "keras": keras,
        "accuracy_gap_pp": 100 * abs(ours["test_accuracy"] - keras["test_accuracy"]),
        "same_init": same,
    }


def _fmt(value, fmt: str, scale: float = 1.0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value * scale, fmt) + unit


def format_table(report: dict) -> str:
    """The side-by-side text table of a ``compare`` report."""
    ours, keras, cfg = report["ours"], report["keras"], report["config"]
    epochs = len(ours["seconds_per_epoch"])
    rest = f"epochs 2-{epochs}" if epochs > 2 else ("epoch 2" if epochs == 2 else "no later epochs")
    schedule = cfg["schedule"] + (f", weight decay {cfg['weight_decay']:g}" if cfg["weight_decay"] else "")
    mode = ("same init: Keras starts from our initial parameters and sees our batch order"
            if report["mode"] == "same-init" else
            f"independent init: Keras's own initializers and shuffling, seed {cfg['seed']}")
    rows = [("", "ours (numba)", "keras (tensorflow)", "")]

    def row(label, a, b, note=""):
        rows.append((label, a, b, note))

    def both(field, fmt, scale=1.0, unit=""):
        return _fmt(ours[field], fmt, scale, unit), _fmt(keras[field], fmt, scale, unit)

    row("test accuracy", *both("test_accuracy", ".2f", 100, "%"))
    row("test loss", *both("test_loss", ".4f"))
    for digit, (a, b) in enumerate(zip(ours["per_digit_accuracy"], keras["per_digit_accuracy"])):
        row(f"  digit {digit} accuracy", _fmt(a, ".2f", 100, "%"), _fmt(b, ".2f", 100, "%"))
    row(f"median s/epoch ({rest})", *both("median_seconds_per_epoch", ".3f"))
    row("first epoch (s)", *both("first_epoch_seconds", ".3f"), "keras traces its graphs here")
    row("total training (s)", *both("total_training_seconds", ".2f"))
    row("predict 1 image (ms)", *both("predict_seconds", ".3f", 1e3), "keras: eager call")
    row("predict 1 image, tf.function (ms)", "", _fmt(keras["predict_seconds_tf_function"], ".3f", 1e3))
    row("parameters", f"{ours['parameters']:,}", f"{keras['parameters']:,}")

    lines = [
        f"{report['architecture']}: {cfg['train_images']:,} training images, "
        f"{cfg['epochs']} epoch{'s' if cfg['epochs'] != 1 else ''}, "
        f"batch {cfg['batch_size']}, {cfg['optimizer']} lr {cfg['learning_rate']:g} {schedule}",
        f"keras twin: {report['keras_model']['optimizer_call']}",
        mode,
        "",
    ]
    for label, a, b, note in rows:
        lines.append(f"{label:<36}{a:>14}{b:>20}{f'   ({note})' if note else ''}".rstrip())
    lines += [
        "",
        f"predict: one raw image, normalization and softmax included; ours {ours['predict_method']};",
        f"         keras {keras['predict_method']}, and {keras['predict_method_tf_function']}",
    ]
    gap = f"accuracy gap {report['accuracy_gap_pp']:.2f} percentage points"
    same = report.get("same_init")
    if same:
        lines.append(f"largest final parameter difference {same['largest_param_difference']:.3g} "
                     f"({same['largest_param_difference_at']})")
        lines.append(f"relative difference of all parameters |keras - ours| / |ours| "
                     f"{same['relative_param_difference']:.3g}")
        gap += f"; the same prediction on {100 * same['prediction_agreement']:.2f}% of test images"
    lines.append(gap)
    if same and cfg["optimizer"] == "adam":
        lines.append(ADAM_NOTE)
    for name, side in (("ours", ours), ("keras", keras)):
        if side.get("stopped"):
            lines.append(f"{name} stopped early: {side['stopped']}")
    return "\n".join(lines)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of logits (n, k) against int labels (n,), in float64 NumPy;
    the same definitions as our fused kernel (first maximal logit counts as the prediction)."""
    z = np.asarray(logits, np.float64)
    if len(z) == 0:
        return math.nan, math.nan
    top = z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
    loss = float(np.mean(log_sum - z[np.arange(len(z)), labels]))
    return loss, float(np.mean(np.argmax(z, axis=1) == labels))
