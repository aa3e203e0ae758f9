"""The Keras twin against our framework: gradients, optimizer steps, initializers, training.

TensorFlow starts in seconds, so one worker process answers every case: the session fixture
``answers`` collects them all into one ``keras_twin.Job``. TensorFlow is never imported here.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tinygrad_digits.apps import keras_twin as K
from tinygrad_digits import model as M
from tinygrad_digits import optimizers as O
from tinygrad_digits import train as T

pytestmark = pytest.mark.skipif(not K.tensorflow_available(), reason="TensorFlow is not installed")

ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")
GRADIENT_CASES = [(a, depth, dt) for a in ACTIVATIONS for depth in (1, 2, 3) for dt in ("float32", "float64")]
STEP_CASES = [
    (name, decay, schedule, dt)
    for name in O.OPTIMIZERS
    for decay in (False, True)
    for schedule in O.SCHEDULES
    for dt in ("float32", "float64")
]
# convnets on small square images: (side, conv blocks, hidden sizes), each in both dtypes
CONV_CASES = [(side, conv, hidden, dt) for side, conv, hidden in ((12, (3, 4), (5,)), (9, (2,), ()), (13, (1,), (3, 4)))
              for dt in ("float32", "float64")]
# with batch_norm, two convolutions in a block: BatchNormalization in training mode, the batch's statistics
BN_CASES = [(side, conv, hidden, dt) for side, conv, hidden in ((16, (2, (3, 3)), (4,)), (12, ((3, 2),), ()))
            for dt in ("float32", "float64")]
# label smoothing, Keras's CategoricalCrossentropy(label_smoothing): a dense case and a BatchNorm convnet
SMOOTHING = 0.1
SMOOTH_CASES = [("dense", dt) for dt in ("float32", "float64")] + [("bn", dt) for dt in ("float32", "float64")]
STEPS = 3
# In float64 the hyperparameters are exactly representable in float32: Keras turns the Python
# floats beta_1, beta_2, momentum and epsilon into float32 tensors before casting them to a
# float64 variable's dtype, which would blur a comparison that is otherwise exact.
EXACT = {"momentum": 0.875, "beta1": 0.875, "beta2": 1 - 2**-10, "epsilon": 2**-23}


def _case_rng(*case) -> np.random.Generator:
    """A generator seeded by the case itself: the fixture and the test rebuild the same inputs."""
    return np.random.default_rng([ord(c) for c in repr(case)])


def _gradient_case(act, depth, dt):
    rng = _case_rng("grad", act, depth, dt)
    # leaky_relu: TensorFlow's op keeps alpha as a float32 attribute, so float64 uses a dyadic slope
    spec = M.ModelSpec(hidden=tuple(int(h) for h in rng.integers(1, 24, depth)), activations=(act,),
                       alpha=0.1 if dt == "float32" else 0.25, inputs=int(rng.integers(5, 40)), outputs=10)
    params = M.init_params(spec, rng, dtype=np.dtype(dt))
    rows = int(rng.choice([1, 7, 33]))
    x = rng.standard_normal((rows, spec.inputs)).astype(dt)
    labels = rng.integers(0, 10, rows)
    return spec, params, x, labels


def _conv_case(side, conv, hidden, dt, batch_norm=False):
    rng = _case_rng("conv", side, conv, hidden, dt, batch_norm)
    spec = M.ModelSpec(hidden=hidden, activations=("relu",), conv=conv, inputs=side * side, outputs=10,
                       batch_norm=batch_norm)
    params = M.init_params(spec, rng, dtype=np.dtype(dt))
    for key in params:  # biases off 0, so that their gradients and the ReLUs' kinks are exercised
        if key.endswith((".b", ".beta")):
            params[key] = rng.uniform(-0.1, 0.1, params[key].shape).astype(dt)
        elif key.endswith(".gamma"):
            params[key] = rng.uniform(0.5, 1.5, params[key].shape).astype(dt)
    rows = 7 if batch_norm else int(rng.choice([1, 7]))
    x = rng.standard_normal((rows, *spec.input_shape)).astype(dt)
    return spec, params, x, rng.integers(0, 10, rows)


def _smooth_case(kind, dt):
    if kind == "dense":
        return _gradient_case("relu", 2, dt)
    return _conv_case(16, (2, (3, 3)), (4,), dt, batch_norm=True)


CONV_TRAIN_SPEC = M.ModelSpec(hidden=(8,), activations=("tanh",), conv=(4,), inputs=144, outputs=10)


def _step_case(name, decay, schedule, dt):
    rng = _case_rng("step", name, decay, schedule, dt)
    spec = M.ModelSpec(hidden=(16, 12), activations=("relu", "tanh"), inputs=13, outputs=10)
    params = M.init_params(spec, rng, dtype=np.dtype(dt))
    if dt == "float64":
        config = O.OptimizerConfig(name, 2**-7, schedule, total_steps=STEPS + 1,
                                   weight_decay=2**-4 if decay else 0.0, **EXACT)
    else:
        config = O.OptimizerConfig(name, None, schedule, total_steps=STEPS + 1,
                                   weight_decay=0.01 if decay else 0.0)
    xs = rng.standard_normal((STEPS, 9, spec.inputs)).astype(dt)
    labels = rng.integers(0, 10, (STEPS, 9))
    return spec, config, params, xs, labels


def _synthetic(rng, n, inputs=20):
    x = rng.standard_normal((n, inputs)).astype(np.float32)
    labels = (x[:, :10].argmax(axis=1)).astype(np.int64)
    return x, labels


TRAIN_SPEC = M.ModelSpec(hidden=(24,), activations=("relu",), inputs=20, outputs=10)
TRAIN_CONFIG = T.TrainConfig(epochs=2, batch_size=32, seed=5)
SMOOTH_CONFIG = T.TrainConfig(epochs=2, batch_size=32, seed=5, label_smoothing=SMOOTHING)
TRAIN_OPTIMIZER = O.OptimizerConfig("sgd", 0.05, "cosine", total_steps=2 * T.steps_per_epoch(300, 32),
                                    weight_decay=1e-3)


ADAM_SPEC = M.ModelSpec(hidden=(32,), activations=("relu",), input_mean=0.13, input_std=0.31)
ADAM_CONFIG = O.OptimizerConfig("adam", 0.003, "constant")
ADAM_STEPS, ADAM_BATCH = 150, 64


def _adam_batches(splits):
    n = ADAM_STEPS * ADAM_BATCH
    x = M.normalize(ADAM_SPEC, splits.x_train[:n]).reshape(ADAM_STEPS, ADAM_BATCH, -1)
    return x, splits.y_train[:n].reshape(ADAM_STEPS, ADAM_BATCH)


@pytest.fixture(scope="session")
def answers(mnist_splits):
    """Every case, answered by one worker process."""
    job = K.Job()
    keys = {}
    x, labels = _adam_batches(mnist_splits)
    adam_initial = M.init_params(ADAM_SPEC, np.random.default_rng(0))
    keys["adam_long"] = job.add_steps(ADAM_SPEC, ADAM_CONFIG, adam_initial, x, labels)
    for case in GRADIENT_CASES:
        spec, params, x, labels = _gradient_case(*case)
        keys[("grad", *case)] = job.add_gradients(spec, params, x, labels)
    for case in CONV_CASES:
        spec, params, x, labels = _conv_case(*case)
        keys[("conv", *case)] = job.add_gradients(spec, params, x, labels)
    for case in BN_CASES:
        spec, params, x, labels = _conv_case(*case, batch_norm=True)
        keys[("bn", *case)] = job.add_gradients(spec, params, x, labels)
    for kind, dt in SMOOTH_CASES:
        spec, params, x, labels = _smooth_case(kind, dt)
        keys[("smooth", kind, dt)] = job.add_gradients(spec, params, x, labels, label_smoothing=SMOOTHING)
    for case in STEP_CASES:
        spec, config, params, xs, labels = _step_case(*case)
        keys[("step", *case)] = job.add_steps(spec, config, params, xs, labels)
    init_spec = M.ModelSpec(hidden=(64, 32), activations=("relu", "tanh"))
    for init, seed in (("auto", 3), ("auto", 3), ("auto", 4), ("normal", 3)):
        keys.setdefault(("init", init, seed), []).append(job.add_init(init_spec, init, seed))
    rng = np.random.default_rng(11)
    x_train, y_train = _synthetic(rng, 300)
    x_val, y_val = _synthetic(rng, 50)
    x_test, _ = _synthetic(rng, 40)
    data = {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val, "x_test": x_test}
    initial = M.init_params(TRAIN_SPEC, np.random.default_rng(5))
    keys["same"] = job.add_train(TRAIN_SPEC, TRAIN_OPTIMIZER, TRAIN_CONFIG, "auto", data, x_test[0],
                                 params=initial, latency_repeats=3)
    keys["same_smooth"] = job.add_train(TRAIN_SPEC, TRAIN_OPTIMIZER, SMOOTH_CONFIG, "auto", data, x_test[0],
                                        params=initial, latency_repeats=3)
    keys["independent"] = job.add_train(TRAIN_SPEC, TRAIN_OPTIMIZER, TRAIN_CONFIG, "auto", data, x_test[0],
                                       latency_repeats=3)
    conv_data = {name: np.repeat(value, 8, axis=1)[:, :144] if value.ndim == 2 else value
                 for name, value in data.items()}  # 20 features stretched over a 12x12 image
    conv_initial = M.init_params(CONV_TRAIN_SPEC, np.random.default_rng(6))
    keys["conv_same"] = job.add_train(CONV_TRAIN_SPEC, TRAIN_OPTIMIZER, TRAIN_CONFIG, "auto", conv_data,
                                      conv_data["x_test"][0], params=conv_initial, latency_repeats=3)
    events = []
    job.run(on_event=events.append)
    return {"job": job, "keys": keys, "events": events, "data": data, "initial": initial,
            "conv_data": conv_data, "conv_initial": conv_initial}


@pytest.mark.parametrize(("act", "depth", "dt"), GRADIENT_CASES)
def test_gradients_match_gradient_tape(answers, act, depth, dt):
    spec, params, x, labels = _gradient_case(act, depth, dt)
    loss, grads = M.loss_and_grads(spec, params, x, labels)
    key = answers["keys"][("grad", act, depth, dt)]
    job = answers["job"]
    keras_grads = job.grads(key)
    assert keras_grads.keys() == grads.keys()
    rtol = 1e-4 if dt == "float32" else 1e-10
    assert job.result(key)["loss"] == pytest.approx(loss, rel=rtol)
    for name, g in grads.items():
        assert keras_grads[name].dtype == g.dtype
        atol = rtol * 1e-2 * np.abs(g).max()  # entries near 0 carry the round-off of the big ones
        np.testing.assert_allclose(keras_grads[name], g, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize(("side", "conv", "hidden", "dt"), CONV_CASES)
def test_convnet_gradients_match_gradient_tape(answers, side, conv, hidden, dt):
    """Conv2D (3x3 valid, ReLU), MaxPooling2D(2), Flatten and Dense in Keras, with our params
    copied in as they are (kernels (3, 3, c_in, c_out)): TensorFlow's gradients are ours."""
    spec, params, x, labels = _conv_case(side, conv, hidden, dt)
    loss, grads = M.loss_and_grads(spec, params, x, labels)
    key = answers["keys"][("conv", side, conv, hidden, dt)]
    job = answers["job"]
    keras_grads = job.grads(key)
    assert keras_grads.keys() == grads.keys()
    assert {k for k in grads if k.startswith("conv2d")} == {f"conv2d{i}.{p}" for i in range(len(conv)) for p in "Wb"}
    rtol = 1e-4 if dt == "float32" else 1e-10
    assert job.result(key)["loss"] == pytest.approx(loss, rel=rtol)
    for name, g in grads.items():
        assert keras_grads[name].dtype == g.dtype and keras_grads[name].shape == g.shape
        atol = rtol * 1e-2 * np.abs(g).max()
        np.testing.assert_allclose(keras_grads[name], g, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize(("side", "conv", "hidden", "dt"), BN_CASES)
def test_batch_norm_convnet_gradients_match_gradient_tape(answers, side, conv, hidden, dt):
    """Our BatchNorms against Keras's BatchNormalization in training mode (the batch's own
    statistics), between convolutions, after pools and before a hidden activation."""
    spec, params, x, labels = _conv_case(side, conv, hidden, dt, batch_norm=True)
    loss, grads = M.loss_and_grads(spec, params, x, labels, np.random.default_rng(0))
    assert any(k.endswith(".gamma") for k in grads)
    assert_keras_agrees(answers, ("bn", side, conv, hidden, dt), loss, grads, dt)


def assert_keras_agrees(answers, case, loss, grads: dict, dt: str) -> None:
    """The worker's loss and gradients for ``case`` are ours. A bias before a BatchNorm has a
    gradient of zero where no ReLU clips: round-off, so the tolerance is on the scale of the largest."""
    key = answers["keys"][case]
    job = answers["job"]
    keras_grads = job.grads(key)
    assert keras_grads.keys() == grads.keys()
    rtol = 1e-4 if dt == "float32" else 1e-10
    assert job.result(key)["loss"] == pytest.approx(loss, rel=rtol)
    atol = rtol * 1e-2 * max(np.abs(g).max() for g in grads.values())
    for name, g in grads.items():
        assert keras_grads[name].dtype == g.dtype and keras_grads[name].shape == g.shape
        np.testing.assert_allclose(keras_grads[name], g, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize(("kind", "dt"), SMOOTH_CASES)
def test_label_smoothing_gradients_match_gradient_tape(answers, kind, dt):
    """Our smoothed cross-entropy against Keras's CategoricalCrossentropy(label_smoothing) of
    one-hot labels: the same loss and gradients."""
    spec, params, x, labels = _smooth_case(kind, dt)
    rng = np.random.default_rng(0)
    loss, grads = M.loss_and_grads(spec, params, x, labels, rng, label_smoothing=SMOOTHING)
    assert loss != pytest.approx(M.loss_and_grads(spec, params, x, labels, np.random.default_rng(0))[0])
    assert_keras_agrees(answers, ("smooth", kind, dt), loss, grads, dt)


def test_same_init_fit_with_label_smoothing_follows_our_training(answers):
    """fit() with the smoothed loss ends where ours does, and both report the smoothed loss."""
    data, job = answers["data"], answers["job"]
    params = {k: v.copy() for k, v in answers["initial"].items()}
    result = T.train(TRAIN_SPEC, params, data["x_train"], data["y_train"], data["x_val"], data["y_val"],
                     SMOOTH_CONFIG, TRAIN_OPTIMIZER)
    key = answers["keys"]["same_smooth"]
    theirs = job.params(key)
    for k in params:
        np.testing.assert_allclose(theirs[k], params[k], atol=1e-5, err_msg=k)
    for ours, keras in zip(result.history, job.result(key)["history"]):
        for field in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert keras[field] == pytest.approx(ours[field], rel=1e-4), field
    plain = job.result(answers["keys"]["same"])["history"]
    assert result.history[-1]["val_loss"] != pytest.approx(plain[-1]["val_loss"], rel=1e-2)


def test_same_init_fit_of_a_convnet_follows_our_training(answers):
    """A convnet's fit() from our params and batch order ends where our training does."""
    data, job = answers["conv_data"], answers["job"]
    params = {k: v.copy() for k, v in answers["conv_initial"].items()}
    spec = CONV_TRAIN_SPEC
    x_train, x_val = M.normalize(spec, data["x_train"]), M.normalize(spec, data["x_val"])
    assert x_train.shape == (300, 12, 12, 1)
    result = T.train(spec, params, x_train, data["y_train"], x_val, data["y_val"], TRAIN_CONFIG, TRAIN_OPTIMIZER)
    key = answers["keys"]["conv_same"]
    theirs = job.params(key)
    assert theirs.keys() == params.keys()
    for k in params:
        np.testing.assert_allclose(theirs[k], params[k], atol=1e-5, err_msg=k)
    for ours, keras in zip(result.history, job.result(key)["history"]):
        for field in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert keras[field] == pytest.approx(ours[field], rel=1e-4), field
    assert job.result(key)["parameters"] == spec.n_params()
    np.testing.assert_allclose(job.array(key, "test_logits"), M.forward(spec, params, M.normalize(spec, data["x_test"])),
                               atol=1e-4)


@pytest.mark.parametrize(("name", "decay", "schedule", "dt"), STEP_CASES)
def test_optimizer_steps_match(answers, name, decay, schedule, dt):
    spec, config, params, xs, labels = _step_case(name, decay, schedule, dt)
    ours = {k: v.copy() for k, v in params.items()}
    state = O.init(config, ours)
    rates, penalized = [], []
    for x, y in zip(xs, labels):
        rates.append(O.learning_rate_at(config, state["step"]))
        loss, grads = M.loss_and_grads(spec, ours, x, y)
        l2 = sum(float(np.sum(ours[k].astype(np.float64) ** 2)) for k in ours if k.endswith(".W"))
        penalized.append(loss + config.weight_decay / 2 * l2)  # Keras's loss includes L2(wd / 2)
        O.update(config, ours, grads, state)
    key = answers["keys"][("step", name, decay, schedule, dt)]
    answer = answers["job"].result(key)
    theirs = answers["job"].params(key)
    # Keras evaluates CosineDecay in float32 even for float64 variables
    exact = dt == "float64" and schedule == "constant"
    tol = 1e-12 if exact else (1e-6 if dt == "float64" else 1e-4)
    np.testing.assert_allclose(answer["learning_rates"], rates, rtol=1e-7)
    loss_rtol = 1e-12 if exact else (1e-8 if dt == "float64" else 1e-5)
    np.testing.assert_allclose(answer["losses"], penalized, rtol=loss_rtol)
    for k in params:
        moved = ours[k] - params[k]
        assert np.abs(moved).max() > 0
        # relative to the step's size: the parameters themselves would hide the update
        error = np.abs((theirs[k] - params[k]) - moved).max() / np.abs(moved).max()
        assert error < tol, f"{k}: {error:.3g}"


def test_adam_follows_keras_float32_bias_correction(answers, mnist_splits):
    """Over 150 real steps Keras's Adam is ours with the bias correction lr sqrt(1 - b2^t) / (1 - b1^t)
    computed in float32, as Keras does (ours computes it in float64; the two differ by up to 7e-6).
    This is why same-init Adam runs drift apart while SGD runs stay together."""
    from tinygrad_digits.kernels import optim as kernel

    f = np.float32
    config = ADAM_CONFIG
    x, labels = _adam_batches(mnist_splits)
    params = M.init_params(ADAM_SPEC, np.random.default_rng(0))
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t in range(ADAM_STEPS):
        _, grads = M.loss_and_grads(ADAM_SPEC, params, x[t], labels[t])
        step = f(t + 1)
        correction = np.sqrt(f(1) - f(config.beta2) ** step) / (f(1) - f(config.beta1) ** step)
        lr_t = f(config.learning_rate) * correction
        for k, p in params.items():
            kernel.adam_update(p.reshape(-1), grads[k].reshape(-1), m[k].reshape(-1), v[k].reshape(-1),
                               lr_t, f(1 - config.beta1), f(1 - config.beta2), f(config.epsilon), f(0))
    theirs = answers["job"].params(answers["keys"]["adam_long"])
    squared = sum(float(np.sum((theirs[k].astype(np.float64) - params[k]) ** 2)) for k in params)
    norm = sum(float(np.sum(params[k].astype(np.float64) ** 2)) for k in params)
    assert np.sqrt(squared / norm) < 1e-6


def test_independent_init_uses_keras_initializers_of_the_same_family(answers):
    job, keys = answers["job"], answers["keys"]
    first, again = (job.params(k) for k in keys[("init", "auto", 3)])
    other = job.params(keys[("init", "auto", 4)][0])
    normal = job.params(keys[("init", "normal", 3)][0])
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])  # seeded
    assert not np.array_equal(first["dense0.W"], other["dense0.W"])
    limits = {"dense0.W": np.sqrt(6 / 784), "dense1.W": np.sqrt(6 / (64 + 32)),
              "dense2.W": np.sqrt(6 / (32 + 10))}
    for k, limit in limits.items():  # He uniform (relu), Glorot uniform (tanh, output)
        w = first[k]
        assert np.abs(w).max() <= limit
        assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.15)
    assert normal["dense0.W"].std() == pytest.approx(1.0, rel=0.05)
    for params in (first, normal):
        for k in ("dense0.b", "dense1.b", "dense2.b"):
            assert not params[k].any()
    assert job.result(keys[("init", "auto", 3)][0])["parameters"] == M.ModelSpec(
        hidden=(64, 32), activations=("relu", "tanh")).n_params()


def test_same_init_fit_follows_our_training(answers):
    """fit() from our params, on our batch order, with a partial last batch, cosine and L2."""
    data, job = answers["data"], answers["job"]
    key = answers["keys"]["same"]
    params = {k: v.copy() for k, v in answers["initial"].items()}
    result = T.train(TRAIN_SPEC, params, data["x_train"], data["y_train"], data["x_val"], data["y_val"],
                     TRAIN_CONFIG, TRAIN_OPTIMIZER)
    theirs = job.params(key)
    for k in params:
        np.testing.assert_allclose(theirs[k], params[k], atol=1e-5, err_msg=k)
    history = job.result(key)["history"]
    assert [r["epoch"] for r in history] == [1, 2]
    for ours, keras in zip(result.history, history):
        for field in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"):
            assert keras[field] == pytest.approx(ours[field], rel=1e-4), field
        assert keras["keras_loss"] > keras["train_loss"]  # Keras's loss adds the L2 term
    logits = job.array(key, "test_logits")
    assert logits.shape == (40, 10)
    ours_logits = M.forward(TRAIN_SPEC, params, data["x_test"])
    np.testing.assert_allclose(logits, ours_logits, atol=1e-4)


def test_independent_fit_runs_and_reports(answers):
    job = answers["job"]
    answer = job.result(answers["keys"]["independent"])
    assert len(answer["history"]) == 2 and answer["parameters"] == TRAIN_SPEC.n_params()
    assert answer["predict_seconds"] > 0 and answer["predict_seconds_tf_function"] > 0
    assert not np.array_equal(job.params(answers["keys"]["independent"])["dense0.W"],
                              job.params(answers["keys"]["same"])["dense0.W"])


def test_worker_reports_progress_and_keeps_numba_out(answers):
    events = answers["events"]
    assert events[0]["event"] == "ready"
    assert events[0]["intra_op_threads"] == events[0]["inter_op_threads"] >= 1
    assert sum(e["event"] == "epoch" for e in events) == 8  # four fits of two epochs
    assert answers["job"].worker["forbidden_modules"] == []
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules


def test_twin_description():
    spec = M.ModelSpec(hidden=(32, 16), activations=("leaky_relu", "sigmoid"), alpha=0.3)
    adam = O.OptimizerConfig("adam", 0.002, "cosine", total_steps=750, weight_decay=3e-4,
                             beta1=0.8, beta2=0.99, epsilon=1e-6)
    twin = K.describe_twin(spec, adam)
    assert [(layer["name"], layer["units"], layer["activation"], layer["initializer"])
            for layer in twin["layers"]] == [
        ("dense0", 32, "leaky_relu", "he"),
        ("dense1", 16, "sigmoid", "glorot"),
        ("dense2", 10, "linear", "glorot"),
    ]
    assert twin["alpha"] == 0.3 and twin["dropout"] == 0.0 and twin["l2"] == pytest.approx(1.5e-4)
    assert twin["optimizer"] == {
        "class_name": "Adam", "config": {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "amsgrad": False},
        "learning_rate": {"class_name": "CosineDecay",
                          "config": {"initial_learning_rate": 0.002, "decay_steps": 750, "alpha": 0.0}},
    }
    momentum_config = O.OptimizerConfig("momentum", 0.05, "constant", momentum=0.7)
    momentum = K.describe_twin(spec, momentum_config, init="normal")
    assert momentum["optimizer"] == {"class_name": "SGD", "config": {"momentum": 0.7, "nesterov": False},
                                     "learning_rate": 0.05}
    assert {layer["initializer"] for layer in momentum["layers"]} == {"normal"} and momentum["l2"] == 0
    assert K.describe_twin(spec, O.OptimizerConfig("sgd"))["optimizer"]["config"]["momentum"] == 0.0
    assert "CosineDecay(0.002, decay_steps=750)" in K.describe_optimizer(twin)


def test_twin_description_of_a_convnet():
    spec = M.ModelSpec(hidden=(128,), conv=(32, 64), dropout=0.25)
    twin = K.describe_twin(spec, O.OptimizerConfig("adam"), init="glorot")
    assert twin["input_shape"] == [28, 28, 1] and twin["inputs"] == 784 and twin["dropout"] == 0.25
    assert [(b["name"], b["filters"], b["kernel_size"], b["pool"], b["activation"], b["initializer"], b["kernel"])
            for b in twin["conv"]] == [("conv2d0", 32, 3, 2, "relu", "he", "conv2d0.W"),
                                       ("conv2d1", 64, 3, 2, "relu", "he", "conv2d1.W")]
    assert [(layer["name"], layer["units"], layer["initializer"]) for layer in twin["layers"]] == [
        ("dense0", 128, "glorot"), ("dense1", 10, "glorot")]
    assert K.describe_twin(M.ModelSpec(), O.OptimizerConfig("sgd"))["conv"] == []


def test_worker_failure_is_one_line():
    job = K.Job()
    job.tasks.append({"kind": "fly", "key": "t0"})
    with pytest.raises(K.KerasTwinError, match=r"^the Keras worker failed .*unknown task kind 'fly'") as info:
        job.run()
    assert "\n" not in str(info.value)


def test_missing_tensorflow_is_reported_before_any_work(monkeypatch):
    monkeypatch.setattr(K.importlib.util, "find_spec", lambda name, *a: None)
    assert not K.tensorflow_available()
    with pytest.raises(K.KerasTwinError, match=r"pip install 'tinygrad-digits\[keras\]'"):
        K.Job().run()
