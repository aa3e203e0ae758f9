"""Tests for the Numba kernels (tinygrad_digits.kernels) against plain NumPy references.

Every kernel runs in float32 and float64 on awkward shapes (1, 7 and 33 rows, odd widths) and
must return arrays of its input's dtype: a float32 call that silently computes or returns
float64 would double the memory traffic of training.
"""

from __future__ import annotations

import numpy as np
import pytest
from tinygrad_digits.kernels import activations as act
from tinygrad_digits.kernels import dense, optim, softmax

DTYPES = [np.float32, np.float64]
ROWS = [1, 7, 33]
WIDTHS = [1, 5, 13]
CODES = {
    "identity": act.IDENTITY,
    "relu": act.RELU,
    "leaky_relu": act.LEAKY_RELU,
    "sigmoid": act.SIGMOID,
    "tanh": act.TANH,
}
ALPHA = 0.2


def tol(dtype) -> dict:
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def ref_activation(name: str, z: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """act(z) in float64."""
    z = z.astype(np.float64)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, alpha * z)
    if name == "sigmoid":
        e = np.exp(-np.abs(z))  # never overflows
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if name == "tanh":
        return np.tanh(z)
    return z


def ref_derivative(name: str, z: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """act'(z) in float64, from the pre-activation z."""
    z = z.astype(np.float64)
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, alpha)
    if name == "sigmoid":
        s = ref_activation("sigmoid", z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    return np.ones_like(z)


def off_zero(z: np.ndarray, margin: float = 1e-2) -> np.ndarray:
    """z pushed at least ``margin`` away from 0 (ReLU's kink), keeping each sign."""
    return np.where(z >= 0, z + margin, z - margin).astype(z.dtype)


def grid_values(rng: np.random.Generator, shape, dtype, step: float = 0.5, top: int = 3) -> np.ndarray:
    """Multiples of ``step`` in [-top*step, top*step]: products and small sums are exact in float32."""
    return (rng.integers(-top, top + 1, shape) * step).astype(dtype)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(CODES))
def test_activation_forward_matches_numpy(rng, name, width, rows, dtype):
    z = off_zero(rng.normal(0, 3, (rows, width)).astype(dtype))
    y = act.activation_forward(z, CODES[name], ALPHA)
    assert y.dtype == dtype
    assert y.shape == z.shape
    np.testing.assert_allclose(y, ref_activation(name, z), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(CODES))
def test_activation_backward_matches_numpy(rng, name, width, rows, dtype):
    z = off_zero(rng.normal(0, 3, (rows, width)).astype(dtype))
    dy = rng.normal(size=(rows, width)).astype(dtype)
    y = act.activation_forward(z, CODES[name], ALPHA)
    dz = act.activation_backward(y, dy, CODES[name], ALPHA)
    assert dz.dtype == dtype
    np.testing.assert_allclose(dz, dy * ref_derivative(name, z), **tol(dtype))


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.3, 1.5])
def test_leaky_relu_uses_alpha_on_both_passes(alpha):
    z = np.array([[-2.0, -0.5, 0.25, 3.0]])
    y = act.activation_forward(z, act.LEAKY_RELU, alpha)
    np.testing.assert_array_equal(y, [[-2.0 * alpha, -0.5 * alpha, 0.25, 3.0]])
    dz = act.activation_backward(y, np.ones_like(z), act.LEAKY_RELU, alpha)
    np.testing.assert_array_equal(dz, [[alpha, alpha, 1.0, 1.0]])


def test_relu_backward_is_zero_for_nonpositive_inputs():
    z = np.array([[-3.0, -1e-30, 0.0, 1e-30, 2.0]])
    y = act.activation_forward(z, act.RELU, 0.0)
    np.testing.assert_array_equal(y, [[0.0, 0.0, 0.0, 1e-30, 2.0]])
    dz = act.activation_backward(y, np.full_like(z, 5.0), act.RELU, 0.0)
    np.testing.assert_array_equal(dz, [[0.0, 0.0, 0.0, 5.0, 5.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_are_finite_and_saturate_for_large_inputs(dtype):
    z = np.array([[-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0]], dtype=dtype)
    for code, lo, hi in ((act.SIGMOID, 0.0, 1.0), (act.TANH, -1.0, 1.0)):
        y = act.activation_forward(z, code, 0.0)
        assert y.dtype == dtype
        assert np.all(np.isfinite(y))
        assert np.all((y >= lo) & (y <= hi))
        assert y[0, 0] == pytest.approx(lo, abs=1e-12) and y[0, -1] == pytest.approx(hi, abs=1e-12)
        dz = act.activation_backward(y, np.ones_like(y), code, 0.0)
        assert np.all(np.isfinite(dz)) and np.all(dz >= 0)
        assert dz[0, 0] == pytest.approx(0.0, abs=1e-12) and dz[0, -1] == pytest.approx(0.0, abs=1e-12)
    y = act.activation_forward(z, act.SIGMOID, 0.0)
    np.testing.assert_allclose(y, ref_activation("sigmoid", z), rtol=1e-6, atol=1e-30)
    assert y[0, 3] == 0.5


def test_activation_kernels_do_not_modify_their_inputs(rng):
    z = rng.normal(size=(7, 5))
    dy = rng.normal(size=(7, 5))
    z0, dy0 = z.copy(), dy.copy()
    y = act.activation_forward(z, act.TANH, 0.0)
    y0 = y.copy()
    act.activation_backward(y, dy, act.TANH, 0.0)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(dy, dy0)
    np.testing.assert_array_equal(y, y0)


# ---------------------------------------------------------------- dense


def dense_case(rng, rows, d_in, d_out, dtype):
    """x, w on a half-integer grid and b = quarter-odd values: z = x @ w + b is exact in both
    dtypes and at least 0.125 away from 0, so ReLU masks agree with the float64 reference."""
    x = grid_values(rng, (rows, d_in), dtype)
    w = grid_values(rng, (d_in, d_out), dtype)
    b = (rng.integers(-4, 4, d_out) * 0.25 + 0.125).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (13, 7)])
@pytest.mark.parametrize("name", list(CODES))
def test_dense_forward_matches_numpy(rng, name, shape, rows, dtype):
    x, w, b = dense_case(rng, rows, *shape, dtype)
    y = dense.dense_forward(x, w, b, CODES[name], ALPHA)
    assert y.dtype == dtype
    assert y.shape == (rows, shape[1])
    z = x.astype(np.float64) @ w.astype(np.float64) + b
    np.testing.assert_allclose(y, ref_activation(name, z), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (13, 7)])
@pytest.mark.parametrize("name", list(CODES))
def test_dense_backward_matches_numpy(rng, name, shape, rows, dtype):
    x, w, b = dense_case(rng, rows, *shape, dtype)
    dy = rng.normal(size=(rows, shape[1])).astype(dtype)
    y = dense.dense_forward(x, w, b, CODES[name], ALPHA)
    dx, dw, db = dense.dense_backward(x, w, y, dy, CODES[name], ALPHA, True)
    for grad, like in ((dx, x), (dw, w), (db, b)):
        assert grad.dtype == dtype, "float32 in must give float32 out"
        assert grad.shape == like.shape

    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    dz = dy.astype(np.float64) * ref_derivative(name, x64 @ w64 + b)
    t = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-12}
    np.testing.assert_allclose(dx, dz @ w64.T, **t)
    np.testing.assert_allclose(dw, x64.T @ dz, **t)
    np.testing.assert_allclose(db, dz.sum(axis=0), **t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward_without_dx_returns_empty_and_same_weight_grads(rng, dtype):
    x, w, b = dense_case(rng, 7, 5, 3, dtype)
    dy = rng.normal(size=(7, 3)).astype(dtype)
    y = dense.dense_forward(x, w, b, act.RELU, 0.0)
    dx_full, dw_full, db_full = dense.dense_backward(x, w, y, dy, act.RELU, 0.0, True)
    dx, dw, db = dense.dense_backward(x, w, y, dy, act.RELU, 0.0, False)
    assert dx.shape == (0, 0) and dx.dtype == dtype
    assert dw.dtype == dtype and db.dtype == dtype
    np.testing.assert_array_equal(dw, dw_full)
    np.testing.assert_array_equal(db, db_full)
    assert dx_full.shape == (7, 5)


def test_dense_kernels_do_not_modify_their_inputs(rng):
    x, w, b = dense_case(rng, 7, 5, 3, np.float64)
    dy = rng.normal(size=(7, 3))
    saved = [a.copy() for a in (x, w, b, dy)]
    y = dense.dense_forward(x, w, b, act.SIGMOID, 0.0)
    y0 = y.copy()
    dense.dense_backward(x, w, y, dy, act.SIGMOID, 0.0, True)
    for a, a0 in zip((x, w, b, dy, y), (*saved, y0)):
        np.testing.assert_array_equal(a, a0)


# ---------------------------------------------------------------- softmax


def ref_log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("k", [1, 3, 10, 11])
def test_softmax_matches_numpy(rng, k, rows, dtype):
    logits = rng.normal(0, 4, (rows, k)).astype(dtype)
    probs = softmax.softmax(logits)
    assert probs.dtype == dtype and probs.shape == (rows, k)
    np.testing.assert_allclose(probs, np.exp(ref_log_softmax(logits)), **tol(dtype))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("k", [1, 3, 10, 11])
def test_softmax_cross_entropy_matches_numpy(rng, k, rows, dtype):
    logits = rng.normal(0, 4, (rows, k)).astype(dtype)
    labels = rng.integers(0, k, rows).astype(np.int64)
    loss, dlogits, correct = softmax.softmax_cross_entropy(logits, labels)

    logp = ref_log_softmax(logits)
    expected_loss = -logp[np.arange(rows), labels].mean()
    onehot = np.eye(k)[labels]
    assert loss == pytest.approx(expected_loss, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert dlogits.dtype == dtype and dlogits.shape == (rows, k)
    np.testing.assert_allclose(dlogits, (np.exp(logp) - onehot) / rows, **tol(dtype))
    assert correct == int(np.sum(np.argmax(logits, axis=1) == labels))
    assert isinstance(correct, int)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_is_finite_for_huge_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, 0.0], [-1e4, 1e4, 5.0]], dtype=dtype)
    labels = np.array([0, 2, 1, 0], dtype=np.int64)
    loss, dlogits, correct = softmax.softmax_cross_entropy(logits, labels)
    probs = softmax.softmax(logits)
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits)) and np.all(np.isfinite(probs))
    # per row: 0, log 3, log 2, 2e4
    assert loss == pytest.approx((0.0 + np.log(3) + np.log(2) + 2e4) / 4, rel=1e-6)
    np.testing.assert_allclose(probs[0], [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(probs[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(dlogits[3], [-0.25, 0.25, 0.0], atol=1e-7)
    assert correct == 1  # row 0 only; row 2 ties and the first maximum (0) is not its label


def test_softmax_cross_entropy_counts_the_first_maximum_on_ties():
    logits = np.zeros((3, 4))
    _, _, correct = softmax.softmax_cross_entropy(logits, np.array([0, 0, 1], dtype=np.int64))
    assert correct == 2
    loss, dlogits, _ = softmax.softmax_cross_entropy(logits, np.array([0, 0, 1], dtype=np.int64))
    assert loss == pytest.approx(np.log(4))
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-15)


# ---------------------------------------------------------------- optimizer updates


def optim_case(rng, size, dtype):
    p = rng.normal(size=size).astype(dtype)
    g = rng.normal(size=size).astype(dtype)
    return p, g


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 7, 33])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_sgd_update_in_place(rng, weight_decay, size, dtype):
    p, g = optim_case(rng, size, dtype)
    p0 = p.copy()
    f = dtype
    assert optim.sgd_update(p, g, f(0.1), f(weight_decay)) is None
    assert p.dtype == dtype
    np.testing.assert_allclose(p, p0 - 0.1 * (g + weight_decay * p0), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 7, 33])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_momentum_update_in_place(rng, weight_decay, size, dtype):
    p, g = optim_case(rng, size, dtype)
    velocity = rng.normal(size=size).astype(dtype)
    p0, v0 = p.copy(), velocity.copy()
    f = dtype
    optim.momentum_update(p, g, velocity, f(0.05), f(0.9), f(weight_decay))
    v_expected = 0.9 * v0 - 0.05 * (g + weight_decay * p0)
    np.testing.assert_allclose(velocity, v_expected, **tol(dtype))
    np.testing.assert_allclose(p, p0 + v_expected, **tol(dtype))
    assert p.dtype == dtype and velocity.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 7, 33])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_update_in_place(rng, weight_decay, size, dtype):
    p, g = optim_case(rng, size, dtype)
    m = rng.normal(size=size).astype(dtype)
    v = rng.uniform(0, 2, size=size).astype(dtype)
    p0, m0, v0 = p.copy(), m.copy(), v.copy()
    f = dtype
    lr_t, b1, b2, eps = 0.003, 0.9, 0.999, 1e-7
    optim.adam_update(p, g, m, v, f(lr_t), f(1 - b1), f(1 - b2), f(eps), f(weight_decay))
    grad = g + weight_decay * p0
    m_expected = b1 * m0 + (1 - b1) * grad
    v_expected = b2 * v0 + (1 - b2) * grad**2
    np.testing.assert_allclose(m, m_expected, **tol(dtype))
    np.testing.assert_allclose(v, v_expected, **tol(dtype))
    np.testing.assert_allclose(p, p0 - lr_t * m_expected / (np.sqrt(v_expected) + eps), **tol(dtype))
    assert p.dtype == m.dtype == v.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["sgd", "momentum", "adam"])
def test_optimizer_kernels_update_exactly_the_slice_they_are_given(rng, kernel, dtype):
    """Handed a window into a larger buffer (an offset view, as a flat parameter is), a kernel
    updates every element of the window in place and no element outside it."""
    buffer = rng.normal(size=40).astype(dtype)
    before = buffer.copy()
    lo, hi = 5, 38  # 33 elements
    p, g = buffer[lo:hi], rng.normal(size=hi - lo).astype(dtype)
    f = dtype
    if kernel == "sgd":
        optim.sgd_update(p, g, f(0.1), f(0.0))
        expected = before[lo:hi] - 0.1 * g
    elif kernel == "momentum":
        velocity = np.zeros(hi - lo, dtype)
        optim.momentum_update(p, g, velocity, f(0.1), f(0.9), f(0.0))
        expected = before[lo:hi] - 0.1 * g
    else:
        m, v = np.zeros(hi - lo, dtype), np.zeros(hi - lo, dtype)
        optim.adam_update(p, g, m, v, f(0.1), f(0.1), f(0.001), f(1e-7), f(0.0))
        expected = before[lo:hi] - 0.1 * (0.1 * g) / (np.sqrt(0.001 * g**2) + 1e-7)
    np.testing.assert_allclose(buffer[lo:hi], expected, **tol(dtype))
    assert np.array_equal(buffer[:lo], before[:lo]) and np.array_equal(buffer[hi:], before[hi:])
