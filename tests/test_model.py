"""Tests for tinygrad_digits.model: spec validation, initialization, whole-network gradients,
prediction.

Gradients of whole networks (1-3 hidden layers, every activation, mixed activations) by autodiff
are checked against float64 central differences of a NumPy loss (conftest's numpy_mlp_logits and
numpy_cross_entropy) on every parameter entry. Hidden pre-activations are kept at least 1e-3
away from ReLU's kink. References are NumPy written here, never the ops under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import NUMPY_ACTIVATIONS, central_difference, numpy_cross_entropy, numpy_mlp_logits
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_digits import model as M
from tinygrad_digits import ops
from tinygrad_digits.autodiff import value_and_grad

ACTS = list(ops.ACTIVATIONS)


# ---------------------------------------------------------------- gradient checks


def hidden_preactivations(spec: M.ModelSpec, params: dict, x: np.ndarray) -> list[np.ndarray]:
    """Each hidden layer's x @ W + b, by a plain NumPy forward pass."""
    out, h = [], x
    for name, _, _, act in spec.layers()[:-1]:
        z = h @ params[name + ".W"] + params[name + ".b"]
        out.append(z)
        h = NUMPY_ACTIVATIONS[act](z, spec.alpha)
    return out


def network_case(spec: M.ModelSpec, rng: np.random.Generator, n: int):
    """float64 params with random biases, inputs and labels; no hidden z within 1e-3 of 0."""
    for _ in range(200):
        params = M.init_params(spec, rng, dtype=np.float64)
        for key in params:
            if key.endswith(".b"):
                params[key] = rng.normal(0, 0.3, params[key].shape)
        x = rng.normal(size=(n, spec.inputs))
        zs = hidden_preactivations(spec, params, x)
        if all(np.abs(z).min() >= 1e-3 for z in zs):
            return params, x, rng.integers(0, spec.outputs, n)
    raise AssertionError("could not draw a case away from the ReLU kink")  # pragma: no cover


def model_loss(spec: M.ModelSpec):
    return lambda params, x, labels: ops.softmax_cross_entropy(M.forward(spec, params, x), labels)


def check_value_and_grad(spec: M.ModelSpec, seed: int, n: int = 4) -> None:
    rng = np.random.default_rng(seed)
    params, x, labels = network_case(spec, rng, n)
    loss, grads = value_and_grad(model_loss(spec))(params, x, labels)

    def reference():
        return numpy_cross_entropy(numpy_mlp_logits(params, x, spec.activations, spec.alpha), labels)

    assert loss == pytest.approx(reference(), rel=1e-10)
    assert list(grads) == list(params)
    numeric = central_difference(reference, params)
    for key, p in params.items():
        assert grads[key].shape == p.shape and grads[key].dtype == np.float64
        np.testing.assert_allclose(grads[key], numeric[key], rtol=1e-5, atol=1e-8, err_msg=key)


GRADS = settings(max_examples=6, deadline=None)
sizes = st.integers(1, 6)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("depth", [1, 2, 3])
@GRADS
@given(data=st.data())
def test_value_and_grad_matches_central_differences(depth, act, data):
    spec = M.ModelSpec(
        hidden=tuple(data.draw(st.lists(sizes, min_size=depth, max_size=depth), label="hidden")),
        activations=(act,),
        alpha=data.draw(st.sampled_from([0.0, 0.1, 0.3]), label="alpha"),
        inputs=data.draw(st.integers(1, 6), label="inputs"),
        outputs=data.draw(st.integers(2, 6), label="outputs"),
    )
    check_value_and_grad(spec, seed=data.draw(st.integers(0, 2**32 - 1), label="seed"),
                         n=data.draw(st.integers(1, 6), label="n"))


@settings(max_examples=15, deadline=None)
@given(
    layers=st.lists(st.tuples(sizes, st.sampled_from(ACTS)), min_size=1, max_size=3),
    inputs=st.integers(1, 6),
    outputs=st.integers(2, 6),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_value_and_grad_with_mixed_activations(layers, inputs, outputs, n, seed):
    spec = M.ModelSpec(
        hidden=tuple(h for h, _ in layers),
        activations=tuple(a for _, a in layers),
        alpha=0.2,
        inputs=inputs,
        outputs=outputs,
    )
    check_value_and_grad(spec, seed, n)


def test_value_and_grad_in_float32_agrees_with_float64(rng):
    spec = M.ModelSpec(hidden=(16, 8), activations=("tanh", "sigmoid"), inputs=20, outputs=5)
    params = M.init_params(spec, rng, dtype=np.float64)
    x = rng.normal(size=(9, 20))
    labels = rng.integers(0, 5, 9)
    loss64, grads64 = value_and_grad(model_loss(spec))(params, x, labels)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss32, grads32 = value_and_grad(model_loss(spec))(params32, x.astype(np.float32), labels)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for key in params:
        assert grads32[key].dtype == np.float32
        np.testing.assert_allclose(grads32[key], grads64[key], rtol=1e-3, atol=1e-5)


def test_value_and_grad_rejects_bad_inputs(rng):
    spec = M.ModelSpec(hidden=(4,), inputs=6, outputs=3)
    params = M.init_params(spec, rng, dtype=np.float64)
    loss = value_and_grad(model_loss(spec))
    with pytest.raises(ValueError, match=r"dense: .*got x \(2, 5\), W \(6, 4\)"):
        loss(params, np.zeros((2, 5)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        loss(params, np.zeros((2, 6)), np.array([0, 3]))
    del params["dense1.b"]
    with pytest.raises(ValueError, match=r"missing \['dense1.b'\]"):
        M.check_params(spec, params)


# ---------------------------------------------------------------- spec


@pytest.mark.parametrize("hidden", [(0,), (4, -1), (8, 0, 8)])
def test_spec_rejects_nonpositive_hidden_sizes(hidden):
    with pytest.raises(ValueError, match="hidden layer sizes must be positive"):
        M.ModelSpec(hidden=hidden, activations=("relu",))


def test_spec_rejects_unknown_activation_by_name():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        M.ModelSpec(hidden=(4, 4), activations=("relu", "swish"))


@pytest.mark.parametrize("hidden, activations", [((4, 4, 4), ("relu", "tanh")), ((4,), ("relu", "tanh"))])
def test_spec_rejects_wrong_number_of_activations(hidden, activations):
    with pytest.raises(
        ValueError, match=f"got {len(activations)} activations for {len(hidden)} hidden layers"
    ):
        M.ModelSpec(hidden=hidden, activations=activations)


@pytest.mark.parametrize("alpha", [-0.1, -1e-9, math.nan, math.inf])
def test_spec_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        M.ModelSpec(hidden=(4,), activations=("leaky_relu",), alpha=alpha)


@pytest.mark.parametrize("std", [0.0, -1.0, 1e-300, math.nan, math.inf])
def test_spec_rejects_input_std_that_is_not_a_positive_finite_number(std):
    with pytest.raises(ValueError, match="input_std must be"):
        M.ModelSpec(input_std=std)


@pytest.mark.parametrize("mean", [math.nan, math.inf, "0.1", True])
def test_spec_rejects_an_input_mean_that_is_not_a_finite_number(mean):
    with pytest.raises(ValueError, match="input_mean must be a finite number"):
        M.ModelSpec(input_mean=mean)


def test_one_activation_is_broadcast_to_every_hidden_layer():
    spec = M.ModelSpec(hidden=(32, 16, 8), activations=("tanh",))
    assert spec.activations == ("tanh", "tanh", "tanh")
    assert spec.layers() == [
        ("dense0", 784, 32, "tanh"),
        ("dense1", 32, 16, "tanh"),
        ("dense2", 16, 8, "tanh"),
        ("dense3", 8, 10, "identity"),
    ]
    assert spec.describe() == "784-32tanh-16tanh-8tanh-10"


def test_spec_defaults_and_counts():
    spec = M.ModelSpec()
    assert spec.describe() == "784-128relu-10"
    assert spec.n_params() == 784 * 128 + 128 + 128 * 10 + 10
    assert sum(p.size for p in M.init_params(spec, np.random.default_rng(0)).values()) == spec.n_params()


def test_spec_json_round_trip():
    spec = M.ModelSpec(
        hidden=[5, 6], activations=["relu", "sigmoid"], alpha=0.3, input_mean=0.1, input_std=0.3
    )
    assert spec.hidden == (5, 6) and spec.activations == ("relu", "sigmoid")
    assert M.ModelSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="unknown model spec fields: colour"):
        M.ModelSpec.from_json({**spec.to_json(), "colour": "red"})


# ---------------------------------------------------------------- initialization


def test_auto_init_uses_he_for_relu_family_and_glorot_otherwise():
    spec = M.ModelSpec(hidden=(300, 200, 100), activations=("relu", "tanh", "leaky_relu"))
    params = M.init_params(spec, np.random.default_rng(0))
    limits = {
        "dense0": math.sqrt(6 / 784),  # he (relu)
        "dense1": math.sqrt(6 / (300 + 200)),  # glorot (tanh)
        "dense2": math.sqrt(6 / 200),  # he (leaky_relu)
        "dense3": math.sqrt(6 / (100 + 10)),  # glorot (output)
    }
    for name, limit in limits.items():
        w = params[name + ".W"]
        assert np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.97 * limit  # the whole range is used
        assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.05)  # uniform's std
        assert abs(w.mean()) < 0.05 * limit


@pytest.mark.parametrize("init, family", [("he", "he"), ("glorot", "glorot")])
def test_explicit_uniform_init_applies_to_every_layer(init, family):
    spec = M.ModelSpec(hidden=(200,), activations=("sigmoid",))
    params = M.init_params(spec, np.random.default_rng(1), init=init)
    for name, fan_in, fan_out, _ in spec.layers():
        limit = math.sqrt(6 / fan_in) if family == "he" else math.sqrt(6 / (fan_in + fan_out))
        w = params[name + ".W"]
        assert limit * 0.97 < np.abs(w).max() <= limit


def test_normal_init_has_unit_std():
    spec = M.ModelSpec(hidden=(128,))
    params = M.init_params(spec, np.random.default_rng(2), init="normal")
    w = params["dense0.W"]
    assert w.std() == pytest.approx(1.0, abs=0.02)
    assert abs(w.mean()) < 0.02
    assert params["dense1.W"].std() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("init", M.INITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_keys_shapes_dtypes_zero_biases(init, dtype):
    spec = M.ModelSpec(hidden=(7, 3), activations=("relu", "sigmoid"), inputs=11, outputs=4)
    params = M.init_params(spec, np.random.default_rng(3), init=init, dtype=dtype)
    assert list(params) == ["dense0.W", "dense0.b", "dense1.W", "dense1.b", "dense2.W", "dense2.b"]
    shapes = {"dense0.W": (11, 7), "dense0.b": (7,), "dense1.W": (7, 3), "dense1.b": (3,), "dense2.W": (3, 4)}
    for key, shape in shapes.items():
        assert params[key].shape == shape
    for key, p in params.items():
        assert p.dtype == dtype and p.flags.c_contiguous
        if key.endswith(".b"):
            assert np.all(p == 0)
        else:
            assert np.all(np.isfinite(p)) and np.any(p != 0)
    M.check_params(spec, params)


@pytest.mark.parametrize("init", M.INITS)
def test_init_is_determined_by_the_seed(init):
    spec = M.ModelSpec(hidden=(6, 5), inputs=9, outputs=3)
    a = M.init_params(spec, np.random.default_rng(42), init=init)
    b = M.init_params(spec, np.random.default_rng(42), init=init)
    c = M.init_params(spec, np.random.default_rng(43), init=init)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["dense0.W"], c["dense0.W"])


def test_unknown_init_is_rejected():
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        M.init_params(M.ModelSpec(), np.random.default_rng(0), init="xavier")


# ---------------------------------------------------------------- check_params


def test_check_params_lists_missing_and_extra_keys():
    spec = M.ModelSpec(hidden=(4,), inputs=5, outputs=3)
    params = M.init_params(spec, np.random.default_rng(0))
    params.pop("dense0.b")
    params.pop("dense1.W")
    params["dense2.W"] = np.zeros((3, 3))
    params["extra"] = np.zeros(1)
    with pytest.raises(ValueError) as err:
        M.check_params(spec, params)
    message = str(err.value)
    assert "missing ['dense0.b', 'dense1.W']" in message
    assert "extra ['dense2.W', 'extra']" in message


def test_check_params_names_a_wrong_shape():
    spec = M.ModelSpec(hidden=(4,), inputs=5, outputs=3)
    params = M.init_params(spec, np.random.default_rng(0))
    params["dense1.W"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"dense1.W has shape \(3, 4\), expected \(4, 3\)"):
        M.check_params(spec, params)


# ---------------------------------------------------------------- prediction


@pytest.fixture
def trained_like():
    """A default-sized net with random (non-zero) biases and a few raw [0, 1] images."""
    rng = np.random.default_rng(5)
    spec = M.ModelSpec(hidden=(32,), activations=("relu",), input_mean=0.13, input_std=0.31)
    params = M.init_params(spec, rng)
    params["dense1.b"][:] = rng.normal(size=10)
    images = rng.uniform(0, 1, (11, 784)).astype(np.float32)
    return spec, params, images


def test_predict_proba_rows_are_distributions(trained_like):
    spec, params, images = trained_like
    probs = M.predict_proba(spec, params, images)
    assert probs.shape == (11, 10) and probs.dtype == np.float32
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def numpy_probs(spec: M.ModelSpec, params: dict, images: np.ndarray) -> np.ndarray:
    """Softmax of the NumPy MLP's logits of raw [0, 1] images, normalized here, in float64."""
    x = (np.asarray(images, dtype=np.float64) - spec.input_mean) / spec.input_std
    logits = numpy_mlp_logits(params, x, spec.activations, spec.alpha)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_predict_proba_normalizes_raw_images(trained_like):
    spec, params, images = trained_like
    expected = numpy_probs(spec, params, images)
    np.testing.assert_allclose(M.predict_proba(spec, params, images), expected, rtol=1e-4, atol=1e-6)


def test_predict_proba_of_one_vector_is_one_row(trained_like):
    spec, params, images = trained_like
    batch = M.predict_proba(spec, params, images)
    one = M.predict_proba(spec, params, images[3])
    assert one.shape == (10,)
    np.testing.assert_allclose(one, batch[3], rtol=1e-5, atol=1e-7)  # BLAS gemv vs gemm
    assert int(M.predict(spec, params, images[3])) == int(np.argmax(batch[3]))


def test_predict_proba_in_chunks_equals_one_batch(trained_like):
    spec, params, images = trained_like
    chunked = M.predict_proba(spec, params, images, batch_size=4)
    assert chunked.shape == (11, 10)
    np.testing.assert_allclose(chunked, M.predict_proba(spec, params, images), rtol=1e-5, atol=1e-7)


def test_predict_is_argmax(trained_like):
    spec, params, images = trained_like
    labels = M.predict(spec, params, images)
    assert labels.shape == (11,) and np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(labels, np.argmax(M.predict_proba(spec, params, images), axis=1))
    assert len(set(labels.tolist())) > 1  # not a constant predictor: the check has teeth


@pytest.mark.parametrize("shape", [(3, 783), (783,), (2, 28, 28)])
def test_predict_rejects_wrong_image_shapes(trained_like, shape):
    spec, params, _ = trained_like
    with pytest.raises(ValueError, match=r"expected images of shape \(n, 784\)"):
        M.predict_proba(spec, params, np.zeros(shape))


@pytest.mark.parametrize("hidden,activations", [((32,), ("relu",)), ((24, 16), ("tanh", "leaky_relu")),
                                                ((8,), ("sigmoid",))])
def test_predictor_gives_the_networks_probabilities(rng, hidden, activations):
    """model.Predictor (one kernel, blank pixels skipped, no BLAS) against a NumPy forward pass,
    for one image, a few, exactly its rows, and more than its rows (handed to predict_proba)."""
    spec = M.ModelSpec(hidden=hidden, activations=activations, alpha=0.1, input_mean=0.13, input_std=0.31)
    params = M.init_params(spec, rng)
    for key in params:
        if key.endswith(".b"):
            params[key][:] = rng.normal(0, 0.3, params[key].shape)  # biases count too
    images = rng.random((40, 784)).astype(np.float32)
    images[rng.random(images.shape) < 0.8] = 0.0  # blank pixels, as in a drawing
    images[5] = 0.0  # a blank image: every pixel is background
    predictor = M.Predictor(spec, params, rows=16)
    expected = numpy_probs(spec, params, images)
    assert len(set(np.argmax(expected, axis=1).tolist())) > 1  # not a constant predictor
    one = predictor(images[0])
    assert one.shape == (10,) and one.dtype == np.float32
    np.testing.assert_allclose(one, expected[0], rtol=1e-4, atol=1e-6)
    for batch in (images[:1], images[:3], images[3:10], images[:16]):  # within rows
        probs = predictor(batch)
        assert probs.shape == (len(batch), 10) and probs.dtype == np.float32
        np.testing.assert_allclose(probs, numpy_probs(spec, params, batch), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(predictor(images), expected, rtol=1e-4, atol=1e-6)  # more than rows
    np.testing.assert_allclose(predictor(images[:16:2]), expected[:16:2], rtol=1e-4, atol=1e-6)  # strided


# ---------------------------------------------------------------- convnets (ModelSpec.conv)


def numpy_convnet_logits(spec: M.ModelSpec, params: dict, x: np.ndarray) -> np.ndarray:
    """The spec's convnet by plain NumPy loops: per block its valid 3x3 convolutions with ReLU
    and a 2x2 max-pool (the edge past the last whole window dropped), then flatten (row-major
    over height, width, channels, as Keras) and the dense ReLU layers; with batch_norm, (h -
    mean) / sqrt(var + 1e-3) * gamma + beta after each convolution (after the pool, for a block's
    last) and before each hidden activation; x (n, side * side)."""
    side = math.isqrt(spec.inputs)
    h = x.reshape(len(x), side, side, 1)
    convs, norms = iter(range(99)), iter(range(99))

    def norm(h):
        if not spec.batch_norm:
            return h
        i = next(norms)
        p = {k: params[f"batchnorm{i}.{k}"] for k in ("gamma", "beta", "mean", "var")}
        return (h - p["mean"]) / np.sqrt(p["var"] + 1e-3) * p["gamma"] + p["beta"]

    for block in spec.conv:
        depth = len(block) if isinstance(block, tuple) else 1
        for d in range(depth):
            i = next(convs)
            w, b = params[f"conv2d{i}.W"], params[f"conv2d{i}.b"]
            oh, ow = h.shape[1] - 2, h.shape[2] - 2
            z = np.zeros((len(h), oh, ow, w.shape[3])) + b
            for dy in range(3):
                for dx in range(3):
                    z += np.einsum("nhwc,cf->nhwf", h[:, dy : dy + oh, dx : dx + ow, :], w[dy, dx])
            h = np.maximum(z, 0)
            if d < depth - 1:
                h = norm(h)
        ph, pw = h.shape[1] // 2, h.shape[2] // 2
        h = norm(h[:, : 2 * ph, : 2 * pw].reshape(len(h), ph, 2, pw, 2, -1).max(axis=(2, 4)))
    h = h.reshape(len(h), -1)
    for name, _, _, act in spec.layers():
        h = h @ params[name + ".W"] + params[name + ".b"]
        if act == "relu":
            h = np.maximum(norm(h), 0)
    return h


@settings(max_examples=20, deadline=None)
@given(side=st.integers(9, 16),
       blocks=st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=2), min_size=1, max_size=2),
       batch_norm=st.booleans(), hidden=st.lists(st.integers(1, 6), max_size=2), n=st.sampled_from([2, 7]),
       seed=st.integers(0, 99))
def test_a_spec_of_conv_blocks_and_batch_norm_computes_its_documented_layers(
        side, blocks, batch_norm, hidden, n, seed):
    conv = tuple(tuple(b) if len(b) > 1 else b[0] for b in blocks)
    try:
        spec = M.ModelSpec(hidden=tuple(hidden), activations=("relu",), conv=conv, batch_norm=batch_norm,
                           inputs=side * side)
    except ValueError as e:  # more than fit: refused, naming conv
        assert str(e).startswith(f"conv: {side}x{side} inputs take at most")
        return
    rng = np.random.default_rng(seed)
    params = M.init_params(spec, rng, dtype=np.float64)
    for key in params:
        low = 0.05 if key.endswith(".var") else -0.1  # a variance stays positive
        params[key] = params[key] + rng.uniform(low, 0.1, params[key].shape)
    x = rng.standard_normal((n, side * side))
    assert spec.n_params() == sum(v.size for v in params.values())
    assert M.ModelSpec.from_json(spec.to_json()) == spec
    np.testing.assert_allclose(M.forward(spec, params, M.normalize(spec, x, np.float64)),
                               numpy_convnet_logits(spec, params, x), rtol=1e-9, atol=1e-10)
    predictor = M.Predictor(spec, params)  # kernel after kernel: the same bits
    np.testing.assert_array_equal(predictor(x[:2]), M.predict_proba(spec, params, x[:2]))


def test_a_spec_of_conv_blocks_and_batch_norm_describes_itself():
    spec = M.ModelSpec(hidden=(128,), conv=(32, [64, 64]), batch_norm=True, dropout=0.3)
    assert spec.conv == (32, (64, 64))
    assert [type(layer).__name__ for layer in spec.network().layers] == [
        "Conv2D", "MaxPool2D", "BatchNorm", "Conv2D", "BatchNorm", "Conv2D", "MaxPool2D", "BatchNorm",
        "Flatten", "Dropout", "Dense", "BatchNorm", "Activation", "Dropout", "Dense"]
    assert spec.describe() == "28x28-conv32-conv64+64-128relu-10-bn"
    assert spec.features() == 4 * 4 * 64
    assert spec.to_json()["conv"] == [32, [64, 64]] and spec.to_json()["batch_norm"] is True
    assert "batch_norm" not in M.ModelSpec(conv=(32,)).to_json()
    for bad in ({"conv": [32, []]}, {"conv": [32, [64, "8"]]}, {"batch_norm": "yes"}):
        with pytest.raises(ValueError, match="wrong type|at least one convolution"):
            M.ModelSpec.from_json({**spec.to_json(), **bad})
    with pytest.raises(ValueError, match="batch_norm must be true or false"):
        M.ModelSpec(batch_norm=1)


@settings(max_examples=20, deadline=None)
@given(side=st.integers(4, 16), blocks=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       hidden=st.lists(st.integers(1, 6), max_size=2), n=st.sampled_from([1, 2, 7]), seed=st.integers(0, 99))
def test_a_convnet_spec_computes_its_documented_layers(side, blocks, hidden, n, seed):
    sides = [side]
    while sides[-1] - 2 >= 2:
        sides.append((sides[-1] - 2) // 2)
    if len(blocks) >= len(sides):  # more blocks than fit: refused, naming conv
        with pytest.raises(ValueError, match=f"conv: {side}x{side} inputs take at most {len(sides) - 1} blocks"):
            M.ModelSpec(hidden=tuple(hidden), conv=tuple(blocks), inputs=side * side)
        return
    rng = np.random.default_rng(seed)
    spec = M.ModelSpec(hidden=tuple(hidden), conv=tuple(blocks), inputs=side * side)
    params = M.init_params(spec, rng, dtype=np.float64)
    for key in params:
        params[key] = params[key] + rng.uniform(-0.1, 0.1, params[key].shape)  # biases off 0 too
    x = rng.standard_normal((n, side * side))
    assert spec.input_shape == (side, side, 1)
    assert spec.features() == sides[len(blocks)] ** 2 * blocks[-1]
    assert spec.n_params() == sum(v.size for v in params.values())
    np.testing.assert_allclose(M.forward(spec, params, M.normalize(spec, x, np.float64)),
                               numpy_convnet_logits(spec, params, x), rtol=1e-10, atol=1e-10)
    assert M.normalize(spec, x).shape == (n, side, side, 1)


def test_a_convnet_spec_layers_names_and_dropout():
    spec = M.ModelSpec(hidden=(128,), conv=(32, 64), dropout=0.25)
    assert [type(layer).__name__ for layer in spec.network().layers] == [
        "Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D", "Flatten", "Dropout", "Dense", "Dropout", "Dense"]
    assert spec.describe() == "28x28-conv32-conv64-128relu-10"
    assert spec.layers() == [("dense0", 1600, 128, "relu"), ("dense1", 128, 10, "identity")]
    assert sorted(M.init_params(spec, np.random.default_rng(0))) == sorted(
        f"{name}.{p}" for name in ("conv2d0", "conv2d1", "dense0", "dense1") for p in "Wb")
    keras_example = M.ModelSpec(hidden=(), conv=(32, 64), dropout=0.5)  # Keras's Simple MNIST convnet
    assert keras_example.n_params() == 34_826 and keras_example.describe() == "28x28-conv32-conv64-10"
    assert M.ModelSpec(hidden=(128,)).network() == M.ModelSpec(hidden=(128,), conv=()).network()  # MLPs unchanged


def test_no_hidden_layer_is_softmax_regression():
    spec = M.ModelSpec(hidden=())
    assert spec.activations == () and spec.describe() == "784-10" and spec.n_params() == 7850
    assert M.dense_chain(spec) == (("dense0.W", "dense0.b", "identity"),)  # the fused path takes it
    assert M.ModelSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("conv", [(0,), (8, -1)])
def test_spec_rejects_nonpositive_filters(conv):
    with pytest.raises(ValueError, match="conv: filters must be positive"):
        M.ModelSpec(conv=conv)


def test_spec_rejects_a_convnet_of_images_that_are_not_square():
    with pytest.raises(ValueError, match="conv: expected square one-channel images, got 783 inputs"):
        M.ModelSpec(conv=(4,), inputs=783)


def test_convnet_spec_json_round_trip_and_mlp_json_unchanged():
    spec = M.ModelSpec(hidden=(16,), conv=(4, 8), dropout=0.2, input_mean=0.1, input_std=0.3)
    assert spec.to_json()["conv"] == [4, 8]
    assert M.ModelSpec.from_json(spec.to_json()) == spec
    assert "conv" not in M.ModelSpec().to_json()
    with pytest.raises(ValueError, match="model spec field conv has the wrong type"):
        M.ModelSpec.from_json({**spec.to_json(), "conv": [4, "8"]})
    assert spec.architecture().input_shape == (28, 28, 1)
    assert spec.architecture().n_params() == spec.n_params()


def test_predictor_of_a_convnet_gives_predict_proba(rng):
    spec = M.ModelSpec(hidden=(8,), conv=(3,), input_mean=0.1, input_std=0.3)
    params = M.init_params(spec, rng)
    images = rng.random((3, 784)).astype(np.float32)
    predictor = M.Predictor(spec, params)
    np.testing.assert_array_equal(predictor(images), M.predict_proba(spec, params, images))
    np.testing.assert_array_equal(predictor(images[0]), M.predict_proba(spec, params, images[0]))
    np.testing.assert_allclose(predictor(images).sum(axis=1), 1, rtol=1e-5)


def test_loss_and_grads_of_a_convnet_match_central_differences(rng):
    spec = M.ModelSpec(hidden=(3,), conv=(2,), inputs=64)
    params = M.init_params(spec, rng, dtype=np.float64)
    params = {k: v + rng.uniform(-0.1, 0.1, v.shape) for k, v in params.items()}
    x, labels = rng.standard_normal((4, 64)), rng.integers(0, 10, 4)
    loss, grads = M.loss_and_grads(spec, params, x, labels)
    assert loss == pytest.approx(numpy_cross_entropy(numpy_convnet_logits(spec, params, x), labels), rel=1e-12)
    numeric = central_difference(lambda: numpy_cross_entropy(numpy_convnet_logits(spec, params, x), labels), params)
    for key in params:
        np.testing.assert_allclose(grads[key], numeric[key], rtol=1e-5, atol=1e-8, err_msg=key)
