"""Application logic of ``digits bench``: our trainer against references, timed in one run.

Every trainer runs in a worker process of its own (the scripts in ``benchmarks/``): ours (the
path training takes, and for the "before" figures the one-thread fused kernel and the general
path), the plain-NumPy reference and Keras. TensorFlow and Numba never share a process (both load LLVM), and no hot loop mixes two
BLAS libraries whose spinning thread pools would fight over the cores. The parent sends one
epoch at a time to each worker in turn (the order rotates every round), pausing between
workers so the previous pool has gone to sleep; each worker times its own epoch. Between
rounds the GEMM floor is measured on both BLAS libraries. Figures are medians over epochs
2..N; epoch 1 (compile, trace) is reported apart. Nothing here imports Numba or TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import paths

OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PAUSE_SECONDS = 0.25  # > OpenBLAS's default thread timeout (2^28 cycles, ~0.1 s): its pool sleeps
HEADLINE = ((128,), 128)
RUNNERS = {  # name: (script, extra arguments)
    "ours": ("ours_runner.py", ()),
    "ours (one thread)": ("ours_runner.py", ("--threads", "one")),
    "ours (parallel)": ("ours_runner.py", ("--threads", "parallel")),
    "ours (general path)": ("ours_runner.py", ("--general",)),
    "numpy reference": ("numpy_reference.py", ()),
    "keras": ("keras_runner.py", ()),
}
# The issue's figures for 784-128-10, batch 128, Adam on this machine type (fixed references;
# PyTorch and JAX are not installed here): median seconds per epoch.
ISSUE_FIGURES = {
    "Keras 3 / TF 2.21": 0.60, "PyTorch 2.13 eager": 0.25, "NumPy (seed)": 0.19,
    "JAX jitted step": 0.135, "JAX epoch in lax.scan": 0.09,
}
ISSUE_FLOOR = {"default OpenBLAS settings": 0.09, "OPENBLAS_CORETYPE/L2_SIZE unset": 0.057}


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
    """The checkout's benchmarks/ directory (the worker scripts are not part of the wheel)."""
    root = paths.checkout_root() / "benchmarks"
    if not (root / "bench_common.py").is_file():
        raise BenchError(f"digits bench needs the worker scripts in {root}: run it from a source checkout")
    return root


def keras_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None


class _Worker:
    """One worker process and its JSON-lines channel."""

    def __init__(self, name: str, script: Path, extra, env: dict, log_path: Path):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--serve", *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True, env=env, cwd=script.parent, bufsize=1,
        )

    def call(self, cmd: str, **args) -> dict:
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise BenchError(f"the {self.name} worker stopped during {cmd!r}: {self._tail()}")
        reply = json.loads(line)
        if "error" in reply:
            raise BenchError(f"the {self.name} worker failed on {cmd!r}: {reply['error']}")
        return reply

    def _tail(self) -> str:
        self._log.flush()
        lines = [x for x in self.log_path.read_text(errors="replace").splitlines() if x.strip()]
        return " | ".join(lines[-3:]) or f"exit status {self.proc.poll()}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _pause() -> None:
    time.sleep(PAUSE_SECONDS)


def _write_data(splits, train_size, root: Path) -> int:
    """Normalized float32 arrays (as model.normalize makes them) for the workers; returns n."""
    x_train, y_train = splits.x_train, splits.y_train
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    mean, std = np.float32(x_train.mean()), np.float32(x_train.std())
    np.save(root / "x_train.npy", np.ascontiguousarray((x_train.astype(np.float32) - mean) / std))
    np.save(root / "y_train.npy", y_train.astype(np.int64))
    np.save(root / "x_test.npy", np.ascontiguousarray((splits.x_test.astype(np.float32) - mean) / std))
    np.save(root / "y_test.npy", splits.y_test.astype(np.int64))
    np.save(root / "images.npy", np.ascontiguousarray(splits.x_test[:10000], dtype=np.float32))
    return len(x_train)


def epoch_flops(sizes, n: int) -> float:
    """Flops of one epoch's matrix products: forward and weight gradient of every layer, input
    gradient of every layer but the first."""
    return sum((3 if i else 2) * 2.0 * n * a * b for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))


def _time_config(workers: dict, hidden, batch_size, plan: BenchPlan, data_dir: Path, n: int, log) -> dict:
    label = f"784-{'-'.join(map(str, hidden))}-10, batch {batch_size}"
    args = {"data": str(data_dir), "hidden": list(hidden), "batch_size": batch_size, "epochs": plan.epochs,
            "seed": plan.seed}
    for worker in workers.values():
        worker.call("setup", **args)
    names = list(workers)
    epochs = {name: [] for name in names}
    floors = {"numpy BLAS": [], "Numba/SciPy BLAS": []}
    for r in range(plan.epochs):
        log(f"{label}: epoch {r + 1}/{plan.epochs}")
        for name in names[r % len(names):] + names[: r % len(names)]:
            _pause()
            epochs[name].append(workers[name].call("epoch"))
        if r == 0:
            continue  # round 1 warms everything up; the floor is measured alongside the epochs that count
        for blas, runner in (("numpy BLAS", "numpy reference"), ("Numba/SciPy BLAS", "ours")):
            if runner in workers:
                _pause()
                floors[blas].append(workers[runner].call("floor")["seconds"])
    runners = {}
    for name, replies in epochs.items():
        seconds = [r["seconds"] for r in replies]
        median = float(np.median(seconds[1:]))
        runners[name] = {
            "seconds_per_epoch": median, "first_epoch": seconds[0], "epochs": seconds,
            "samples_per_second": n / median, "final_loss": replies[-1]["loss"],
            "test_accuracy": workers[name].call("evaluate")["test_accuracy"],
        }
    floor_by_blas = {blas: float(np.median(v)) for blas, v in floors.items() if v}
    floor = min(floor_by_blas.values())
    sizes = [784, *hidden, 10]
    result = {
        "hidden": list(hidden), "batch_size": batch_size, "n": n, "epochs": plan.epochs,
        "gflop_per_epoch": epoch_flops(sizes, n) / 1e9, "runners": runners,
        "floor": {"seconds": floor, "by_blas": floor_by_blas,
                  "gflops": epoch_flops(sizes, n) / floor / 1e9},
    }
    ours = runners.get("ours", {}).get("seconds_per_epoch")
    for entry in runners.values():
        entry["vs_ours"] = entry["seconds_per_epoch"] / ours if ours else None
        entry["vs_floor"] = entry["seconds_per_epoch"] / floor
    # Paired ratios: each round's epochs and floor ran back to back, so a burst of load from
    # elsewhere hits both sides of a round's ratio; their median is steadier than a ratio of medians.
    round_floor = [min(v[r] for v in floors.values() if len(v) > r) for r in range(plan.epochs - 1)]
    for name, entry in runners.items():
        mine = entry["epochs"][1:]
        entry["paired_vs_floor"] = float(np.median([m / f for m, f in zip(mine, round_floor)]))
        if "ours" in runners:
            entry["paired_vs_ours"] = float(np.median([m / o for m, o in zip(mine, runners["ours"]["epochs"][1:])]))
    return result


def _start_workers(plan: BenchPlan, env: dict, root: Path, log_dir: Path, log) -> dict:
    names = ["ours", "numpy reference"]
    if plan.general:
        names[1:1] = ["ours (one thread)", "ours (parallel)", "ours (general path)"]
    if plan.keras:
        if keras_available():
            names.append("keras")
        else:
            log("keras: TensorFlow is not installed; skipped (pip install 'tinygrad-digits[keras]')")
    workers = {}
    for name in names:
        script, extra = RUNNERS[name]
        workers[name] = _Worker(name, root / script, extra, env, log_dir / f"{script}{len(workers)}.log")
    return workers


def _startup(log) -> dict:
    """Cold compile (an empty NUMBA_CACHE_DIR), warm start of training, and digits --help.

    The cold run compiles every kernel (warmup.warm_up). A warm run starts as ``digits train``
    does, loading kernels as they are first called, and its ``wall_s`` runs from launching the
    process to the end of the first training step; the process's exit after that is ``exit_s``.
    """
    probe = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "import numpy as np\n"
        "from tinygrad_digits import model as M, optimizers as O, train as T, warmup\n"
        "t1 = time.perf_counter()\n"
        "cached = warmup.kernels_cached()\n"
        "if not cached or sys.argv[1] == 'all':\n"
        "    warmup.warm_up()\n"
        "t2 = time.perf_counter()\n"
        "spec = M.ModelSpec()\n"
        "x, y = np.zeros((128, 784), np.float32), np.zeros(128, np.int64)\n"
        "T.train(spec, M.init_params(spec, np.random.default_rng(0)), x, y, x[:0], y[:0],\n"
        "        T.TrainConfig(epochs=1, batch_size=128), O.OptimizerConfig('adam'))\n"
        "t3 = time.perf_counter()\n"
        "print(json.dumps({'cached': cached, 'import_s': t1 - t0, 'kernels_s': t2 - t1, 'first_step_s': t3 - t2,\n"
        "                  'started': time.time()}), flush=True)\n"
    )

    def run(env, which):
        launched = time.time()
        done = subprocess.run([sys.executable, "-c", probe, which], env=env, capture_output=True, text=True)
        exited = time.time()
        if done.returncode:
            raise BenchError(f"the start-up probe failed: {done.stderr.strip().splitlines()[-1:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        started = result.pop("started")
        return {**result, "wall_s": started - launched, "exit_s": exited - started}

    result = {}
    with tempfile.TemporaryDirectory(prefix="digits-bench-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        log("start-up: cold compile into an empty kernel cache")
        result["cold"] = run(env, "all")
        log("start-up: warm starts")
        warm = [run(env, "training") for _ in range(5)]
        result["warm"] = {k: float(np.median([w[k] for w in warm])) for k in warm[0] if k != "cached"}
        result["warm"]["cached"] = all(w["cached"] for w in warm)
    digits = Path(sys.executable).parent / "digits"
    if digits.exists():
        walls = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([str(digits), "--help"], capture_output=True, check=True)
            walls.append(time.perf_counter() - start)
        result["help_s"] = float(np.median(walls))
    return result


def _environment() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(), "load_average_before": load, "python": sys.version.split()[0],
        "numpy": np.__version__,
        "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARIABLES},
    }


def run_bench(plan: BenchPlan, splits, log=lambda message: None) -> dict:
    """Run the plan on the splits' training images; returns the report (see ``format_report``).

    ``log(message)`` hears progress. Raises BenchError when a worker fails (a Keras worker
    that cannot start is dropped with a note instead).
    """
    root = benchmarks_dir()
    report = {"plan": asdict(plan), "environment": _environment(), "configs": [], "notes": []}
    unset = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARIABLES}
    variants = [("unset", unset)]
    if any(os.environ.get(v) for v in OPENBLAS_VARIABLES):
        variants.append(("default", dict(os.environ)))
    else:
        report["notes"].append(
            "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are not set on this machine: its default "
            "OpenBLAS settings are the unset ones, so every figure holds for both."
        )
    with tempfile.TemporaryDirectory(prefix="digits-bench-") as tmp:
        tmp = Path(tmp)
        n = _write_data(splits, plan.train_size, tmp)
        for variant, env in variants:
            workers = _start_workers(plan, env, root, tmp, log)
            try:
                if "keras" in workers:
                    try:
                        workers["keras"].call("info")
                    except BenchError as e:
                        report["notes"].append(f"keras skipped: {e}")
                        workers.pop("keras").close()
                report.setdefault("versions", {}).update({k: w.call("info") for k, w in workers.items()})
                configs = plan.configs() if variant == "unset" else [plan.configs()[0]]
                for hidden, batch_size in configs:
                    entry = _time_config(workers, hidden, batch_size, plan, tmp, n, log)
                    entry["openblas"] = variant
                    report["configs"].append(entry)
                if plan.inference and variant == "unset":
                    log("inference latency")
                    for name in ("ours", "numpy reference", "keras"):
                        if name in workers:
                            _pause()
                            report.setdefault("inference", {})[name] = workers[name].call("inference")
            finally:
                for worker in workers.values():
                    worker.close()
    if plan.startup:
        report["startup"] = _startup(log)
    report["environment"]["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    report["targets"] = check_targets(report)
    return report


def _headline(report: dict) -> dict | None:
    configs = [c for c in report["configs"] if c["openblas"] == "unset"]
    for c in configs:
        if (tuple(c["hidden"]), c["batch_size"]) == HEADLINE:
            return c
    return configs[0] if configs else None


def check_targets(report: dict) -> list[dict]:
    """The issue's targets, each {"target", "value", "limit", "met"} (value None if not measured)."""
    head = _headline(report)
    runners = head["runners"] if head else {}
    ours = runners.get("ours", {}).get("seconds_per_epoch")

    def ratio(name):
        return runners[name].get("paired_vs_ours") if ours and name in runners else None

    startup = report.get("startup", {})
    inference = report.get("inference", {}).get("ours", {})
    rows = [
        ("Keras / ours, s per epoch", ratio("keras"), ">=", 6.0),
        ("NumPy reference / ours, s per epoch", ratio("numpy reference"), ">=", 2.0),
        ("ours / GEMM floor, s per epoch", runners["ours"].get("paired_vs_floor") if ours else None, "<=", 1.3),
        ("single-image forward pass (sparse kernel), us",
         inference.get("single_sparse_kernel_us", inference.get("single_kernel_us")), "<=", 10.0),
        ("digits --help, s", startup.get("help_s"), "<=", 0.3),
        ("warm-cache start of training, s", startup.get("warm", {}).get("wall_s"), "<=", 1.0),
    ]
    out = []
    for target, value, op, limit in rows:
        met = None if value is None else (value >= limit if op == ">=" else value <= limit)
        out.append({"target": target, "value": value, "limit": f"{op} {limit:g}", "met": met})
    return out


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def format_report(report: dict) -> str:
    """The human-readable tables of a report."""
    lines = []
    env = report["environment"]
    plan = report["plan"]
    load = env.get("load_average_before")
    after = env.get("load_average_after")
    lines.append(
        f"{env['cpus']} CPUs; load average {_fmt(load and load[0], '.2f')} before, "
        f"{_fmt(after and after[0], '.2f')} after; medians of epochs 2-{plan['epochs']} (epoch 1 apart)"
    )
    for note in report["notes"]:
        lines.append(f"note: {note}")
    for config in report["configs"]:
        lines.append("")
        lines += _config_table(config)
    sweep = [c for c in report["configs"] if c["openblas"] == "unset"]
    if len(sweep) > 1:
        lines.append("")
        lines += _sweep_table(sweep)
    if report.get("inference"):
        lines.append("")
        lines.append("inference, median latency (ours: the sparse forward kernel, which skips blank pixels and "
                     "BLAS, and model.Predictor around it with normalization and softmax; the dense fused "
                     "forward kernel; model.forward one op at a time; predict_proba)")
        for name, r in report["inference"].items():
            single = f"single image {r['single_us']:9.1f} us"
            if "single_sparse_kernel_us" in r:
                single = (f"single image: forward kernel {r['single_sparse_kernel_us']:.1f} us (model.Predictor, "
                          f"image to probabilities, {r['single_predictor_us']:.1f} us), dense fused kernel "
                          f"{r['single_kernel_us']:.1f} us, "
                          f"model.forward {r['single_us']:.1f} us, predict_proba {r['single_predict_us']:.1f} us")
            elif "single_kernel_us" in r:
                single = (f"single image: kernel {r['single_kernel_us']:.1f} us, model.forward {r['single_us']:.1f} us, "
                          f"predict_proba {r['single_predict_us']:.1f} us")
            lines.append(f"  {name:<22} {single}; 10k batch {r['batch10k_ms']:7.1f} ms")
    if report.get("startup"):
        s = report["startup"]
        cold, warm = s["cold"], s["warm"]
        lines.append("")
        lines.append(f"start-up: cold compile {cold['kernels_s']:.1f} s (process {cold['wall_s']:.1f} s, empty cache); "
                     f"warm start of training {warm['wall_s']:.2f} s from launch to the first step done (imports "
                     f"{warm['import_s']:.2f}, first step with its kernel loads {warm['first_step_s']:.3f}; "
                     f"the process then exits in {warm.get('exit_s', 0.0):.2f}); "
                     f"digits --help {_fmt(s.get('help_s'), '.2f')} s")
    head = _headline(report)
    if head and "ours" in head["runners"]:
        ours = head["runners"]["ours"]["seconds_per_epoch"]
        floor = head["floor"]["seconds"]
        lines.append("")
        lines.append("the issue's fixed figures (784-128-10, batch 128, Adam; another run on this machine type):")
        for name, seconds in ISSUE_FIGURES.items():
            lines.append(f"  {name:<24} {seconds:6.3f} s/epoch = {seconds / ISSUE_FLOOR['OPENBLAS_CORETYPE/L2_SIZE unset']:4.2f}x "
                         f"its unset floor, {seconds / ISSUE_FLOOR['default OpenBLAS settings']:4.2f}x its default floor")
        lines.append(f"  {'ours, this run':<24} {ours:6.3f} s/epoch = {ours / floor:4.2f}x this run's floor "
                     f"({floor:.3f} s)")
    if report.get("targets"):
        lines.append("")
        lines.append("targets (784-128-10, batch 128, Adam; per-epoch ratios are medians of the paired rounds)")
        for t in report["targets"]:
            verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
            lines.append(f"  {t['target']:<38} {_fmt(t['value'], '8.2f'):>8}  (target {t['limit']})  {verdict}")
    return "\n".join(lines)


def _config_table(config: dict) -> list[str]:
    arch = "-".join(map(str, [784, *config["hidden"], 10]))
    floor = config["floor"]
    lines = [
        f"{arch} relu, batch {config['batch_size']}, Adam, {config['n']:,} images, "
        f"{config['gflop_per_epoch']:.1f} GFLOP per epoch; OpenBLAS variables {config['openblas']}",
        f"  {'runner':<22} {'s/epoch':>8} {'epoch 1':>8} {'samples/s':>10} {'x ours':>7} {'x floor':>8} {'test acc':>9}"
        f"   paired: x ours, x floor",
    ]
    for name, r in config["runners"].items():
        lines.append(
            f"  {name:<22} {r['seconds_per_epoch']:8.3f} {r['first_epoch']:8.3f} {r['samples_per_second']:10,.0f} "
            f"{_fmt(r['vs_ours'], '6.2f'):>6}x {r['vs_floor']:7.2f}x {100 * r['test_accuracy']:8.2f}%"
            f"   {_fmt(r.get('paired_vs_ours'), '6.2f'):>6}x {_fmt(r.get('paired_vs_floor'), '5.2f'):>5}x"
        )
    by_blas = ", ".join(f"{k} {v:.3f}" for k, v in floor["by_blas"].items())
    ours = config["runners"].get("ours", {}).get("seconds_per_epoch")
    lines.append(
        f"  {'GEMM floor':<22} {floor['seconds']:8.3f} {'':>8} {config['n'] / floor['seconds']:10,.0f} "
        f"{_fmt(ours and floor['seconds'] / ours, '6.2f'):>6}x {1:7.2f}x   ({by_blas}; {floor['gflops']:.0f} GFLOP/s)"
    )
    return lines


def _sweep_table(configs: list[dict]) -> list[str]:
    names = list(configs[0]["runners"])
    head = f"  {'model, batch':<22}" + "".join(f"{n[:22]:>23}" for n in names) + f"{'floor':>9}{'ours/floor':>11}"
    lines = ["sweep: seconds per epoch (x ours)", head]
    for c in configs:
        arch = f"784-{'-'.join(map(str, c['hidden']))}-10, {c['batch_size']}"
        cells = "".join(
            f"{c['runners'][n]['seconds_per_epoch']:15.3f} ({_fmt(c['runners'][n]['vs_ours'], '4.1f')}x)" for n in names
        )
        ours = c["runners"].get("ours", {}).get("seconds_per_epoch")
        lines.append(f"  {arch:<22}{cells}{c['floor']['seconds']:9.3f}{_fmt(ours and ours / c['floor']['seconds'], '10.2f'):>11}")
    return lines


def plot_report(report: dict, path: str | Path) -> Path:
    """Seconds per epoch against hidden size and batch size (or per runner, for one config)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [c for c in report["configs"] if c["openblas"] == "unset"]
    plan = report["plan"]
    hidden0, batch0 = BenchPlan(hidden=tuple(tuple(h) for h in plan["hidden"]),
                                batch_sizes=tuple(plan["batch_sizes"])).centre()
    by_hidden = [c for c in configs if c["batch_size"] == batch0]
    by_batch = [c for c in configs if tuple(c["hidden"]) == hidden0]
    panels = [(p, key, label) for p, key, label in (
        (by_hidden, lambda c: sum(c["hidden"]), "hidden units (total)"),
        (by_batch, lambda c: c["batch_size"], "batch size"),
    ) if len(p) > 1]
    if not panels:
        fig, ax = plt.subplots(figsize=(7, 4))
        c = configs[0]
        names = [*c["runners"], "GEMM floor"]
        values = [*(r["seconds_per_epoch"] for r in c["runners"].values()), c["floor"]["seconds"]]
        ax.barh(names, values, color=[f"C{i}" for i in range(len(names))])
        ax.set(xlabel="seconds per epoch (median)", title=f"784-{'-'.join(map(str, c['hidden']))}-10, batch {c['batch_size']}")
        ax.invert_yaxis()
    else:
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
        for ax, (group, key, label) in zip(axes[0], panels):
            group = sorted(group, key=key)
            xs = [key(c) for c in group]
            for i, name in enumerate(group[0]["runners"]):
                ax.plot(xs, [c["runners"][name]["seconds_per_epoch"] for c in group], "o-", color=f"C{i}", label=name)
            ax.plot(xs, [c["floor"]["seconds"] for c in group], "k--", label="GEMM floor")
            ax.set(xscale="log", yscale="log", xlabel=label, ylabel="seconds per epoch (median)")
            ax.set_xticks(xs, [str(x) for x in xs], minor=False)
            ax.set_xticks([], minor=True)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
