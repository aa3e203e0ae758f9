"""The drawing window's models without a screen: offers, switching, learning from saved drawings."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tinygrad_digits import paths, registry
from tinygrad_digits.apps import learning
from tinygrad_digits.apps import training as app


def test_offers_are_the_quick_mlp_and_the_presets_that_exist(monkeypatch):
    assert learning.offers()[0][0] is None and "seconds" in learning.offers()[0][1]
    monkeypatch.setattr(registry, "PRESETS", ("best",))
    assert [name for name, _ in learning.offers()] == [None]
    monkeypatch.setattr(registry, "PRESETS", ("best", "cnn"))
    assert [name for name, _ in learning.offers()] == [None, "cnn"]
    assert learning.offer_run(None, 500) == app.TrainRun(train_size=500)


def test_next_model_cycles_through_the_models_folder(model_path):
    assert learning.next_model(None) is None
    folder = paths.models_dir()
    folder.mkdir(parents=True)
    shutil.copy(model_path, folder / "a.npz")
    assert learning.next_model(None) == folder / "a.npz" and learning.next_model(folder / "a.npz") is None
    shutil.copy(model_path, folder / "b.npz")
    assert learning.next_model(folder / "a.npz") == folder / "b.npz"
    assert learning.next_model(folder / "b.npz") == folder / "a.npz"
    assert learning.next_model(model_path) == folder / "a.npz"  # a file elsewhere: the first


def test_learning_needs_saved_drawings(model_path, tmp_path):
    with pytest.raises(ValueError, match="no saved drawings yet"):
        learning.learn_from_drawings(model_path, tmp_path / "none")
    (tmp_path / "d" / "3").mkdir(parents=True)
    with pytest.raises(ValueError, match="no saved drawings with ink"):
        learning.learn_from_drawings(model_path, tmp_path / "d")


def test_learning_from_drawings_reports_before_and_after(model_path, tmp_path, mnist_splits):
    from PIL import Image

    from tinygrad_digits.model import predict
    from tinygrad_digits.modelfile import load_model

    from tinygrad_digits.apps.image_folders import load_image_folder

    spec, params, _ = load_model(model_path)
    x, y = mnist_splits.x_test[:400], mnist_splits.y_test[:400]
    for i in np.flatnonzero(predict(spec, params, x) != y):  # what the model misreads, saved as drawings are
        path = tmp_path / "drawings" / str(y[i]) / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(255 - x[i].reshape(28, 28) * 255).astype(np.uint8)).resize((112, 112)).save(path)
    saved = load_image_folder(tmp_path / "drawings")
    right = predict(spec, params, saved.images) == saved.labels
    for path in np.asarray(saved.files, dtype=object)[right]:  # prepared as drawings, some read right
        path.unlink()
    wrong = np.flatnonzero(~right)
    assert len(wrong) >= 3
    calls = []
    outcome = learning.learn_from_drawings(model_path, tmp_path / "drawings", lambda f, m: calls.append(f),
                                           train_size=2000)
    assert outcome["path"] == paths.models_dir() / "recognize-model-tuned.npz" and outcome["path"].is_file()
    assert outcome["drawings"] == len(wrong) and outcome["before"] == 0 and outcome["after"] >= 0.5
    assert calls[-1] == 1.0 and all(0 <= f <= 1 for f in calls) and calls == sorted(calls)
