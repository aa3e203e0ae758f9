"""Tests for tinygrad_digits.modelfile: round trips, atomic writes, no pickle, and a one-line
ModelFileError naming the file for every kind of bad file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tinygrad_digits import __version__
from tinygrad_digits import model as M
from tinygrad_digits import modelfile as MF
from tinygrad_digits.modelfile import ModelFileError, load_model, save_model

SPEC = M.ModelSpec(
    hidden=(9, 5),
    activations=("leaky_relu", "tanh"),
    alpha=0.2,
    inputs=784,
    outputs=10,
    input_mean=0.13,
    input_std=0.31,
)


@pytest.fixture
def model(rng):
    params = M.init_params(SPEC, rng)
    for key in params:
        if key.endswith(".b"):
            params[key][:] = rng.normal(0, 0.5, params[key].shape)
    return SPEC, params


@pytest.fixture
def saved(tmp_path, model) -> Path:
    spec, params = model
    return save_model(tmp_path / "model.npz", spec, params, {"note": "fixture"})


def header_of(model_spec: M.ModelSpec = SPEC, **changes) -> dict:
    """The header save_model writes, with ``changes`` applied (``spec=`` replaces the spec)."""
    header = {
        "format": MF.FORMAT,
        "format_version": MF.FORMAT_VERSION,
        "package_version": __version__,
        "spec": model_spec.to_json(),
    }
    header.update(changes)
    return header


def write_npz(path: Path, arrays: dict, header=None) -> Path:
    """An .npz written by hand; ``header`` a dict (JSON-encoded), a str, an array or None."""
    arrays = dict(arrays)
    if isinstance(header, dict):
        arrays[MF.HEADER] = np.array(json.dumps(header))
    elif isinstance(header, str):
        arrays[MF.HEADER] = np.array(header)
    elif header is not None:
        arrays[MF.HEADER] = header
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def assert_refused(path: Path, match: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(path)
    message = str(err.value)
    assert str(path) in message, "the message must name the file"
    assert "\n" not in message, "the message must be one line"
    assert isinstance(err.value, ValueError)
    return err.value


def images(n: int = 6) -> np.ndarray:
    return np.random.default_rng(8).uniform(0, 1, (n, 784)).astype(np.float32)


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_predicts_identically(tmp_path, model, dtype):
    spec, params = model
    params = {k: v.astype(dtype) for k, v in params.items()}
    meta = {
        "training": {"epochs": 3, "optimizer": "adam"},
        "history": [{"epoch": 1, "val_accuracy": 0.5}],
        "split_seed": 0,
    }
    path = save_model(tmp_path / "sub" / "dir" / "m.npz", spec, params, meta)
    assert path == tmp_path / "sub" / "dir" / "m.npz" and path.is_file()

    spec2, params2, header = load_model(path)
    assert spec2 == spec
    assert params2.keys() == params.keys()
    for key in params:
        assert params2[key].dtype == dtype
        np.testing.assert_array_equal(params2[key], params[key])
    np.testing.assert_array_equal(
        M.predict_proba(spec2, params2, images()), M.predict_proba(spec, params, images())
    )
    np.testing.assert_array_equal(M.predict(spec2, params2, images()), M.predict(spec, params, images()))

    assert header["format"] == MF.FORMAT
    assert header["format_version"] == MF.FORMAT_VERSION
    assert header["package_version"] == __version__
    assert header["spec"] == spec.to_json()
    for key, value in meta.items():
        assert header[key] == value


def test_save_accepts_a_string_path_and_no_meta(tmp_path, model):
    spec, params = model
    path = save_model(str(tmp_path / "plain.npz"), spec, params)
    assert isinstance(path, Path)
    _, _, header = load_model(str(path))
    assert set(header) == {"format", "format_version", "package_version", "architecture", "spec"}


def test_save_refuses_params_that_do_not_fit_the_spec(tmp_path, model):
    spec, params = model
    del params["dense2.b"]
    with pytest.raises(ValueError, match=r"missing \['dense2.b'\]"):
        save_model(tmp_path / "m.npz", spec, params)
    assert list(tmp_path.iterdir()) == []


def test_saving_over_a_model_replaces_it(tmp_path, model):
    spec, params = model
    path = save_model(tmp_path / "m.npz", spec, params, {"version": 1})
    params = {k: v + 1 for k, v in params.items()}
    save_model(path, spec, params, {"version": 2})
    _, loaded, header = load_model(path)
    assert header["version"] == 2
    np.testing.assert_array_equal(loaded["dense0.W"], params["dense0.W"])
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"], "no stray temporary files"


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_previous_file_intact(tmp_path, model, monkeypatch, error):
    spec, params = model
    path = save_model(tmp_path / "m.npz", spec, params, {"version": 1})
    before = path.read_bytes()
    real_savez = np.savez
    temp_files = []

    def failing_savez(file, *args, **kwargs):
        temp_files.extend(p for p in tmp_path.iterdir() if p.name != "m.npz")
        file.write(b"PK\x03\x04 half a model")  # the temporary file really is written to
        raise error

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(type(error)):
        save_model(path, spec, {k: v * 2 for k, v in params.items()}, {"version": 2})
    monkeypatch.setattr(np, "savez", real_savez)

    assert temp_files, "save_model should write to a temporary file beside the target"
    assert all(p.parent == tmp_path for p in temp_files)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"], "the temporary file must be removed"
    assert load_model(path)[2]["version"] == 1


def test_a_failed_rename_leaves_no_temporary_file(tmp_path, model, monkeypatch):
    spec, params = model

    def failing_replace(src, dst):
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="cross-device"):
        save_model(tmp_path / "m.npz", spec, params)
    assert list(tmp_path.iterdir()) == []


def test_a_successful_write_leaves_only_the_model(tmp_path, model):
    spec, params = model
    for _ in range(3):
        save_model(tmp_path / "m.npz", spec, params)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_saved_file_permissions_follow_the_umask(tmp_path, model):
    spec, params = model
    old = os.umask(0o022)
    try:
        path = save_model(tmp_path / "m.npz", spec, params)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- no pickle


class Canary:
    """Unpickling this object creates a directory: proof that pickle ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("where", ["param", "header"])
def test_object_arrays_are_refused_not_unpickled(tmp_path, where):
    canary = tmp_path / "pickle-ran"
    payload = np.array([Canary(canary)], dtype=object)
    params = M.init_params(SPEC, np.random.default_rng(0))
    if where == "param":
        params["dense0.b"] = payload
        path = write_npz(tmp_path / "evil.npz", params, header_of())
    else:
        path = write_npz(tmp_path / "evil.npz", params, payload)
    assert_refused(path, "holds Python objects" if where == "param" else "no __model__ header")
    assert not canary.exists(), "load_model unpickled an object array"


def test_a_pickle_file_is_refused_not_unpickled(tmp_path):
    import pickle

    canary = tmp_path / "pickle-ran"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Canary(canary)))
    assert_refused(path, "not a")
    assert not canary.exists()


# ---------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    assert_refused(tmp_path / "nope.npz", "no such model file")


def test_a_directory_is_not_a_model_file(tmp_path):
    assert_refused(tmp_path, "not a regular file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    assert_refused(path, "not a")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999, 10])
def test_truncated_file(tmp_path, saved, keep):
    data = saved.read_bytes()
    cut = keep if isinstance(keep, int) else int(len(data) * keep)
    path = tmp_path / "cut.npz"
    path.write_bytes(data[:cut])
    assert_refused(path, "not a")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(3).bytes(4096))
    assert_refused(path, "not a")


def test_a_plain_npy_file(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.ones((3, 4)))
    assert_refused(path, "not a")


def test_npz_without_header(tmp_path, model):
    _, params = model
    path = write_npz(tmp_path / "bare.npz", params)
    assert_refused(path, "no __model__ header")


@pytest.mark.parametrize(
    "header",
    [np.array(["{}"]), np.array(b"{}"), np.array(3.0)],
    ids=["1-d", "bytes", "number"],
)
def test_header_of_the_wrong_kind(tmp_path, model, header):
    _, params = model
    assert_refused(write_npz(tmp_path / "h.npz", params, header), "no __model__ header")


@pytest.mark.parametrize(
    "header, match",
    [
        (header_of(format="keras-model"), "format is 'keras-model'"),
        ({k: v for k, v in header_of().items() if k != "format"}, "format is None"),
        (header_of(format_version=MF.FORMAT_VERSION + 1), "newer than this program"),
        (header_of(format_version="1"), "bad model file"),
        ({k: v for k, v in header_of().items() if k != "spec"}, "bad model file: .*architecture"),
        (header_of(spec={**SPEC.to_json(), "batchnorm": True}), "unknown model spec fields: batchnorm"),
        (header_of(spec={**SPEC.to_json(), "activations": ["relu", "gelu"]}), "unknown activation 'gelu'"),
        (header_of(spec={**SPEC.to_json(), "hidden": [9, 0]}), "must be positive"),
        ("{not json", "bad model file"),
    ],
    ids=[
        "foreign-format",
        "no-format",
        "future-version",
        "version-text",
        "no-spec",
        "unknown-field",
        "unknown-activation",
        "zero-hidden",
        "not-json",
    ],
)
def test_header_with_wrong_content(tmp_path, model, header, match):
    _, params = model
    assert_refused(write_npz(tmp_path / "h.npz", params, header), match)


@pytest.mark.parametrize(
    "header",
    ["[1, 2]", "null", '"text"', json.dumps(header_of(spec=[])), json.dumps(header_of(spec=""))],
    ids=["list", "null", "string", "spec-list", "spec-string"],
)
def test_header_that_is_not_a_json_object(tmp_path, model, header):
    _, params = model
    assert_refused(write_npz(tmp_path / "h.npz", params, header), "bad model file")


def test_shapes_not_matching_the_spec(tmp_path, model):
    _, params = model
    wider = M.ModelSpec(hidden=(10, 5), activations=("leaky_relu", "tanh"), alpha=0.2)
    assert_refused(write_npz(tmp_path / "s.npz", params, header_of(wider)), r"dense0.W is [\d,]+ bytes, not an array of shape \(784, 10\)")


def test_missing_and_extra_params(tmp_path, model):
    _, params = model
    params["dense7.W"] = params.pop("dense1.W")
    err = assert_refused(write_npz(tmp_path / "k.npz", params, header_of()), "bad model file")
    assert "missing ['dense1.W']" in str(err) and "extra ['dense7.W']" in str(err)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_params(tmp_path, model, bad):
    _, params = model
    params["dense1.W"][2, 3] = bad
    assert_refused(
        write_npz(tmp_path / "n.npz", params, header_of()), "parameter dense1.W is not a finite float array"
    )


def test_integer_params(tmp_path, model):
    _, params = model
    params["dense2.b"] = np.zeros(10, dtype=np.int64)
    assert_refused(
        write_npz(tmp_path / "i.npz", params, header_of()), "parameter dense2.b is <i8, expected little-endian float32 or float64"
    )


def test_unreadable_array_inside_a_zip(tmp_path, saved):
    """A zip whose member is not a valid .npy (damaged in place, same size)."""
    data = bytearray(saved.read_bytes())
    at = data.find(b"\x93NUMPY")
    data[at : at + 6] = b"XXXXXX"
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(data))
    assert_refused(path, "bad model file: the magic string is not correct")


# -- any architecture, as data -------------------------------------------------------------


def residual_network():
    from tinygrad_digits import layers as L
    from tinygrad_digits.network import Network

    stack = L.Sequential(L.Dense(6, "tanh"), L.Residual(L.Sequential(L.Dense(6), L.LeakyRelu(0.2))),
                         L.Dropout(0.1), L.Dense(3))
    return Network(stack, (5,), input_mean=0.25, input_std=0.5)


def test_a_residual_network_saves_loads_and_predicts_the_same(tmp_path):
    from tinygrad_digits import model as M
    from tinygrad_digits.network import Network

    network = residual_network()
    params = network.layers.init(np.random.default_rng(0), network.input_shape)
    path = save_model(tmp_path / "residual.npz", network, params, {"note": "any architecture"})
    loaded, arrays, header = load_model(path)
    assert isinstance(loaded, Network) and "spec" not in header
    assert loaded.to_json() == network.to_json() and loaded.outputs == 3
    images = np.random.default_rng(1).random((4, 5))
    np.testing.assert_array_equal(M.predict_proba(loaded, arrays, images), M.predict_proba(network, params, images))
    # an independent reference: the same network in NumPy
    h = (images.astype(np.float32) - 0.25) / 0.5
    h = np.tanh(h @ params["dense0.W"] + params["dense0.b"])
    z = h @ params["residual0.block.dense0.W"] + params["residual0.block.dense0.b"]
    h = h + np.where(z > 0, z, 0.2 * z)
    logits = h @ params["dense1.W"] + params["dense1.b"]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(M.predict_proba(loaded, arrays, images), probs / probs.sum(1, keepdims=True), rtol=1e-5)


def test_an_mlp_file_records_its_layers_and_a_version_1_file_still_loads(tmp_path, model):
    spec, params = model
    path = save_model(tmp_path / "mlp.npz", spec, params)
    _, _, header = load_model(path)
    assert header["format_version"] == 2
    assert [layer["type"] for layer in header["architecture"]["layers"]] == ["Dense"] * (len(spec.hidden) + 1)
    old = write_npz(tmp_path / "v1.npz", params, json.dumps({**header_of(), "format_version": 1}))
    loaded, arrays, _ = load_model(old)
    assert loaded == spec
    for key in params:
        np.testing.assert_array_equal(arrays[key], params[key])


@pytest.mark.parametrize("change, match", [
    (lambda a: {**a, "layers": [{"type": "Conv9D"}]}, "unknown layer type 'Conv9D'"),
    (lambda a: {**a, "input_std": 0.0}, "input_std"),
    (lambda a: {**a, "input_shape": [-3]}, "input_shape"),
    (lambda a: {**a, "extra": 1}, "fields"),
    (lambda a: {**a, "layers": [{"type": "Dense", "units": 3, "colour": "red"}]}, "colour"),
])
def test_a_bad_architecture_is_refused_naming_what_is_wrong(tmp_path, change, match):
    network = residual_network()
    params = network.layers.init(np.random.default_rng(0), network.input_shape)
    path = save_model(tmp_path / "r.npz", network, params)
    _, _, header = load_model(path)
    header = {**header, "architecture": change(header["architecture"])}
    assert_refused(write_npz(tmp_path / "bad.npz", params, json.dumps(header)), match)


def test_a_spec_that_disagrees_with_its_architecture_is_refused(tmp_path, model):
    spec, params = model
    _, _, header = load_model(save_model(tmp_path / "m.npz", spec, params))
    header["architecture"]["layers"][0]["activation"] = "tanh"
    assert_refused(write_npz(tmp_path / "bad.npz", params, json.dumps(header)), "different models")
