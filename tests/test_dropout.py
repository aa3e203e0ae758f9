"""Dropout: Keras's rate (the fraction dropped), inverted scaling, identity at inference, its
gradient against float64 central differences with a fixed mask, the model-file field, and the
training loop's choice of path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import central_difference

from tinygrad_digits import fastpath as F
from tinygrad_digits import model as M
from tinygrad_digits import ops
from tinygrad_digits import optimizers as O
from tinygrad_digits import train as T
from tinygrad_digits import layers
from tinygrad_digits.autodiff import value_and_grad
from tinygrad_digits.modelfile import load_model, save_model


# ---------------------------------------------------------------- the op


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_rate_is_the_fraction_dropped_and_kept_units_are_scaled(rate):
    x = np.full((400, 250), 2.0, dtype=np.float32)
    y, cache = ops.dropout_forward(x, rate, np.random.default_rng(0))
    assert y.dtype == np.float32 and y.shape == x.shape
    dropped = np.mean(y == 0)
    assert dropped == pytest.approx(rate, abs=0.01)
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(cache.mask == 0, y == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_mask_is_keras_s_draw_from_the_generator(rng, dtype):
    """Kept where the generator's next uniform draw of x's shape is at least the rate."""
    x = rng.normal(size=(64, 33)).astype(dtype)
    y, cache = ops.dropout_forward(x, 0.3, np.random.default_rng(8))
    keep = np.random.default_rng(8).random(x.shape, dtype=dtype) >= dtype(0.3)
    np.testing.assert_array_equal(cache.mask, keep * dtype(1 / 0.7))
    np.testing.assert_array_equal(y, x * cache.mask)
    assert y.dtype == cache.mask.dtype == dtype


def test_expectation_is_preserved(rng):
    x = rng.normal(size=(3, 7))
    draws = np.random.default_rng(5)
    mean = np.mean([ops.dropout_forward(x, 0.4, draws)[0] for _ in range(20000)], axis=0)
    np.testing.assert_allclose(mean, x, atol=0.05 * np.abs(x).max())


def test_no_rng_or_rate_zero_is_the_identity(rng):
    x = rng.normal(size=(5, 4))
    for rate, generator in [(0.5, None), (0.0, np.random.default_rng(0))]:
        y, cache = ops.dropout_forward(x, rate, generator)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(ops.dropout_backward(cache, x), x)


def test_the_mask_is_determined_by_the_generator(rng):
    x = rng.normal(size=(6, 9))
    a, _ = ops.dropout_forward(x, 0.5, np.random.default_rng(3))
    b, _ = ops.dropout_forward(x, 0.5, np.random.default_rng(3))
    c, _ = ops.dropout_forward(x, 0.5, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_bad_rates_are_rejected(rate, rng):
    with pytest.raises(ValueError, match="fraction dropped"):
        ops.dropout_forward(rng.normal(size=(2, 2)), rate, rng)
    with pytest.raises(ValueError, match="dropout"):
        M.ModelSpec(dropout=rate)


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (33, 5)])
def test_backward_matches_central_differences_with_a_fixed_mask(shape, rng):
    x = rng.normal(size=shape)
    dy = rng.normal(size=shape)

    def loss():  # the same seed each call: the same mask
        return float(np.sum(dy * ops.dropout_forward(x, 0.3, np.random.default_rng(11))[0]))

    _, cache = ops.dropout_forward(x, 0.3, np.random.default_rng(11))
    np.testing.assert_allclose(
        ops.dropout_backward(cache, dy), central_difference(loss, x), rtol=1e-6, atol=1e-8
    )


# ---------------------------------------------------------------- in the network


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("hidden", [(5,), (5, 4)])
def test_network_gradient_with_dropout_matches_central_differences(act, hidden):
    spec = M.ModelSpec(hidden=hidden, activations=(act,), inputs=6, outputs=3, dropout=0.4)
    rng = np.random.default_rng(2)
    params = M.init_params(spec, rng, dtype=np.float64)
    for key in params:
        if key.endswith(".b"):  # nonzero biases keep ReLU inputs off 0
            params[key] = rng.uniform(0.05, 0.2, params[key].shape) * rng.choice([-1, 1], params[key].shape)
    x = rng.normal(size=(4, 6))
    labels = np.array([0, 2, 1, 2])

    def loss_of(p):
        return ops.softmax_cross_entropy(M.forward(spec, p, x, np.random.default_rng(9)), labels)

    def loss():
        return loss_of(params)

    _, grads = value_and_grad(loss_of)(params)
    for key, value in params.items():
        np.testing.assert_allclose(
            grads[key], central_difference(loss, value), rtol=1e-5, atol=1e-7, err_msg=key
        )


def test_dropout_changes_training_outputs_but_not_inference(rng):
    spec = M.ModelSpec(hidden=(32, 16), activations=("tanh",), inputs=10, outputs=4, dropout=0.5)
    plain = M.ModelSpec(hidden=(32, 16), activations=("tanh",), inputs=10, outputs=4)
    params = M.init_params(spec, rng)
    x = rng.normal(size=(8, 10)).astype(np.float32)
    inference = M.forward(spec, params, x)
    np.testing.assert_array_equal(inference, M.forward(plain, params, x))
    assert [type(layer) for layer in spec.network().layers] == [
        layers.Dense, layers.Dropout, layers.Dense, layers.Dropout, layers.Dense]  # after each hidden layer
    training = M.forward(spec, params, x, np.random.default_rng(0))
    assert not np.allclose(training, inference)
    np.testing.assert_array_equal(M.predict_proba(spec, params, x), M.predict_proba(plain, params, x))


def test_inverted_scaling_keeps_the_mean_hidden_activity():
    # the mean of a layer's output over many units is the same with and without dropout
    spec = M.ModelSpec(hidden=(4000,), activations=("relu",), inputs=20, outputs=3, dropout=0.3)
    params = M.init_params(spec, np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).normal(size=(50, 20))
    dense_out = np.maximum(x @ params["dense0.W"] + params["dense0.b"], 0.0)
    dropped = layers.Dropout(0.3).apply({}, dense_out, np.random.default_rng(2))
    assert dropped.mean() == pytest.approx(dense_out.mean(), rel=0.02)


# ---------------------------------------------------------------- files and training


def test_model_files_with_and_without_dropout(tmp_path, rng):
    spec = M.ModelSpec(hidden=(8,), activations=("relu",), dropout=0.25)
    params = M.init_params(spec, rng)
    loaded, _, header = load_model(save_model(tmp_path / "d.npz", spec, params))
    assert loaded == spec and header["spec"]["dropout"] == 0.25
    plain = M.ModelSpec(hidden=(8,), activations=("relu",))
    assert "dropout" not in plain.to_json()  # files of models without dropout are as before
    loaded, _, _ = load_model(save_model(tmp_path / "p.npz", plain, params))
    assert loaded.dropout == 0.0


def test_an_old_file_without_the_field_loads(tmp_path, rng):
    spec = M.ModelSpec(hidden=(8,), activations=("relu",))
    params = M.init_params(spec, rng)
    path = save_model(tmp_path / "old.npz", spec, params)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(str(arrays["__model__"]))
    header["spec"] = {k: v for k, v in header["spec"].items() if k != "dropout"}
    header["package_version"] = "0.0.9"
    arrays["__model__"] = np.array(json.dumps(header))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    loaded, _, _ = load_model(path)
    assert loaded.dropout == 0.0


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 2, (4, 12))
    labels = rng.integers(0, 4, n)
    return (centers[labels] + rng.normal(0, 0.5, (n, 12))).astype(np.float32), labels


def train_blobs(dropout: float, seed: int = 0):
    spec = M.ModelSpec(hidden=(32,), activations=("relu",), inputs=12, outputs=4, dropout=dropout)
    params = M.init_params(spec, np.random.default_rng(0))
    x, y = blobs(300, 0)
    xv, yv = blobs(100, 1)
    config = T.TrainConfig(epochs=3, batch_size=32, seed=seed)
    optimizer = O.OptimizerConfig("adam", learning_rate=0.01, total_steps=3 * 10)
    return T.train(spec, params, x, y, xv, yv, config, optimizer), spec, params, config, optimizer


def test_the_fused_path_is_kept_without_dropout_and_left_with_it():
    _, spec, params, config, optimizer = train_blobs(0.0)
    assert F.fusable(M.dense_chain(spec) if not spec.dropout else None, params, optimizer)
    _, spec, params, config, optimizer = train_blobs(0.3)
    assert not F.fusable(M.dense_chain(spec) if not spec.dropout else None, params, optimizer)


def test_training_with_dropout_learns_and_is_seeded():
    a, *_ = train_blobs(0.3)
    b, *_ = train_blobs(0.3)
    c, *_ = train_blobs(0.3, seed=1)
    strip = [[{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in run.history] for run in (a, b, c)]
    assert strip[0] == strip[1] and strip[0] != strip[2]
    assert a.history[-1]["val_accuracy"] > 0.9
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"]
