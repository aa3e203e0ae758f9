"""The Keras twin of a model: the same network, optimizer, loss and data, run by TensorFlow.

TensorFlow and Numba both load LLVM and are known to crash in one process, so TensorFlow runs
only in a worker process (``python -m tinygrad_digits.apps._keras_worker``), which never imports
numba nor the kernels. This module, which runs in the parent, imports only NumPy at load time:
it describes the twin as plain data (``describe_twin``), collects work into a ``Job`` (tasks as
JSON, arrays in one ``.npz`` in a temporary directory, no pickle), runs the worker once per job
and reads the answers back.

The twin, layer for layer: one Keras ``Dense`` per dense layer of ours, whose kernel ``(in, out)``
and bias ``(out,)`` are exactly our weight and bias (each twin layer names their keys); for a
convnet first ``Reshape`` to (28, 28, 1), then per convolution ``Conv2D(filters, 3,
padding="valid", activation="relu")``, whose kernel ``(3, 3, c_in, filters)`` is our weight as it
is, and after a block's last one ``MaxPooling2D(2)``, then ``Flatten``; a
``BatchNormalization(epsilon=1e-3)`` wherever ours has a BatchNorm (between a hidden Dense and
its activation, which follows as a layer), its gamma, beta and statistics ours (Keras keeps its
statistics as moving averages, momentum 0.99, where ours measures them after every epoch); the
same activations (leaky relu as a ``LeakyReLU(negative_slope=alpha)`` layer; ``Dropout(rate)``
after the flatten and every hidden layer if the spec has dropout); a linear output layer whose logits go to
``SparseCategoricalCrossentropy(from_logits=True)`` (our softmax fused into the loss; with label
smoothing, ``CategoricalCrossentropy(label_smoothing=...)`` of one-hot labels); He or
Glorot uniform (or standard normal) kernels and zero biases; ``SGD``, ``SGD(momentum=...)`` or
``Adam(beta_1, beta_2, epsilon)``, with ``CosineDecay(lr, decay_steps=total_steps)`` for the
cosine schedule; weight decay as ``L2(weight_decay / 2)`` on the kernels. Inputs are the same
standardized arrays, as rows (n, inputs). Training uses ``fit`` with ``jit_compile=False``.

Known differences, both of float32 round-off size: Keras evaluates ``CosineDecay`` and Adam's
bias correction ``sqrt(1 - beta_2^t) / (1 - beta_1^t)`` in float32 (ours: float64, then rounded),
and rounds Python-float hyperparameters to float32 even for float64 variables.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

WORKER = "tinygrad_digits.apps._keras_worker"
INSTALL_HINT = "pip install 'tinygrad-digits[keras]'"


class KerasTwinError(RuntimeError):
    """The Keras worker failed; the one-line message carries the worker's last error line."""


def tensorflow_available() -> bool:
    """True when TensorFlow (with Keras) can be imported; looked up without importing it."""
    return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras"))


def missing_message() -> str:
    return f"this needs TensorFlow, which is not installed: {INSTALL_HINT}"


def describe_twin(spec, optimizer, init: str = "auto") -> dict:
    """The Keras twin of ``spec`` trained with ``optimizer`` (an ``OptimizerConfig``), as JSON.

    Returns {"inputs", "input_shape", "alpha", "dropout", "input_mean", "input_std", "conv":
    [{"name", "filters", "kernel_size", "pool" (0: none after it), "activation", "initializer",
    "kernel", "bias", "batch_norm"}] (empty for an MLP), "layers": [{"name", "units",
    "activation", "initializer", "kernel", "bias", "batch_norm"}] ("batch_norm": the name of
    the BatchNorm after the layer, or its pool, or None), "l2", "optimizer": {"class_name",
    "learning_rate" (a float or {"class_name":
    "CosineDecay", "config"}), "config"}}. The initializer family follows ``model.init_params``:
    "auto" is He for the relu family, Glorot for sigmoid, tanh and the output layer; a
    convolution's is He (its activation is ReLU) whatever ``init``.
    """
    from .. import model as M
    from .. import ops

    conv, norms = [], {}  # norms: a conv or dense layer's name -> the BatchNorm after it (or its pool)
    network, before = spec.network(), None
    for name, layer in zip(network.names, network.layers):  # the Sequential's names: conv2d0, ...
        if layer.kind == "conv2d":
            conv.append({"name": name, "filters": layer.filters, "kernel_size": M.KERNEL, "pool": 0,
                         "activation": "relu", "initializer": "he", "kernel": f"{name}.W",
                         "bias": f"{name}.b"})
        elif layer.kind == "maxpool2d":
            conv[-1]["pool"] = layer.size
        elif layer.kind == "batchnorm":
            norms[before] = name
        if layer.kind in ("conv2d", "dense"):
            before = name
    for block in conv:
        block["batch_norm"] = norms.get(block["name"])
    layers = []
    for name, _, fan_out, act in spec.layers():  # the Sequential names them dense0, dense1, ...
        family = init
        if init == "auto":
            family = ops.ACTIVATIONS[act].init if act in ops.ACTIVATIONS else "glorot"
        keras_act = ops.ACTIVATIONS[act].keras if act in ops.ACTIVATIONS else "linear"
        layers.append({"name": name, "units": fan_out, "activation": keras_act, "initializer": family,
                       "kernel": f"{name}.W", "bias": f"{name}.b", "batch_norm": norms.get(name)})
    lr = optimizer.learning_rate
    if optimizer.schedule == "cosine":
        lr = {"class_name": "CosineDecay",
              "config": {"initial_learning_rate": lr, "decay_steps": optimizer.total_steps, "alpha": 0.0}}
    if optimizer.name == "adam":
        opt = {"class_name": "Adam", "config": {"beta_1": optimizer.beta1, "beta_2": optimizer.beta2,
                                                "epsilon": optimizer.epsilon, "amsgrad": False}}
    else:
        momentum = optimizer.momentum if optimizer.name == "momentum" else 0.0
        opt = {"class_name": "SGD", "config": {"momentum": momentum, "nesterov": False}}
    opt["learning_rate"] = lr
    return {
        "inputs": spec.inputs,
        "input_shape": list(getattr(spec, "input_shape", (spec.inputs,))),
        "alpha": spec.alpha,
        "dropout": float(getattr(spec, "dropout", 0.0)),  # Keras's rate: the fraction dropped
        "input_mean": spec.input_mean,
        "input_std": spec.input_std,
        "conv": conv,
        "layers": layers,
        # our weight_decay adds wd * W to the gradient; L2(l2) adds 2 * l2 * W
        "l2": optimizer.weight_decay / 2,
        "optimizer": opt,
    }


def describe_optimizer(twin: dict) -> str:
    """e.g. ``Adam(lr=CosineDecay(0.002, decay_steps=3750), beta_1=0.9, ...)``."""
    opt = twin["optimizer"]
    lr = opt["learning_rate"]
    if isinstance(lr, dict):
        config = lr["config"]
        lr = f"CosineDecay({config['initial_learning_rate']:g}, decay_steps={config['decay_steps']})"
    else:
        lr = f"{lr:g}"
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in opt["config"].items())
    reg = f", kernels L2({twin['l2']:g})" if twin["l2"] else ""
    return f"{opt['class_name']}(learning_rate={lr}, {args}){reg}"


def _params_arrays(prefix: str, params: dict) -> dict:
    return {f"{prefix}{k}": np.ascontiguousarray(v) for k, v in params.items()}


def _rows(x: np.ndarray, dtype, leading: int = 1) -> np.ndarray:
    """Inputs as rows, (..., inputs): a convnet's (n, 28, 28, 1) as the twin reads them."""
    x = np.asarray(x, dtype)
    return np.ascontiguousarray(x.reshape(*x.shape[:leading], -1))


class Job:
    """Work for one worker process (each TensorFlow start costs seconds: batch tasks here).

    Every ``add_*`` method returns the task's key; after ``run``, ``result(key)`` is the task's
    JSON answer and ``params(key)``, ``grads(key)``, ``array(key, name)`` its arrays.
    """

    def __init__(self):
        self.tasks: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.results: dict[str, dict] = {}
        self.outputs: dict[str, np.ndarray] = {}
        self.worker: dict = {}

    def _add(self, kind: str, twin: dict, dtype, arrays: dict, **fields) -> str:
        key = f"t{len(self.tasks)}"
        self.tasks.append({"kind": kind, "key": key, "twin": twin, "dtype": np.dtype(dtype).name, **fields})
        for name, value in arrays.items():
            self.arrays[f"{key}/{name}"] = value
        return key

    def add_gradients(self, spec, params: dict, x: np.ndarray, labels: np.ndarray,
                      label_smoothing: float = 0.0) -> str:
        """GradientTape gradients of the mean cross-entropy (with ``label_smoothing``) at params
        on (x (n, in) or (n, *spec.input_shape), labels (n,)); the dtype is the params'.
        Answer: {"loss"}; ``grads(key)``, a dict like params."""
        from ..optimizers import OptimizerConfig

        dtype = np.result_type(*params.values())
        twin = {**describe_twin(spec, OptimizerConfig("sgd")), "label_smoothing": label_smoothing}
        arrays = {"x": _rows(x, dtype), "y": np.asarray(labels, np.int64),
                  **_params_arrays("params/", params)}
        return self._add("gradients", twin, dtype, arrays)

    def add_steps(self, spec, optimizer, params: dict, xs: np.ndarray, labels: np.ndarray) -> str:
        """One ``train_on_batch`` per batch xs[i] (steps, n, in), labels[i] (steps, n), from params.
        Answer: {"losses", "learning_rates"} per step; arrays ``params`` after the last step."""
        dtype = np.result_type(*params.values())
        arrays = {"x": _rows(xs, dtype, 2), "y": np.asarray(labels, np.int64),
                  **_params_arrays("params/", params)}
        return self._add("steps", describe_twin(spec, optimizer), dtype, arrays)

    def add_init(self, spec, init: str, seed: int) -> str:
        """The twin's own initial parameters (independent-init mode) with ``seed``."""
        from ..optimizers import OptimizerConfig

        return self._add("init", describe_twin(spec, OptimizerConfig("sgd"), init), np.float32, {}, seed=seed)

    def add_train(self, spec, optimizer, config, init: str, data: dict, image: np.ndarray,
                  params: dict | None = None, latency_repeats: int = 200) -> str:
        """A ``fit`` of ``config.epochs`` epochs with ``config.batch_size`` and ``config.label_smoothing``.

        data: normalized float32 ``x_train`` (n, in) (or (n, *input_shape)), ``x_val``, ``x_test`` and int64 labels
        ``y_train``, ``y_val``. With ``params`` (identical-init mode) Keras starts from them and
        sees our batch order, the per-epoch permutations of ``default_rng(config.seed)``;
        without, it uses its own seeded initializers and ``shuffle=True``. ``image``: one raw
        [0, 1] image (inputs,) for the predict latency, a median of ``latency_repeats`` calls.
        Answer: {"history", "total_seconds", "predict_seconds", "predict_seconds_tf_function",
        "parameters"}; arrays ``params`` (final) and ``test_logits`` (n_test, outputs).
        """
        arrays = {name: _rows(data[name], np.float32) for name in ("x_train", "x_val", "x_test")}
        arrays.update({name: np.asarray(data[name], np.int64) for name in ("y_train", "y_val")})
        arrays["image"] = np.asarray(image, np.float32).reshape(-1)
        if params is not None:
            rng = np.random.default_rng(config.seed)  # exactly train.train's batch order
            n = len(arrays["x_train"])
            arrays["orders"] = np.stack([rng.permutation(n) for _ in range(config.epochs)])
            arrays.update(_params_arrays("params/", params))
        twin = {**describe_twin(spec, optimizer, init), "label_smoothing": config.label_smoothing}
        return self._add("train", twin, np.float32, arrays,
                         batch_size=config.batch_size, epochs=config.epochs, seed=config.seed,
                         latency_repeats=latency_repeats)

    def run(self, on_event=None, threads: int | None = None) -> "Job":
        """Run every task in one worker process; ``on_event(event)`` for each progress line.

        Raises KerasTwinError when TensorFlow is missing or the worker fails.
        """
        if not tensorflow_available():
            raise KerasTwinError(missing_message())
        with tempfile.TemporaryDirectory(prefix="digits-keras-") as tmp:
            job_dir = Path(tmp)
            job = {"threads": threads or os.cpu_count() or 1, "tasks": self.tasks}
            (job_dir / "job.json").write_text(json.dumps(job))
            np.savez(job_dir / "inputs.npz", **self.arrays)
            _run_worker(job_dir, on_event)
            answer = json.loads((job_dir / "results.json").read_text())
            with np.load(job_dir / "outputs.npz", allow_pickle=False) as npz:
                self.outputs = {k: npz[k] for k in npz.files}
        self.worker = answer["worker"]
        self.results = {task["key"]: r for task, r in zip(self.tasks, answer["results"])}
        return self

    def result(self, key: str) -> dict:
        return self.results[key]

    def params(self, key: str) -> dict:
        return self._group(f"{key}/params/")

    def grads(self, key: str) -> dict:
        return self._group(f"{key}/grads/")

    def _group(self, prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in self.outputs.items() if k.startswith(prefix)}

    def array(self, key: str, name: str) -> np.ndarray:
        return self.outputs[f"{key}/{name}"]


def worker_environment() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no C++ info or warning lines
    env["KERAS_BACKEND"] = "tensorflow"
    root = str(Path(__file__).resolve().parent.parent)  # importable even when not installed
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _run_worker(job_dir: Path, on_event) -> None:
    stderr_path = job_dir / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER, str(job_dir)],
            stdout=subprocess.PIPE, stderr=stderr, env=worker_environment(), text=True,
        )
        try:
            for line in proc.stdout:
                if on_event is not None and line.strip():
                    on_event(json.loads(line))
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
    if code != 0:
        lines = [ln for ln in stderr_path.read_text(errors="replace").splitlines() if ln.strip()]
        ours = [ln for ln in lines if ln.startswith("keras worker:")]
        last = (ours or lines or [""])[-1]
        raise KerasTwinError(f"the Keras worker failed (exit status {code}): {last or 'no message'}")
