"""Tests for tinygrad_digits.ops: every backward against float64 central differences.

The scalar checked is ``sum(y * dy)`` for a fixed random ``dy``, so the analytic gradient is
exactly what backward returns for that ``dy``. ReLU-family inputs are kept at least 1e-3 away
from the kink, far beyond the 1e-6 finite-difference step.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_digits import ops

EPS = 1e-6
ACTS = [*ops.ACTIVATIONS, ops.IDENTITY]
ALPHA = 0.15
SHAPES = settings(max_examples=15, deadline=None)
batch = st.integers(1, 9)
width = st.integers(1, 12)
seeds = st.integers(0, 2**32 - 1)


def numeric_grad(f, a: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of a (in place)."""
    grad = np.zeros_like(a)
    flat, out = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + EPS
        plus = f()
        flat[i] = keep - EPS
        minus = f()
        flat[i] = keep
        out[i] = (plus - minus) / (2 * EPS)
    return grad


def assert_grad_close(analytic, numeric):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def off_kink(z: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    return np.where(z >= 0, z + margin, z - margin)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name", ACTS)
@SHAPES
@given(n=batch, m=width, seed=seeds)
def test_activation_backward_matches_central_differences(name, n, m, seed):
    rng = np.random.default_rng(seed)
    x = off_kink(rng.normal(0, 2, (n, m)))
    dy = rng.normal(size=(n, m))
    y, cache = ops.activation_forward(name, x, alpha=ALPHA)
    assert y.shape == (n, m) and y.dtype == np.float64
    dx = ops.activation_backward(cache, dy)
    numeric = numeric_grad(lambda: float(np.sum(ops.activation_forward(name, x, alpha=ALPHA)[0] * dy)), x)
    assert_grad_close(dx, numeric)


def test_activation_forward_values():
    x = np.array([[-2.0, -0.5, 0.5, 2.0]])
    np.testing.assert_allclose(ops.activation_forward("relu", x)[0], [[0, 0, 0.5, 2.0]])
    np.testing.assert_allclose(
        ops.activation_forward("leaky_relu", x, alpha=0.25)[0], [[-0.5, -0.125, 0.5, 2.0]]
    )
    np.testing.assert_allclose(ops.activation_forward("tanh", x)[0], np.tanh(x))
    np.testing.assert_allclose(ops.activation_forward("sigmoid", x)[0], 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(ops.activation_forward("identity", x)[0], x)


def test_activation_ops_accept_non_contiguous_inputs(rng):
    x = off_kink(rng.normal(size=(6, 8)))[:, ::2]  # a strided view
    dy = rng.normal(size=(4, 6)).T  # a transposed view
    assert not x.flags.c_contiguous and not dy.flags.c_contiguous
    y, cache = ops.activation_forward("tanh", x)
    np.testing.assert_allclose(y, np.tanh(x))
    np.testing.assert_allclose(ops.activation_backward(cache, dy), dy * (1 - np.tanh(x) ** 2))


@pytest.mark.parametrize("bad", ["swish", "ReLU", ""])
def test_unknown_activation_is_a_value_error_naming_it(bad):
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=f"unknown activation {bad!r}") as err:
        ops.activation_forward(bad, x)
    assert "relu" in str(err.value)  # lists the choices
    params = {"d.W": np.ones((3, 2)), "d.b": np.zeros(2)}
    with pytest.raises(ValueError, match=f"unknown activation {bad!r}"):
        ops.dense_forward(params, "d", x, bad)


def test_activation_code_registry():
    assert ops.activation_code("identity") != ops.activation_code("relu")
    codes = [ops.activation_code(a) for a in ACTS]
    assert len(set(codes)) == len(codes)


# ---------------------------------------------------------------- dense


def dense_case(rng, n, d_in, d_out):
    """x, W, b, dy with every pre-activation at least 1e-3 away from 0."""
    while True:
        x = rng.normal(size=(n, d_in))
        params = {"d.W": rng.normal(0, 0.7, (d_in, d_out)), "d.b": rng.normal(0, 0.5, d_out)}
        if np.abs(x @ params["d.W"] + params["d.b"]).min() >= 1e-3:
            return x, params, rng.normal(size=(n, d_out))


@pytest.mark.parametrize("name", ACTS)
@SHAPES
@given(n=batch, d_in=width, d_out=width, seed=seeds)
def test_dense_backward_matches_central_differences(name, n, d_in, d_out, seed):
    rng = np.random.default_rng(seed)
    x, params, dy = dense_case(rng, n, d_in, d_out)

    def scalar():
        return float(np.sum(ops.dense_forward(params, "d", x, name, ALPHA)[0] * dy))

    y, cache = ops.dense_forward(params, "d", x, name, ALPHA)
    assert y.shape == (n, d_out)
    dx, grads = ops.dense_backward(params, cache, dy)
    assert set(grads) == {"d.W", "d.b"}
    assert dx.shape == x.shape and grads["d.W"].shape == (d_in, d_out) and grads["d.b"].shape == (d_out,)
    assert_grad_close(dx, numeric_grad(scalar, x))
    assert_grad_close(grads["d.W"], numeric_grad(scalar, params["d.W"]))
    assert_grad_close(grads["d.b"], numeric_grad(scalar, params["d.b"]))


@pytest.mark.parametrize("name", ACTS)
def test_dense_forward_is_act_of_affine(rng, name):
    x, params, _ = dense_case(rng, 7, 5, 3)
    y, _ = ops.dense_forward(params, "d", x, name, ALPHA)
    expected, _ = ops.activation_forward(name, x @ params["d.W"] + params["d.b"], ALPHA)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)


def test_dense_default_activation_is_identity(rng):
    x, params, _ = dense_case(rng, 4, 3, 2)
    y, _ = ops.dense_forward(params, "d", x)
    np.testing.assert_allclose(y, x @ params["d.W"] + params["d.b"], rtol=1e-12)


def test_dense_backward_without_dx(rng):
    x, params, dy = dense_case(rng, 5, 4, 3)
    _, cache = ops.dense_forward(params, "d", x, "relu")
    dx, grads = ops.dense_backward(params, cache, dy, need_dx=False)
    assert dx is None
    _, full = ops.dense_backward(params, cache, dy, need_dx=True)
    np.testing.assert_array_equal(grads["d.W"], full["d.W"])
    np.testing.assert_array_equal(grads["d.b"], full["d.b"])


def test_dense_ops_keep_float32(rng):
    x, params, dy = dense_case(rng, 5, 4, 3)
    params = {k: v.astype(np.float32) for k, v in params.items()}
    y, cache = ops.dense_forward(params, "d", x.astype(np.float32), "sigmoid")
    dx, grads = ops.dense_backward(params, cache, dy.astype(np.float32))
    assert y.dtype == dx.dtype == grads["d.W"].dtype == grads["d.b"].dtype == np.float32


def test_dense_ops_accept_non_contiguous_inputs(rng):
    x, params, dy = dense_case(rng, 6, 4, 3)
    x_view = np.asfortranarray(x)
    dy_view = np.asfortranarray(dy)
    y, cache = ops.dense_forward(params, "d", x_view, "tanh")
    dx, grads = ops.dense_backward(params, cache, dy_view)
    y0, cache0 = ops.dense_forward(params, "d", x, "tanh")
    dx0, grads0 = ops.dense_backward(params, cache0, dy)
    np.testing.assert_allclose(y, y0, rtol=1e-12)
    np.testing.assert_allclose(dx, dx0, rtol=1e-12)
    np.testing.assert_allclose(grads["d.W"], grads0["d.W"], rtol=1e-12)


# ---------------------------------------------------------------- softmax cross-entropy


@SHAPES
@given(n=batch, k=st.integers(2, 12), seed=seeds)
def test_softmax_cross_entropy_gradient_matches_central_differences(n, k, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, k))
    labels = rng.integers(0, k, n)
    loss, dlogits = ops.softmax_cross_entropy(logits, labels)
    assert isinstance(loss, float)
    assert dlogits.shape == (n, k)
    numeric = numeric_grad(lambda: ops.softmax_cross_entropy(logits, labels)[0], logits)
    assert_grad_close(dlogits, numeric)

    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-logp[np.arange(n), labels].mean(), rel=1e-12)


def test_softmax_cross_entropy_accepts_any_integer_labels_and_lists():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    expected = ops.softmax_cross_entropy(logits, np.array([0, 2], dtype=np.int64))
    for labels in (np.array([0, 2], dtype=np.uint8), np.array([0, 2], dtype=np.int32), [0, 2]):
        loss, dlogits = ops.softmax_cross_entropy(logits, labels)
        assert loss == expected[0]
        np.testing.assert_array_equal(dlogits, expected[1])


def test_softmax_matches_numpy(rng):
    logits = rng.normal(0, 5, (7, 10))
    probs = ops.softmax(np.asfortranarray(logits))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize(
    "labels",
    [np.array([0, 3]), np.array([-1, 0]), np.array([0, 10**6])],
    ids=["equal-to-k", "negative", "huge"],
)
def test_softmax_cross_entropy_rejects_labels_out_of_range(labels):
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), labels)


@pytest.mark.parametrize(
    "logits_shape, labels_shape",
    [((2, 3), (3,)), ((2, 3), (2, 1)), ((2, 3), ()), ((6,), (6,)), ((2, 3, 1), (2,))],
)
def test_softmax_cross_entropy_rejects_bad_shapes(logits_shape, labels_shape):
    with pytest.raises(ValueError, match="softmax_cross_entropy: expected logits"):
        ops.softmax_cross_entropy(np.zeros(logits_shape), np.zeros(labels_shape, dtype=np.int64))
