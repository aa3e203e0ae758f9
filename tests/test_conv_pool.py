"""Tests for ops.conv2d_max_pool2d, a convolution and its max-pool in one op: its forward against
NumPy written here (test_conv's reference convolution, then a max over windows) and bit for bit
against the two ops it stands for; its VJP against float64 central differences with hypothesis
choosing the shapes, and on batches large enough for both backward kernels and their threads
against NumPy's gradients; the same bits in one thread and over threads; and a Sequential's
conv block, which calls it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_conv import check_vjp, np_conv2d, np_conv2d_grads, np_pool

from tinygrad_digits import conv_ops, ops
from tinygrad_digits import layers as L
from tinygrad_digits.autodiff import grad
from tinygrad_digits.conv_layers import Conv2D, MaxPool2D

NP_ACTIVATIONS = {None: lambda z: z, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}


def np_conv_pool(x, W, b, padding, stride, act, size):
    return np_pool(NP_ACTIVATIONS[act](np_conv2d(x, W, b, padding, stride)), size, np.max)


def np_conv_pool_grads(x, W, b, dp, padding, stride, act, size):
    """float64 (dx, dW, db) of sum(dp * pool(act(conv(x)))): dp goes to each window's maximum
    (no ties here), times act' there, then through test_conv's convolution gradients."""
    z = np_conv2d(x, W, b, padding, stride)
    y = NP_ACTIVATIONS[act](z)
    n, oh, ow, c = y.shape
    ph, pw = oh // size, ow // size
    windows = y[:, : ph * size, : pw * size].reshape(n, ph, size, pw, size, c)
    hit = windows == windows.max(axis=(2, 4), keepdims=True)
    dy = np.zeros_like(y)
    dy[:, : ph * size, : pw * size] = (hit * dp[:, :, None, :, None]).reshape(n, ph * size, pw * size, c)
    slope = {None: np.ones_like(z), "relu": (z > 0).astype(float), "tanh": 1 - y**2}[act]
    return np_conv2d_grads(x, W, dy * slope, padding, stride)


CASES = [  # x shape, kernel, c_out, padding, stride, size: the dense backward (short window rows) ...
    ((1, 7, 5, 1), (3, 3), 4, "valid", 1, 2),  # a batch of one, one channel, odd sides
    ((2, 6, 7, 2), (2, 2), 3, "same", 1, 3),  # 'same', a pool of 3 with a floored edge
    ((2, 9, 8, 1), (3, 2), 2, "valid", 2, 2),  # stride 2
    ((2, 4, 4, 3), (4, 4), 2, "valid", 1, 1),  # a kernel as large as the input, a pool of 1
    # ... and the sparse one (kw * c_in >= 16, every window inside)
    ((2, 9, 7, 6), (3, 3), 5, "valid", 1, 2),
    ((3, 8, 8, 8), (2, 2), 4, "valid", 2, 2),
    ((1, 5, 5, 16), (1, 1), 3, "same", 1, 2),  # 'same' that pads nothing: inside too
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, c_out, padding, stride, size", CASES)
def test_forward_matches_numpy_and_the_two_ops_to_the_bit(shape, kernel, c_out, padding, stride, size, dtype,
                                                          rng):
    x = rng.normal(size=shape).astype(dtype)
    W = rng.normal(size=(*kernel, shape[3], c_out)).astype(dtype)
    b = rng.normal(size=c_out).astype(dtype)
    for act in (None, "relu", "tanh"):
        y = ops.conv2d_max_pool2d(x, W, b, padding, stride, act, size=size)
        expected = np_conv_pool(x, W, b, padding, stride, act, size)
        assert y.dtype == dtype and y.shape == expected.shape
        tol = 1e-4 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
        two_ops = ops.max_pool2d(ops.conv2d(x, W, b, padding, stride, activation=act), size)
        np.testing.assert_array_equal(y, two_ops)


def _distinct(y: np.ndarray, size: int) -> bool:
    """Each window's maximum ahead of its runner-up by 0.05, so that a small step keeps it."""
    n, oh, ow, c = y.shape
    ph, pw = oh // size, ow // size
    windows = y[:, : ph * size, : pw * size].reshape(n, ph, size, pw, size, c).transpose(0, 1, 3, 5, 2, 4)
    top = np.sort(windows.reshape(n, ph, pw, c, -1), axis=-1)
    return size == 1 or bool((top[..., -1] - top[..., -2]).min() > 0.05)


def check_conv_pool_vjp(n, h, w, c_in, c_out, kh, kw, padding, stride, act, size, seed):
    if padding == "valid":
        kh, kw = min(kh, h), min(kw, w)
    out_h = (h - kh) // stride + 1 if padding == "valid" else -(-h // stride)
    out_w = (w - kw) // stride + 1 if padding == "valid" else -(-w // stride)
    size = min(size, out_h, out_w)
    rng = np.random.default_rng(seed)
    for _ in range(1000):  # pre-activations away from relu's kink, maxima apart from the rest
        p = {
            "x": rng.normal(size=(n, h, w, c_in)),
            "W": rng.normal(size=(kh, kw, c_in, c_out)),
            "b": rng.normal(size=c_out),
        }
        z = np_conv2d(p["x"], p["W"], p["b"], padding, stride)
        if (act != "relu" or np.abs(z).min() > 0.05) and _distinct(NP_ACTIVATIONS[act](z), size):
            break
    else:
        assume(False)  # no draw without near ties: hypothesis draws another example
    check_vjp(lambda q: ops.conv2d_max_pool2d(q["x"], q["W"], q["b"], padding, stride, act, size=size), p,
              seed)


SHAPES = dict(
    n=st.integers(1, 2),
    h=st.integers(2, 6),
    w=st.integers(2, 6),
    c_out=st.integers(1, 3),
    kh=st.integers(1, 3),
    stride=st.integers(1, 2),
    act=st.sampled_from([None, "relu", "tanh"]),
    size=st.integers(1, 2),
    seed=st.integers(0, 2**32 - 1),
)


@settings(max_examples=12, deadline=None)
@given(c_in=st.integers(1, 3), kw=st.integers(1, 3), padding=st.sampled_from(["valid", "same"]), **SHAPES)
def test_vjp_by_the_dense_backward(n, h, w, c_in, c_out, kh, kw, padding, stride, act, size, seed):
    """Window rows of at most 9 values (and 'same' padding): conv2d's products."""
    check_conv_pool_vjp(n, h, w, c_in, c_out, kh, kw, padding, stride, act, size, seed)


@settings(max_examples=12, deadline=None)
@given(wide=st.sampled_from([(6, 3), (8, 2), (16, 1), (16, 3)]), **SHAPES)
def test_vjp_by_the_sparse_backward(n, h, w, wide, c_out, kh, stride, act, size, seed):
    """Window rows of at least SPARSE_RUN values, every window inside: one pixel per window."""
    c_in, kw = wide
    check_conv_pool_vjp(n, max(h, kw), max(w, kw), c_in, c_out, kh, kw, "valid", stride, act, size, seed)


@pytest.mark.parametrize(
    "c_in, padding, stride", [(1, "valid", 1), (3, "same", 1), (8, "valid", 1), (6, "valid", 2)]
)
def test_gradients_of_a_large_batch_match_numpy(c_in, padding, stride, rng):
    """Both backward kernels (one channel and 'same': dense; 8 and 6 channels: sparse) over many
    chunks and both threads, against NumPy's gradients."""
    x = rng.normal(size=(90, 14, 13, c_in)).astype(np.float32)
    W = rng.normal(size=(3, 3, c_in, 6)).astype(np.float32)
    b = rng.normal(size=6).astype(np.float32)
    y = ops.conv2d_max_pool2d(x, W, b, padding, stride, "relu")
    dp = rng.normal(size=y.shape).astype(np.float32)
    got = grad(lambda x, W, b: (ops.conv2d_max_pool2d(x, W, b, padding, stride, "relu") * dp).sum(),
               argnums=(0, 1, 2))(x, W, b)
    for ours, expected in zip(got, np_conv_pool_grads(x, W, b, dp, padding, stride, "relu", 2)):
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=2e-3)


@pytest.fixture
def forced():
    saved = conv_ops.USE_PARALLEL
    yield
    conv_ops.USE_PARALLEL = saved


@pytest.mark.parametrize("c_in", [1, 8])
def test_the_same_bits_in_one_thread_and_over_threads(forced, c_in, rng):
    x = rng.normal(size=(300, 12, 12, c_in)).astype(np.float32)
    W = rng.normal(size=(3, 3, c_in, 8)).astype(np.float32)
    b = rng.normal(size=8).astype(np.float32)

    def f(x, W, b):
        return (ops.conv2d_max_pool2d(x, W, b, activation="relu") ** 2).sum()

    results = []
    for mode in (False, True):
        conv_ops.USE_PARALLEL = mode
        pooled = ops.conv2d_max_pool2d(x, W, b, activation="relu")
        results.append((pooled, *grad(f, argnums=(0, 1, 2))(x, W, b)))
    for one, threaded in zip(*results):
        np.testing.assert_array_equal(one, threaded)


def test_a_sequential_conv_block_gives_the_two_ops_outputs_and_gradients(rng):
    net = L.Sequential(Conv2D(8, 3, activation="relu"), MaxPool2D(2), Conv2D(16, 3, activation="relu"),
                       MaxPool2D(2), L.Flatten(), L.Dense(10))
    params = net.init(rng, (14, 14, 1))
    x = rng.normal(size=(40, 14, 14, 1)).astype(np.float32)

    def by_ops(p, x):
        for i in range(2):
            x = ops.max_pool2d(ops.conv2d(x, p[f"conv2d{i}.W"], p[f"conv2d{i}.b"], activation="relu"), 2)
        return ops.dense(ops.flatten(x), p["dense0.W"], p["dense0.b"])

    np.testing.assert_array_equal(net.apply(params, x), by_ops(params, x))
    ours = grad(lambda p: ops.softmax_cross_entropy(net.apply(p, x), np.arange(40) % 10))(params)
    theirs = grad(lambda p: ops.softmax_cross_entropy(by_ops(p, x), np.arange(40) % 10))(params)
    for key in params:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize(
    "size, message",
    [(0, "size must be a positive integer"), (6, "no larger than the 5x5"), (2.0, "got 2.0")],
)
def test_bad_pool_sizes_name_the_op(size, message):
    x, W, b = np.zeros((1, 7, 7, 1)), np.zeros((3, 3, 1, 2)), np.zeros(2)
    with pytest.raises(ValueError, match=message) as error:
        ops.conv2d_max_pool2d(x, W, b, size=size)
    assert str(error.value).startswith("conv2d_max_pool2d:")
