"""Tests for the image ops (conv_ops, through ops) and layers (conv_layers): forwards against
NumPy written here on awkward shapes, every VJP against float64 central differences with
hypothesis choosing the shapes, Keras's padding arithmetic, the layers' init, shapes and JSON, a
CNN model file's round trip, and a short training run that must learn.

The NumPy reference pads x as Keras does (computed here from TensorFlow's documented rule) and
sums one einsum per kernel offset over strided views: nothing of the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import central_difference
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_digits import layers as L
from tinygrad_digits import modelfile, ops
from tinygrad_digits import optimizers as O
from tinygrad_digits import train as T
from tinygrad_digits.autodiff import grad
from tinygrad_digits.conv_layers import AvgPool2D, Conv2D, MaxPool2D, simple_convnet
from tinygrad_digits.model import predict_proba
from tinygrad_digits.network import Network

VJPS = settings(max_examples=12, deadline=None)
seeds = st.integers(0, 2**32 - 1)


def np_conv2d(x, W, b, padding="valid", stride=1):
    """float64 conv as Keras computes it: TF's 'same' pads (out - 1) * stride + k - in, the
    smaller half before."""
    x, W = x.astype(np.float64), W.astype(np.float64)
    n, h, w, _ = x.shape
    kh, kw, _, c_out = W.shape
    if padding == "same":
        oh, ow = math.ceil(h / stride), math.ceil(w / stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    y = np.zeros((n, oh, ow, c_out)) + b
    for di in range(kh):
        for dj in range(kw):
            window = x[:, di : di + stride * (oh - 1) + 1 : stride, dj : dj + stride * (ow - 1) + 1 : stride]
            y += np.einsum("nhwc,co->nhwo", window, W[di, dj])
    return y


def np_pool(x, size, reduce):
    n, h, w, c = x.shape
    oh, ow = h // size, w // size
    windows = x[:, : oh * size, : ow * size].reshape(n, oh, size, ow, size, c)
    return reduce(windows.astype(np.float64), axis=(2, 4))


def check_vjp(f, params: dict, seed: int) -> None:
    """The gradient of sum(f(params) * dy) by autodiff against float64 central differences."""
    dy = np.random.default_rng(seed).normal(size=np.shape(f(params)))
    analytic = grad(lambda p: (f(p) * dy).sum())(params)
    numeric = central_difference(lambda: np.sum(np.asarray(f(params), dtype=np.float64) * dy), params)
    for key, value in params.items():
        assert analytic[key].shape == value.shape and analytic[key].dtype == value.dtype, key
        np.testing.assert_allclose(analytic[key], numeric[key], rtol=1e-5, atol=1e-7, err_msg=key)


# ---------------------------------------------------------------- forwards against NumPy

CASES = [  # (x shape, kernel (kh, kw), c_out, padding, stride)
    ((1, 7, 5, 1), (3, 3), 4, "valid", 1),  # a batch of one, one channel, odd sides
    ((3, 6, 6, 2), (6, 6), 3, "valid", 1),  # a kernel as large as the input
    ((2, 7, 9, 3), (3, 2), 5, "valid", 2),  # stride 2, odd sides, a rectangular kernel
    ((2, 6, 7, 2), (2, 2), 3, "same", 1),  # 'same' with an even kernel: the extra pad after
    ((2, 7, 6, 1), (4, 3), 2, "same", 2),  # 'same', stride 2, even and odd kernel sides
    ((1, 5, 5, 3), (5, 5), 2, "same", 1),  # 'same' with a kernel as large as the input
    ((2, 33, 1, 2), (3, 1), 2, "same", 3),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, c_out, padding, stride", CASES)
def test_conv2d_forward_matches_numpy(shape, kernel, c_out, padding, stride, dtype, rng):
    x = rng.normal(size=shape).astype(dtype)
    W = rng.normal(size=(*kernel, shape[3], c_out)).astype(dtype)
    b = rng.normal(size=c_out).astype(dtype)
    y = ops.conv2d(x, W, b, padding=padding, stride=stride)
    expected = np_conv2d(x, W, b, padding, stride)
    assert y.dtype == dtype and y.shape == expected.shape
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    relu = ops.conv2d(x, W, b, padding, stride, activation="relu")  # the public signature's positional order
    np.testing.assert_allclose(relu, np.maximum(expected, 0), rtol=tol, atol=tol)


def test_conv2d_over_many_chunks_matches_numpy(rng):
    """A batch that spans many of the kernel's chunks of images (and both threads)."""
    x = rng.normal(size=(37, 13, 13, 4)).astype(np.float32)
    W = rng.normal(size=(3, 3, 4, 8)).astype(np.float32)
    b = rng.normal(size=8).astype(np.float32)
    np.testing.assert_allclose(ops.conv2d(x, W, b), np_conv2d(x, W, b), rtol=1e-4, atol=1e-4)


def np_conv2d_grads(x, W, dy, padding="valid", stride=1):
    """float64 (dx, dW, db) of sum(dy * conv(x, W) + b), by the same offsets as np_conv2d: each
    offset's window gets dy @ W[di, dj]^T and gives window^T @ dy to W[di, dj]."""
    x, W, dy = x.astype(np.float64), W.astype(np.float64), dy.astype(np.float64)
    n, h, w, _ = x.shape
    kh, kw = W.shape[:2]
    oh, ow = dy.shape[1:3]
    top = left = 0
    if padding == "same":
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
        top, left = ph // 2, pw // 2
        x = np.pad(x, ((0, 0), (top, ph - top), (left, pw - left), (0, 0)))
    dx, dW = np.zeros_like(x), np.zeros_like(W)
    for di in range(kh):
        for dj in range(kw):
            rows = slice(di, di + stride * (oh - 1) + 1, stride)
            cols = slice(dj, dj + stride * (ow - 1) + 1, stride)
            dW[di, dj] = np.einsum("nhwc,nhwo->co", x[:, rows, cols], dy)
            dx[:, rows, cols] += np.einsum("nhwo,co->nhwc", dy, W[di, dj])
    return dx[:, top : top + h, left : left + w], dW, dy.sum(axis=(0, 1, 2))


@pytest.mark.parametrize("padding, stride", [("valid", 1), ("same", 1), ("same", 2)])
def test_conv2d_gradients_over_threads_match_numpy(padding, stride, rng):
    """A batch large enough for the threaded kernels: its gradients against NumPy's."""
    x = rng.normal(size=(90, 14, 13, 3)).astype(np.float32)  # >= 4,096 output pixels
    W = rng.normal(size=(3, 3, 3, 6)).astype(np.float32)
    b = rng.normal(size=6).astype(np.float32)
    y = ops.conv2d(x, W, b, padding, stride)
    dy = rng.normal(size=y.shape).astype(np.float32)
    got = grad(lambda x, W, b: (ops.conv2d(x, W, b, padding, stride) * dy).sum(), argnums=(0, 1, 2))(x, W, b)
    for ours, expected in zip(got, np_conv2d_grads(x, W, dy, padding, stride)):
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-3)


def test_pool_gradients_over_threads_match_numpy(rng):
    """Pools on a batch large enough for the threaded kernels, odd sides: max's gradient lands
    on each window's maximum (ties are measure-zero here), avg's spreads evenly, edges get 0."""
    x = rng.normal(size=(700, 11, 9, 5)).astype(np.float32)
    dy = rng.normal(size=(700, 5, 4, 5)).astype(np.float32)
    windows = x[:, :10, :8].reshape(700, 5, 2, 4, 2, 5)
    hit = windows == windows.max(axis=(2, 4), keepdims=True)
    expected = np.zeros_like(x)
    expected[:, :10, :8] = (hit * dy[:, :, None, :, None]).reshape(700, 10, 8, 5)
    np.testing.assert_array_equal(grad(lambda x: (ops.max_pool2d(x) * dy).sum())(x), expected)
    expected = np.zeros_like(x)
    expected[:, :10, :8] = np.repeat(np.repeat(dy / 4, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(grad(lambda x: (ops.avg_pool2d(x) * dy).sum())(x), expected, rtol=1e-6)


def test_same_padding_puts_the_odd_pixel_after():
    """TensorFlow's rule by hand: width 4, kernel 2, stride 1 pads 0 before and 1 after, so
    output j sums inputs j and j + 1 and the last sees the padding."""
    x = np.arange(1.0, 5.0).reshape(1, 1, 4, 1)
    W = np.ones((1, 2, 1, 1))
    y = ops.conv2d(x, W, np.zeros(1), padding="same")
    np.testing.assert_array_equal(y.ravel(), [3.0, 5.0, 7.0, 4.0])
    y = ops.conv2d(np.arange(1.0, 6.0).reshape(1, 1, 5, 1), np.ones((1, 4, 1, 1)), np.zeros(1), "same", 2)
    np.testing.assert_array_equal(y.ravel(), [1 + 2 + 3, 2 + 3 + 4 + 5, 4 + 5])  # pad 1 before, 2 after


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, size", [((1, 4, 4, 1), 2), ((3, 7, 5, 2), 2), ((2, 9, 8, 3), 3), ((1, 5, 5, 1), 5)]
)
def test_pools_match_numpy(shape, size, dtype, rng):
    x = rng.normal(size=shape).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for op, reduce in ((ops.max_pool2d, np.max), (ops.avg_pool2d, np.mean)):
        y = op(x, size=size)
        assert y.dtype == dtype and y.shape == (shape[0], shape[1] // size, shape[2] // size, shape[3])
        np.testing.assert_allclose(y, np_pool(x, size, reduce), rtol=tol, atol=tol)


def test_max_pool_gradient_goes_to_the_first_maximum():
    x = np.array([[3.0, 3.0], [3.0, 1.0]]).reshape(1, 2, 2, 1)
    g = grad(lambda x: ops.max_pool2d(x).sum())(x)
    np.testing.assert_array_equal(g.ravel(), [1.0, 0.0, 0.0, 0.0])
    x = np.array([[0.0, 2.0, 5.0], [2.0, 1.0, 5.0], [9.0, 9.0, 9.0]]).reshape(1, 3, 3, 1)  # odd: edge dropped
    g = grad(lambda x: ops.max_pool2d(x).sum())(x)
    np.testing.assert_array_equal(g.ravel(), [0, 1, 0, 0, 0, 0, 0, 0, 0])


def test_flatten_keeps_images_as_rows(rng):
    x = rng.normal(size=(3, 4, 5, 2))
    np.testing.assert_array_equal(ops.flatten(x), x.reshape(3, 40))
    g = grad(lambda x: (ops.flatten(x) * np.arange(40.0)).sum())(x)
    np.testing.assert_array_equal(g, np.broadcast_to(np.arange(40.0).reshape(4, 5, 2), x.shape))


# ---------------------------------------------------------------- VJPs


@VJPS
@given(
    n=st.integers(1, 2),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    kh=st.integers(1, 3),
    kw=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    stride=st.integers(1, 2),
    act=st.sampled_from([None, "relu", "tanh"]),
    seed=seeds,
)
def test_conv2d_vjp(n, h, w, c_in, c_out, kh, kw, padding, stride, act, seed):
    if padding == "valid":
        kh, kw = min(kh, h), min(kw, w)
    rng = np.random.default_rng(seed)
    while True:  # relu's pre-activations away from the kink
        p = {
            "x": rng.normal(size=(n, h, w, c_in)),
            "W": rng.normal(size=(kh, kw, c_in, c_out)),
            "b": rng.normal(size=c_out),
        }
        if act != "relu" or np.abs(np_conv2d(p["x"], p["W"], p["b"], padding, stride)).min() > 0.05:
            break
    check_vjp(lambda q: ops.conv2d(q["x"], q["W"], q["b"], padding, stride, activation=act), p, seed)


@VJPS
@given(
    n=st.integers(1, 2),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    c=st.integers(1, 3),
    size=st.integers(1, 3),
    seed=seeds,
)
def test_pool_vjps(n, h, w, c, size, seed):
    size = min(size, h, w)
    rng = np.random.default_rng(seed)
    x = rng.permutation(n * h * w * c).reshape(n, h, w, c) * 0.1  # no ties: the maximum is unique
    check_vjp(lambda q: ops.max_pool2d(q["x"], size), {"x": x}, seed)
    check_vjp(lambda q: ops.avg_pool2d(q["x"], size), {"x": rng.normal(size=(n, h, w, c))}, seed)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: ops.conv2d(np.zeros((2, 5, 5)), np.zeros((3, 3, 1, 2)), np.zeros(2)),
            r"conv2d: .*\(2, 5, 5\)",
        ),
        (
            lambda: ops.conv2d(np.zeros((2, 5, 5, 3)), np.zeros((3, 3, 1, 2)), np.zeros(2)),
            r"conv2d: .*\(3, 3, 1, 2\)",
        ),
        (
            lambda: ops.conv2d(np.zeros((2, 5, 5, 1)), np.zeros((3, 3, 1, 2)), np.zeros(3)),
            r"conv2d: .*b \(3,\)",
        ),
        (lambda: ops.conv2d(np.zeros((1, 2, 5, 1)), np.zeros((3, 3, 1, 2)), np.zeros(2)), "does not fit 2x5"),
        (lambda: ops.conv2d(np.zeros((1, 5, 5, 1)), np.zeros((3, 3, 1, 2)), np.zeros(2), "full"), "padding"),
        (lambda: ops.conv2d(np.zeros((1, 5, 5, 1)), np.zeros((3, 3, 1, 2)), np.zeros(2), stride=0), "stride"),
        (lambda: ops.max_pool2d(np.zeros((1, 1, 5, 1))), r"max_pool2d: .*\(1, 1, 5, 1\)"),
        (lambda: ops.avg_pool2d(np.zeros((4, 4))), r"avg_pool2d: .*\(4, 4\)"),
        (lambda: ops.max_pool2d(np.zeros((1, 4, 4, 1)), size=0), "size"),
    ],
)
def test_shape_errors_name_the_op_and_the_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- layers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_init_keras_limits_shapes_and_output_shape(dtype):
    for act, limit in [
        ("relu", math.sqrt(6 / (9 * 8))),
        ("tanh", math.sqrt(6 / (9 * 8 + 9 * 40))),
        (None, math.sqrt(6 / (9 * 8 + 9 * 40))),
    ]:
        p = Conv2D(40, 3, activation=act).init(np.random.default_rng(0), (10, 12, 8), dtype)
        assert list(p) == ["W", "b"] and p["W"].shape == (3, 3, 8, 40) and p["b"].shape == (40,)
        assert p["W"].dtype == p["b"].dtype == dtype and np.all(p["b"] == 0)
        assert 0.97 * limit < np.abs(p["W"]).max() <= limit, act
    assert Conv2D(4, 3).output_shape((10, 12, 8)) == (8, 10, 4)
    assert Conv2D(4, 4, padding="same").output_shape((7, 12, 8)) == (7, 12, 4)
    assert MaxPool2D(2).output_shape((13, 13, 32)) == AvgPool2D().output_shape((13, 12, 32)) == (6, 6, 32)
    with pytest.raises(ValueError, match="Conv2D: expected inputs of shape \\(height, width, channels\\)"):
        Conv2D(4).init(np.random.default_rng(0), (784,))
    with pytest.raises(ValueError, match="does not fit 2x9"):
        Conv2D(4, 3).output_shape((2, 9, 1))
    for bad in (
        lambda: Conv2D(0),
        lambda: Conv2D(4, 0),
        lambda: Conv2D(4, padding="full"),
        lambda: MaxPool2D(0),
    ):
        with pytest.raises(ValueError):
            bad()


def test_simple_convnet_names_shapes_and_json():
    model = simple_convnet()
    assert model.names == ["conv2d0", "maxpool2d0", "conv2d1", "maxpool2d1", "flatten0", "dropout0", "dense0"]
    shapes = L.param_shapes(model, (28, 28, 1))
    assert shapes["conv2d1.W"] == (3, 3, 32, 64) and shapes["dense0.W"] == (1600, 10)
    assert sum(int(np.prod(s)) for s in shapes.values()) == 34_826  # Keras's summary of the example
    data = json.loads(json.dumps(model.to_json()))
    assert L.from_json(data) == model and repr(L.from_json(data)) == repr(model)
    assert L.from_json(data) != simple_convnet(0.25)
    for layer in (Conv2D(8, 5, "same", "tanh"), AvgPool2D(3)):
        assert L.from_json(layer.to_json()) == layer


def test_a_cnn_model_file_loads_and_predicts_the_same(tmp_path, rng):
    model = L.Sequential(
        Conv2D(4, 3, activation="relu"), MaxPool2D(2), AvgPool2D(2), L.Flatten(), L.Dense(10)
    )
    network = Network(model, (28, 28, 1), 0.13, 0.31)
    params = model.init(rng, (28, 28, 1))
    images = rng.random((5, 784), dtype=np.float32)
    path = modelfile.save_model(tmp_path / "cnn.npz", network, params)
    loaded, loaded_params, _ = modelfile.load_model(path)
    assert loaded.to_json() == network.to_json() and loaded.inputs == 784
    assert loaded.describe() == "28x28x1-conv4relu-maxpool2-avgpool2-dense10"
    probs = predict_proba(loaded, loaded_params, images)
    np.testing.assert_array_equal(probs, predict_proba(network, params, images))
    x = ((images - 0.13) / 0.31).reshape(5, 28, 28, 1)
    logits = np_pool(
        np_pool(np.maximum(np_conv2d(x, params["conv2d0.W"], params["conv2d0.b"]), 0), 2, np.max), 2, np.mean
    )
    logits = logits.reshape(5, -1) @ params["dense0.W"] + params["dense0.b"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_a_small_cnn_learns_mnist(mnist_splits):
    """conv 16 - pool - conv 32 - pool - dense 10, 282 steps of 32 on 3,000 images, beats 92% on
    1,000 others (0.939 when written; the same run of a linear model reaches 0.88)."""
    model = L.Sequential(
        Conv2D(16, 3, activation="relu"),
        MaxPool2D(2),
        Conv2D(32, 3, activation="relu"),
        MaxPool2D(2),
        L.Flatten(),
        L.Dense(10),
    )
    s = mnist_splits
    x = ((s.x_train[:3000] - 0.13) / 0.31).reshape(-1, 28, 28, 1)
    xv = ((s.x_val[:1000] - 0.13) / 0.31).reshape(-1, 28, 28, 1)
    params = model.init(np.random.default_rng(0), (28, 28, 1))
    config = T.TrainConfig(epochs=3, batch_size=32, seed=0)  # 94 steps an epoch
    adam = O.OptimizerConfig("adam", learning_rate=0.002, schedule="constant")
    result = T.train(model, params, x, s.y_train[:3000], xv, s.y_val[:1000], config, adam)
    assert result.stopped is None
    assert result.history[-1]["val_accuracy"] > 0.92


def test_the_predictor_of_a_convnet_gives_its_probabilities(rng):
    """model.Predictor for a ModelSpec convnet, against NumPy, for one image, a few and more
    than its rows."""
    from tinygrad_digits import model as M

    spec = M.ModelSpec(hidden=(8,), activations=("relu",), conv=(4,), input_mean=0.13, input_std=0.31)
    params = M.init_params(spec, rng)
    params["conv2d0.b"][:] = rng.normal(0, 0.3, 4)
    images = rng.random((20, 784), dtype=np.float32)
    x = ((images - 0.13) / 0.31).reshape(20, 28, 28, 1)
    pooled = np_pool(np.maximum(np_conv2d(x, params["conv2d0.W"], params["conv2d0.b"]), 0), 2, np.max)
    hidden = np.maximum(pooled.reshape(20, -1) @ params["dense0.W"] + params["dense0.b"], 0)
    logits = hidden @ params["dense1.W"] + params["dense1.b"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert len(set(np.argmax(expected, axis=1).tolist())) > 1
    predictor = M.Predictor(spec, params, rows=8)
    one = predictor(images[0])
    assert one.shape == (10,) and one.dtype == np.float32
    np.testing.assert_allclose(one, expected[0], rtol=1e-4, atol=1e-6)
    for batch in (slice(0, 3), slice(0, 8), slice(0, 20)):  # within rows, exactly its rows, more
        np.testing.assert_allclose(predictor(images[batch]), expected[batch], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("conv,hidden", [((4,), (8,)), ((4, 6), ())])
def test_the_predictors_kernel_pass_gives_predict_proba_to_the_bit(rng, conv, hidden):
    from tinygrad_digits import model as M
    from tinygrad_digits.conv_inference import ConvnetForward

    spec = M.ModelSpec(hidden=hidden, activations=("relu",) * len(hidden), conv=conv, dropout=0.3)
    params = M.init_params(spec, rng)
    predictor = M.Predictor(spec, params, rows=8)
    assert predictor.convnet is not None
    images = rng.random((8, 784), dtype=np.float32)
    for n in (1, 3, 8):
        np.testing.assert_array_equal(predictor(images[:n]), predict_proba(spec, params, images[:n]))
    residual = L.Sequential(Conv2D(2, 3), L.Flatten(), L.Residual(L.Dense(1352)), L.Dense(10))
    assert ConvnetForward.of(residual, residual.init(rng, (28, 28, 1)), (28, 28, 1), 8) is None
