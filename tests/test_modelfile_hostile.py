"""Crafted model files: every one is refused with ModelFileError naming the file (one line), and
nothing is decompressed or allocated beyond what the architecture's shapes allow."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_digits import model as M
from tinygrad_digits import modelfile as MF
from tinygrad_digits.modelfile import ModelFileError, load_model, save_model

SPEC = M.ModelSpec(hidden=(6,), activations=("relu",), inputs=5, outputs=3, input_mean=0.1, input_std=0.3)


def params_of(dtype=np.float32) -> dict:
    return M.init_params(SPEC, np.random.default_rng(0), dtype=dtype)


def good_header() -> dict:
    return {
        "format": MF.FORMAT,
        "format_version": MF.FORMAT_VERSION,
        "package_version": "0.1.0",
        "architecture": SPEC.architecture().to_json(),
        "spec": SPEC.to_json(),
    }


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_zip(path: Path, members: dict, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip of raw members {name: bytes}."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def model_members(params=None, header=None) -> dict:
    params = params_of() if params is None else params
    header = good_header() if header is None else header
    text = header if isinstance(header, str) else json.dumps(header)
    return {
        **{f"{k}.npy": npy_bytes(v) for k, v in params.items()},
        "__model__.npy": npy_bytes(np.array(text)),
    }


def refused(path: Path, match: str) -> str:
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_a_valid_crafted_file_loads(tmp_path):
    spec, params, _ = load_model(write_zip(tmp_path / "ok.npz", model_members()))
    assert spec == SPEC and params["dense0.W"].dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, ">f4", ">f8", np.complex64, np.int32])
def test_arrays_of_other_float_kinds_or_byte_orders_are_refused(tmp_path, dtype):
    params = {k: v.astype(dtype) for k, v in params_of().items()}
    refused(write_zip(tmp_path / "d.npz", model_members(params)), "expected little-endian float32 or float64")


def test_fortran_ordered_arrays_load_as_their_values(tmp_path):
    params = {k: np.asfortranarray(v) for k, v in params_of(np.float64).items()}
    _, loaded, _ = load_model(write_zip(tmp_path / "f.npz", model_members(params)))
    for key, value in params.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_a_header_nested_100000_deep_is_refused(tmp_path):
    header = {**good_header(), "training": "NESTED"}
    text = json.dumps(header).replace('"NESTED"', "[" * 100_000 + "]" * 100_000)
    refused(write_zip(tmp_path / "deep.npz", model_members(header=text)), "nested")


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("training", "oops", "training must be an object"),
        ("training", {"seed": "abc"}, "training.seed must be an integer"),
        ("training", {"seed": 1.5}, "training.seed must be an integer"),
        ("training", {"seed": -1}, "training.seed must be an integer"),
        ("training", {"split_seed": True}, "training.split_seed must be an integer"),
        ("history", "none", "history must be a list"),
        ("history", [{"val_accuracy": "high"}], "history.val_accuracy must be a number"),
        ("metrics", {"accuracy": [1]}, "metrics.accuracy must be a number"),
        ("format_version", 1.5, "format_version must be an integer"),
        ("package_version", 3, "package_version must be a string"),
    ],
)
def test_header_fields_of_the_wrong_type_are_refused(tmp_path, field, value, match):
    header = {**good_header(), field: value}
    refused(write_zip(tmp_path / "h.npz", model_members(header=header)), match)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("input_mean", float("nan"), "input_mean must be a finite number"),
        ("input_std", float("inf"), "input_std must be"),
        ("input_std", 1e-300, "input_std must be"),
        ("input_mean", "0.1", "input_mean has the wrong type"),
        ("hidden", [6.5], "hidden has the wrong type"),
        ("activations", "relu", "activations has the wrong type"),
    ],
)
def test_spec_fields_that_do_not_fit_are_refused(tmp_path, field, value, match):
    header = {**good_header(), "spec": {**SPEC.to_json(), field: value}}
    del header["architecture"]
    refused(write_zip(tmp_path / "s.npz", model_members(header=header)), match)


def test_a_member_that_is_not_npy_is_refused(tmp_path):
    members = {**model_members(), "readme.txt": b"hello"}
    refused(write_zip(tmp_path / "m.npz", members), "member 'readme.txt' is not a .npy array")


def test_an_npy_with_a_zip_appended_is_refused(tmp_path):
    members = model_members()
    members["dense0.W.npy"] += (tmp_path / "x").write_bytes(b"") or write_zip(
        tmp_path / "inner.zip", {"a.npy": b"x" * 100}
    ).read_bytes()
    refused(write_zip(tmp_path / "a.npz", members), "parameter dense0.W is [\\d,]+ bytes")


def test_a_member_claiming_10_to_the_12_floats_is_refused_before_allocating(tmp_path):
    members = model_members()
    claim = npy_bytes(np.zeros((1, 1), np.float32)).replace(b"(1, 1)", b"(1000000, 1000000)")
    members["dense0.W.npy"] = claim
    tracemalloc.start()
    refused(write_zip(tmp_path / "c.npz", members), "dense0.W")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 << 20


def test_a_zip_bomb_is_refused_from_the_zip_directory_before_decompressing(tmp_path):
    members = model_members()
    members["dense0.W.npy"] += bytes(200 << 20)  # 200 MB of zeros deflate to about 200 kB
    path = write_zip(tmp_path / "bomb.npz", members)
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    refused(path, "parameter dense0.W is 209,715,[\\d,]+ bytes")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 << 20


def test_parameters_larger_than_the_memory_available_are_refused(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "ok.npz", model_members())
    monkeypatch.setattr(MF.resources, "available_memory", lambda: 100)
    refused(path, "more than the 100 bytes of memory available")


def _patch_member_flags(data: bytearray, flag: int | None = None, method: int | None = None) -> bytearray:
    """Set the general-purpose flag or the compression method in every local and central header."""
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            if flag is not None:
                struct.pack_into(
                    "<H", data, at + flag_at, struct.unpack_from("<H", data, at + flag_at)[0] | flag
                )
            if method is not None:
                struct.pack_into("<H", data, at + method_at, method)
            at = data.find(signature, at + 4)
    return data


@pytest.mark.parametrize("flag, method, match", [(0x1, None, "encrypted"), (None, 9, "compression method 9")])
def test_encrypted_or_deflate64_members_are_refused(tmp_path, flag, method, match):
    path = write_zip(tmp_path / "z.npz", model_members())
    path.write_bytes(bytes(_patch_member_flags(bytearray(path.read_bytes()), flag, method)))
    refused(path, match)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    import os

    path = tmp_path / "special.npz"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    refused(path, "not a regular file")


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "valid.npz"
    save_model(path, SPEC, params_of(), {"training": {"seed": 3}, "history": [{"epoch": 1, "val_loss": 0.5}]})
    return path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_bytes_give_a_clean_load_or_a_model_file_error(tmp_path, valid_bytes, data):
    raw = bytearray(valid_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "mutated.npz"
    path.write_bytes(bytes(raw))
    try:
        spec, params, header = load_model(path)
    except ModelFileError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
    else:
        assert isinstance(spec, M.ModelSpec) and all(np.isfinite(v).all() for v in params.values())
