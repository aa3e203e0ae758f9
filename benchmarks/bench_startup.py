"""Start-up figures of ``digits bench``: a cold kernel compile, warm starts and ``digits --help``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tinygrad_digits.apps.bench import BenchError

PROBE = Path(__file__).resolve().parent / "startup_probe.py"


def peak_memory(env) -> float | None:
    """Peak resident size, in MB (10^6 bytes), of ``digits train --hidden 128 --act relu`` as a user
    runs it (warm kernels, the model and its plot in a temporary folder), read from the kernel's
    accounting of a child process."""
    digits = Path(sys.executable).parent / "digits"
    if not digits.exists():
        return None
    with tempfile.TemporaryDirectory(prefix="digits-bench-peak-") as folder:
        probe = ("import resource, subprocess, sys\n"
                 "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
                 "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
        command = [sys.executable, "-c", probe, str(digits), "train", "--hidden", "128", "--act", "relu",
                   "--out", str(Path(folder) / "m.npz")]
        done = subprocess.run(command, env={**env, "XDG_DATA_HOME": folder}, capture_output=True, text=True)
        code, kib = done.stdout.split()
        return int(kib) * 1024 / 1e6 if code == "0" else None


def startup(log) -> dict:
    """Cold compile (an empty NUMBA_CACHE_DIR), warm start of training, and digits --help.

    The cold run compiles every kernel (warmup.warm_up, in startup_probe.py). A warm run starts as ``digits train``
    does, loading kernels as they are first called, and its ``wall_s`` runs from launching the
    process to the end of the first training step; the process's exit after that is ``exit_s``.
    """
    def run(env, which):
        launched = time.time()
        done = subprocess.run([sys.executable, str(PROBE), which], env=env, capture_output=True, text=True)
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
        log("start-up: peak memory of the default digits train")
        result["peak_train_mb"] = peak_memory(env)
    digits = Path(sys.executable).parent / "digits"
    if digits.exists():
        walls = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([str(digits), "--help"], capture_output=True, check=True)
            walls.append(time.perf_counter() - start)
        result["help_s"] = float(np.median(walls))
    return result
