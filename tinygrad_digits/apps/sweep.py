"""Sweeps: a grid of training runs (architectures x seeds), ranked, and compared digit by digit.

A sweep is a list of ``app.TrainRun``; each is trained by ``app.train_and_save`` exactly as
``digits train`` trains the same options (same seed, same split, same model), one after another
or in worker processes. Every finished run appends one JSON object (a *record*) as one line to
``<out>/runs.jsonl`` and saves its model in ``<out>/models/``, so an interrupted sweep keeps
what it finished, and the next sweep skips every run whose record is already there (a run is
identified by ``run_key``: a hash of its whole configuration).

A record: {key, label, hidden [sizes], conv [filters per block; [] for an MLP], activation, seed, config (TrainRun.config()), n_params,
test_accuracy, test_loss, val_accuracy, val_loss, per_digit_accuracy [10], seconds_per_epoch
(median), epochs_done, stopped (None or why), model (path)}. ``summarize`` groups records by
architecture (conv blocks, hidden sizes and activation) over seeds and ranks the groups by mean test accuracy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import paths
from ..conv_notation import conv_blocks, format_conv
from .training import TrainRun

RESULTS = "runs.jsonl"
TIMING_KEYS = ("seconds_per_epoch", "model")  # what may differ between two identical runs


def default_dir() -> Path:
    """``<data home>/sweeps``: one results file shared by every sweep, so reruns resume."""
    return paths.data_home() / "sweeps"


def config_label(hidden: Iterable[int], activation: str, conv: Iterable[int] = ()) -> str:
    """e.g. ``128x64 relu``, ``conv32x64 128 relu``, ``conv32x64+64 none`` (no hidden layer; two
    convolutions in the second block)."""
    conv = format_conv(conv).replace(",", "x")
    hidden = "x".join(str(h) for h in hidden)
    return (f"conv{conv} " if conv else "") + (f"{hidden} {activation}" if hidden else "none")


def grid(
    hiddens: Iterable[tuple[int, ...]], activations: Iterable[str], seeds: Iterable[int], base: TrainRun,
    convs: Iterable[tuple[int, ...]] = ((),),
) -> list[TrainRun]:
    """One run per (conv blocks, hidden sizes, activation, seed), conv-major, then hidden-major;
    each a copy of ``base`` with that architecture (one activation for every hidden layer) and
    seed. An MLP's spec_args hold no ``conv``, so its run keys are those of earlier sweeps."""
    runs = []
    for conv in convs:
        conv = tuple(block if len(block) > 1 else block[0] for block in conv_blocks(conv))
        for hidden in hiddens:
            hidden = tuple(int(h) for h in hidden)
            for act in activations:
                for seed in seeds:
                    spec_args = {**base.spec_args, "hidden": hidden, "activations": (act,) * len(hidden)}
                    spec_args.pop("conv", None)
                    if conv:
                        spec_args["conv"] = conv
                    run = replace(base, spec_args=spec_args, seed=int(seed))
                    if run not in runs:  # without hidden layers, the activations make one run
                        runs.append(run)
    return runs


def run_activation(run: TrainRun) -> str:
    """The activation of the run's hidden layers; "" when it has none."""
    return (run.spec_args["activations"] or ("",))[0]


def run_key(run: TrainRun) -> str:
    """A stable 16-hex-digit hash of the run's whole configuration."""
    text = json.dumps(run.config(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_RECORD_FIELDS = {"key": str, "label": str, "hidden": list, "activation": str, "seed": int, "config": dict,
                  "n_params": int, "test_accuracy": float, "test_loss": float, "val_accuracy": float,
                  "val_loss": float, "per_digit_accuracy": list, "seconds_per_epoch": float, "epochs_done": int}


def _valid_record(record) -> bool:
    """Whether a line of runs.jsonl is a whole record, as run_one writes it."""
    if not isinstance(record, dict):
        return False
    for name, kind in _RECORD_FIELDS.items():
        value = record.get(name)
        if kind is float:
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                return False
        elif isinstance(value, bool) or not isinstance(value, kind):
            return False
    digits = record["per_digit_accuracy"]
    return len(digits) == 10 and all(v is None or isinstance(v, (int, float)) for v in digits)


def load_records(out_dir: str | Path) -> dict[str, dict]:
    """The records in ``<out_dir>/runs.jsonl`` by key (the last one wins); lines that do not
    parse or are not whole records (a write cut short by a crash, a hand edit) are skipped, so
    their runs train again."""
    path = Path(out_dir) / RESULTS
    records: dict[str, dict] = {}
    if not path.is_file():
        return records
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if _valid_record(record):
            records[record["key"]] = {k: (math.nan if v is None and _RECORD_FIELDS.get(k) is float else v)
                                      for k, v in record.items()}
    return records


def _append(out_dir: Path, record: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / RESULTS, "a") as f:
        f.write(json.dumps(record, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())


@functools.lru_cache(maxsize=1)
def _splits(data_dir: str, seed: int):
    """The splits of one seed, from the per-user cache of decoded arrays (runs of a seed share them)."""
    from .. import data

    return data.load_splits(data_dir, seed=seed)


def run_one(run: TrainRun, data_dir: str | Path, models_dir: str | Path) -> dict:
    """Train one run (the split seeded by the run's seed, as ``digits train``) and return its record.

    ``data_dir`` must hold the MNIST files (``data.ensure_data``). An interrupted run raises
    KeyboardInterrupt: it has no record.
    """
    from . import training as app

    key = run_key(run)
    splits = _splits(str(data_dir), run.seed)
    model = Path(models_dir) / f"{key}.npz"
    outcome = app.train_and_save(run, splits, model)
    result = outcome["result"]
    if result.stopped and result.stopped.startswith("interrupted"):
        raise KeyboardInterrupt
    metrics = outcome["metrics"]
    history = result.history
    last = history[-1] if history else {}
    hidden = list(run.spec_args["hidden"])
    conv = list(run.spec_args.get("conv", ()))
    activation = run_activation(run)
    nan = float("nan")
    return {
        "key": key,
        "label": config_label(hidden, activation, conv),
        "hidden": hidden,
        "conv": conv,
        "activation": activation,
        "seed": run.seed,
        "config": run.config(),
        "n_params": outcome["spec"].n_params(),
        "test_accuracy": metrics.get("accuracy", nan),
        "test_loss": metrics.get("loss", nan),
        "val_accuracy": last.get("val_accuracy", nan),
        "val_loss": last.get("val_loss", nan),
        "per_digit_accuracy": metrics.get("per_digit_accuracy", [nan] * 10),
        "seconds_per_epoch": float(np.median([r["seconds"] for r in history])) if history else nan,
        "epochs_done": len(history),
        "stopped": result.stopped,
        "model": str(model) if outcome["saved"] else None,
    }


_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers on Ctrl-C


def _work(task):
    run, data_dir, models_dir = task
    return run_one(run, data_dir, models_dir)


def run_sweep(
    runs: list[TrainRun],
    out_dir: str | Path,
    data_dir: str | Path,
    jobs: int = 1,
    resume: bool = True,
    on_start: Callable[[TrainRun], None] | None = None,
    on_result: Callable[[dict, bool], None] | None = None,
) -> list[dict]:
    """Train every run that has no record yet (all of them with ``resume=False``).

    Records are appended to ``<out_dir>/runs.jsonl`` as runs finish; ``on_result(record,
    cached)`` is called for each run, first for those found (cached=True), then as the others
    finish. With ``jobs > 1`` runs train in that many worker processes, each with one BLAS
    thread (results may then differ from a sequential sweep in the last bits of the float
    arithmetic). Ctrl-C stops the sweep: finished runs keep their records, and the
    KeyboardInterrupt propagates. Returns the records of ``runs``, in their order.
    """
    if jobs < 1:
        raise ValueError(f"run_sweep: jobs must be >= 1, got {jobs}")
    out_dir = Path(out_dir)
    models_dir = out_dir / "models"
    keys = [run_key(run) for run in runs]
    found = load_records(out_dir) if resume else {}
    done: dict[str, dict] = {}
    todo = []
    for run, key in zip(runs, keys):
        if key in found:
            done[key] = found[key]
            if on_result is not None:
                on_result(found[key], True)
        elif key not in {k for _, k in todo}:
            todo.append((run, key))
    # seed-major, so that a process re-splits the data only when the seed changes
    todo.sort(key=lambda item: item[0].seed)

    def finished(record):
        _append(out_dir, record)
        done[record["key"]] = record
        if on_result is not None:
            on_result(record, False)

    if jobs == 1 or len(todo) <= 1:
        for run, _ in todo:
            if on_start is not None:
                on_start(run)
            finished(run_one(run, data_dir, models_dir))
    else:
        _run_parallel([run for run, _ in todo], data_dir, models_dir, jobs, finished)
    return [done[key] for key in keys if key in done]


def _run_parallel(runs, data_dir, models_dir, jobs, finished) -> None:
    import multiprocessing

    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: "1" for name in _THREAD_VARIABLES})  # read by the workers at start
    pool = None
    try:
        pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(runs)), initializer=_worker_init)
        for record in pool.imap_unordered(_work, [(run, str(data_dir), str(models_dir)) for run in runs]):
            finished(record)
        pool.close()
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.join()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- Summaries ------------------------------------------------------------------------------


# the table, the per-digit matrix and the plot of a sweep's records
from .sweep_report import format_digit_matrix, format_table, plot_sweep, summarize  # noqa: E402, F401
