"""Tests for tinygrad_digits.autodiff: the value_and_grad contract, the Traced operators, and
composed models (residual MLP, shared weights, custom losses, dropout) against float64 central
differences of losses written in NumPy here.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
from conftest import central_difference, numpy_cross_entropy
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_digits import layers, ops
from tinygrad_digits.autodiff import Traced, grad, value_and_grad

GRADS = settings(max_examples=15, deadline=None)
seeds = st.integers(0, 2**32 - 1)
sides = st.integers(1, 6)


def assert_grads_close(analytic, numeric, rtol=1e-5, atol=1e-7):
    assert set(analytic) == set(numeric)
    for key in numeric:
        np.testing.assert_allclose(analytic[key], numeric[key], rtol=rtol, atol=atol, err_msg=key)


# ---------------------------------------------------------------- the Traced operators

M = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]])  # (2, 3)
C = np.array([[0.5, -1.5, 2.0], [1.2, 0.1, -0.7]])  # (2, 3)
OPERATORS = {
    "t + c": lambda t: t + C,
    "ndarray + t": lambda t: C + t,
    "2.0 + t": lambda t: 2.0 + t,
    "t + row": lambda t: t + C[0],
    "t - c": lambda t: t - C,
    "2.0 - t": lambda t: 2.0 - t,
    "ndarray - t": lambda t: C - t,
    "t * c": lambda t: t * C,
    "3.0 * t": lambda t: 3.0 * t,
    "column * t": lambda t: C[:, :1] * t,
    "t / c": lambda t: t / C,
    "2.0 / t": lambda t: 2.0 / t,
    "ndarray / t": lambda t: C / t,
    "-t": lambda t: -t,
    "t ** 2": lambda t: t**2,
    "t ** 3.5": lambda t: t**3.5,
    "2.0 ** t": lambda t: 2.0**t,
    "t @ M.T": lambda t: t @ M.T,
    "M.T @ t": lambda t: M.T @ t,
    "t @ vector": lambda t: t @ C[0],
    ".T": lambda t: t.T,
    ".reshape(-1)": lambda t: t.reshape(-1),
    ".reshape(3, 2)": lambda t: t.reshape(3, 2),
    ".reshape((1, 6))": lambda t: t.reshape((1, 6)),
    ".sum()": lambda t: t.sum(),
    ".sum(axis=0)": lambda t: t.sum(axis=0),
    ".sum(axis=-1, keepdims)": lambda t: t.sum(axis=-1, keepdims=True),
    ".mean()": lambda t: t.mean(),
    ".mean(axis=(0, 1))": lambda t: t.mean(axis=(0, 1)),
    ".mean(axis=1)": lambda t: t.mean(axis=1),
    "t[1]": lambda t: t[1],
    "t[:, 1:]": lambda t: t[:, 1:],
    "t[0, 2]": lambda t: t[0, 2],
    "t[::-1, [0, 0, 2]]": lambda t: t[::-1, [0, 0, 2]],
    "t * t": lambda t: t * t,
    "t - t.mean(axis=0)": lambda t: t - t.mean(axis=0),
}


@pytest.mark.parametrize("name", list(OPERATORS))
def test_traced_operator_gradients(name):
    f = OPERATORS[name]
    x = np.array([[0.8, 1.3, 0.4], [1.7, 0.6, 2.1]])  # positive: ** and / are defined
    dy = np.random.default_rng(len(name)).normal(size=np.shape(f(x)))
    analytic = grad(lambda t: (f(t) * dy).sum())(x)
    numeric = central_difference(lambda: np.sum(f(x) * dy), x)
    assert analytic.shape == x.shape and analytic.dtype == x.dtype
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@GRADS
@given(n=sides, k=sides, m=sides, seed=seeds)
def test_traced_operators_between_two_traced_values(n, k, m, seed):
    rng = np.random.default_rng(seed)
    p = {"a": rng.normal(size=(n, k)), "b": rng.normal(size=(k, m)), "c": rng.uniform(0.5, 2, (m,))}

    def f(q):
        h = q["a"] @ q["b"]  # (n, m)
        return ((h + q["c"]) * (h - q["c"]) / q["c"] + q["c"] ** 2 - (-h).T.T).mean(axis=0).sum()

    value, analytic = value_and_grad(f)(p)
    assert value == pytest.approx(float(f(p)), rel=1e-12)
    assert_grads_close(analytic, central_difference(lambda: f(p), p))


def test_traced_values_compare_to_plain_bools_and_refuse_to_become_arrays():
    t = Traced(np.array([1.0, -2.0]))
    np.testing.assert_array_equal(t > 0, [True, False])
    np.testing.assert_array_equal(t <= -2, [False, True])
    np.testing.assert_array_equal(t < 1.0, [False, True])
    np.testing.assert_array_equal(t >= 1.0, [True, False])
    np.testing.assert_array_equal(t < Traced(np.array([2.0, -3.0])), [True, False])
    assert t.shape == (2,) and t.ndim == 1 and t.dtype == np.float64 and len(t) == 2
    with pytest.raises(TypeError, match="use tinygrad_digits.ops"):
        np.asarray(t)


# ---------------------------------------------------------------- the value_and_grad contract


def quadratic(tree_leaves):
    """sum over leaves of sum(3 * a**2 - a): gradient 6a - 1 for each."""
    total = 0.0
    for a in tree_leaves:
        total = total + (3.0 * a * a - a).sum()
    return total


Pair = namedtuple("Pair", "first second")


def structures(dtype):
    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.normal(size=shape).astype(dtype)

    return {
        "flat dict": ({"w": a(3, 2), "b": a(2)}, lambda p: [p["w"], p["b"]]),
        "nested dicts": (
            {"l1": {"w": a(2, 2), "b": a(2)}, "l2": {"w": a(4)}},
            lambda p: [p["l1"]["w"], p["l1"]["b"], p["l2"]["w"]],
        ),
        "list": ([a(3), a(2, 1), a()], lambda p: list(p)),
        "tuple": ((a(1), a(5)), lambda p: list(p)),
        "namedtuple": (Pair(a(2), a(3, 3)), lambda p: [p.first, p.second]),
        "bare array": (a(4, 3), lambda p: [p]),
        "0-d array": (a(), lambda p: [p]),
    }


def same_structure(grads, params):
    assert type(grads) is type(params)
    if isinstance(params, dict):
        assert list(grads) == list(params)
        for key in params:
            same_structure(grads[key], params[key])
    elif isinstance(params, (list, tuple)):
        assert len(grads) == len(params)
        for g, p in zip(grads, params):
            same_structure(g, p)
    else:
        assert isinstance(grads, np.ndarray) and grads.shape == params.shape and grads.dtype == params.dtype
        np.testing.assert_allclose(grads, 6 * params.astype(np.float64) - 1, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(structures(np.float64)))
def test_grads_have_the_params_structure_shapes_and_dtypes(kind, dtype):
    params, leaves = structures(dtype)[kind]
    value, grads = value_and_grad(lambda p: quadratic(leaves(p)))(params)
    same_structure(grads, params)
    expected = sum(float((3 * a.astype(np.float64) ** 2 - a).sum()) for a in leaves(params))
    assert value == pytest.approx(expected, rel=1e-5)
    assert value == pytest.approx(float(quadratic(leaves(params))), rel=1e-6)  # the untraced call


def test_grads_are_writable_arrays_of_their_own():
    """An optimizer may update grads in place: no read-only broadcast view, no two grads sharing memory."""
    p = {"a": np.ones((2, 3)), "b": np.zeros((2, 3)), "c": np.ones(3)}
    grads = grad(
        lambda q: ops.softmax_cross_entropy(q["a"] + q["b"] + q["c"], np.array([0, 1])) + q["c"].sum()
    )(p)
    for key, g in grads.items():
        assert g.flags.writeable and g.flags.c_contiguous, key
    assert not np.shares_memory(grads["a"], grads["b"])
    before = grads["b"].copy()
    grads["a"] *= 2.0
    np.testing.assert_array_equal(grads["b"], before)
    for key in p:
        assert not np.shares_memory(grads[key], p[key])


def test_argnums_int_and_tuple():
    def f(a, b, c):
        return (a * b * c).sum()

    a, b, c = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, -1.0])
    value, gb = value_and_grad(f, argnums=1)(a, b, c)
    assert value == pytest.approx(1 * 3 * 5 + 2 * 4 * -1)
    np.testing.assert_allclose(gb, a * c)
    ga, gc = grad(f, argnums=(0, 2))(a, b, c)
    np.testing.assert_allclose(ga, b * c)
    np.testing.assert_allclose(gc, a * b)
    (only,) = grad(f, argnums=(2,))(a, b, c)
    np.testing.assert_allclose(only, a * b)
    with pytest.raises(ValueError, match="argnums 3 but only 3 positional arguments"):
        grad(f, argnums=3)(a, b, c)


def test_has_aux_returns_the_aux_as_plain_values():
    def f(w, x):
        y = x @ w
        return (y * y).sum(), {"y": y, "n": 3, "list": [y.sum(), "tag"]}

    w, x = np.array([1.0, -2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    (value, aux), g = value_and_grad(f, has_aux=True)(w, x)
    y = x @ w
    assert value == pytest.approx(float((y * y).sum()))
    assert isinstance(aux["y"], np.ndarray) and not isinstance(aux["list"][0], Traced)
    np.testing.assert_allclose(aux["y"], y)
    assert aux["n"] == 3 and aux["list"][1] == "tag"
    np.testing.assert_allclose(g, 2 * x.T @ y)
    g2, aux2 = grad(f, has_aux=True)(w, x)
    np.testing.assert_allclose(g2, g)
    np.testing.assert_allclose(aux2["y"], y)


def test_python_control_flow_follows_the_values():
    def f(p, steps):
        h = p["x"]
        for _ in range(steps):
            if (h.sum() > 0).item():
                h = ops.tanh(h) * p["s"]
            else:
                h = h * h + p["s"]
        return h.sum()

    for x in (np.array([0.5, 1.0]), np.array([-0.5, -1.0])):
        p = {"x": x.copy(), "s": np.array(1.5)}
        for steps in (0, 1, 3):
            value, g = value_and_grad(f)(p, steps)
            assert value == pytest.approx(float(f(p, steps)), rel=1e-12)
            assert_grads_close(g, central_difference(lambda: f(p, steps), p))


def test_a_parameter_used_twice_sums_its_gradients(rng):
    x, y = rng.normal(size=4), rng.normal(size=4)
    w = rng.normal(size=4)
    g = grad(lambda v: (v * x).sum() + (v * y).sum() + (v * v).sum())(w)
    np.testing.assert_allclose(g, x + y + 2 * w, rtol=1e-12)


def test_a_value_used_by_two_branches():
    w = np.array([0.3, -0.7, 1.1])

    def f(v):
        h = ops.tanh(v)
        return (h * 2.0 + ops.exp(h)).sum() + (h * h).sum()

    t = np.tanh(w)
    expected = (2.0 + np.exp(t) + 2 * t) * (1 - t**2)  # written by hand, in NumPy
    np.testing.assert_allclose(grad(f)(w), expected, rtol=1e-12)


def test_constants_mixed_with_traced_values(rng):
    x = rng.normal(size=(5, 3))
    W = rng.normal(size=(3, 2))
    b = rng.normal(size=2)
    const = rng.normal(size=(5, 2))

    def f(W):
        z = ops.dense(x, W, b) * 2.0 + const - 1.5  # x, b and const are not traced
        return (z * z).mean() + float(b.sum())

    z = (x @ W + b) * 2.0 + const - 1.5
    value, g = value_and_grad(f)(W)
    assert value == pytest.approx(float((z * z).mean() + b.sum()), rel=1e-12)
    np.testing.assert_allclose(g, x.T @ (2.0 * 2 * z / z.size), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_function_that_ignores_a_parameter_gives_it_zeros(dtype):
    p = {"used": np.ones(3, dtype), "unused": np.full((2, 2), 7, dtype)}
    value, g = value_and_grad(lambda q: (q["used"] * 2.0).sum())(p)
    assert value == pytest.approx(6.0)
    np.testing.assert_array_equal(g["unused"], np.zeros((2, 2)))
    assert g["unused"].dtype == dtype and g["used"].dtype == dtype
    np.testing.assert_array_equal(g["used"], [2.0, 2.0, 2.0])
    value, g = value_and_grad(lambda q: 4.0)(p)  # a constant: nothing depends on the params
    assert value == 4.0
    for key in p:
        np.testing.assert_array_equal(g[key], 0.0)


def test_float32_params_give_float32_grads_close_to_float64(rng):
    params = {"W": rng.normal(size=(6, 4)), "b": rng.normal(size=4)}
    x, labels = rng.normal(size=(7, 6)), rng.integers(0, 4, 7)

    def f(p):
        return ops.softmax_cross_entropy(ops.dense(ops.tanh(x), p["W"], p["b"], activation="sigmoid"), labels)

    v64, g64 = value_and_grad(f)(params)
    v32, g32 = value_and_grad(f)({k: v.astype(np.float32) for k, v in params.items()})
    assert v32 == pytest.approx(v64, rel=1e-5)
    for key in params:
        assert g32[key].dtype == np.float32
        np.testing.assert_allclose(g32[key], g64[key], rtol=1e-4, atol=1e-6)


def test_a_deep_record_does_not_hit_the_recursion_limit():
    g = grad(lambda v: _chain(v, 5000).sum())(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [1.0, 1.0])


def _chain(v, n):
    for _ in range(n):
        v = v * 1.0
    return v


# ---------------------------------------------------------------- errors


def test_a_non_scalar_result_is_a_value_error_naming_its_shape():
    with pytest.raises(
        ValueError,
        match=r"value_and_grad\(<lambda>\): the function must return a scalar, "
        r"got shape \(3,\)",
    ):
        grad(lambda w: w * 2.0)(np.ones(3))

    def loss(w):
        return ops.dense(np.ones((2, 3)), w, np.zeros(2))

    with pytest.raises(ValueError, match=r"value_and_grad\(loss\).*shape \(2, 2\)"):
        value_and_grad(loss)(np.ones((3, 2)))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"w": np.arange(3)}, r"parameter 'w' is a int64 array, expected a float array"),
        ({"a": {"b": np.array([1, 2], dtype=np.int32)}}, r"parameter 'a\.b' is a int32 array"),
        ([1.0, 2.0], r"parameter '\[0\]' is a float, expected a float array"),
        (1.5, r"the parameter is a float, expected a float array"),
        ({"w": np.array([True])}, r"parameter 'w' is a bool array"),
        ({"w": np.ones(2, dtype=np.complex128)}, r"parameter 'w' is a complex128 array"),
    ],
)
def test_a_parameter_that_is_not_a_float_array_is_a_value_error(params, message):
    with pytest.raises(ValueError, match=message):
        grad(lambda p: 0.0)(params)


@pytest.mark.parametrize(
    "f, message",
    [
        (lambda w: (w + np.ones(4)).sum(), r"add: shapes \(2, 3\) and \(4,\) do not broadcast"),
        (lambda w: (np.ones((4, 2)) * w).sum(), r"multiply: shapes \(4, 2\) and \(2, 3\) do not broadcast"),
        (lambda w: (w @ w).sum(), r"matmul: .*got \(2, 3\) and \(2, 3\)"),
        (lambda w: ops.dense(np.ones((5, 4)), w, np.zeros(3)).sum(), r"dense: .*x \(5, 4\), W \(2, 3\)"),
        (lambda w: w.reshape(4, 2).sum(), r"reshape: cannot reshape \(2, 3\) into \(4, 2\)"),
        (lambda w: w.sum(axis=3), r"sum: .*\(2, 3\).*axis 3"),
        (
            lambda w: ops.softmax_cross_entropy(w, np.array([0, 1, 2])),
            r"softmax_cross_entropy: .*\(2, 3\) and \(3,\)",
        ),
    ],
)
def test_an_op_on_shapes_that_do_not_fit_is_a_value_error_naming_op_and_shapes(f, message):
    with pytest.raises(ValueError, match=message):
        grad(f)(np.ones((2, 3)))


# ---------------------------------------------------------------- the public API's example, as written


def loss_fn(params, x, labels):
    h = ops.relu(ops.dense(x, params["w1"], params["b1"]))
    h = h + ops.tanh(ops.dense(h, params["w2"], params["b2"]))  # a residual connection
    logits = ops.dense(h, params["w3"], params["b3"])
    return ops.softmax_cross_entropy(logits, labels)  # mean over the batch: a scalar


def numpy_loss_fn(params, x, labels):
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    h = h + np.tanh(h @ params["w2"] + params["b2"])
    return numpy_cross_entropy(h @ params["w3"] + params["b3"], labels)


def off_kink_case(rng, n, d, h, k):
    while True:
        params = {
            "w1": rng.normal(0, 0.6, (d, h)),
            "b1": rng.normal(0, 0.3, h),
            "w2": rng.normal(0, 0.6, (h, h)),
            "b2": rng.normal(0, 0.3, h),
            "w3": rng.normal(0, 0.6, (h, k)),
            "b3": rng.normal(0, 0.3, k),
        }
        x = rng.normal(size=(n, d))
        if np.abs(x @ params["w1"] + params["b1"]).min() > 1e-3:
            return params, x, rng.integers(0, k, n)


@GRADS
@given(n=sides, d=sides, h=sides, k=st.integers(2, 6), seed=seeds)
def test_the_residual_example_through_the_package(n, d, h, k, seed):
    import tinygrad_digits as td

    params, x, labels = off_kink_case(np.random.default_rng(seed), n, d, h, k)
    loss, grads = td.value_and_grad(loss_fn)(params, x, labels)
    assert set(grads) == set(params)
    assert loss == pytest.approx(numpy_loss_fn(params, x, labels), rel=1e-10)
    assert loss == pytest.approx(float(loss_fn(params, x, labels)), rel=1e-12)  # untraced
    assert_grads_close(grads, central_difference(lambda: numpy_loss_fn(params, x, labels), params))
    again = td.grad(loss_fn)(params, x, labels)
    for key in params:
        np.testing.assert_array_equal(again[key], grads[key])


# ---------------------------------------------------------------- composed models


def np_relu(z):
    return np.maximum(z, 0.0)


@GRADS
@given(n=sides, d=sides, h=sides, k=st.integers(2, 6), seed=seeds)
def test_a_residual_mlp_of_layers(n, d, h, k, seed):
    """Sequential(Dense(h, relu), Residual(Sequential(Dense(h, tanh), Dense(h))), Dense(k))."""
    model = layers.Sequential(
        layers.Dense(h, "relu"),
        layers.Residual(layers.Sequential(layers.Dense(h, "tanh"), layers.Dense(h))),
        layers.Dense(k),
    )
    rng = np.random.default_rng(seed)
    while True:
        params = model.init(rng, (d,), np.float64)
        params = {key: value + rng.normal(0, 0.3, value.shape) for key, value in params.items()}
        x = rng.normal(size=(n, d))
        if np.abs(x @ params["dense0.W"] + params["dense0.b"]).min() > 1e-3:
            break
    labels = rng.integers(0, k, n)
    assert sorted(params) == [
        "dense0.W",
        "dense0.b",
        "dense1.W",
        "dense1.b",
        "residual0.block.dense0.W",
        "residual0.block.dense0.b",
        "residual0.block.dense1.W",
        "residual0.block.dense1.b",
    ]

    def reference():
        p = params
        a = np_relu(x @ p["dense0.W"] + p["dense0.b"])
        r = np.tanh(a @ p["residual0.block.dense0.W"] + p["residual0.block.dense0.b"])
        a = a + r @ p["residual0.block.dense1.W"] + p["residual0.block.dense1.b"]
        return numpy_cross_entropy(a @ p["dense1.W"] + p["dense1.b"], labels)

    loss, grads = value_and_grad(lambda p: ops.softmax_cross_entropy(model.apply(p, x), labels))(params)
    assert loss == pytest.approx(reference(), rel=1e-10)
    assert_grads_close(grads, central_difference(reference, params))


@GRADS
@given(n=sides, d=sides, seed=seeds)
def test_shared_weights_get_the_sum_of_both_uses(n, d, seed):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(0, 0.5, (d, d)), "b": rng.normal(0, 0.3, d)}
    x, target = rng.normal(size=(n, d)), rng.normal(size=(n, d))

    def f(p):  # the same W and b in two layers, and W once more transposed
        h = ops.dense(ops.dense(x, p["W"], p["b"], activation="tanh"), p["W"], p["b"], activation="sigmoid")
        return ops.square(h @ p["W"].T - target).mean()

    def reference():
        W, b = params["W"], params["b"]
        h = 1 / (1 + np.exp(-(np.tanh(x @ W + b) @ W + b)))
        return ((h @ W.T - target) ** 2).mean()

    loss, grads = value_and_grad(f)(params)
    assert loss == pytest.approx(reference(), rel=1e-10)
    assert_grads_close(grads, central_difference(reference, params))


def mlp_case(rng, n, d, h, k):
    params = {
        "W1": rng.normal(0, 0.6, (d, h)),
        "b1": rng.normal(0, 0.3, h),
        "W2": rng.normal(0, 0.6, (h, k)),
        "b2": rng.normal(0, 0.3, k),
    }
    return params, rng.normal(size=(n, d)), rng.integers(0, k, n)


@GRADS
@given(n=sides, d=sides, h=sides, k=st.integers(2, 6), smoothing=st.sampled_from([0.0, 0.1, 0.3]), seed=seeds)
def test_a_label_smoothing_loss_written_with_log_softmax(n, d, h, k, smoothing, seed):
    params, x, labels = mlp_case(np.random.default_rng(seed), n, d, h, k)
    onehot = np.eye(k)[labels]
    target = (1 - smoothing) * onehot + smoothing / k

    def f(p):
        logp = ops.log_softmax(
            ops.dense(ops.dense(x, p["W1"], p["b1"], activation="sigmoid"), p["W2"], p["b2"])
        )
        return -(logp * target).sum(axis=1).mean()

    def reference():
        p = params
        z = (1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))) @ p["W2"] + p["b2"]
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -(logp * target).sum(axis=1).mean()

    loss, grads = value_and_grad(f)(params)
    assert loss == pytest.approx(reference(), rel=1e-10)
    assert_grads_close(grads, central_difference(reference, params))
    if smoothing == 0.0:  # plain cross-entropy: the fused op's gradient, by another road
        z = ops.dense(
            ops.dense(x, params["W1"], params["b1"], activation="sigmoid"), params["W2"], params["b2"]
        )
        assert loss == pytest.approx(numpy_cross_entropy(z, labels), rel=1e-10)


@GRADS
@given(n=sides, d=sides, h=sides, k=st.integers(2, 6), seed=seeds)
def test_a_squared_error_loss_against_one_hot(n, d, h, k, seed):
    params, x, labels = mlp_case(np.random.default_rng(seed), n, d, h, k)
    onehot = np.eye(k)[labels]

    def f(p):
        probs = ops.softmax(ops.dense(ops.dense(x, p["W1"], p["b1"], activation="tanh"), p["W2"], p["b2"]))
        return ops.square(probs - onehot).sum(axis=1).mean()

    def reference():
        p = params
        z = np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (((e / e.sum(axis=1, keepdims=True)) - onehot) ** 2).sum(axis=1).mean()

    loss, grads = value_and_grad(f)(params)
    assert loss == pytest.approx(reference(), rel=1e-10)
    assert_grads_close(grads, central_difference(reference, params))


@GRADS
@given(
    n=sides, d=sides, h=st.integers(2, 6), k=st.integers(2, 6), rate=st.sampled_from([0.2, 0.5]), seed=seeds
)
def test_dropout_in_a_model_with_a_fixed_rng(n, d, h, k, rate, seed):
    model = layers.Sequential(layers.Dense(h, "tanh"), layers.Dropout(rate), layers.Dense(k))
    rng = np.random.default_rng(seed)
    params = {
        key: value + rng.normal(0, 0.3, value.shape)
        for key, value in model.init(rng, (d,), np.float64).items()
    }
    x, labels = rng.normal(size=(n, d)), rng.integers(0, k, n)
    keep = np.random.default_rng(seed + 1).random((n, h)) >= rate  # the mask the op draws (Keras's)

    def reference():
        a = np.tanh(x @ params["dense0.W"] + params["dense0.b"]) * keep / (1 - rate)
        return numpy_cross_entropy(a @ params["dense1.W"] + params["dense1.b"], labels)

    f = lambda p: ops.softmax_cross_entropy(model.apply(p, x, np.random.default_rng(seed + 1)), labels)  # noqa: E731
    loss, grads = value_and_grad(f)(params)
    assert loss == pytest.approx(reference(), rel=1e-10)
    assert_grads_close(grads, central_difference(reference, params))
    if not keep.all():  # the dropped units pass no gradient to their weights
        dead = ~keep.any(axis=0)
        np.testing.assert_array_equal(grads["dense1.W"][dead], 0.0)
