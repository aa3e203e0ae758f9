"""What every benchmark worker shares: the command channel, the data and the timing helpers.

A worker is a script run as its own process (``python benchmarks/<name>.py --serve``). It reads
one JSON command per line on stdin and answers each with one JSON line on the channel (the
original stdout; anything the libraries print goes to stderr). Commands:

- ``{"cmd": "setup", "args": {"data": dir, "hidden": [128], "batch_size": 128, "epochs": 5,
  "seed": 0, ...}}``: build the model and optimizer; answers ``{"ready": true}``;
- ``{"cmd": "epoch"}``: train one epoch; answers ``{"seconds", "loss"}``, the seconds timed
  inside the worker around the epoch alone;
- ``{"cmd": "floor"}``: time the matrix products of one epoch on the worker's BLAS;
- ``{"cmd": "inference"}``: single-image and 10k-batch forward latency;
- ``{"cmd": "evaluate"}``: test accuracy of the model as trained so far;
- ``{"cmd": "quit"}``.

A failure answers ``{"error": "..."}``. Workers never import each other's frameworks: TensorFlow
and Numba both load LLVM and must not share a process.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np


class Channel:
    """JSON lines in on stdin, out on a private copy of stdout."""

    def __init__(self):
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # stray prints (and C libraries) now land on stderr
        sys.stdout = sys.stderr

    def receive(self) -> dict:
        line = sys.stdin.readline()
        if not line:
            raise SystemExit(0)
        return json.loads(line)

    def send(self, reply: dict) -> None:
        self._out.write(json.dumps(reply) + "\n")


def answer(channel: Channel, worker, command: dict) -> None:
    """Run the worker's method named by the command and send its reply, or the error it raised."""
    try:
        handler = getattr(worker, command["cmd"], None)
        if handler is None:
            raise ValueError(f"this worker has no command {command['cmd']!r}")
        reply = handler(**command.get("args", {}))
    except Exception as e:  # the parent shows it; the worker keeps serving
        traceback.print_exc()
        reply = {"error": f"{type(e).__name__}: {e}"}
    channel.send(reply)


def serve(channel: Channel, worker) -> None:
    """Answer commands until "quit" or the end of stdin."""
    while True:
        command = channel.receive()
        if command["cmd"] == "quit":
            return
        answer(channel, worker, command)


def blas_info() -> list[dict]:
    """The BLAS libraries loaded in this process, with their thread counts (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("internal_api", "version", "num_threads", "architecture", "filepath")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info() if lib.get("user_api") == "blas"]


def load_data(data: str) -> dict:
    """The arrays the parent wrote: x_train (n, 784) float32 normalized, y_train (n,) int64,
    x_test, y_test likewise, and images (k, 784) float32 raw [0, 1] for inference."""
    root = Path(data)
    return {p.stem: np.load(p) for p in root.glob("*.npy")}


def median_seconds(call, repeats: int, rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean seconds of ``repeats`` back-to-back calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        times.append((time.perf_counter() - start) / repeats)
    return float(np.median(times))


def steps_of_epoch(n: int, batch_size: int) -> list[int]:
    """Rows per step of one epoch: full batches, then the remainder."""
    full, rest = divmod(n, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def he_or_glorot_init(sizes: list[int], activations: list[str], rng: np.random.Generator) -> list:
    """[(W (in, out), b (out,)) float32] as tinygrad_digits.model.init_params("auto") draws them:
    He uniform for the relu family, Glorot uniform otherwise and for the output layer."""
    layers = []
    acts = [*activations, "identity"]
    for fan_in, fan_out, act in zip(sizes[:-1], sizes[1:], acts):
        he = act in ("relu", "leaky_relu")
        limit = np.sqrt(6.0 / fan_in) if he else np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
        layers.append((np.ascontiguousarray(w), np.zeros(fan_out, dtype=np.float32)))
    return layers
