"""Tests for thread_choice (which compilation of an image kernel runs) and for the promise it
rests on: the image kernels give the same bits in one thread and over threads."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_digits import conv_ops, ops
from tinygrad_digits.autodiff import grad
from tinygrad_digits.thread_choice import PROBE_EVERY, PairedChoice, ThreadChoice


def drive(choice: ThreadChoice, seconds: dict, calls: int, key="site") -> list[bool]:
    """Run ``calls`` calls whose threaded / one-thread kernels take seconds[True] / [False]."""
    picks = []
    for _ in range(calls):
        parallel = choice.pick(key)
        choice.record(key, parallel, seconds[parallel])
        picks.append(parallel)
    return picks


def test_it_tries_both_then_keeps_the_faster_probing_ever_less_often():
    choice = ThreadChoice()
    picks = drive(choice, {True: 1.0, False: 2.0}, 400)
    assert picks[:2] == [True, False]
    slow = [i for i, p in enumerate(picks) if not p]
    gaps = np.diff(slow[1:])
    assert all(b >= a for a, b in zip(gaps, gaps[1:]))  # probes of the slower kernel thin out
    assert gaps[-1] == PROBE_EVERY + 1
    assert sum(picks) > 0.95 * len(picks)


def test_it_follows_the_machine_when_the_threaded_kernel_turns_slow():
    choice = ThreadChoice()
    drive(choice, {True: 1.0, False: 2.0}, 300)
    picks = drive(choice, {True: 8.0, False: 2.0}, 300)  # another process takes a core
    assert sum(picks[-200:]) <= 200 // PROBE_EVERY + 1  # but for its probes
    picks = drive(choice, {True: 1.0, False: 2.0}, 300)  # and gives it back
    assert sum(picks[-200:]) >= 190  # its probes of the one-thread kernel thin out again


def test_a_first_call_that_compiled_is_forgotten():
    choice = ThreadChoice()
    choice.record("site", choice.pick("site"), 5.0)  # threaded, with its compilation
    assert drive(choice, {True: 1.0, False: 2.0}, 20)[-10:].count(True) >= 8


def test_sites_are_chosen_apart():
    choice = ThreadChoice()
    drive(choice, {True: 1.0, False: 2.0}, 100, key="a")
    drive(choice, {True: 3.0, False: 2.0}, 100, key="b")
    assert drive(choice, {True: 1.0, False: 2.0}, 50, key="a")[-10:].count(True) >= 9
    assert drive(choice, {True: 3.0, False: 2.0}, 50, key="b")[-10:].count(False) >= 9


def run_chunks(choice: PairedChoice, step_seconds, chunks: int) -> list[tuple[bool, int]]:
    """``chunks`` runs as the fused trainer makes them; step_seconds(kernel, run) is a step's time."""
    runs = []
    for _ in range(chunks):
        parallel, steps = choice.plan(38)
        choice.timed(parallel, steps, steps * step_seconds(parallel, len(runs)))
        runs.append((parallel, steps))
    return runs


def in_use(runs) -> list[bool]:
    return [parallel for parallel, steps in runs if steps == 38]


def paired_choice(parallel=True) -> PairedChoice:
    return PairedChoice(parallel, margin=0.9, probe=4, gaps=(2, 64))


def test_the_fused_trainer_keeps_the_faster_kernel_and_compares_it_ever_less_often():
    for first in (True, False):
        runs = run_chunks(paired_choice(first), lambda parallel, _: 1.0 if parallel else 1.6, 400)
        assert in_use(runs)[-300:] == [True] * 300
        probes = [i for i, (parallel, steps) in enumerate(runs) if not parallel and steps == 4]
        gaps = np.diff(probes[2:])
        assert all(b >= a for a, b in zip(gaps, gaps[1:])) and gaps[-1] == 64


def test_a_whole_machine_slowing_down_does_not_send_it_to_the_slower_kernel():
    """Both kernels 1.6x slower from the 100th run: a step in parallel now takes longer than the
    one-thread kernel took when it was last timed, but the two side by side still say parallel."""
    speed = lambda run: 1.0 if run < 100 else 1.6  # noqa: E731
    runs = run_chunks(paired_choice(), lambda parallel, run: speed(run) * (1.0 if parallel else 1.6), 300)
    assert in_use(runs).count(False) == 0


def test_it_follows_a_core_taken_at_once_and_given_back_at_the_next_comparison():
    """Another process takes a core at run 200 (the parallel kernel 4x slower) and gives it back
    at run 400. The kernel in use drifting from its time when last compared brings a comparison
    at once, long before the next one was due; the one-thread kernel does not drift when the
    core comes back, so the parallel one is taken again at the next comparison due (64 runs on
    at most), and two comparisons outweigh the five ratios before."""
    taken = lambda run: 200 <= run < 400  # noqa: E731
    parallel_cost = lambda run: 4.0 if taken(run) else 1.0  # noqa: E731
    runs = run_chunks(paired_choice(), lambda parallel, run: parallel_cost(run) if parallel else 1.6, 600)
    assert in_use(runs[:200])[-150:] == [True] * 150
    assert in_use(runs[205:400]) == [False] * len(in_use(runs[205:400]))
    assert in_use(runs[400 + 64 + 4:]) == [True] * len(in_use(runs[400 + 64 + 4:]))


@pytest.fixture
def forced():
    saved = conv_ops.USE_PARALLEL
    yield
    conv_ops.USE_PARALLEL = saved


@pytest.mark.parametrize("padding, stride, c_in", [("valid", 1, 1), ("same", 2, 3)])
def test_image_kernels_give_the_same_bits_in_one_thread_and_over_threads(forced, padding, stride, c_in, rng):
    x = rng.normal(size=(300, 12, 12, c_in)).astype(np.float32)
    W = rng.normal(size=(3, 3, c_in, 8)).astype(np.float32)
    b = rng.normal(size=8).astype(np.float32)

    def f(x, W, b):
        y = ops.conv2d(x, W, b, padding, stride, activation="relu")
        return (ops.max_pool2d(y) * 1.5).sum() + ops.avg_pool2d(y).sum()

    results = []
    for mode in (False, True):
        conv_ops.USE_PARALLEL = mode
        results.append((ops.conv2d(x, W, b, padding, stride), *grad(f, argnums=(0, 1, 2))(x, W, b)))
    for one, threaded in zip(*results):
        np.testing.assert_array_equal(one, threaded)
