"""Tests for tinygrad_digits.layers: init shapes, dtypes and draws, apply against NumPy, JSON
round trips and hostile JSON, check_params, dense_chain, Dropout and Sequential naming."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import central_difference, numpy_mlp_logits

from tinygrad_digits import fastpath as F
from tinygrad_digits import layers as L
from tinygrad_digits import model as M
from tinygrad_digits import ops
from tinygrad_digits.autodiff import grad

# ---------------------------------------------------------------- init


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_init_shapes_dtypes_and_limits(dtype):
    for act, init, limit in [
        ("relu", "auto", math.sqrt(6 / 300)),
        ("leaky_relu", "auto", math.sqrt(6 / 300)),
        ("tanh", "auto", math.sqrt(6 / 500)),
        (None, "auto", math.sqrt(6 / 500)),
        ("sigmoid", "he", math.sqrt(6 / 300)),
        ("relu", "glorot", math.sqrt(6 / 500)),
    ]:
        p = L.Dense(200, act, init=init).init(np.random.default_rng(0), (300,), dtype)
        assert list(p) == ["W", "b"]
        assert p["W"].shape == (300, 200) and p["b"].shape == (200,)
        assert p["W"].dtype == p["b"].dtype == dtype and p["W"].flags.c_contiguous
        assert np.all(p["b"] == 0)
        assert 0.97 * limit < np.abs(p["W"]).max() <= limit, (act, init)
    w = L.Dense(100, init="normal").init(np.random.default_rng(1), (400,), dtype)["W"]
    assert w.std() == pytest.approx(1.0, abs=0.02)


def test_dense_init_draws_what_numpy_draws():
    p = L.Dense(3, "relu").init(np.random.default_rng(7), (5,), np.float64)
    expected = np.random.default_rng(7).uniform(-math.sqrt(6 / 5), math.sqrt(6 / 5), (5, 3))
    np.testing.assert_array_equal(p["W"], expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "hidden, acts",
    [((4,), ("relu",)), ((5, 3), ("tanh", "leaky_relu")), ((2, 3, 4), ("sigmoid", "relu", "tanh"))],
)
def test_spec_network_init_equals_init_params(hidden, acts, dtype):
    spec = M.ModelSpec(hidden=hidden, activations=acts, inputs=6, outputs=3, dropout=0.2)
    net = spec.network().init(np.random.default_rng(11), (6,), dtype)
    params = M.init_params(spec, np.random.default_rng(11), dtype=dtype)
    keys = [f"dense{i}.{p}" for i in range(len(hidden) + 1) for p in "Wb"]
    assert list(net) == list(params) == keys
    # and what NumPy draws, layer by layer, from the same seed
    rng = np.random.default_rng(11)
    sizes = (6, *hidden, 3)
    for i, act in enumerate([*acts, None]):
        fan_in, fan_out = sizes[i], sizes[i + 1]
        limit = math.sqrt(6 / fan_in) if act in ("relu", "leaky_relu") else math.sqrt(6 / (fan_in + fan_out))
        expected = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)
        np.testing.assert_array_equal(net[f"dense{i}.W"], expected)
        np.testing.assert_array_equal(params[f"dense{i}.W"], expected)
        assert params[f"dense{i}.W"].dtype == dtype


def test_dense_init_needs_flat_inputs():
    with pytest.raises(ValueError, match=r"Dense: expected inputs of shape \(features,\), got \(2, 3\)"):
        L.Dense(4).init(np.random.default_rng(0), (2, 3))


def test_residual_block_must_keep_the_shape():
    with pytest.raises(ValueError, match=r"Residual: the block maps \(4,\) to \(3,\)"):
        L.Residual(L.Dense(3)).init(np.random.default_rng(0), (4,))


# ---------------------------------------------------------------- Sequential: naming, shapes, apply


def test_sequential_names_children_by_kind_and_count():
    model = L.Sequential(
        L.Flatten(),
        L.Dense(4, "relu"),
        L.Dropout(0.1),
        L.Relu(),
        L.Dense(4),
        L.Tanh(),
        L.Residual(L.Dense(4)),
        L.Sequential(L.Dense(2)),
        L.Dense(3),
    )
    assert model.names == [
        "flatten0",
        "dense0",
        "dropout0",
        "activation0",
        "dense1",
        "activation1",
        "residual0",
        "sequential0",
        "dense2",
    ]
    params = model.init(np.random.default_rng(0), (2, 3))
    assert list(params) == [
        "dense0.W",
        "dense0.b",
        "dense1.W",
        "dense1.b",
        "residual0.block.W",
        "residual0.block.b",
        "sequential0.dense0.W",
        "sequential0.dense0.b",
        "dense2.W",
        "dense2.b",
    ]
    assert params["dense0.W"].shape == (6, 4) and params["sequential0.dense0.W"].shape == (4, 2)
    assert params["dense2.W"].shape == (2, 3)
    assert model.output_shape((2, 3)) == (3,)
    assert L.Sequential([L.Dense(2), L.Dense(3)]).names == ["dense0", "dense1"]  # a list works too
    with pytest.raises(ValueError, match="Sequential: expected layers, got int"):
        L.Sequential(L.Dense(2), 3)


def test_apply_matches_a_numpy_forward(rng):
    model = L.Sequential(
        L.Flatten(),
        L.Dense(5, "leaky_relu", alpha=0.2),
        L.Residual(L.Dense(5, "tanh")),
        L.Dense(4),
        L.Sigmoid(),
        L.Dense(3),
    )
    params = model.init(rng, (2, 3), np.float64)
    params = {k: v + rng.normal(0, 0.3, v.shape) for k, v in params.items()}
    x = rng.normal(size=(7, 2, 3))
    h = x.reshape(7, 6) @ params["dense0.W"] + params["dense0.b"]
    h = np.where(h > 0, h, 0.2 * h)
    h = h + np.tanh(h @ params["residual0.block.W"] + params["residual0.block.b"])
    h = 1 / (1 + np.exp(-(h @ params["dense1.W"] + params["dense1.b"])))
    np.testing.assert_allclose(
        model.apply(params, x), h @ params["dense2.W"] + params["dense2.b"], rtol=1e-12
    )


@pytest.mark.parametrize("act", list(ops.ACTIVATIONS))
def test_spec_network_apply_and_gradient(act, rng):
    spec = M.ModelSpec(hidden=(4, 3), activations=(act,), alpha=0.2, inputs=5, outputs=3)
    net = spec.network()
    params = M.init_params(spec, rng, dtype=np.float64)
    params = {k: v + rng.normal(0, 0.3, v.shape) for k, v in params.items()}
    x = rng.normal(size=(6, 5))
    np.testing.assert_allclose(
        net.apply(params, x), numpy_mlp_logits(params, x, spec.activations, 0.2), rtol=1e-12
    )
    dy = rng.normal(size=(6, 3))
    if act in ("relu", "leaky_relu"):
        z = x @ params["dense0.W"] + params["dense0.b"]
        z1 = numpy_mlp_logits(
            {
                "dense0.W": params["dense0.W"],
                "dense0.b": params["dense0.b"],
                "dense1.W": params["dense1.W"],
                "dense1.b": params["dense1.b"],
            },
            x,
            [act],
            0.2,
        )
        if min(np.abs(z).min(), np.abs(z1).min()) < 1e-3:
            pytest.skip("a pre-activation at the kink")  # pragma: no cover
    g = grad(lambda p: (net.apply(p, x) * dy).sum())(params)
    numeric = central_difference(
        lambda: np.sum(numpy_mlp_logits(params, x, spec.activations, 0.2) * dy), params
    )
    for key in params:
        np.testing.assert_allclose(g[key], numeric[key], rtol=1e-5, atol=1e-7, err_msg=key)


def test_dropout_is_active_only_with_an_rng(rng):
    x = rng.normal(size=(20, 30)) + 4.0
    layer = L.Dropout(0.4)
    np.testing.assert_array_equal(layer.apply({}, x), x)
    np.testing.assert_array_equal(layer.apply({}, x, None), x)
    y = layer.apply({}, x, np.random.default_rng(3))
    keep = np.random.default_rng(3).random(x.shape) >= 0.4
    np.testing.assert_allclose(y, np.where(keep, x / 0.6, 0.0), rtol=1e-12)
    np.testing.assert_array_equal(L.Dropout(0.0).apply({}, x, np.random.default_rng(3)), x)
    model = L.Sequential(L.Dense(30), L.Dropout(0.5))
    params = model.init(rng, (30,), np.float64)
    np.testing.assert_array_equal(model.apply(params, x), model.apply(params, x))
    assert not np.array_equal(model.apply(params, x, np.random.default_rng(1)), model.apply(params, x))


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.5", None])
def test_dropout_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="Dropout: rate is the fraction dropped"):
        L.Dropout(rate)


def test_activation_layers():
    x = np.array([[-2.0, 0.5]])
    np.testing.assert_allclose(L.Relu().apply({}, x), [[0.0, 0.5]])
    np.testing.assert_allclose(L.LeakyRelu(0.3).apply({}, x), [[-0.6, 0.5]])
    np.testing.assert_allclose(L.Sigmoid().apply({}, x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(L.Tanh().apply({}, x), np.tanh(x))
    with pytest.raises(ValueError, match="Activation: unknown activation 'swish'"):
        L.Activation("swish")
    for alpha in (-0.1, math.nan, math.inf, "0.2"):
        with pytest.raises(ValueError, match="Activation: alpha must be a finite number >= 0"):
            L.LeakyRelu(alpha)


# ---------------------------------------------------------------- JSON


LAYERS = [
    L.Dense(4),
    L.Dense(4, "relu"),
    L.Dense(3, "leaky_relu", alpha=0.3),
    L.Dense(2, "tanh", init="normal"),
    L.Relu(),
    L.LeakyRelu(0.2),
    L.Sigmoid(),
    L.Tanh(),
    L.Dropout(0.25),
    L.Flatten(),
    L.Residual(L.Dense(4, "relu")),
    L.Sequential(L.Flatten(), L.Dense(4, "relu"), L.Dropout(0.1), L.Dense(2)),
    L.Sequential(
        L.Dense(4),
        L.Residual(L.Sequential(L.Dense(4, "tanh"), L.Residual(L.Dense(4)))),
        L.Sequential(L.Sequential(L.Dense(3))),
    ),
    L.Sequential(),
]


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_json_round_trip(layer):
    data = layer.to_json()
    assert L.from_json(data) == layer
    assert L.from_json(json.loads(json.dumps(data))) == layer  # really JSON
    assert repr(L.from_json(data)) == repr(layer)


def test_a_json_list_is_a_sequential_and_equality_has_teeth():
    listed = L.from_json([{"type": "Dense", "units": 4, "activation": "relu"}, {"type": "Dense", "units": 2}])
    assert listed == L.Sequential(L.Dense(4, "relu"), L.Dense(2))
    assert listed != L.Sequential(L.Dense(4, "tanh"), L.Dense(2))
    assert L.Dense(3, "leaky_relu", alpha=0.3) != L.Dense(3, "leaky_relu", alpha=0.2)
    assert L.Dropout(0.1) != L.Dropout(0.2) and L.Relu() != L.Tanh() and L.Dense(2) != L.Flatten()
    assert L.Residual(L.Dense(2)) != L.Sequential(L.Dense(2))


def nested(depth: int, form: str):
    layer = {"type": "Dense", "units": 2}
    for _ in range(depth):
        layer = {
            "list": [layer],
            "Sequential": {"type": "Sequential", "layers": [layer]},
            "Residual": {"type": "Residual", "block": layer},
        }[form]
    return layer


@pytest.mark.parametrize("form", ["list", "Sequential", "Residual"])
def test_nesting_up_to_max_depth_loads_and_deeper_is_a_value_error(form):
    L.from_json(nested(L.MAX_DEPTH, form))  # a Dense inside MAX_DEPTH containers
    built = L.Dense(2)
    for _ in range(L.MAX_DEPTH):
        built = L.Sequential(built) if form != "Residual" else L.Residual(built)
    assert L.from_json(built.to_json()) == built
    for depth in (L.MAX_DEPTH + 1, 5000):
        with pytest.raises(ValueError, match=f"nested deeper than {L.MAX_DEPTH} levels"):
            L.from_json(nested(depth, form))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"type": "LSTM", "units": 3}, "unknown layer type 'LSTM': expected one of .*Conv2D"),
        ({"type": "Conv2D", "filters": 3, "stride": 2}, "Conv2D: .*unexpected keyword argument 'stride'"),
        ({"type": "Conv2D", "filters": 3, "padding": "full"}, "Conv2D: padding must be"),
        ({"type": "MaxPool2D", "size": 1.5}, "MaxPool2D: size must be a positive integer"),
        ({"type": "dense", "units": 3}, "unknown layer type 'dense'"),
        ({"units": 3}, "a layer must be an object with a type"),
        ("Dense", "a layer must be an object with a type"),
        (3, "a layer must be an object with a type"),
        ({"type": 3}, "a layer must be an object with a type"),
        ({"type": "Dense"}, "Dense: .*units"),
        ({"type": "Dense", "units": 0}, "Dense: units must be a positive integer"),
        ({"type": "Dense", "units": "3"}, "Dense: units must be a positive integer"),
        ({"type": "Dense", "units": 2.5}, "Dense: units must be a positive integer"),
        ({"type": "Dense", "units": True}, "Dense: units must be a positive integer"),
        ({"type": "Dense", "units": 3, "colour": "red"}, "Dense: .*colour"),
        ({"type": "Dense", "units": 3, "activation": "swish"}, "unknown activation 'swish'"),
        ({"type": "Dense", "units": 3, "activation": ["relu"]}, "Dense: "),
        ({"type": "Dense", "units": 3, "alpha": -1}, "Dense: alpha must be a finite number >= 0"),
        ({"type": "Dense", "units": 3, "init": "xavier"}, "Dense: unknown init 'xavier'"),
        ({"type": "Activation", "name": "swish"}, "Activation: unknown activation 'swish'"),
        ({"type": "Activation", "name": ["relu"]}, "Activation: "),
        ({"type": "Activation", "name": "leaky_relu", "alpha": "0.5"}, "Activation: alpha must be"),
        ({"type": "Activation"}, "Activation: .*name"),
        ({"type": "Dropout", "rate": 1.0}, "Dropout: rate is the fraction dropped"),
        ({"type": "Dropout"}, "Dropout: .*rate"),
        ({"type": "Flatten", "size": 3}, "Flatten: .*takes no arguments"),
        (
            {"type": "Sequential", "layers": {"type": "Dense", "units": 2}},
            "Sequential: expected one field, layers",
        ),
        ({"type": "Sequential", "layers": [], "name": "x"}, "Sequential: expected one field, layers"),
        ({"type": "Residual"}, "Residual: expected one field, block"),
        (
            {"type": "Residual", "block": {"type": "Dense", "units": 2}, "x": 1},
            "Residual: expected one field",
        ),
        ({"type": "Residual", "block": "Dense"}, "a layer must be an object with a type"),
        ([{"type": "Dense", "units": 2}, {"type": "Nope"}], "unknown layer type 'Nope'"),
    ],
)
def test_bad_json_is_a_value_error(data, message):
    with pytest.raises(ValueError, match=message):
        L.from_json(data)


# ---------------------------------------------------------------- check_params


def test_check_params_names_missing_extra_and_wrong_shapes():
    model = L.Sequential(L.Dense(4, "relu"), L.Residual(L.Dense(4)), L.Dense(3))
    params = model.init(np.random.default_rng(0), (5,))
    L.check_params(model, params, (5,))
    broken = dict(params)
    del broken["residual0.block.b"]
    broken["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing \['residual0.block.b'\], extra \['extra'\]"):
        L.check_params(model, broken, (5,))
    wrong = {**params, "dense1.W": np.zeros((3, 4))}
    with pytest.raises(ValueError, match=r"parameter dense1.W has shape \(3, 4\), expected \(4, 3\)"):
        L.check_params(model, wrong, (5,))
    with pytest.raises(ValueError, match=r"dense0.W has shape \(5, 4\), expected \(6, 4\)"):
        L.check_params(model, params, (6,))


# ---------------------------------------------------------------- dense_chain


def test_dense_chain_of_plain_mlps():
    spec = M.ModelSpec(hidden=(4, 3), activations=("relu", "tanh"), inputs=5, outputs=2)
    assert F.dense_chain(spec.network()) == (
        (
            ("dense0.W", "dense0.b", "relu"),
            ("dense1.W", "dense1.b", "tanh"),
            ("dense2.W", "dense2.b", "identity"),
        ),
        0.1,
    )
    assert F.dense_chain(L.Sequential(L.Dense(4, "leaky_relu", alpha=0.3), L.Dense(2)))[1] == 0.3
    # an Activation right after a Dense without one is folded into it; dropout of rate 0 is skipped
    folded = L.Sequential(L.Dense(4), L.Relu(), L.Dropout(0.0), L.Dense(3), L.LeakyRelu(0.2), L.Dense(2))
    assert F.dense_chain(folded) == (
        (
            ("dense0.W", "dense0.b", "relu"),
            ("dense1.W", "dense1.b", "leaky_relu"),
            ("dense2.W", "dense2.b", "identity"),
        ),
        0.2,
    )


@pytest.mark.parametrize(
    "model",
    [
        L.Sequential(L.Dense(4, "relu"), L.Residual(L.Dense(4)), L.Dense(2)),
        L.Sequential(L.Flatten(), L.Dense(2)),
        L.Sequential(L.Dense(4, "relu"), L.Dropout(0.5), L.Dense(2)),
        L.Sequential(L.Dense(4, "relu"), L.Tanh(), L.Dense(2)),  # two activations in a row
        L.Sequential(L.Relu(), L.Dense(2)),  # an activation before any dense
        L.Sequential(L.Dense(4, "leaky_relu", alpha=0.1), L.Dense(3, "leaky_relu", alpha=0.2), L.Dense(2)),
        L.Sequential(L.Sequential(L.Dense(2))),
        L.Sequential(),
        L.Dense(2),
        L.Residual(L.Dense(2)),
    ],
    ids=repr,
)
def test_dense_chain_is_none_for_anything_else(model):
    assert F.dense_chain(model) is None
