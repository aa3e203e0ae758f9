"""Work shared among threads: thread_choice's split covers its range once, and augmentation and
the optimizers' updates give the same bits whole and in parts run at the same time."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tinygrad_digits import augment as A
from tinygrad_digits import optimizers as O
from tinygrad_digits import thread_choice as TC


class Forced:
    """A thread choice that always cuts the work into ``parts`` (1: whole), run at once."""

    def __init__(self, parts: int):
        self.parts, self.calls = parts, []

    def split(self, key, work, least, run):
        self.calls.append((getattr(key, "__name__", key), work))
        TC._in_parts(run, work, self.parts)


def test_split_covers_the_range_once_with_its_parts_running_at_once():
    seen, together = [], threading.Barrier(3, timeout=30)  # broken unless 3 parts meet

    def run(start, stop):
        together.wait()
        seen.extend(range(start, stop))

    TC._in_parts(run, 1001, 3)
    assert sorted(seen) == list(range(1001))
    seen.clear()
    TC.ThreadChoice().split("site", 10, 100, lambda start, stop: seen.extend(range(start, stop)))
    assert seen == list(range(10))  # less work than the least: whole


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("recipe", ["elastic", "realistic"])
def test_augmentation_in_parts_writes_the_bits_of_the_whole(monkeypatch, mnist_splits, dtype, recipe):
    x = mnist_splits.x_test[:61].astype(dtype)
    mean, std = 0.13, 0.31
    results = []
    for parts in (1, 3):
        choice = Forced(parts)
        monkeypatch.setattr(A, "CHOICE", choice)
        results.append(A.augment_batch(A.augmentation(recipe), (x - mean) / std, np.random.default_rng(4),
                                       fill=-mean / std, scale=std))
        ink = ("thickness", "blur", "low_res", "peak_one", "tone") if recipe == "realistic" else ()
        assert choice.calls == [(("warp", *ink), 61)]  # the whole chain, once, over every image
    assert results[0].tobytes() == results[1].tobytes() and results[0].dtype == dtype


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizer_updates_in_parts_write_the_bits_of_the_whole(rng, monkeypatch, name):
    params = {"dense0.W": rng.normal(size=(301, 300)).astype(np.float32)}
    grads = {"dense0.W": rng.normal(size=(301, 300)).astype(np.float32)}
    config = O.OptimizerConfig(name, learning_rate=0.01, weight_decay=0.001)
    results = []
    for parts in (1, 3):
        choice = Forced(parts)
        monkeypatch.setattr(O, "CHOICE", choice)
        trained = {k: v.copy() for k, v in params.items()}
        state = O.init(config, trained)
        for _ in range(3):
            O.update(config, trained, grads, state)
        assert choice.calls == [(f"{name}_update", 301 * 300)] * 3
        moments = b"".join(v.tobytes() for k, v in state.items() if k != "step")
        results.append(trained["dense0.W"].tobytes() + moments)
    assert results[0] == results[1]
    assert trained["dense0.W"].tobytes() != params["dense0.W"].tobytes()
