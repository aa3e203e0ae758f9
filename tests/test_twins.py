"""Kernels compiled twice, in the calling thread and over Numba's threads: the threaded twin
writes the same bits as the one-thread kernel, for augmentation and the optimizers' updates."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_digits import augment as A
from tinygrad_digits import optimizers as O
from tinygrad_digits.kernels import augment as warp_kernels
from tinygrad_digits.kernels import ink, optim

N, SIDE = 37, 28  # more images than threads, and not a multiple of them


def images(rng, dtype):
    x = rng.random((N, SIDE * SIDE)).astype(dtype)
    x[x < 0.6] = 0
    return x


def image_cases(rng, dtype):
    """(name, the kernel's arguments after images and out)."""
    fill = dtype(0.1)
    matrices, offsets, fields = A.random_transforms(A.augmentation("elastic"), N, rng)
    toned = np.where(rng.random(N) < 0.5, np.arange(N), -1)
    noisy = np.where(rng.random(N) < 0.5, np.arange(N), -1)
    paper = rng.uniform(0, 0.1, N).astype(dtype)
    return [
        ("warp", (SIDE, matrices, offsets, fields, fill)),
        ("thickness", (SIDE, rng.uniform(-1, 2, N), fill)),
        ("blur", (SIDE, rng.uniform(0, 1.5, N) * (rng.random(N) < 0.7), fill)),
        ("low_resolution", (SIDE, rng.integers(4, SIDE + 1, N), fill)),
        ("peak_one", (dtype(0.3), dtype(0.1), dtype(1e-3))),
        ("tone", (dtype(0.3), dtype(-0.1), dtype(1), True, toned, paper, 1 - paper,
                  rng.random((N, SIDE * SIDE)).astype(dtype), noisy, rng.uniform(0, 0.1, N).astype(dtype),
                  rng.standard_normal((N, SIDE * SIDE)).astype(dtype))),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(6))
def test_image_kernels_threaded_twins_write_the_same_bits(rng, dtype, case):
    x = images(rng, dtype)
    name, args = image_cases(rng, dtype)[case]
    module = warp_kernels if name == "warp" else ink
    one = getattr(module, name)(x, np.empty_like(x), *args)
    threaded = getattr(module, name + "_parallel")(x, np.empty_like(x), *args)
    assert one.tobytes() == threaded.tobytes() and one.dtype == dtype
    assert not np.array_equal(one, x)  # the case changed the images


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sgd_update", "momentum_update", "adam_update"])
def test_optimizer_updates_threaded_twins_write_the_same_bits(rng, dtype, name):
    size = 10_007
    f = dtype
    p, g = rng.normal(size=size).astype(dtype), rng.normal(size=size).astype(dtype)
    m, v = rng.normal(size=size).astype(dtype), rng.uniform(0, 2, size).astype(dtype)
    scalars = {"sgd_update": (f(0.1), f(0.01)), "momentum_update": (f(0.05), f(0.9), f(0.01)),
               "adam_update": (f(3e-3), f(0.1), f(1e-3), f(1e-7), f(0.01))}[name]
    state = {"sgd_update": (), "momentum_update": (m,), "adam_update": (m, v)}[name]
    results = []
    for kernel in (getattr(optim, name), getattr(optim, name + "_parallel")):
        arrays = [p.copy(), g] + [s.copy() for s in state]
        kernel(*arrays, *scalars)
        results.append(b"".join(a.tobytes() for a in arrays))
    assert results[0] == results[1]


class Forced:
    """A thread choice that always takes one of the twins."""

    def __init__(self, parallel: bool):
        self.parallel, self.calls = parallel, []

    def twin(self, one, threaded, work, least, *args):
        self.calls.append((one.__name__, work >= least))
        return (threaded if self.parallel else one)(*args)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_the_trainer_s_updates_take_either_twin_with_the_same_result(rng, monkeypatch, name):
    """optimizers.update on a parameter large enough to share, through each twin in turn."""
    params = {"dense0.W": rng.normal(size=(300, 300)).astype(np.float32)}
    grads = {"dense0.W": rng.normal(size=(300, 300)).astype(np.float32)}
    config = O.OptimizerConfig(name, learning_rate=0.01, weight_decay=0.001)
    results = []
    for parallel in (False, True):
        choice = Forced(parallel)
        monkeypatch.setattr(O, "CHOICE", choice)
        trained = {k: v.copy() for k, v in params.items()}
        state = O.init(config, trained)
        for _ in range(3):
            O.update(config, trained, grads, state)
        assert choice.calls == [(f"{name}_update", True)] * 3
        results.append(trained["dense0.W"])
    assert results[0].tobytes() == results[1].tobytes()
    assert not np.array_equal(results[0], params["dense0.W"])
