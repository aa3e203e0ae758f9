"""Tests for ``digits bench`` (tinygrad_digits.apps.bench, cli/bench.py) and benchmarks/ (the run, the
report, the plot and the workers).

Nothing here asserts on a clock: the tests check the plan, the arithmetic of the report (flops,
ratios, targets), its formatting and plot, that the NumPy reference and the minimal NumPy script
do the same math as our trainer, and one real tiny run of the command end to end.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from tinygrad_digits.cli.main import main

from tinygrad_digits.apps import bench as B

sys.path.insert(0, str(B.benchmarks_dir()))

import bench_plot  # noqa: E402
import bench_report  # noqa: E402
import bench_run  # noqa: E402
import gemm_floor  # noqa: E402
import numpy_minimal  # noqa: E402
import numpy_reference  # noqa: E402


def test_the_plan_sweeps_one_factor_at_a_time():
    plan = B.BenchPlan(hidden=((64,), (128,), (256, 64)), batch_sizes=(32, 128, 512))
    assert plan.configs() == [((128,), 128), ((64,), 128), ((256, 64), 128), ((128,), 32), ((128,), 512)]
    assert B.BenchPlan().configs() == [B.HEADLINE]
    # without the headline sizes, the first ones are the centre
    assert B.BenchPlan(hidden=((64,), (32,)), batch_sizes=(16, 8)).configs() == [
        ((64,), 16), ((32,), 16), ((64,), 8)]
    with pytest.raises(ValueError, match="at least 2 epochs"):
        B.BenchPlan(epochs=1)


def test_epoch_flops_count_every_product_of_an_epoch():
    # per row: forward and weight gradient of every layer (2 flops a multiply-add), the input
    # gradient of every layer but the first
    assert gemm_floor.epoch_flops([784, 128, 10], 1) == 2 * 2 * 784 * 128 + 3 * 2 * 128 * 10
    # 784-128-10 on 48,000 images: 19.6 GFLOP of matrix products per epoch
    assert gemm_floor.epoch_flops([784, 128, 10], 48000) / 1e9 == pytest.approx(19.6, abs=0.05)


def fake_report(ours=0.1, keras=0.7, numpy=0.25, floor=0.08, sweep=False) -> dict:
    def config(hidden, batch_size, scale=1.0):
        runners = {}
        for name, seconds in (("ours", ours), ("ours (general path)", 0.27), ("numpy reference", numpy),
                              ("numpy minimal", 1.1 * numpy), ("keras", keras), ("jax jitted step", 0.2)):
            s = seconds * scale
            runners[name] = {"seconds_per_epoch": s, "first_epoch": 2 * s, "epochs": [2 * s, s], "samples_per_second":
                             48000 / s, "final_loss": 0.2, "test_accuracy": 0.97, "vs_ours": s / (ours * scale),
                             "vs_floor": s / (floor * scale), "paired_vs_ours": s / (ours * scale),
                             "paired_vs_floor": s / (floor * scale), "vs_work_floor": s / (floor * scale / 3),
                             "paired_vs_work_floor": s / (floor * scale / 3)}
        return {"hidden": list(hidden), "batch_size": batch_size, "n": 48000, "epochs": 3, "gflop_per_epoch": 19.6,
                "runners": runners, "openblas": "unset",
                "floor": {"seconds": floor * scale, "by_blas": {"numpy BLAS": floor * scale}, "gflops": 245.0,
                          "first_inputs": 784},
                "work_floor": {"seconds": floor * scale / 3, "by_blas": {"numpy BLAS": floor * scale / 3},
                               "gflops": 150.0, "first_inputs": 150}}

    configs = [config((128,), 128)]
    if sweep:
        configs += [config((512,), 128, 4.0), config((128,), 32, 1.5)]
    return {
        "plan": {"hidden": [[128], [512]] if sweep else [[128]], "batch_sizes": [128, 32] if sweep else [128],
                 "epochs": 3},
        "environment": {"cpus": 2, "cpu_model": "Some CPU", "vector_extensions": ["avx2", "avx512f"], "threads": 2,
                        "parallel_chosen": False, "load_average_before": (0.5, 0, 0),
                        "load_average_after": (0.6, 0, 0)},
        "notes": ["a note"],
        "configs": configs,
        "inference": {"ours": {"single_kernel_us": 6.0, "single_sparse_kernel_us": 4.0, "single_predictor_us": 8.0,
                               "single_us": 9.0, "single_predict_us": 12.0,
                               "batch10k_ms": 20.0},
                      "keras": {"single_us": 900.0, "batch10k_ms": 40.0}},
        "startup": {"cold": {"kernels_s": 20.0, "wall_s": 22.0}, "help_s": 0.1,
                    "warm": {"wall_s": 0.8, "import_s": 0.4, "kernels_s": 0.2, "first_step_s": 0.01,
                             "exit_s": 0.3}},
    }


def test_targets_are_checked_on_the_headline_config():
    report = fake_report()
    targets = {t["target"]: t for t in bench_report.check_targets(report)}
    assert targets["Keras / ours, s per epoch"]["value"] == pytest.approx(7.0)
    assert targets["Keras / ours, s per epoch"]["met"] is True
    assert targets["NumPy reference / ours, s per epoch"]["value"] == pytest.approx(2.5)
    assert targets["NumPy reference / ours, s per epoch"]["met"] is True
    assert targets["NumPy minimal / NumPy reference, s per epoch"]["value"] == pytest.approx(1.1)
    assert targets["JAX jitted step / ours, s per epoch"]["value"] == pytest.approx(2.0)
    assert targets["JAX epoch in lax.scan / ours, s per epoch"]["met"] is None  # not measured
    assert targets["ours / GEMM floor, s per epoch"]["value"] == pytest.approx(1.25)
    assert targets["ours / GEMM floor, s per epoch"]["met"] is True
    assert targets["ours / work floor, s per epoch"]["value"] == pytest.approx(3.75)
    assert targets["ours / work floor, s per epoch"]["met"] is False
    single = targets["single-image forward pass (sparse kernel), us"]
    assert single["value"] == 4.0 and single["met"] is True
    assert targets["warm-cache start of training, s"]["met"] is True
    slow = {t["target"]: t for t in bench_report.check_targets(fake_report(ours=0.2))}
    assert slow["ours / GEMM floor, s per epoch"]["met"] is False
    assert slow["Keras / ours, s per epoch"]["met"] is False
    del report["startup"]
    assert {t["target"]: t for t in bench_report.check_targets(report)}["digits --help, s"]["met"] is None


def test_format_report_shows_every_runner_the_floor_and_the_verdicts():
    report = fake_report(sweep=True)
    report["targets"] = bench_report.check_targets(report)
    text = B.format_report(report)
    for needle in ("ours (general path)", "numpy reference", "numpy minimal", "keras", "GEMM floor", "sweep:",
                   "784-512-10, 128", "work floor", "150 non-background inputs", "Some CPU", "avx2 avx512f",
                   "training kernel: one thread", "measured on a 2-core AMD EPYC (AVX2) on 2026-11-27",
                   "single image", "cold compile", "targets", "met", "note: a note"):
        assert needle in text, needle
    assert "fixed figures" not in text  # reference figures are introduced by where they were measured
    json.dumps(report)  # the --json output is plain JSON


@pytest.mark.parametrize("sweep", [False, True])
def test_plot_report_writes_a_png(tmp_path, sweep):
    path = bench_plot.plot_report(fake_report(sweep=sweep), tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_numpy_reference_takes_the_same_adam_steps_as_our_trainer(rng):
    """Same init for the same seed, and after three Adam steps the same params (to round-off)."""
    from tinygrad_digits import model as M
    from tinygrad_digits import optimizers as O

    spec = M.ModelSpec(hidden=(32, 16), activations=("relu",), inputs=784, outputs=10)
    reference = numpy_reference.NumpyMLP([784, 32, 16, 10], "relu", learning_rate=0.01, total_steps=10, seed=4)
    params = M.init_params(spec, np.random.default_rng(4))
    for i, (w, b) in enumerate(reference.layers):
        np.testing.assert_array_equal(w, params[f"dense{i}.W"])
    optimizer = O.OptimizerConfig("adam", learning_rate=0.01, total_steps=10)
    state = O.init(optimizer, params)
    for t in range(3):
        x = rng.normal(size=(16, 784)).astype(np.float32)
        y = rng.integers(0, 10, 16)
        # the rows gathered from a larger set (as in an epoch), or the batch as it is
        ref_loss = reference.step(x, y) if t % 2 else reference.step(np.vstack([x, x]), y, np.arange(16))
        loss, grads = M.loss_and_grads(spec, params, x, y)
        O.update(optimizer, params, grads, state)
        assert ref_loss == pytest.approx(loss, rel=1e-5)
    # Adam's first steps move every weight by about the learning rate whatever the gradient's
    # size, so gradients that agree to round-off still differ by a few 1e-6 here and there
    for i, (w, b) in enumerate(reference.layers):
        np.testing.assert_allclose(w, params[f"dense{i}.W"], rtol=1e-4, atol=3e-5)
        np.testing.assert_allclose(b, params[f"dense{i}.b"], rtol=1e-4, atol=3e-5)


def test_the_minimal_numpy_script_takes_the_same_steps_as_the_reference(rng):
    sizes = [784, 32, 10]
    # a schedule this long keeps the reference's cosine-decayed rate at 0.01 to 1e-16
    reference = numpy_reference.NumpyMLP(sizes, "relu", learning_rate=0.01, total_steps=10**9, seed=4,
                                         batch_size=16)
    minimal = numpy_reference.NumpyMLP(sizes, "relu", learning_rate=0.01, total_steps=10**9, seed=4)
    for t in range(1, 4):
        x = rng.normal(size=(16, 784)).astype(np.float32)
        y = rng.integers(0, 10, 16)
        ref_loss = reference.step(x, y)
        loss = numpy_minimal.step(minimal.layers, minimal.m, minimal.v, x, y, t, 0.01)
        assert loss == pytest.approx(ref_loss, rel=1e-5)
    for (w, b), (w_min, b_min) in zip(reference.layers, minimal.layers):
        assert w.dtype == w_min.dtype == np.float32
        np.testing.assert_allclose(w, w_min, rtol=1e-4, atol=3e-5)
        np.testing.assert_allclose(b, b_min, rtol=1e-4, atol=3e-5)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_the_reference_s_in_place_activations_match_their_formulas(rng, activation):
    z = rng.normal(size=(5, 7)).astype(np.float32)
    forward, grad = numpy_reference.ACTIVATIONS[activation]
    y = z.copy()
    forward(y)
    expected = {"relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z)}[activation]
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    d = np.ones_like(z)
    grad(y, d, np.empty_like(z))
    slope = {"relu": (z > 0), "sigmoid": expected * (1 - expected), "tanh": 1 - expected**2}[activation]
    np.testing.assert_allclose(d, slope, rtol=1e-5, atol=1e-7)


def test_the_floor_probes_run_every_product_of_an_epoch():
    # no timing asserted: both probes run on a small epoch (last batch partial) and return seconds,
    # at the dense shapes and with a narrower first layer (the work floor)
    for probe in (numpy_reference.numpy_floor, gemm_floor.numba_floor):
        assert probe([784, 16, 10], 100, 32) > 0
        assert probe([150, 16, 10], 100, 32) > 0


class _ScriptedWorker:
    """A bench worker that answers at once and logs every command; floors come from a counter,
    so that each measurement differs."""

    def __init__(self, name: str, log: list, floors: dict):
        self.name, self.log, self.floors = name, log, floors

    def call(self, cmd: str, **args) -> dict:
        self.log.append((self.name, cmd))
        if cmd == "epoch":
            return {"seconds": 0.2, "loss": 1.0}
        if cmd == "floor":
            self.floors["count"] += 1
            return {"seconds": 0.1 + 0.001 * self.floors["count"]}
        if cmd == "evaluate":
            return {"test_accuracy": 0.9}
        return {}


def test_each_round_pairs_our_epoch_with_the_floors_measured_just_before_and_after_it(monkeypatch):
    monkeypatch.setattr(bench_run, "_pause", lambda: None)
    log, floors = [], {"count": 0}
    workers = {name: _ScriptedWorker(name, log, floors) for name in ("ours", "numpy reference", "keras")}
    plan = B.BenchPlan(epochs=4, keras=True, general=False, startup=False, inference=False)
    config = bench_run._time_config(workers, (128,), 128, plan, "unused", 1000, 150, lambda message: None)
    epochs = [i for i, (name, cmd) in enumerate(log) if (name, cmd) == ("ours", "epoch")]
    assert len(epochs) == 4
    floor_calls = [(name, cmd) for name, cmd in log if cmd == "floor"]
    assert len(floor_calls) == 3 * 2 * 4  # rounds 2-4, before and after, 2 floors on 2 BLAS
    for at in epochs[1:]:  # round 1 warms up: no floors around it
        assert [cmd for _, cmd in log[at - 4 : at]] == ["floor"] * 4
        assert [cmd for _, cmd in log[at + 1 : at + 5]] == ["floor"] * 4
    assert all(cmd != "floor" for _, cmd in log[: epochs[1] - 4])
    # the floor of a round: per BLAS the mean of before and after, then the faster BLAS
    values = [0.1 + 0.001 * k for k in range(1, 25)]
    for r in range(3):
        before, after = values[8 * r : 8 * r + 4], values[8 * r + 4 : 8 * r + 8]
        # measured in the order GEMM floor (numpy BLAS, ours's), then work floor (the same)
        gemm = min((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)
        work = min((before[2] + after[2]) / 2, (before[3] + after[3]) / 2)
        assert config["floor"]["rounds"][r] == pytest.approx(gemm)
        assert config["work_floor"]["rounds"][r] == pytest.approx(work)


def test_the_environment_names_the_cpu_and_its_vector_extensions():
    env = bench_run.environment()
    assert env["cpus"] >= 1 and env["cpu_model"]
    assert set(env["vector_extensions"]) <= set(bench_run.VECTOR_FLAGS)
    json.dumps(env)


def test_from_an_installed_package_bench_says_it_needs_a_checkout(tmp_path, monkeypatch):
    from tinygrad_digits import paths

    data = paths.checkout_root() / "data" / "mnist"
    monkeypatch.setattr(paths, "checkout_root", lambda: tmp_path)  # as installed: no benchmarks/ beside it
    with pytest.raises(B.BenchError, match="source checkout"):
        B.benchmarks_dir()
    result = CliRunner().invoke(main, ["bench", "--no-keras", "--epochs", "2", "--train-size", "64", "--data",
                                       str(data)])
    assert result.exit_code == 1 and "source checkout" in result.output
    assert "Traceback" not in result.output


def test_bench_help_lists_its_options():
    result = CliRunner().invoke(main, ["bench", "--help"])
    assert result.exit_code == 0
    for option in ("--hidden", "--batch-size", "--epochs", "--keras / --no-keras", "--json", "--plot"):
        assert option in result.output


def test_bench_rejects_a_single_epoch():
    result = CliRunner().invoke(main, ["bench", "--epochs", "1"])
    assert result.exit_code == 2


def test_bench_runs_end_to_end_on_a_tiny_subset(tmp_path):
    """Real worker processes (ours and the NumPy reference), 2 epochs of 256 images, JSON out."""
    plot = tmp_path / "bench.png"
    result = CliRunner().invoke(main, [
        "bench", "--no-keras", "--no-startup", "--epochs", "2", "--train-size", "256", "--hidden", "16",
        "--batch-size", "64", "--json", "--plot", str(plot),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (config,) = report["configs"]
    import importlib.util

    jax = {"jax jitted step", "jax epoch in lax.scan"} if importlib.util.find_spec("jax") else set()
    assert set(config["runners"]) == {"ours", "ours (one thread)", "ours (parallel)", "ours (general path)",
                                      "numpy reference", "numpy minimal", *jax}
    for runner in config["runners"].values():
        assert len(runner["epochs"]) == 2 and runner["seconds_per_epoch"] > 0
        assert 0 <= runner["test_accuracy"] <= 1
    # our three paths train alike: the same loss after the same epochs
    ours, general = config["runners"]["ours"], config["runners"]["ours (general path)"]
    for path in (ours, config["runners"]["ours (one thread)"], config["runners"]["ours (parallel)"]):
        assert path["final_loss"] == pytest.approx(general["final_loss"], rel=1e-4)
        assert abs(path["test_accuracy"] - general["test_accuracy"]) <= 0.001
    assert ours["paired_vs_ours"] == 1.0 and general["paired_vs_floor"] > 0
    assert config["floor"]["seconds"] > 0 and config["work_floor"]["seconds"] > 0
    assert config["work_floor"]["first_inputs"] < 784  # MNIST's blank pixels: most of the image
    numpy_runs = [config["runners"][name] for name in ("numpy reference", "numpy minimal")]
    assert numpy_runs[0]["final_loss"] == pytest.approx(numpy_runs[1]["final_loss"], rel=1e-4)
    assert report["environment"]["cpu_model"] and report["environment"]["threads"] >= 1
    assert {"ours", "numpy reference"} <= set(report["inference"])
    assert plot.exists()


def test_the_conv_floor_counts_every_product_of_a_step():
    import bench_conv

    # Keras's Simple MNIST convnet at batch 128: conv1 forward and weight gradient (no input
    # gradient for the first layer), conv2 and the dense layer with all three
    conv1, conv2, dense = 128 * 26 * 26 * 9 * 32, 128 * 11 * 11 * 288 * 64, 128 * 1600 * 10
    assert bench_conv.gflop(128, 375) == pytest.approx(375 * 2 * (2 * conv1 + 3 * conv2 + 3 * dense) / 1e9)
    assert len(bench_conv.products(128)) == 8


def test_bench_conv_runs_end_to_end_on_a_tiny_subset():
    """digits bench --conv: ours and the GEMM floor (no Keras), 256 images scaled to the epoch, JSON out."""
    result = CliRunner().invoke(main, ["bench", "--conv", "--no-keras", "--train-size", "256", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["parameters"] == 34_826 and report["batch_size"] == 128
    assert report["epoch_images"] == 48_000 and report["timed_images"] == 256
    assert report["scale"] == pytest.approx(375 / 2)
    for side in ("ours", "floor"):
        assert report[side]["seconds_per_epoch"] > 0
        assert report[side]["gflop_per_second"] == pytest.approx(
            report["gflop_per_epoch"] / report[side]["seconds_per_epoch"])
    assert report["keras"] is None and report["keras_over_ours"] is None
    assert report["ours_over_floor"] == pytest.approx(
        report["ours"]["seconds_per_epoch"] / report["floor"]["seconds_per_epoch"])
    assert len(report["floor"]["products"]) == 8 and report["forward_latency_seconds"] > 0
    assert report["predictor_latency_seconds"] > 0
    import bench_conv

    text = bench_conv.format_report(report)
    for line in ("GFLOP per epoch", "ours", "floor", "ours / floor", "one image's forward pass"):
        assert line in text
    assert "keras" not in text
    with_keras = {**report, "keras_over_ours": 2.5,
                  "keras": {"seconds_per_epoch": 1.0, "gflop_per_second": 3.0, "keras": "3", "tensorflow": "2"}}
    assert "keras / ours = 2.50" in bench_conv.format_report(with_keras)


def test_bench_conv_draws_no_plot(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--conv", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 2 and "--plot" in result.output and not (tmp_path / "p.png").exists()


def test_other_sources_writes_the_uci_digits_as_an_image_folder(tmp_path):
    pytest.importorskip("sklearn", reason="benchmarks/other_sources.py reads scikit-learn's digits: "
                                          "pip install scikit-learn")
    import other_sources
    from PIL import Image
    from sklearn.datasets import load_digits

    assert other_sources.write_folder(tmp_path) == 1797
    assert sorted(p.name for p in tmp_path.iterdir()) == [str(d) for d in range(10)]
    assert sum(len(list(p.iterdir())) for p in tmp_path.iterdir()) == 1797
    digits = load_digits()
    first = np.asarray(Image.open(tmp_path / str(digits.target[5]) / "0005.png"))
    np.testing.assert_array_equal(first, np.round(digits.images[5] * 255 / 16).astype(np.uint8))
