"""Tests for tinygrad_digits.ops: every op's VJP against float64 central differences, every
forward against NumPy written here, and the errors of shapes that do not fit.

A VJP is checked through the scalar ``sum(op(inputs) * dy)`` for a random ``dy`` of the output's
shape: its autodiff gradient is exactly the op's VJP of ``dy`` (summed over broadcast axes), and
its central differences are taken on the plain NumPy value, in float64. Hypothesis chooses the
shapes (sides 1..6, broadcasting included). ReLU-family inputs stay at least 0.05 from the kink
and maximum's arguments at least 0.3 from a tie, far beyond the 1e-6 step.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import central_difference
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_digits import ops
from tinygrad_digits.autodiff import grad, value_and_grad

VJPS = settings(max_examples=20, deadline=None)
ACTS = [None, *ops.ACTIVATIONS]
sides = st.integers(1, 6)
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=6)
nd_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)


def check_vjp(f, params: dict, seed: int, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """The gradient of sum(f(params) * dy) by autodiff against float64 central differences. The
    differences' own rounding grows with the terms summed: atol grows with them (1e-9 of their sum)."""
    dy = np.random.default_rng(seed).normal(size=np.shape(f(params)))
    atol = atol + 1e-9 * float(np.sum(np.abs(np.asarray(f(params), dtype=np.float64) * dy)))
    analytic = grad(lambda p: (f(p) * dy).sum())(params)
    numeric = central_difference(lambda: np.sum(np.asarray(f(params), dtype=np.float64) * dy), params)
    assert set(analytic) == set(params)
    for key, value in params.items():
        assert analytic[key].shape == value.shape and analytic[key].dtype == value.dtype, key
        np.testing.assert_allclose(analytic[key], numeric[key], rtol=rtol, atol=atol, err_msg=key)


def off_kink(z: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """z moved at least ``margin`` away from 0, keeping its sign."""
    return np.where(z >= 0, z + margin, z - margin)


def np_act(name, z, alpha=0.1):
    return {
        None: lambda: z,
        "relu": lambda: np.where(z > 0, z, 0.0),
        "leaky_relu": lambda: np.where(z > 0, z, alpha * z),
        "sigmoid": lambda: 1.0 / (1.0 + np.exp(-z)),
        "tanh": lambda: np.tanh(z),
    }[name]()


def np_softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------- VJPs: the network's ops


@pytest.mark.parametrize("act", ACTS)
@VJPS
@given(n=sides, d_in=sides, d_out=sides, alpha=st.sampled_from([0.0, 0.1, 0.3]), seed=seeds)
def test_dense_vjp(act, n, d_in, d_out, alpha, seed):
    rng = np.random.default_rng(seed)
    while True:  # every pre-activation away from the kink
        p = {
            "x": rng.normal(size=(n, d_in)),
            "W": rng.normal(0, 0.7, (d_in, d_out)),
            "b": rng.normal(0, 0.5, d_out),
        }
        if np.abs(p["x"] @ p["W"] + p["b"]).min() > 0.05:
            break
    check_vjp(lambda q: ops.dense(q["x"], q["W"], q["b"], activation=act, alpha=alpha), p, seed)


UNARY = {
    "relu": (ops.relu, "kink"),
    "leaky_relu": (lambda x: ops.leaky_relu(x, alpha=0.25), "kink"),
    "leaky_relu_default": (ops.leaky_relu, "kink"),
    "sigmoid": (ops.sigmoid, "any"),
    "tanh": (ops.tanh, "any"),
    "exp": (ops.exp, "any"),
    "log": (ops.log, "positive"),
    "square": (ops.square, "any"),
    "sqrt": (ops.sqrt, "positive"),
    "negative": (ops.negative, "any"),
}


@pytest.mark.parametrize("name", list(UNARY))
@VJPS
@given(shape=shapes, seed=seeds)
def test_unary_vjp(name, shape, seed):
    op, domain = UNARY[name]
    x = np.random.default_rng(seed).normal(0, 1.5, shape)
    x = {"kink": off_kink, "positive": lambda z: np.abs(z) + 0.2, "any": lambda z: z}[domain](x)
    check_vjp(lambda p: op(p["x"]), {"x": np.asarray(x, dtype=np.float64)}, seed)


@VJPS
@given(shape=nd_shapes, seed=seeds, data=st.data())
def test_softmax_and_log_softmax_vjp_along_any_axis(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = np.random.default_rng(seed).normal(0, 2, shape)
    check_vjp(lambda p: ops.softmax(p["x"], axis=axis), {"x": x.copy()}, seed)
    check_vjp(lambda p: ops.log_softmax(p["x"], axis=axis), {"x": x.copy()}, seed)


@VJPS
@given(n=sides, k=st.integers(2, 6), seed=seeds)
def test_softmax_cross_entropy_vjp(n, k, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    check_vjp(lambda p: ops.softmax_cross_entropy(p["z"], labels), {"z": rng.normal(0, 3, (n, k))}, seed)


@VJPS
@given(n=sides, k=st.integers(2, 6), smoothing=st.floats(0.01, 0.95), seed=seeds)
def test_smoothed_cross_entropy_vjp(n, k, smoothing, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    check_vjp(lambda p: ops.softmax_cross_entropy(p["z"], labels, label_smoothing=smoothing),
              {"z": rng.normal(0, 3, (n, k))}, seed)


@VJPS
@given(shape=nd_shapes, rate=st.sampled_from([0.0, 0.2, 0.5, 0.9]), seed=seeds)
def test_dropout_vjp_with_a_fixed_rng(shape, rate, seed):
    x = np.random.default_rng(seed).normal(size=shape)
    check_vjp(lambda p: ops.dropout(p["x"], rate, np.random.default_rng(seed + 1)), {"x": x}, seed)


# ---------------------------------------------------------------- VJPs: arithmetic and shapes


pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=6)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "maximum"])
@VJPS
@given(shapes=pairs, seed=seeds)
def test_binary_vjp_with_broadcasting(name, shapes, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    if name == "divide":
        b = np.sign(b + 1e-9) * (np.abs(b) + 0.5)  # away from 0
    if name == "maximum":  # integers + 0.1 u against integers + 0.5: no two within 0.3
        a = rng.integers(-3, 4, sa) + 0.1 * rng.random(sa)
        b = rng.integers(-3, 4, sb) + 0.5 + 0.1 * rng.random(sb)
    op = getattr(ops, name)
    check_vjp(lambda p: op(p["a"], p["b"]), {"a": np.asarray(a, float), "b": np.asarray(b, float)}, seed)


@pytest.mark.parametrize("exponent", [2.0, 3, 0.5, -1.5])
@VJPS
@given(shape=shapes, seed=seeds)
def test_power_vjp_by_a_constant(exponent, shape, seed):
    x = np.abs(np.random.default_rng(seed).normal(size=shape)) + 0.3
    check_vjp(lambda p: ops.power(p["x"], exponent), {"x": np.asarray(x, dtype=np.float64)}, seed)


@VJPS
@given(shapes=pairs, seed=seeds)
def test_power_vjp_with_a_traced_exponent(shapes, seed):
    rng = np.random.default_rng(seed)
    sx, sp = shapes.input_shapes
    p = {"x": np.asarray(rng.uniform(0.5, 2.0, sx)), "p": np.asarray(rng.uniform(-2, 2, sp))}
    check_vjp(lambda q: ops.power(q["x"], q["p"]), p, seed)


def test_power_of_negative_bases_by_integers(rng):
    x = off_kink(rng.normal(size=(3, 4)))
    for exponent in (2, 3):
        check_vjp(lambda p: ops.power(p["x"], exponent), {"x": x.copy()}, 1)


@pytest.mark.parametrize("case", ["matrix-matrix", "matrix-vector", "vector-matrix", "vector-vector"])
@VJPS
@given(n=sides, k=sides, m=sides, seed=seeds)
def test_matmul_vjp(case, n, k, m, seed):
    rng = np.random.default_rng(seed)
    sa = (n, k) if case.startswith("matrix") else (k,)
    sb = (k, m) if case.endswith("-matrix") else (k,)
    check_vjp(
        lambda p: ops.matmul(p["a"], p["b"]), {"a": rng.normal(size=sa), "b": rng.normal(size=sb)}, seed
    )


@VJPS
@given(shape=shapes, seed=seeds)
def test_transpose_reshape_flatten_vjp(shape, seed):
    x = np.asarray(np.random.default_rng(seed).normal(size=shape))
    check_vjp(lambda p: ops.transpose(p["x"]), {"x": x.copy()}, seed)
    check_vjp(lambda p: ops.reshape(p["x"], shape=(-1,)), {"x": x.copy()}, seed)
    check_vjp(lambda p: ops.reshape(p["x"], shape=tuple(reversed(shape))), {"x": x.copy()}, seed)
    if len(shape) >= 1:
        check_vjp(lambda p: ops.flatten(p["x"]), {"x": x.copy()}, seed)


@pytest.mark.parametrize("op", [ops.sum, ops.mean], ids=["sum", "mean"])
@VJPS
@given(shape=nd_shapes, keepdims=st.booleans(), seed=seeds, data=st.data())
def test_sum_and_mean_vjp_over_any_axes(op, shape, keepdims, seed, data):
    ndim = len(shape)
    axis = data.draw(
        st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
        ),
        label="axis",
    )
    x = np.random.default_rng(seed).normal(size=shape)
    check_vjp(lambda p: op(p["x"], axis=axis, keepdims=keepdims), {"x": x}, seed)


INDICES = [
    (0, (4,)),
    (-1, (4, 3)),
    (slice(1, None), (4, 3)),
    (slice(None, None, -2), (5,)),
    ((slice(None), 1), (3, 4)),
    ((1, slice(0, 2)), (3, 4)),
    ((Ellipsis, 0), (2, 3, 4)),
    ((None, slice(1, 3)), (4, 2)),
    ((1, 2), (3, 4)),
    (np.array([0, 0, 2, 0]), (3, 2)),  # an index that repeats: its cotangents add up
    ((np.array([1, 1]), np.array([0, 2])), (3, 4)),
    ((slice(None), np.array([2, 2, 0])), (2, 3)),
    ([1, 1, 0], (3,)),
    (np.array([True, False, True]), (3, 2)),
]


@pytest.mark.parametrize("index, shape", INDICES, ids=[str(i) for i in range(len(INDICES))])
def test_take_vjp(index, shape, rng):
    x = rng.normal(size=shape)
    np.testing.assert_array_equal(ops.take(x, index=index), x[index])
    check_vjp(lambda p: ops.take(p["x"], index=index), {"x": x}, 7)


def test_take_vjp_sums_repeated_indices_exactly():
    x = np.zeros(3)
    g = grad(lambda v: (ops.take(v, index=np.array([2, 0, 2, 2])) * np.array([1.0, 2.0, 3.0, 4.0])).sum())(x)
    np.testing.assert_array_equal(g, [2.0, 0.0, 8.0])


# ---------------------------------------------------------------- forward values against NumPy


DTYPES = [np.float32, np.float64]
ROWS = [1, 7, 33]


def close(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
def test_dense_forward_is_act_of_affine(act, dtype, n, rng):
    x, W, b = rng.normal(size=(n, 9)), rng.normal(size=(9, 5)), rng.normal(size=5)
    y = ops.dense(x.astype(dtype), W.astype(dtype), b.astype(dtype), activation=act, alpha=0.3)
    assert y.shape == (n, 5) and y.dtype == dtype
    x, W, b = (a.astype(dtype).astype(np.float64) for a in (x, W, b))
    np.testing.assert_allclose(y, np_act(act, x @ W + b, 0.3), **close(dtype))


@pytest.mark.parametrize("act", ACTS)
def test_dense_accepts_non_contiguous_inputs(act, rng):
    x = rng.normal(size=(9, 14))[:, ::2]  # a strided view
    W = rng.normal(size=(5, 7)).T  # a transposed view
    b = rng.normal(size=10)[::2]
    assert not (x.flags.c_contiguous or W.flags.c_contiguous or b.flags.c_contiguous)
    np.testing.assert_allclose(
        ops.dense(x, W, b, activation=act), np_act(act, x @ W + b), rtol=1e-12, atol=1e-12
    )


ELEMENTWISE = {
    "relu": (ops.relu, lambda z: np.where(z > 0, z, 0.0)),
    "leaky_relu": (lambda z: ops.leaky_relu(z, alpha=0.25), lambda z: np.where(z > 0, z, 0.25 * z)),
    "leaky_relu_default": (ops.leaky_relu, lambda z: np.where(z > 0, z, 0.1 * z)),
    "sigmoid": (ops.sigmoid, lambda z: 1.0 / (1.0 + np.exp(-z))),
    "tanh": (ops.tanh, np.tanh),
    "exp": (ops.exp, np.exp),
    "log": (lambda z: ops.log(np.abs(z) + 0.1), lambda z: np.log(np.abs(z) + 0.1)),
    "square": (ops.square, lambda z: z * z),
    "sqrt": (lambda z: ops.sqrt(np.abs(z)), lambda z: np.abs(z) ** 0.5),
    "negative": (ops.negative, lambda z: -z),
    "activation-none": (lambda z: ops.activation(z, None), lambda z: z),
    "activation-tanh": (lambda z: ops.activation(z, "tanh"), np.tanh),
    "activation-leaky": (
        lambda z: ops.activation(z, "leaky_relu", 0.5),
        lambda z: np.where(z > 0, z, 0.5 * z),
    ),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 4), (7, 3), (33, 5), (2, 3, 4), (6,), ()])
def test_elementwise_forward(name, dtype, shape, rng):
    op, reference = ELEMENTWISE[name]
    x = rng.normal(0, 3, shape).astype(dtype)
    y = op(x)
    assert np.shape(y) == shape and np.result_type(y) == dtype
    np.testing.assert_allclose(y, reference(x.astype(np.float64)), **close(dtype))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu", "exp"])
def test_elementwise_forward_of_non_contiguous_inputs(name, rng):
    op, reference = ELEMENTWISE[name]
    x = rng.normal(size=(8, 6))[::2, ::-1].T
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(op(x), reference(x), rtol=1e-12)


def test_sigmoid_is_stable_at_the_extremes():
    y = ops.sigmoid(np.array([-800.0, -40.0, 0.0, 40.0, 800.0]))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [0.0, np.exp(-40.0), 0.5, 1.0, 1.0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, axis", [((1, 10), -1), ((7, 3), 1), ((33, 4), 0), ((5,), 0), ((2, 3, 4), 1), ((2, 3, 4), -1)]
)
def test_softmax_and_log_softmax_forward(dtype, shape, axis, rng):
    x = rng.normal(0, 5, shape).astype(dtype)
    expected = np_softmax(x.astype(np.float64), axis)
    probs = ops.softmax(x, axis=axis)
    logp = ops.log_softmax(x, axis=axis)
    assert probs.dtype == logp.dtype == dtype and probs.shape == logp.shape == shape
    np.testing.assert_allclose(probs, expected, **close(dtype))
    np.testing.assert_allclose(logp, np.log(expected), **close(dtype))


def test_softmax_default_axis_is_the_last_and_non_contiguous_inputs_work(rng):
    x = rng.normal(0, 5, (10, 7)).T
    np.testing.assert_allclose(ops.softmax(x), np_softmax(x, -1), rtol=1e-12)
    np.testing.assert_allclose(ops.log_softmax(x), np.log(np_softmax(x, -1)), rtol=1e-12, atol=1e-12)


def test_log_softmax_is_stable_for_huge_logits():
    logp = ops.log_softmax(np.array([[1000.0, 0.0], [-1000.0, 1000.0]]))
    np.testing.assert_allclose(logp, [[0.0, -1000.0], [-2000.0, 0.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
def test_softmax_cross_entropy_forward(dtype, n, rng):
    z = rng.normal(0, 3, (n, 10)).astype(dtype)
    labels = rng.integers(0, 10, n)
    z64 = z.astype(np.float64)
    logp = z64 - z64.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    loss = ops.softmax_cross_entropy(z, labels)
    assert np.ndim(loss) == 0
    assert float(loss) == pytest.approx(
        -logp[np.arange(n), labels].mean(), rel=1e-6 if dtype == np.float32 else 1e-12
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("smoothing", [0.1, 0.5])
def test_smoothed_cross_entropy_forward_and_gradient(dtype, n, smoothing, rng):
    """Keras's label smoothing: targets (1 - s) * onehot + s / k, the loss -sum(target * log p)."""
    z = rng.normal(0, 3, (n, 10)).astype(dtype)
    labels = rng.integers(0, 10, n)
    z64 = z.astype(np.float64)
    logp = z64 - z64.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    target = np.full((n, 10), smoothing / 10) + (1 - smoothing) * np.eye(10)[labels]
    rel = 1e-6 if dtype == np.float32 else 1e-12
    loss, grads = value_and_grad(lambda p: ops.softmax_cross_entropy(p["z"], labels, label_smoothing=smoothing))(
        {"z": z})
    assert float(loss) == pytest.approx(-(target * logp).sum(1).mean(), rel=rel)
    assert grads["z"].dtype == dtype
    np.testing.assert_allclose(grads["z"], (np.exp(logp) - target) / n, rtol=rel * 10, atol=rel / n)


def test_no_label_smoothing_is_the_plain_cross_entropy_and_bad_smoothing_is_refused(rng):
    z, labels = rng.normal(size=(7, 10)), rng.integers(0, 10, 7)
    assert ops.softmax_cross_entropy(z, labels, label_smoothing=0.0) == ops.softmax_cross_entropy(z, labels)
    assert ops.softmax_cross_entropy(z, labels, label_smoothing=0.1) != ops.softmax_cross_entropy(z, labels)
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"softmax_cross_entropy: label_smoothing must lie in \[0, 1\)"):
            ops.softmax_cross_entropy(z, labels, label_smoothing=bad)


def test_softmax_cross_entropy_accepts_any_integer_labels_and_non_contiguous_logits(rng):
    z = rng.normal(size=(3, 8)).T  # (8, 3), a transposed view
    labels = np.array([0, 2, 1, 1, 0, 2, 2, 0])
    z64 = z - z.max(1, keepdims=True)
    expected = -(z64 - np.log(np.exp(z64).sum(1, keepdims=True)))[np.arange(8), labels].mean()
    for lab in (labels, labels.astype(np.uint8), labels.astype(np.int32), labels.tolist()):
        assert float(ops.softmax_cross_entropy(z, lab)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_arithmetic_and_reductions_forward(dtype, rng):
    a = rng.normal(size=(7, 1, 3)).astype(dtype)
    b = (rng.normal(size=(4, 1)) + 3).astype(dtype)
    for op, ref in [
        (ops.add, np.add),
        (ops.subtract, np.subtract),
        (ops.multiply, np.multiply),
        (ops.divide, np.divide),
        (ops.maximum, np.maximum),
    ]:
        y = op(a, b)
        assert y.shape == (7, 4, 3) and y.dtype == dtype
        np.testing.assert_allclose(y, ref(a.astype(np.float64), b.astype(np.float64)), **close(dtype))
    np.testing.assert_allclose(ops.power(np.abs(a), 1.5), np.abs(a.astype(np.float64)) ** 1.5, **close(dtype))
    for axis in (None, 0, -1, (0, 2)):
        for keepdims in (False, True):
            s = ops.sum(a, axis=axis, keepdims=keepdims)
            m = ops.mean(a, axis=axis, keepdims=keepdims)
            ref = a.astype(np.float64)
            np.testing.assert_allclose(s, ref.sum(axis=axis, keepdims=keepdims), rtol=1e-5)
            np.testing.assert_allclose(m, ref.mean(axis=axis, keepdims=keepdims), rtol=1e-5)
    x = rng.normal(size=(7, 3)).astype(dtype)
    v = rng.normal(size=3).astype(dtype)
    np.testing.assert_allclose(
        ops.matmul(x, x.T), x.astype(np.float64) @ x.T.astype(np.float64), **close(dtype)
    )
    np.testing.assert_allclose(ops.matmul(x, v), x.astype(np.float64) @ v.astype(np.float64), **close(dtype))
    assert ops.transpose(x).shape == (3, 7) and ops.reshape(x, shape=(3, 7)).shape == (3, 7)
    assert ops.flatten(a).shape == (7, 3)


def test_dropout_forward_drops_the_rate_and_scales_the_rest(rng):
    x = rng.normal(size=(40, 50)) + 5.0  # no zeros of its own
    for dtype in DTYPES:
        y = ops.dropout(x.astype(dtype), 0.3, np.random.default_rng(2))
        assert y.dtype == dtype
        kept = y != 0
        assert 0.6 < kept.mean() < 0.8
        np.testing.assert_allclose(y[kept], x.astype(dtype)[kept] / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(ops.dropout(x, 0.3, None), x)  # inference: the identity
    np.testing.assert_array_equal(ops.dropout(x, 0.0, np.random.default_rng(2)), x)
    a = ops.dropout(x, 0.5, np.random.default_rng(3))
    np.testing.assert_array_equal(a, ops.dropout(x, 0.5, np.random.default_rng(3)))
    assert not np.array_equal(a, ops.dropout(x, 0.5, np.random.default_rng(4)))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "x, W, b",
    [
        ((2, 3), (4, 5), (5,)),
        ((2, 3), (3, 5), (4,)),
        ((3,), (3, 5), (5,)),
        ((2, 3), (3, 5), (1, 5)),
    ],
)
def test_dense_rejects_shapes_that_do_not_fit_naming_them(x, W, b):
    with pytest.raises(ValueError, match=rf"dense: .*got x \({x[0]}, ?.*W \({W[0]}, {W[1]}\)"):
        ops.dense(np.zeros(x), np.zeros(W), np.zeros(b))


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "maximum"])
def test_binary_ops_reject_shapes_that_do_not_broadcast(name):
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) do not broadcast"):
        getattr(ops, name)(np.zeros((2, 3)), np.ones(4))


@pytest.mark.parametrize("sa, sb", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3, 4), (4, 2)), ((), (3,))])
def test_matmul_rejects_shapes_that_do_not_fit(sa, sb):
    with pytest.raises(ValueError, match=rf"matmul: .*got {re_shape(sa)} and {re_shape(sb)}"):
        ops.matmul(np.ones(sa), np.ones(sb))


def re_shape(shape) -> str:
    import re

    return re.escape(str(tuple(shape)))


def test_reshape_sum_and_softmax_cross_entropy_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape \(2, 3\) into \(4, 2\)"):
        ops.reshape(np.zeros((2, 3)), shape=(4, 2))
    for op in (ops.sum, ops.mean):
        with pytest.raises(ValueError, match=rf"{op.name}: .*\(2, 3\).*axis 2"):
            op(np.zeros((2, 3)), axis=2)
    with pytest.raises(
        ValueError, match=r"softmax_cross_entropy: expected logits .* got \(2, 3\) and \(3,\)"
    ):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="integer label"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))


@pytest.mark.parametrize("bad", ["swish", "ReLU", ""])
def test_unknown_activation_is_a_value_error_naming_it(bad):
    with pytest.raises(ValueError, match=f"unknown activation {bad!r}") as err:
        ops.dense(np.ones((2, 3)), np.ones((3, 2)), np.zeros(2), activation=bad)
    assert "relu" in str(err.value)  # lists the choices
    with pytest.raises(ValueError, match=f"unknown activation {bad!r}"):
        ops.activation(np.ones(3), bad)


def test_kernel_ops_reject_non_float_arrays():
    with pytest.raises(ValueError, match="relu: expected float32 or float64 arrays, got int64"):
        ops.relu(np.arange(3))
    with pytest.raises(ValueError, match="dense: expected float32 or float64"):
        ops.dense(
            np.ones((2, 3), dtype=np.int32), np.ones((3, 2), dtype=np.int32), np.zeros(2, dtype=np.int32)
        )


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rejects_rates_outside_0_1(rate):
    with pytest.raises(ValueError, match="dropout: rate is the fraction dropped"):
        ops.dropout(np.ones(3), rate, np.random.default_rng(0))


def test_activation_codes_are_distinct():
    codes = [ops.activation_code(a) for a in [*ops.ACTIVATIONS, ops.IDENTITY]]
    assert len(set(codes)) == len(codes)
    assert ops.activation_code(None) == ops.activation_code(ops.IDENTITY)
