"""``digits bench``: what to time (BenchPlan), and the way to the scripts that time it.

The benchmark itself (worker processes, timing rounds, floors, report and plot) lives beside its
worker scripts in the source checkout's ``benchmarks/`` folder (``bench_run``, ``bench_report``,
``bench_plot``, ``bench_startup``; ``bench_conv`` for ``digits bench --conv``, Keras's Simple
MNIST convnet), which the wheel does not ship: from an installed wheel,
``run_bench`` raises BenchError saying so. Nothing here imports Numba or TensorFlow.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import paths

HEADLINE = ((128,), 128)  # 784-128-10 at batch 128: the configuration the targets are about


class BenchError(RuntimeError):
    """A worker failed or the benchmark scripts are missing."""


@dataclass(frozen=True)
class BenchPlan:
    """What to time. Several hidden or batch sizes make a sweep: each varies alone around a
    centre, the headline 784-128-10 at batch 128 where the lists hold it, else their first values
    (hidden sizes at the centre's batch size, batch sizes at the centre's hidden sizes)."""

    hidden: tuple[tuple[int, ...], ...] = ((128,),)
    batch_sizes: tuple[int, ...] = (128,)
    epochs: int = 10
    keras: bool = True
    general: bool = True
    startup: bool = True
    inference: bool = True
    train_size: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 2:
            raise ValueError(f"bench needs at least 2 epochs (the first is timed apart), got {self.epochs}")
        if not self.hidden or not self.batch_sizes:
            raise ValueError("bench needs at least one hidden size and one batch size")

    def centre(self) -> tuple[tuple[int, ...], int]:
        hidden = HEADLINE[0] if HEADLINE[0] in self.hidden else self.hidden[0]
        batch = HEADLINE[1] if HEADLINE[1] in self.batch_sizes else self.batch_sizes[0]
        return hidden, batch

    def configs(self) -> list[tuple[tuple[int, ...], int]]:
        """The centre first, then the hidden sizes, then the batch sizes, each in the given order."""
        hidden0, batch0 = self.centre()
        configs = [(hidden0, batch0)] + [(h, batch0) for h in self.hidden] + [(hidden0, b) for b in self.batch_sizes]
        return list(dict.fromkeys(configs))


def benchmarks_dir() -> Path:
    """The checkout's benchmarks/ folder: the benchmark and its worker scripts."""
    root = paths.checkout_root() / "benchmarks"
    if not (root / "bench_run.py").is_file():
        raise BenchError(
            f"digits bench runs the scripts of a source checkout's benchmarks/ folder, which the installed "
            f"package does not ship (looked in {root}): clone the repository and run it there "
            f"(pip install -e . then digits bench)"
        )
    return root


def _module(name: str):
    """A module of benchmarks/ (bench_run, bench_report, ...), imported from the checkout."""
    root = str(benchmarks_dir())
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(name)


def run_bench(plan: BenchPlan, splits, log=lambda message: None) -> dict:
    """Run the plan on the splits' training images; returns the report (bench_run.run_bench)."""
    return _module("bench_run").run_bench(plan, splits, log)


def run_conv_bench(splits, train_size: int | None = None, batch_size: int = 128, keras: bool = True,
                   log=lambda message: None) -> dict:
    """Keras's Simple MNIST convnet: our epoch, its GEMM floor and Keras's, on the splits'
    training images (the first ``train_size``, scaled to the epoch); bench_conv.run's report."""
    return _module("bench_conv").run(splits.x_train, splits.y_train, train_size, batch_size, keras, log=log)


def format_conv_report(report: dict) -> str:
    """The text of a run_conv_bench report (bench_conv.format_report)."""
    return _module("bench_conv").format_report(report)


def format_report(report: dict) -> str:
    """The human-readable tables of a report (bench_report.format_report)."""
    return _module("bench_report").format_report(report)


def plot_report(report: dict, path: str | Path) -> Path:
    """Seconds per epoch as a PNG (bench_plot.plot_report)."""
    return _module("bench_plot").plot_report(report, path)
