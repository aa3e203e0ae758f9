"""Tests for tinygrad_digits.optimizers: the Keras update formulas step by step, in place,
weight decay on ``.W`` keys only, the cosine schedule, convergence on a quadratic, validation.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tinygrad_digits import optimizers as O


def make_params(dtype=np.float64) -> dict:
    return {
        "dense0.W": np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.5]], dtype=dtype),
        "dense0.b": np.array([0.25, -0.75, 1.0], dtype=dtype),
        "dense1.W": np.array([[2.0], [-1.0], [0.5]], dtype=dtype),
        "dense1.b": np.array([-0.5], dtype=dtype),
    }


def make_grads(dtype=np.float64) -> dict:
    return {
        "dense0.W": np.array([[0.5, -1.0, 2.0], [-0.25, 0.0, 1.0]], dtype=dtype),
        "dense0.b": np.array([1.0, 2.0, -3.0], dtype=dtype),
        "dense1.W": np.array([[-0.5], [0.125], [4.0]], dtype=dtype),
        "dense1.b": np.array([0.75], dtype=dtype),
    }


def constant(name: str, **kwargs) -> O.OptimizerConfig:
    return O.OptimizerConfig(name=name, schedule="constant", **kwargs)


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize("name", O.OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_keeps_keys_shapes_dtypes_and_works_in_place(name, dtype):
    config = O.OptimizerConfig(name=name, total_steps=10)
    params = make_params(dtype)
    arrays = dict(params)  # the same array objects
    before = {k: v.copy() for k, v in params.items()}
    state = O.init(config, params)
    state_arrays = {k: v for k, v in state.items() if k != "step"}

    out = O.update(config, params, make_grads(dtype), state)

    assert out is params
    assert list(params) == list(before)
    for key, p in params.items():
        assert p is arrays[key], "update must reuse the parameter arrays"
        assert p.shape == before[key].shape and p.dtype == dtype
        assert not np.array_equal(p, before[key]), f"{key} did not move"
    for key, s in state_arrays.items():
        assert state[key] is s and s.dtype == dtype
    assert state["step"] == 1


@pytest.mark.parametrize("name, slots", [("sgd", []), ("momentum", ["m"]), ("adam", ["m", "v"])])
def test_init_state_has_zeroed_slots_per_key(name, slots):
    params = make_params(np.float32)
    state = O.init(O.OptimizerConfig(name=name), params)
    assert state["step"] == 0
    expected = {f"{slot}.{key}" for slot in slots for key in params}
    assert set(state) - {"step"} == expected
    for key in expected:
        base = params[key.split(".", 1)[1]]
        assert state[key].shape == base.shape and state[key].dtype == np.float32
        assert np.all(state[key] == 0)


def test_update_does_not_modify_grads():
    config = constant("adam", weight_decay=0.1)
    params, grads = make_params(), make_grads()
    saved = {k: v.copy() for k, v in grads.items()}
    state = O.init(config, params)
    O.update(config, params, grads, state)
    for key in grads:
        np.testing.assert_array_equal(grads[key], saved[key])


# ---------------------------------------------------------------- one step by hand


def test_sgd_step_by_hand():
    config = constant("sgd", learning_rate=0.5)
    params = make_params()
    state = O.init(config, params)
    O.update(config, params, make_grads(), state)
    np.testing.assert_allclose(params["dense0.W"], [[0.75, -1.5, -0.5], [0.125, 3.0, -2.0]])
    np.testing.assert_allclose(params["dense0.b"], [-0.25, -1.75, 2.5])
    np.testing.assert_allclose(params["dense1.W"], [[2.25], [-1.0625], [-1.5]])
    np.testing.assert_allclose(params["dense1.b"], [-0.875])


def test_momentum_two_steps_by_hand():
    config = constant("momentum", learning_rate=0.1, momentum=0.9)
    params = {"a.W": np.array([1.0, -1.0]), "a.b": np.array([2.0])}
    grads = {"a.W": np.array([0.5, -2.0]), "a.b": np.array([1.0])}
    state = O.init(config, params)
    O.update(config, params, grads, state)
    # v = -0.1 g = [-0.05, 0.2], [-0.1]
    np.testing.assert_allclose(params["a.W"], [0.95, -0.8])
    np.testing.assert_allclose(params["a.b"], [1.9])
    np.testing.assert_allclose(state["m.a.W"], [-0.05, 0.2])
    O.update(config, params, grads, state)
    # v = 0.9 v - 0.1 g = [-0.095, 0.38], [-0.19]
    np.testing.assert_allclose(state["m.a.W"], [-0.095, 0.38])
    np.testing.assert_allclose(params["a.W"], [0.855, -0.42])
    np.testing.assert_allclose(params["a.b"], [1.71])


def test_adam_two_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    config = constant("adam", learning_rate=lr, beta1=b1, beta2=b2, epsilon=eps)
    params = {"a.W": np.array([1.0, -1.0, 0.0])}
    g1 = np.array([0.5, -2.0, 0.0])
    g2 = np.array([-0.5, 1.0, 3.0])
    state = O.init(config, params)

    O.update(config, params, {"a.W": g1}, state)
    m = 0.1 * g1
    v = 0.001 * g1**2
    lr_t = lr * math.sqrt(1 - b2) / (1 - b1)
    p = np.array([1.0, -1.0, 0.0]) - lr_t * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(params["a.W"], p, rtol=1e-12)
    # the first Adam step moves every non-zero-gradient entry by about lr against the gradient
    np.testing.assert_allclose(params["a.W"], [1.0 - lr, -1.0 + lr, 0.0], atol=1e-6)
    np.testing.assert_allclose(state["m.a.W"], m, rtol=1e-12)
    np.testing.assert_allclose(state["v.a.W"], v, rtol=1e-12)

    O.update(config, params, {"a.W": g2}, state)
    m = b1 * m + (1 - b1) * g2
    v = b2 * v + (1 - b2) * g2**2
    lr_t = lr * math.sqrt(1 - b2**2) / (1 - b1**2)
    p = p - lr_t * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(params["a.W"], p, rtol=1e-12)
    assert state["step"] == 2


@pytest.mark.parametrize("name", O.OPTIMIZERS)
def test_weight_decay_applies_to_weights_only(name):
    wd = 0.1
    decayed = constant(name, learning_rate=0.1, weight_decay=wd)
    plain = constant(name, learning_rate=0.1)
    # the decayed run sees grads; the plain run sees grads + wd * W on .W keys only
    a, b = make_params(), make_params()
    sa, sb = O.init(decayed, a), O.init(plain, b)
    for _ in range(3):
        manual = {k: g + wd * b[k] if k.endswith(".W") else g for k, g in make_grads().items()}
        O.update(decayed, a, make_grads(), sa)
        O.update(plain, b, manual, sb)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-15)

    # and the biases of the decayed run equal those of an undecayed run on the same grads
    c = make_params()
    sc = O.init(plain, c)
    for _ in range(3):
        O.update(plain, c, make_grads(), sc)
    np.testing.assert_array_equal(a["dense0.b"], c["dense0.b"])
    np.testing.assert_array_equal(a["dense1.b"], c["dense1.b"])
    assert not np.allclose(a["dense0.W"], c["dense0.W"])


def test_sgd_weight_decay_by_hand():
    config = constant("sgd", learning_rate=0.5, weight_decay=0.2)
    params = {"d.W": np.array([2.0]), "d.b": np.array([2.0])}
    state = O.init(config, params)
    O.update(config, params, {"d.W": np.array([1.0]), "d.b": np.array([1.0])}, state)
    assert params["d.W"][0] == pytest.approx(2.0 - 0.5 * (1.0 + 0.2 * 2.0))
    assert params["d.b"][0] == pytest.approx(1.5)


def test_update_uses_the_scheduled_learning_rate_of_each_step():
    config = O.OptimizerConfig(name="sgd", learning_rate=1.0, schedule="cosine", total_steps=4)
    params = {"a.b": np.zeros(1)}
    state = O.init(config, params)
    positions = [0.0]
    for _ in range(5):
        O.update(config, params, {"a.b": np.ones(1)}, state)
        positions.append(params["a.b"][0])
    steps = -np.diff(positions)
    np.testing.assert_allclose(steps, [O.learning_rate_at(config, t) for t in range(5)], atol=1e-15)
    np.testing.assert_allclose(
        steps,
        [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 - math.cos(math.pi / 4)), 0.0],
        atol=1e-15,
    )


# ---------------------------------------------------------------- schedule


@pytest.mark.parametrize("total", [1, 2, 10, 375])
def test_cosine_schedule_values(total):
    config = O.OptimizerConfig(name="adam", learning_rate=0.3, schedule="cosine", total_steps=total)
    assert O.learning_rate_at(config, 0) == pytest.approx(0.3)
    if total % 2 == 0:
        assert O.learning_rate_at(config, total // 2) == pytest.approx(0.15)
    assert O.learning_rate_at(config, total) == pytest.approx(0.0, abs=1e-15)
    assert O.learning_rate_at(config, total + 7) == pytest.approx(0.0, abs=1e-15)
    rates = [O.learning_rate_at(config, t) for t in range(total + 1)]
    assert all(a >= b for a, b in itertools.pairwise(rates)), "cosine decay must not increase"
    assert all(r >= 0 for r in rates)


def test_constant_schedule():
    config = constant("momentum", learning_rate=0.07, total_steps=3)
    assert [O.learning_rate_at(config, t) for t in (0, 1, 3, 100)] == [0.07] * 4


@pytest.mark.parametrize("name", O.OPTIMIZERS)
def test_learning_rate_none_takes_the_optimizers_default(name):
    default = O.DEFAULT_LEARNING_RATE[name]
    assert 0 < default < 1
    assert O.OptimizerConfig(name=name).learning_rate == default
    assert O.OptimizerConfig(name=name, learning_rate=None).learning_rate == default
    assert O.OptimizerConfig(name=name, learning_rate=0.5).learning_rate == 0.5


# ---------------------------------------------------------------- convergence


@pytest.mark.parametrize("name, learning_rate", [("sgd", 0.2), ("momentum", 0.05), ("adam", 0.1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_quadratic_converges(name, learning_rate, dtype):
    """f(p) = 1/2 sum_k c_k (p_k - target_k)^2, with curvatures from 0.5 to 2."""
    rng = np.random.default_rng(7)
    target = {"q.W": rng.normal(size=(3, 4)), "q.b": rng.normal(size=4)}
    curvature = {"q.W": rng.uniform(0.5, 2.0, (3, 4)), "q.b": rng.uniform(0.5, 2.0, 4)}
    params = {k: np.zeros_like(v, dtype=dtype) for k, v in target.items()}
    config = O.OptimizerConfig(name=name, learning_rate=learning_rate, schedule="cosine", total_steps=400)
    state = O.init(config, params)
    for _ in range(400):
        grads = {k: (curvature[k] * (params[k] - target[k])).astype(dtype) for k in params}
        O.update(config, params, grads, state)
    for key, value in params.items():
        np.testing.assert_allclose(value, target[key], atol=1e-3)


# ---------------------------------------------------------------- validation


def test_key_mismatch_lists_missing_and_extra_keys():
    config = O.OptimizerConfig(name="sgd")
    params = make_params()
    grads = make_grads()
    del grads["dense0.b"]
    grads["dense9.W"] = np.zeros(1)
    state = O.init(config, params)
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(ValueError) as err:
        O.update(config, params, grads, state)
    message = str(err.value)
    assert "missing ['dense0.b']" in message and "extra ['dense9.W']" in message
    assert state["step"] == 0
    for key in params:
        np.testing.assert_array_equal(params[key], before[key])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"learning_rate": 0.0}, "learning rate must be a positive number, got 0.0"),
        ({"learning_rate": -0.1}, "learning rate must be a positive number, got -0.1"),
        ({"learning_rate": math.nan}, "learning rate must be a positive number"),
        ({"learning_rate": math.inf}, "learning rate must be a positive number"),
        ({"name": "rmsprop"}, "unknown optimizer 'rmsprop'"),
        ({"name": "Adam"}, "unknown optimizer 'Adam'"),
        ({"schedule": "linear"}, "unknown schedule 'linear'"),
        ({"weight_decay": -1e-4}, "weight decay must be >= 0"),
        ({"weight_decay": math.nan}, "weight decay must be >= 0"),
        ({"momentum": 1.0}, r"momentum must lie in \[0, 1\)"),
        ({"momentum": -0.1}, r"momentum must lie in \[0, 1\)"),
        ({"beta1": 1.0}, "beta1, beta2"),
        ({"beta2": -0.5}, "beta1, beta2"),
        ({"epsilon": 0.0}, "epsilon > 0"),
        ({"total_steps": 0}, "total_steps must be >= 1"),
    ],
)
def test_invalid_configs_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        O.OptimizerConfig(**kwargs)


def test_unknown_optimizer_error_lists_the_choices():
    with pytest.raises(ValueError) as err:
        O.OptimizerConfig(name="rmsprop")
    for name in O.OPTIMIZERS:
        assert name in str(err.value)


def test_config_json():
    config = O.OptimizerConfig(name="momentum", total_steps=12)
    assert config.to_json()["learning_rate"] == O.DEFAULT_LEARNING_RATE["momentum"]
    assert O.OptimizerConfig(**config.to_json()) == config


@pytest.mark.parametrize("name", O.OPTIMIZERS)
def test_update_changes_non_contiguous_params_in_place(name):
    config = constant(name, learning_rate=0.5)
    params = {"a.W": np.asfortranarray(np.ones((3, 4)))}
    state = O.init(config, params)
    O.update(config, params, {"a.W": np.ones((3, 4))}, state)
    assert np.all(params["a.W"] < 1.0), "the step was silently lost"
