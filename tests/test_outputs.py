"""Output paths are checked before a run starts, and a file replaced by another writer is noticed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinygrad_digits.apps import training as app
from tinygrad_digits.outputs import Ownership, check_outputs


def test_regular_or_absent_files_in_writable_folders_pass(tmp_path):
    (tmp_path / "old.npz").write_bytes(b"x")
    check_outputs({"--out": tmp_path / "old.npz", "--plot": tmp_path / "new" / "deeper" / "c.png"})
    check_outputs({"--out": tmp_path / "m.npz", "--plot": None})


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: os.mkfifo(p), "a device or a pipe"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: os.symlink("/dev/null", p), "a device or a pipe"),
    ],
)
def test_special_files_are_refused_naming_the_option(tmp_path, make, match):
    path = tmp_path / "x.npz"
    make(path)
    with pytest.raises(ValueError, match=f"--out {path}: .*{match}"):
        check_outputs({"--out": path})


def test_a_device_is_refused():
    with pytest.raises(ValueError, match="--out /dev/full: is a device or a pipe"):
        check_outputs({"--out": "/dev/full"})


def test_a_path_under_a_file_or_a_long_name_or_a_read_only_folder_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="--plot .*(Not a directory|is not a folder)"):
        check_outputs({"--plot": tmp_path / "f" / "c.png"})
    with pytest.raises(ValueError, match="longer than this file system allows"):
        check_outputs({"--out": tmp_path / ("m" * 250 + ".npz")})
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere
            pytest.skip("running as a user who can write a read-only folder")
        with pytest.raises(ValueError, match="not writable"):
            check_outputs({"--out": locked / "m.npz"})
    finally:
        locked.chmod(0o700)


def test_two_options_naming_one_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--plot and --out name the same file"):
        check_outputs({"--out": tmp_path / "m.png", "--plot": tmp_path / "m.png"})


def test_ownership_notices_a_replaced_file(tmp_path):
    path = tmp_path / "m.npz"
    owner = Ownership(path)
    assert owner.check()
    path.write_bytes(b"mine")
    owner.wrote()
    assert owner.check()
    (tmp_path / "other").write_bytes(b"theirs")
    os.replace(tmp_path / "other", path)
    assert not owner.check() and owner.lost


def test_a_run_whose_file_another_run_replaced_says_so(tmp_path, mnist_splits):
    from tinygrad_digits.modelfile import load_model

    out = tmp_path / "shared.npz"
    other = tmp_path / "other.npz"
    app.train_and_save(app.TrainRun(epochs=1, train_size=500), mnist_splits, other)

    def replace_it(record, params):  # another writer's file lands on ours between epochs
        if record["epoch"] == 1:
            os.replace(other, out)

    outcome = app.train_and_save(
        app.TrainRun(epochs=2, train_size=500), mnist_splits, out, on_epoch=replace_it
    )
    assert outcome["replaced"]
    load_model(out)  # whoever wrote last, the file is a whole model
    quiet = app.train_and_save(app.TrainRun(epochs=1, train_size=500), mnist_splits, tmp_path / "alone.npz")
    assert not quiet["replaced"]


def test_an_architecture_too_big_for_memory_is_refused_before_allocating(monkeypatch, mnist_splits):
    monkeypatch.setattr("tinygrad_digits.resources.available_memory", lambda: 50 << 20)
    run = app.TrainRun(spec_args={"hidden": (100_000,), "activations": ("relu",), "alpha": 0.1})
    with pytest.raises(
        ValueError, match=r"--hidden 100000: 79,\d{3},\d{3} parameters need about .* more than the 52.4 MB"
    ):
        app.prepare(run, mnist_splits)
    assert np.all(np.isfinite(mnist_splits.x_train[:1]))
