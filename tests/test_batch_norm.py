"""Tests for batch normalization: ops.batch_norm's forward against NumPy written here and its VJP
against float64 central differences (hypothesis choosing the shapes); ops.batch_norm_inference;
the BatchNorm layer in training and at inference; the statistics the training loop measures
after every epoch (against NumPy's, layer by layer), which the optimizer never touches; and a
model with it saved and loaded.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_conv import check_vjp

from tinygrad_digits import layers as L
from tinygrad_digits import ops
from tinygrad_digits import optimizers as O
from tinygrad_digits import train as T
from tinygrad_digits.conv_layers import Conv2D, MaxPool2D
from tinygrad_digits.modelfile import load_model, save_model
from tinygrad_digits.network import Network
from tinygrad_digits.norm_layers import BatchNorm, refresh_statistics, statistic_keys


def np_batch_norm(x, gamma, beta, eps=1e-3):
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(x.ndim - 1))
    return (x - x.mean(axis=axes)) / np.sqrt(x.var(axis=axes) + eps) * gamma + beta


SHAPES = [(1, 3), (5, 4), (2, 3, 3, 2), (3, 1, 1, 1), (4, 5, 2, 7)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_numpy(shape, dtype, rng):
    x = (rng.normal(size=shape) * 3 + 2).astype(dtype)
    gamma, beta = rng.normal(size=shape[-1]).astype(dtype), rng.normal(size=shape[-1]).astype(dtype)
    y = ops.batch_norm(x, gamma, beta)
    assert y.dtype == dtype and y.shape == shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, np_batch_norm(x, gamma, beta), rtol=tol, atol=tol)


def test_a_large_mean_keeps_the_variance(rng):
    x = (rng.normal(size=(4096, 3)) * 0.5 + 1000.0).astype(np.float32)
    y = ops.batch_norm(x, np.ones(3, np.float32), np.zeros(3, np.float32))
    var = x.astype(np.float64).var(axis=0)
    np.testing.assert_allclose(y.std(axis=0), np.sqrt(var / (var + 1e-3)), rtol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(2, 6),
    side=st.integers(1, 3),
    channels=st.integers(1, 4),
    images=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_vjp_matches_central_differences(rows, side, channels, images, seed):
    r = np.random.default_rng(seed)
    shape = (rows, side, side, channels) if images else (rows, channels)
    params = {"x": r.normal(size=shape), "gamma": r.normal(size=channels), "beta": r.normal(size=channels)}
    check_vjp(lambda p: ops.batch_norm(p["x"], p["gamma"], p["beta"]), params, seed)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 5), channels=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_inference_vjp_matches_central_differences(rows, channels, seed):
    r = np.random.default_rng(seed)
    mean, var = r.normal(size=channels), r.uniform(0.1, 2.0, size=channels)
    params = {"x": r.normal(size=(rows, 2, channels)), "gamma": r.normal(size=channels),
              "beta": r.normal(size=channels)}
    check_vjp(lambda p: ops.batch_norm_inference(p["x"], p["gamma"], p["beta"], mean, var), params, seed)


def test_inference_uses_the_given_statistics(rng):
    x = rng.normal(size=(3, 2, 2, 4))
    gamma, beta, mean, var = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4), rng.uniform(1, 2, 4)
    y = ops.batch_norm_inference(x, gamma, beta, mean, var, epsilon=0.01)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 0.01) * gamma + beta, rtol=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: ops.batch_norm(np.ones((2, 3)), np.ones(2), np.ones(3)), "per-channel vectors"),
    (lambda: ops.batch_norm(np.ones(3), np.ones(3), np.ones(3)), "expected x"),
    (lambda: ops.batch_norm(np.ones((2, 3)), np.ones(3), np.ones(3), epsilon=0), "epsilon"),
    (lambda: ops.batch_norm_inference(np.ones((2, 3)), *[np.ones(3)] * 3, np.ones(2)), "per-channel"),
    (lambda: BatchNorm(epsilon=2.0), "epsilon"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_layer_normalizes_by_the_batch_while_training_and_by_its_statistics_after(rng):
    layer = BatchNorm()
    params = layer.init(rng, (3, 3, 2))
    assert set(params) == {"gamma", "beta", "mean", "var"}
    params = {"gamma": rng.normal(size=2), "beta": rng.normal(size=2), "mean": rng.normal(size=2),
              "var": rng.uniform(1, 2, size=2)}
    x = rng.normal(size=(4, 3, 3, 2)) * 2 + 1
    trained = layer.apply(params, x, np.random.default_rng(0))
    np.testing.assert_allclose(trained, np_batch_norm(x, params["gamma"], params["beta"]), rtol=1e-10)
    inferred = layer.apply(params, x)
    expected = (x - params["mean"]) / np.sqrt(params["var"] + 1e-3) * params["gamma"] + params["beta"]
    np.testing.assert_allclose(inferred, expected, rtol=1e-12)
    assert L.from_json(BatchNorm(0.01).to_json()) == BatchNorm(0.01)
    assert BatchNorm().to_json() == {"type": "BatchNorm"}


def _mlp_with_norms():
    return L.Sequential(
        L.Dense(6), BatchNorm(), L.Activation("relu"),
        L.Residual(L.Sequential(L.Dense(6, "tanh"), BatchNorm())),
        L.Dense(3),
    )


def test_statistic_keys_in_the_order_a_forward_pass_reaches_them():
    assert statistic_keys(_mlp_with_norms()) == [
        "batchnorm0.mean", "batchnorm0.var", "residual0.block.batchnorm0.mean", "residual0.block.batchnorm0.var",
    ]
    assert statistic_keys(L.Dense(3)) == []


def test_refreshed_statistics_are_each_layers_inputs_over_the_images(rng):
    model = _mlp_with_norms()
    params = model.init(rng, (5,), np.float64)
    params["batchnorm0.gamma"][...] = rng.normal(size=6)
    x = rng.normal(size=(1500, 5))  # three chunks, the last a short one
    refresh_statistics(model, params, x)
    # NumPy, layer by layer: the first BatchNorm's inputs, then the second's through the first
    h = x @ params["dense0.W"] + params["dense0.b"]
    np.testing.assert_allclose(params["batchnorm0.mean"], h.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(params["batchnorm0.var"], h.var(axis=0), rtol=1e-9)
    a = np.maximum((h - h.mean(0)) / np.sqrt(h.var(0) + 1e-3) * params["batchnorm0.gamma"], 0)
    inner = np.tanh(a @ params["residual0.block.dense0.W"] + params["residual0.block.dense0.b"])
    np.testing.assert_allclose(params["residual0.block.batchnorm0.mean"], inner.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(params["residual0.block.batchnorm0.var"], inner.var(axis=0), rtol=1e-9)


def test_a_composed_model_with_it_matches_central_differences(rng):
    model = L.Sequential(Conv2D(3, 2, activation="relu"), MaxPool2D(2), BatchNorm(), L.Flatten(), L.Dense(4),
                         BatchNorm(), L.Dense(3))
    params = model.init(rng, (5, 5, 2), np.float64)
    trained = {k: v for k, v in params.items() if k not in statistic_keys(model)}
    x = rng.normal(size=(4, 5, 5, 2))
    check_vjp(lambda p: model.apply({**params, **p}, x, np.random.default_rng(0)), trained, 7)


def test_training_measures_the_statistics_and_never_trains_them(mnist_splits):
    s = mnist_splits
    x, y = s.x_train[:512].reshape(-1, 28, 28, 1), s.y_train[:512]
    model = L.Sequential(Conv2D(4, 3, activation="relu"), MaxPool2D(2), BatchNorm(), L.Flatten(), L.Dense(10))
    params = model.init(np.random.default_rng(0), (28, 28, 1))
    opt = O.OptimizerConfig("adam", learning_rate=0.01, weight_decay=0.1)
    shifted = lambda xb, rng: xb + 3.0  # an augmentation the statistics must not see  # noqa: E731
    result = T.train(model, params, x, y, x[:64], y[:64], T.TrainConfig(epochs=2, batch_size=64), opt,
                     augment=shifted)
    assert result.stopped is None and result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    # the statistics are the trained convolution's, over unaugmented training images
    inputs = ops.max_pool2d(ops.conv2d(x, params["conv2d0.W"], params["conv2d0.b"], activation="relu"), 2)
    inputs = inputs.astype(np.float64)  # NumPy's float32 var is off by up to 1e-3 here
    np.testing.assert_allclose(params["batchnorm0.mean"], inputs.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(params["batchnorm0.var"], inputs.var(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    # the validation figures are the model's at inference, with those statistics
    _, accuracy = T.evaluate_loss_accuracy(model, params, x[:64], y[:64])
    assert accuracy == result.history[-1]["val_accuracy"]


def test_a_model_with_it_saves_and_loads(tmp_path, rng):
    network = Network(_mlp_with_norms(), (5,))
    params = network.layers.init(rng, (5,))
    refresh_statistics(network.layers, params, rng.normal(size=(100, 5)).astype(np.float32))
    path = save_model(tmp_path / "m.npz", network, params)
    loaded, loaded_params, _ = load_model(path)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded.network().apply(loaded_params, x), network.layers.apply(params, x))
