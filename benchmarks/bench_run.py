"""The run of ``digits bench``: our trainer against references, timed in one run.

Every trainer runs in a worker process of its own (the scripts beside this one): ours (the path
training takes, and the one-thread and parallel fused kernels and the general path apart), the
plain-NumPy reference and the minimal NumPy script it is checked against, Keras, and JAX when it
is installed (its jitted step, and its whole epoch in ``lax.scan``). TensorFlow, JAX and Numba
never share a process (all load LLVM), and no hot loop mixes two BLAS libraries whose spinning
thread pools would fight over the cores. The parent sends one epoch at a time to each worker in
turn (the order rotates every round), pausing between workers so the previous pool has gone to
sleep; each worker times its own epoch. Just before and just after our trainer's epoch, two
floors are measured on both BLAS libraries, and the round's floor is the mean of the two: the
dense GEMM floor (every product of an epoch, dense) and the work floor (the products the fused
kernel does: its first layer over the non-background inputs only). Figures
are medians over epochs 2..N; epoch 1 (compile, trace) is reported apart. Nothing here imports
Numba, JAX or TensorFlow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from bench_report import check_targets
from bench_startup import startup
from gemm_floor import epoch_flops

from tinygrad_digits.apps.bench import BenchError, BenchPlan

OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PAUSE_SECONDS = 0.25  # > OpenBLAS's default thread timeout (2^28 cycles, ~0.1 s): its pool sleeps
HERE = Path(__file__).resolve().parent
RUNNERS = {  # name: (script, extra arguments, the module it needs)
    "ours": ("ours_runner.py", (), None),
    "ours (one thread)": ("ours_runner.py", ("--threads", "one"), None),
    "ours (parallel)": ("ours_runner.py", ("--threads", "parallel"), None),
    "ours (general path)": ("ours_runner.py", ("--general",), None),
    "numpy reference": ("numpy_reference.py", (), None),
    "numpy minimal": ("numpy_reference.py", ("--minimal",), None),
    "keras": ("keras_runner.py", (), "tensorflow"),
    "jax jitted step": ("jax_runner.py", (), "jax"),
    "jax epoch in lax.scan": ("jax_runner.py", ("--scan",), "jax"),
}
FLOORS = {  # floor: [(BLAS, the worker that times it on its BLAS)]
    "GEMM floor": [("numpy BLAS", "numpy reference"), ("Numba/SciPy BLAS", "ours")],
    "work floor": [("numpy BLAS", "numpy reference"), ("Numba/SciPy BLAS", "ours")],
}
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile",
                "neon", "asimd", "sve")


def available(module: str | None) -> bool:
    return module is None or importlib.util.find_spec(module) is not None


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


def _write_data(splits, train_size, root: Path) -> tuple[int, int]:
    """Normalized float32 arrays (as model.normalize makes them) for the workers; returns n and
    the mean count of non-background inputs per training row (the fused kernel's first layer
    multiplies those alone)."""
    x_train, y_train = splits.x_train, splits.y_train
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    mean, std = np.float32(x_train.mean()), np.float32(x_train.std())
    x = np.ascontiguousarray((x_train.astype(np.float32) - mean) / std)
    np.save(root / "x_train.npy", x)
    np.save(root / "y_train.npy", y_train.astype(np.int64))
    np.save(root / "x_test.npy", np.ascontiguousarray((splits.x_test.astype(np.float32) - mean) / std))
    np.save(root / "y_test.npy", splits.y_test.astype(np.int64))
    np.save(root / "images.npy", np.ascontiguousarray(splits.x_test[:10000], dtype=np.float32))
    return len(x), max(1, round(np.count_nonzero(x != x.min()) / len(x)))


def _measure_floors(workers: dict, inputs: int) -> dict:
    """Each floor on each BLAS once: {floor: {blas: seconds}}."""
    out = {}
    for floor, by in FLOORS.items():
        for blas, runner in by:
            if runner in workers:
                _pause()
                first = inputs if floor == "work floor" else None
                out.setdefault(floor, {})[blas] = workers[runner].call("floor", first_inputs=first)["seconds"]
    return out


def _time_config(workers: dict, hidden, batch_size, plan: BenchPlan, data_dir: Path, n: int, inputs: int,
                 log) -> dict:
    label = f"784-{'-'.join(map(str, hidden))}-10, batch {batch_size}"
    args = {"data": str(data_dir), "hidden": list(hidden), "batch_size": batch_size, "epochs": plan.epochs,
            "seed": plan.seed}
    for worker in workers.values():
        worker.call("setup", **args)
    names = list(workers)
    epochs = {name: [] for name in names}
    floors = {floor: {blas: [] for blas, runner in by if runner in workers} for floor, by in FLOORS.items()}
    for r in range(plan.epochs):
        log(f"{label}: epoch {r + 1}/{plan.epochs}")
        for name in names[r % len(names):] + names[: r % len(names)]:
            # the floors just before and just after our epoch (round 1 only warms up): the load
            # from elsewhere drifts within seconds here, so our ratio takes the floor of its moment
            measured = r > 0 and name == "ours"
            before = _measure_floors(workers, inputs) if measured else None
            _pause()
            epochs[name].append(workers[name].call("epoch"))
            if measured:
                after = _measure_floors(workers, inputs)
                for floor, by_blas in floors.items():
                    for blas, seconds in by_blas.items():
                        seconds.append((before[floor][blas] + after[floor][blas]) / 2)
    runners = {}
    for name, replies in epochs.items():
        seconds = [r["seconds"] for r in replies]
        median = float(np.median(seconds[1:]))
        runners[name] = {
            "seconds_per_epoch": median, "first_epoch": seconds[0], "epochs": seconds,
            "samples_per_second": n / median, "final_loss": replies[-1]["loss"],
            "test_accuracy": workers[name].call("evaluate")["test_accuracy"],
        }
    sizes = [784, *hidden, 10]
    result = {"hidden": list(hidden), "batch_size": batch_size, "n": n, "epochs": plan.epochs,
              "gflop_per_epoch": epoch_flops(sizes, n) / 1e9, "runners": runners}
    for floor, key, flop_sizes in (("GEMM floor", "floor", sizes), ("work floor", "work_floor", [inputs, *sizes[1:]])):
        by_blas = {blas: float(np.median(v)) for blas, v in floors[floor].items() if v}
        seconds = min(by_blas.values())
        result[key] = {"seconds": seconds, "by_blas": by_blas, "first_inputs": flop_sizes[0],
                       "gflops": epoch_flops(flop_sizes, n) / seconds / 1e9,
                       "rounds": [min(v[r] for v in floors[floor].values() if len(v) > r)
                                  for r in range(plan.epochs - 1)]}
    ours = runners.get("ours", {}).get("seconds_per_epoch")
    for entry in runners.values():
        entry["vs_ours"] = entry["seconds_per_epoch"] / ours if ours else None
        entry["vs_floor"] = entry["seconds_per_epoch"] / result["floor"]["seconds"]
        entry["vs_work_floor"] = entry["seconds_per_epoch"] / result["work_floor"]["seconds"]
    # Paired ratios: each round's epochs and floors ran back to back, so a burst of load from
    # elsewhere hits both sides of a round's ratio; their median is steadier than a ratio of medians.
    for name, entry in runners.items():
        mine = entry["epochs"][1:]
        for key in ("floor", "work_floor"):
            entry[f"paired_vs_{key}"] = float(np.median([m / f for m, f in zip(mine, result[key]["rounds"])]))
        if "ours" in runners:
            entry["paired_vs_ours"] = float(np.median([m / o for m, o in zip(mine, runners["ours"]["epochs"][1:])]))
    return result


def _start_workers(plan: BenchPlan, env: dict, log_dir: Path, log) -> dict:
    names = ["ours", "numpy reference", "numpy minimal"]
    if plan.general:
        names[1:1] = ["ours (one thread)", "ours (parallel)", "ours (general path)"]
    if plan.keras:
        names.append("keras")
    names += ["jax jitted step", "jax epoch in lax.scan"]
    workers = {}
    for name in names:
        script, extra, needs = RUNNERS[name]
        if not available(needs):
            hint = "pip install 'tinygrad-digits[keras]'" if needs == "tensorflow" else "pip install jax jaxlib"
            log(f"{name}: {needs} is not installed; skipped ({hint})")
            continue
        workers[name] = _Worker(name, HERE / script, extra, env, log_dir / f"{script}{len(workers)}.log")
    return workers


WARM_UP = (
    "import json\n"
    "from tinygrad_digits import warmup\n"
    "if not warmup.kernels_cached():\n"
    "    warmup.warm_up()\n"
    "print(json.dumps(warmup.recorded_choice()))\n"
)


def warm_kernels(env: dict, log) -> dict | None:
    """Compile the kernels (a cold cache) before any worker starts, in a process of its own, so
    that workers do not compile side by side and warm-up times the training kernels on a machine
    that nothing of the bench loads yet; returns the thread choice recorded (warmup.THREADS_FILE)."""
    log("kernels: warm-up (compiles only when the cache is cold)")
    done = subprocess.run([sys.executable, "-c", WARM_UP], env=env, capture_output=True, text=True)
    if done.returncode:
        raise BenchError(f"kernel warm-up failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def environment() -> dict:
    """The machine: CPU model and vector extensions, CPU count, load, versions, OpenBLAS settings."""
    flags, model = set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(), "cpu_model": model or "unknown",
        "vector_extensions": [f for f in VECTOR_FLAGS if f in flags], "load_average_before": load,
        "python": sys.version.split()[0], "numpy": np.__version__,
        "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARIABLES},
    }


def run_bench(plan: BenchPlan, splits, log=lambda message: None) -> dict:
    """Run the plan on the splits' training images; returns the report (bench_report.format_report).

    ``log(message)`` hears progress. Raises BenchError when a worker fails (a Keras or JAX worker
    that cannot start is dropped with a note instead).
    """
    report = {"plan": asdict(plan), "environment": environment(), "configs": [], "notes": []}
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
        n, inputs = _write_data(splits, plan.train_size, tmp)
        for variant, env in variants:
            report["environment"].setdefault("thread_choice", warm_kernels(env, log))
            workers = _start_workers(plan, env, tmp, log)
            try:
                for name in [w for w in workers if w.startswith(("keras", "jax"))]:
                    try:
                        workers[name].call("info")
                    except BenchError as e:
                        report["notes"].append(f"{name} skipped: {e}")
                        workers.pop(name).close()
                report.setdefault("versions", {}).update({k: w.call("info") for k, w in workers.items()})
                configs = plan.configs() if variant == "unset" else [plan.configs()[0]]
                for hidden, batch_size in configs:
                    entry = _time_config(workers, hidden, batch_size, plan, tmp, n, inputs, log)
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
        report["startup"] = startup(log)
    report["environment"]["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    threads = report.get("versions", {}).get("ours", {})
    report["environment"]["threads"] = threads.get("threads")
    report["environment"]["parallel_chosen"] = threads.get("parallel_chosen")
    report["environment"]["widened_vectors"] = threads.get("widened")
    report["targets"] = check_targets(report)
    return report
