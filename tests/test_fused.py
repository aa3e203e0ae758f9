"""Tests for the fused training paths (kernels/fused.py, kernels/steps.py and their
driver, fastpath.py, as train.py takes it).

A fused kernel must do what the general path (autodiff's value_and_grad, then
optimizers.update, one step at a time) does: the same parameters, history, callbacks and stops
for the same seed, for every optimizer, activation and depth. The one-thread kernel mirrors the
per-op kernels operation for operation, so its runs agree to round-off (in practice, to the
bit). The parallel kernel adds its sums up in another order (per thread, and over the sparse
first layer's non-background inputs only), so its runs agree to a looser round-off.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tinygrad_digits import fastpath as F
from tinygrad_digits import model as M
from tinygrad_digits import optimizers as O
from tinygrad_digits import train as T
from tinygrad_digits.kernels import fused, steps as step_kernels
from tinygrad_digits.kernels import softmax as softmax_kernels

INPUTS, OUTPUTS = 20, 5
HIDDEN = {1: (16,), 2: (16, 9), 3: (16, 9, 7)}


def data(n: int, seed: int):
    """Blobs that a small net learns in a few epochs: x (n, INPUTS) float32, labels (n,) int64."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(7).normal(0, 1.5, (OUTPUTS, INPUTS))
    labels = rng.integers(0, OUTPUTS, n)
    return (centers[labels] + rng.normal(0, 1, (n, INPUTS))).astype(np.float32), labels.astype(np.int64)


# the fast paths ("general" is the reference): the fused kernel in one thread, in parallel, and
# in parallel or in one thread with the sparse first layer; "auto" is what training takes by
# itself: the sparse first layer, the step in parts, and the kernel chosen as it goes
PATHS = ["fused", "parallel", "sparse", "sparse1", "auto"]
BACKGROUND = -10.0


def sparse_data(n: int, seed: int):
    """data(), with 70% of the inputs at one background value below the rest (as MNIST's blank
    pixels are, once normalized)."""
    x, labels = data(n, seed)
    x[np.random.default_rng(seed + 100).random(x.shape) < 0.7] = BACKGROUND
    return x, labels


def choose(monkeypatch, path: str):
    monkeypatch.setattr(F, "USE_FUSED", path != "general")
    monkeypatch.setattr(F, "USE_PARALLEL", None if path == "auto" else path in ("parallel", "sparse"))
    monkeypatch.setattr(F, "USE_SPARSE", path.startswith("sparse") or path == "auto")
    if path in ("parallel", "sparse", "auto"):
        import numba

        if numba.get_num_threads() < 2:
            pytest.skip("the parallel kernel needs two threads")


def run(monkeypatch, path: str, spec, optimizer, epochs=2, batch_size=32, n=150, make=None, **callbacks):
    """Train on blobs (sparse ones for the sparse path, or with make="sparse") along ``path``."""
    choose(monkeypatch, path)
    make = sparse_data if (make or path).startswith(("sparse", "auto")) else data
    x, y = make(n, 0)
    xv, yv = make(40, 1)
    params = M.init_params(spec, np.random.default_rng(3))
    config = T.TrainConfig(epochs=epochs, batch_size=batch_size, seed=5)
    result = T.train(spec, params, x, y, xv, yv, config, optimizer, **callbacks)
    return result, params


def strip(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in history]


def assert_same_run(a, b, loose: bool = False):
    """Same stop, params and history; ``loose`` for the parallel kernel's other order of sums."""
    (result_a, params_a), (result_b, params_b) = a, b
    rtol, atol = (1e-4, 1e-5) if loose else (1e-5, 1e-6)
    assert result_a.stopped == result_b.stopped
    for key in params_a:
        np.testing.assert_allclose(params_a[key], params_b[key], rtol=rtol, atol=atol, err_msg=key)
    assert len(result_a.history) == len(result_b.history)
    for ra, rb in zip(strip(result_a.history), strip(result_b.history)):
        assert ra.keys() == rb.keys()
        for key in ra:
            assert ra[key] == pytest.approx(rb[key], rel=rtol, abs=atol / 10), key


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("name", O.OPTIMIZERS)
def test_fused_paths_match_the_general_path(monkeypatch, path, name, activation, depth):
    spec = M.ModelSpec(hidden=HIDDEN[depth], activations=(activation,), alpha=0.2, inputs=INPUTS, outputs=OUTPUTS)
    # 150 images in batches of 32: 5 steps per epoch, the last of 22 rows
    # momentum's default rate on the sparse blobs' far-off background (-10) loses what it learned
    optimizer = O.OptimizerConfig(name, 0.02 if name == "momentum" else None, total_steps=2 * 5,
                                  weight_decay=1e-3 if depth != 2 else 0.0, schedule="cosine" if depth != 3 else "constant")
    assert F.fusable(M.dense_chain(spec) if not spec.dropout else None, M.init_params(spec, np.random.default_rng(0)), optimizer)
    fast = run(monkeypatch, path, spec, optimizer)
    general = run(monkeypatch, "general", spec, optimizer, make=path)
    assert fast[0].stopped is None
    assert_same_run(fast, general, loose=path != "fused")


@pytest.mark.parametrize("path", PATHS)
def test_each_path_takes_the_kernel_it_names(monkeypatch, path):
    choose(monkeypatch, path)
    spec = M.ModelSpec(hidden=(8,), inputs=INPUTS, outputs=OUTPUTS)
    x, y = (sparse_data if path.startswith(("sparse", "auto")) else data)(64, 0)
    steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, M.init_params(spec, np.random.default_rng(0)), x, y, 32,
                          O.OptimizerConfig("adam"))
    assert steps.parts == (2 if path in ("parallel", "sparse", "auto") else 1)
    assert steps.adaptive == (path == "auto")
    if path != "auto":
        assert steps.kernel is (step_kernels.train_steps_parallel if steps.parts > 1 else step_kernels.train_steps)
    assert steps.sparse == path.startswith(("sparse", "auto"))
    if steps.sparse:
        assert steps.background == np.float32(BACKGROUND)


@pytest.mark.parametrize("path", PATHS)
def test_fused_paths_reach_the_general_paths_accuracy_on_mnist(monkeypatch, mnist_splits, path):
    """On MNIST (81% background: the sparse path's own case), the same test accuracy to 0.1
    percentage points and the same losses, epoch by epoch."""
    s = mnist_splits
    x, y = s.x_train[:2000], s.y_train[:2000]
    spec = M.ModelSpec(hidden=(64,), activations=("relu",), input_mean=float(x.mean()), input_std=float(x.std()))
    runs = []
    for which in (path, "general"):
        choose(monkeypatch, which)
        params = M.init_params(spec, np.random.default_rng(0))
        optimizer = O.OptimizerConfig("adam", total_steps=2 * T.steps_per_epoch(2000, 128))
        result = T.train(spec, params, M.normalize(spec, x), y, M.normalize(spec, s.x_val[:1000]), s.y_val[:1000],
                         T.TrainConfig(epochs=2, batch_size=128), optimizer)
        test_accuracy = np.mean(M.predict(spec, params, s.x_test[:2000]) == s.y_test[:2000])
        runs.append((result, params, test_accuracy))
    if path == "fused":
        assert_same_run(runs[0][:2], runs[1][:2])
    for fast, general in zip(runs[0][0].history, runs[1][0].history):
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            assert fast[key] == pytest.approx(general[key], rel=1e-3), key
    assert abs(runs[0][2] - runs[1][2]) <= 0.001
    assert runs[0][2] > 0.8


def test_callbacks_see_every_step_and_the_trained_params(monkeypatch):
    spec = M.ModelSpec(hidden=(8,), inputs=INPUTS, outputs=OUTPUTS)
    optimizer = O.OptimizerConfig("momentum", total_steps=10)
    seen = {}
    for path in (*PATHS, "general"):
        calls, snapshots = seen[path] = [], []
        run(monkeypatch, path, spec, optimizer, make="dense", on_batch=lambda *a, calls=calls: calls.append(a),
            on_epoch=lambda r, p, snapshots=snapshots: snapshots.append({k: v.copy() for k, v in p.items()}))
    for path in PATHS:
        assert seen[path][0] == seen["general"][0] == [(s, 5) for s in range(1, 6)] * 2
        for fast, general in zip(seen[path][1], seen["general"][1]):
            for key in fast:
                np.testing.assert_allclose(fast[key], general[key], rtol=1e-4, atol=1e-5)


def test_on_epoch_changes_to_the_params_reach_the_next_epoch(monkeypatch):
    spec = M.ModelSpec(hidden=(8,), inputs=INPUTS, outputs=OUTPUTS)
    optimizer = O.OptimizerConfig("sgd", total_steps=15)

    def shrink(record, params):
        for value in params.values():
            value *= 0.5

    for path in PATHS:
        runs = [run(monkeypatch, p, spec, optimizer, epochs=3, make=path, on_epoch=shrink) for p in (path, "general")]
        assert_same_run(*runs, loose=path != "fused")


def test_divergence_stops_both_paths_alike(monkeypatch):
    spec = M.ModelSpec(hidden=(8,), inputs=INPUTS, outputs=OUTPUTS)
    optimizer = O.OptimizerConfig("sgd", learning_rate=1e38, schedule="constant")
    for path in PATHS:
        with np.errstate(over="ignore", invalid="ignore"):
            runs = [run(monkeypatch, p, spec, optimizer, epochs=3, make=path) for p in (path, "general")]
        assert runs[0][0].stopped.startswith("diverged")
        assert runs[0][0].stopped == runs[1][0].stopped
        assert_same_run(*runs, loose=path != "fused")


def test_an_interrupt_keeps_the_steps_the_kernel_finished(monkeypatch):
    """The fused path replays on_batch after each chunk of steps: a Ctrl-C raised there keeps
    (and reports) every step the kernel finished, which equals a general run stopped there."""
    spec = M.ModelSpec(hidden=(8,), inputs=INPUTS, outputs=OUTPUTS)
    optimizer = O.OptimizerConfig("adam", total_steps=20)

    def stop_at(limit):
        def on_batch(step, steps):
            if step == limit:
                raise KeyboardInterrupt
        return on_batch

    for path in PATHS:
        fast = run(monkeypatch, path, spec, optimizer, n=600, on_batch=stop_at(2))
        assert fast[0].stopped.startswith("interrupted during epoch 1, after ")
        trained = int(fast[0].stopped.split("after ")[1].split(" of")[0])
        steps_done = -(-trained // 32)
        assert steps_done >= 2
        general = run(monkeypatch, "general", spec, optimizer, n=600, make=path, on_batch=stop_at(steps_done))
        assert_same_run(fast, general, loose=path != "fused")


@pytest.mark.parametrize("path", PATHS)
def test_same_seed_same_fused_run(monkeypatch, path):
    spec = M.ModelSpec(hidden=(16, 8), activations=("tanh",), inputs=INPUTS, outputs=OUTPUTS)
    optimizer = O.OptimizerConfig("adam", total_steps=10)
    a, b = (run(monkeypatch, path, spec, optimizer) for _ in range(2))
    assert strip(a[0].history) == strip(b[0].history)
    for key in a[1]:
        np.testing.assert_array_equal(a[1][key], b[1][key])


def test_the_fused_path_is_only_taken_where_it_is_exact():
    spec = M.ModelSpec(hidden=(8,), inputs=INPUTS, outputs=OUTPUTS)
    optimizer = O.OptimizerConfig("adam")
    float32 = M.init_params(spec, np.random.default_rng(0))
    assert F.fusable(M.dense_chain(spec) if not spec.dropout else None, float32, optimizer)
    assert not F.fusable(M.dense_chain(spec) if not spec.dropout else None, M.init_params(spec, np.random.default_rng(0), dtype=np.float64), optimizer)



@pytest.mark.parametrize("rows", [1, 7, 33])
def test_softmax_cross_entropy_rows_of_a_whole_batch_match_the_allocating_kernel(rng, rows):
    logits = rng.normal(0, 3, (rows, 10)).astype(np.float32)
    labels = rng.integers(0, 10, rows).astype(np.int64)
    dlogits = np.empty_like(logits)
    loss_sum, correct = softmax_kernels.softmax_cross_entropy_rows(logits, labels, dlogits, 1.0 / rows)
    loss = loss_sum * (1.0 / rows)
    ref_loss, ref_dlogits, ref_correct = softmax_kernels.softmax_cross_entropy(logits, labels)
    assert loss == ref_loss and correct == ref_correct
    np.testing.assert_array_equal(dlogits, ref_dlogits)


def test_mlp_forward_matches_model_forward(rng):
    spec = M.ModelSpec(hidden=(16, 9), activations=("relu", "sigmoid"), inputs=INPUTS, outputs=OUTPUTS)
    params = M.init_params(spec, rng)
    x = rng.normal(size=(7, INPUTS)).astype(np.float32)
    steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, params, x, np.zeros(7, np.int64), 7,
                          O.OptimizerConfig("sgd"))
    logits = fused.mlp_forward(steps.flat, steps.layout, steps.alpha, x, steps.outs)
    np.testing.assert_array_equal(logits, M.forward(spec, params, x))


def test_warm_up_covers_the_fused_kernel():
    from tinygrad_digits import warmup

    assert {"fused", "steps", "sparse"} <= set(warmup.KERNEL_MODULES)


def test_the_kernel_flushes_subnormals_and_restores_the_fp_environment(monkeypatch):
    """Adam's m of a weight whose gradient is 0 decays into the subnormal range, where every
    operation costs a microcode assist; inside train_steps it is flushed to zero instead, and
    the floating-point environment is as before once the kernel returns."""
    from numba import njit

    from tinygrad_digits.kernels import floatenv

    @njit
    def read_mxcsr():
        return floatenv.mxcsr()

    monkeypatch.setattr(F, "USE_PARALLEL", False)
    spec = M.ModelSpec(hidden=(3,), inputs=INPUTS, outputs=OUTPUTS)
    x = np.zeros((4, INPUTS), np.float32)  # zero inputs: the first layer's weight gradients are 0
    y = np.zeros(4, np.int64)
    steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, M.init_params(spec, np.random.default_rng(0)), x, y, 4,
                          O.OptimizerConfig("adam"))
    assert steps.kernel is step_kernels.train_steps
    first_layer = slice(0, INPUTS * 3)
    steps.slot1[first_layer] = 1.3e-38  # normal; one decay by (1 - beta1) makes it subnormal
    before = read_mxcsr()
    assert steps.steps(np.arange(4), 0, 1, np.full(1, 1e-3, np.float32)) == -1
    assert read_mxcsr() == before
    m = steps.slot1[first_layer]
    tiny = np.finfo(np.float32).tiny
    if floatenv._X86:
        assert not np.any((m != 0) & (np.abs(m) < tiny))


def test_the_parallel_kernel_flushes_subnormals_in_its_threads_and_gives_blas_back(monkeypatch):
    """Each thread of the parallel kernel flushes subnormals as the one-thread kernel does, the
    caller's floating-point environment is as before, and BLAS gets its threads back."""
    from numba import njit
    from threadpoolctl import threadpool_info

    from tinygrad_digits.kernels import floatenv

    @njit
    def read_mxcsr():
        return floatenv.mxcsr()

    choose(monkeypatch, "sparse")
    spec = M.ModelSpec(hidden=(3,), inputs=INPUTS, outputs=OUTPUTS)
    x = np.zeros((8, INPUTS), np.float32)  # all background: the first layer's weight gradients are 0
    y = np.zeros(8, np.int64)
    steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, M.init_params(spec, np.random.default_rng(0)), x, y, 8,
                          O.OptimizerConfig("adam"))
    assert steps.kernel is step_kernels.train_steps_parallel and steps.sparse
    first_layer = slice(0, INPUTS * 3)
    steps.slot1[first_layer] = 1.3e-38  # normal; one decay by (1 - beta1) makes it subnormal
    before, blas_before = read_mxcsr(), [lib["num_threads"] for lib in threadpool_info()]
    assert steps.steps(np.arange(8), 0, 1, np.full(1, 1e-3, np.float32)) == -1
    assert read_mxcsr() == before
    assert [lib["num_threads"] for lib in threadpool_info()] == blas_before
    m = steps.slot1[first_layer]
    if floatenv._X86:
        assert not np.any((m != 0) & (np.abs(m) < np.finfo(np.float32).tiny))


def test_mlp_forward_sparse_matches_mlp_forward(rng):
    spec = M.ModelSpec(hidden=(16, 9), activations=("relu", "tanh"), inputs=INPUTS, outputs=OUTPUTS)
    params = M.init_params(spec, rng)
    x = rng.normal(size=(7, INPUTS)).astype(np.float32)
    x[rng.random(x.shape) < 0.7] = np.float32(-0.4)
    steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, params, x, np.zeros(7, np.int64), 7,
                          O.OptimizerConfig("sgd"))
    w_sums = params["dense0.W"].sum(axis=0, dtype=np.float32)
    dense = fused.mlp_forward(steps.flat, steps.layout, steps.alpha, x, steps.outs).copy()
    skipping = fused.mlp_forward_sparse(steps.flat, steps.layout, steps.alpha, x, np.float32(-0.4), w_sums, steps.outs)
    np.testing.assert_allclose(skipping, dense, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", PATHS)
def test_a_last_batch_of_one_row_leaves_one_part_empty_and_still_matches(monkeypatch, path):
    """129 images in batches of 128: the last step's one row goes to one part, the other part has
    none (an empty share of every product must add nothing)."""
    spec = M.ModelSpec(hidden=(16,), inputs=INPUTS, outputs=OUTPUTS)
    optimizer = O.OptimizerConfig("adam", total_steps=4)
    fast = run(monkeypatch, path, spec, optimizer, batch_size=128, n=129)
    general = run(monkeypatch, "general", spec, optimizer, batch_size=128, n=129, make=path)
    assert_same_run(fast, general, loose=path != "fused")


def test_both_kernels_on_the_same_parts_train_alike_to_the_bit(monkeypatch):
    """With the step in parts for the threads, the one-thread kernel runs the parts one after
    another and the parallel one side by side: the same arithmetic, so the trainer may switch."""
    spec = M.ModelSpec(hidden=(16, 9), inputs=INPUTS, outputs=OUTPUTS)
    choose(monkeypatch, "sparse")
    for make in (data, sparse_data):
        x, y = make(150, 0)
        runs = []
        for parallel in (False, True):
            steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, M.init_params(spec, np.random.default_rng(3)), x, y,
                                 32, O.OptimizerConfig("adam"), parallel=True)
            assert steps.parts == 2
            rates = np.full(5, 1e-2, np.float32)
            for epoch in range(2):
                order = np.random.default_rng(epoch).permutation(len(x))
                assert steps.steps(order, 0, 5, rates, parallel) == -1
            runs.append((steps.flat.copy(), steps.progress.copy()))
        np.testing.assert_array_equal(runs[0][0], runs[1][0])
        np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("parallel", [False, True])
def test_steps_in_chunks_train_as_the_steps_in_one_call(monkeypatch, parallel):
    """A part runs the next step's first-layer products right after its weights phase, within a
    call: chunks that end anywhere (and start with those products) give the same bits."""
    spec = M.ModelSpec(hidden=(16, 9), inputs=INPUTS, outputs=OUTPUTS)
    choose(monkeypatch, "sparse")
    x, y = sparse_data(150, 0)
    runs = []
    for cuts in ([0, 5], [0, 1, 2, 4, 5]):
        steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, M.init_params(spec, np.random.default_rng(3)), x, y,
                             32, O.OptimizerConfig("adam"), parallel=parallel)
        assert steps.sparse and steps.parts == (2 if parallel else 1)
        order = np.random.default_rng(1).permutation(len(x))
        for first, last in itertools.pairwise(cuts):
            assert steps.steps(order, first, last, np.full(last - first, 1e-2, np.float32)) == -1
        runs.append((steps.flat.copy(), steps.progress[step_kernels.LOSS_SUM]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] > 0


@pytest.mark.parametrize("parallel_cost", [1.0, 3.0])
def test_training_keeps_to_the_kernel_that_is_faster_as_it_goes(monkeypatch, parallel_cost):
    """The trainer times every chunk (here a fake clock: a step costs 2 units on one thread and
    ``parallel_cost`` in parallel), tries the other kernel now and then, and keeps the faster; the
    run comes out as on the parallel kernel alone."""
    spec = M.ModelSpec(hidden=(16,), inputs=INPUTS, outputs=OUTPUTS)
    clock = {"now": 0.0}
    used = []
    original = F.FusedSteps.steps

    def steps(self, order, first, last, rates, parallel=None):
        used.append((parallel, last - first))
        clock["now"] += (parallel_cost if parallel else 2.0) * (last - first)
        return original(self, order, first, last, rates, parallel)

    monkeypatch.setattr(F.FusedSteps, "steps", steps)
    monkeypatch.setattr(F, "_clock", lambda: clock["now"])
    monkeypatch.setattr(F, "_CHUNK_WORK", 1.1e5)  # chunks of 8 steps: many decisions in a short run
    result, params = run(monkeypatch, "auto", spec, O.OptimizerConfig("adam", total_steps=40), epochs=4, n=600)
    faster = parallel_cost < 2.0
    kernels = [p for p, _ in used]
    assert True in kernels and False in kernels  # both were timed
    chunks = [p for p, count in used if count > F.PROBE_STEPS]  # all but the short runs of either kernel
    assert chunks and chunks[-1] is faster and chunks.count(faster) >= len(chunks) - 1
    monkeypatch.setattr(F.FusedSteps, "steps", original)
    alone = run(monkeypatch, "sparse", spec, O.OptimizerConfig("adam", total_steps=40), epochs=4, n=600)
    for key in params:
        np.testing.assert_array_equal(params[key], alone[1][key])


def test_the_first_step_after_a_change_of_kernel_is_not_timed(monkeypatch):
    """That step pays for the change (threads woken, data moved between the cores' caches): timed,
    it would make every short run of the other kernel look slow (here 12 units on top, against 1 a
    step in parallel and 2 in one thread) and keep the trainer on the slower kernel."""
    spec = M.ModelSpec(hidden=(16,), inputs=INPUTS, outputs=OUTPUTS)
    clock, used = {"now": 0.0}, []
    original = F.FusedSteps.steps

    def steps(self, order, first, last, rates, parallel=None):
        changed = bool(used) and used[-1][0] != parallel
        used.append((parallel, last - first))
        clock["now"] += (1.0 if parallel else 2.0) * (last - first) + (12.0 if changed else 0.0)
        return original(self, order, first, last, rates, parallel)

    monkeypatch.setattr(F.FusedSteps, "steps", steps)
    monkeypatch.setattr(F, "_clock", lambda: clock["now"])
    monkeypatch.setattr(F, "_CHUNK_WORK", 1.1e5)
    run(monkeypatch, "auto", spec, O.OptimizerConfig("adam", total_steps=40), epochs=4, n=600)
    chunks = [p for p, count in used if count > F.PROBE_STEPS]
    assert False in [p for p, _ in used] and chunks[-1] is True and chunks.count(True) >= len(chunks) - 1
    changes = [count for (before, _), (now, count) in zip(used[1:], used[2:]) if now != before]
    assert changes and all(count == 1 for count in changes)  # after both kernels' first runs


def test_softmax_regression_takes_the_fused_path_and_agrees(rng, monkeypatch):
    """--hidden none: one dense layer, fused, the general path's parameters to float32 rounding;
    a convnet never takes the fused path."""
    spec = M.ModelSpec(hidden=())
    x, y = rng.random((300, 784)).astype(np.float32), rng.integers(0, 10, 300)
    config, adam = T.TrainConfig(epochs=2, batch_size=32), O.OptimizerConfig("adam", None, "cosine", total_steps=20)
    trained = {}
    for path in ("fused", "general"):
        monkeypatch.setattr(F, "USE_FUSED", path == "fused")
        params = M.init_params(spec, np.random.default_rng(1))
        assert (T._fused_steps(spec, params, x, y, config, adam, None, None) is not None) == (path == "fused")
        T.train(spec, params, x, y, x[:0], y[:0], config, adam)
        trained[path] = params
    for key in trained["fused"]:
        np.testing.assert_allclose(trained["fused"][key], trained["general"][key], atol=1e-6, err_msg=key)
    monkeypatch.setattr(F, "USE_FUSED", True)
    cnn = M.ModelSpec(hidden=(), conv=(2,))
    images = M.normalize(cnn, x)
    assert T._fused_steps(cnn, M.init_params(cnn, rng), images, y, config, adam, None, None) is None
